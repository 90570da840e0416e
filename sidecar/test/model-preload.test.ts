// Preloading: a daemon loads its default models when it starts, so the first
// request does not pay for loading; `st daemon start --no-preload` and
// `--skip-embeddings` leave models for their first request.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { DaemonClient } from "../src/client/daemon-client.js";
import type { StatusResult } from "../src/protocol/index.js";
import { freePort, ST_CLI } from "../../scripts/lib/sidecar-process.js";

const run = promisify(execFile);
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "steadytext-preload-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Start a background daemon with `flags`, wait until `done(status)` holds, return the loaded roles; stop it. */
async function loadedRolesAfterStart(flags: string[], done: (s: StatusResult) => boolean): Promise<string[]> {
  const port = await freePort();
  const env = {
    ...process.env,
    STEADYTEXT_CACHE_DIR: join(dir, String(port)),
    STEADYTEXT_DAEMON_PORT: String(port),
    STEADYTEXT_TEST_MODELS: "1",
    STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0",
    STEADYTEXT_LOG_LEVEL: "warn",
  };
  delete (env as Record<string, string | undefined>).STEADYTEXT_PRELOAD;
  await run(process.execPath, [ST_CLI, "daemon", "start", ...flags], { env, timeout: 120_000 });
  const client = new DaemonClient(`tcp://127.0.0.1:${port}`, 5000);
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = await client.request<StatusResult>("status", {});
      if (done(status)) return status.models.filter((m) => m.loaded).map((m) => m.role).sort();
      if (Date.now() > deadline) throw new Error(`models never reached the expected state: ${JSON.stringify(status.models)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.close();
    await run(process.execPath, [ST_CLI, "daemon", "stop"], { env, timeout: 60_000 }).catch(() => undefined);
  }
}

test("a daemon loads its default models at start, before any request", async () => {
  const roles = await loadedRolesAfterStart([], (s) => s.preload === "done");
  assert.deepEqual(roles, ["embedding", "generation", "reranking"]);
});

test("--skip-embeddings preloads the others and leaves the embedding model for its first request", async () => {
  const roles = await loadedRolesAfterStart(["--skip-embeddings"], (s) => s.preload === "done");
  assert.deepEqual(roles, ["generation", "reranking"]);
});

test("--no-preload loads nothing until a request needs it", async () => {
  const roles = await loadedRolesAfterStart(["--no-preload"], (s) => s.preload === "off");
  assert.deepEqual(roles, []);
});
