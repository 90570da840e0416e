// Runs the pgTAP suite (test/pgtap/*.sql) with pg_prove against a throwaway
// cluster with pg_steadytext, and a sidecar running the tiny test models.

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { TestStack, DATABASE } from "../harness/test-stack.js";

const here = import.meta.dirname;
const files = readdirSync(here)
  .filter((f) => f.endsWith(".sql"))
  .filter((f) => process.argv.length <= 2 || process.argv.slice(2).some((a) => f.includes(a)))
  .sort()
  .map((f) => join(here, f));

const stack = await TestStack.start();
let code = 1;
try {
  await stack.query("CREATE EXTENSION IF NOT EXISTS pgtap");
  // The daemon's own database-side state (heartbeat, model identities) is written asynchronously: let it land.
  await stack.waitFor(async () => (await stack.query("SELECT 1 FROM steadytext_daemon_health")).length > 0);
  code = await new Promise<number>((resolve) => {
    const prove = spawn(
      "pg_prove",
      ["--host", stack.cluster.socketDir, "--port", String(stack.cluster.port), "--username", "postgres", "--dbname", DATABASE, "--verbose", ...files],
      { stdio: "inherit", env: { ...process.env, PGOPTIONS: "--client-min-messages=warning" } },
    );
    prove.on("exit", (c) => resolve(c ?? 1));
  });
} finally {
  await stack.stop();
}
process.exit(code);
