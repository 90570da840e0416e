// Runs the pgTAP suite (test/pgtap/*.sql) with pg_prove against a throwaway
// cluster with pg_steadytext, and a sidecar running the tiny test models.

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { TestStack, DATABASE } from "../harness/test-stack.js";

// --schema=NAME: the whole suite with pg_steadytext (and pgvector) installed
// in that schema instead of public; the tests find it through search_path.
const here = import.meta.dirname;
const args = process.argv.slice(2);
const schema = args.find((a) => a.startsWith("--schema="))?.slice("--schema=".length);
const filters = args.filter((a) => !a.startsWith("--"));
const files = readdirSync(here)
  .filter((f) => f.endsWith(".sql"))
  .filter((f) => filters.length === 0 || filters.some((a) => f.includes(a)))
  .sort()
  .map((f) => join(here, f));

const stack = await TestStack.start();
let code = 1;
try {
  await stack.query("CREATE EXTENSION IF NOT EXISTS pgtap");
  if (schema !== undefined) {
    const name = `"${schema.replace(/"/g, '""')}"`;
    await stack.stopSidecar();
    await stack.query("DROP EXTENSION pg_steadytext CASCADE");
    await stack.query("DROP EXTENSION vector");
    await stack.query(`CREATE SCHEMA ${name}`);
    await stack.query(`CREATE EXTENSION pg_steadytext SCHEMA ${name} CASCADE`);
    // As a DBA would: the functions PUBLIC may call need USAGE on their schema.
    await stack.query(`GRANT USAGE ON SCHEMA ${name} TO PUBLIC`);
    await stack.query(`ALTER DATABASE ${DATABASE} SET search_path = ${name}, public`);
    await stack.startSidecar();
    console.log(`pg_steadytext is installed in schema ${name}`);
  }
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
