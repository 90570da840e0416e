// With pg_steadytext in shared_preload_libraries, a backend keeps its cache
// hits in shared memory and the daemon takes them over its database
// connection: no ZeroMQ socket for hits, and every hit still counted, in the
// database it was served in.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
  await stack.query("ALTER SYSTEM SET shared_preload_libraries = 'vector', 'pg_steadytext'");
  await stack.cluster.restart();
});
after(() => stack.stop());

async function daemonRequests(): Promise<number> {
  const client = stack.sidecar!.client(10_000);
  try {
    return (await client.request<StatusResult>("status")).requests;
  } finally {
    await client.close();
  }
}

async function accessCount(prompt: string, database = "test"): Promise<number> {
  const rows = await stack.cluster.query<{ n: number }>("SELECT access_count AS n FROM steadytext_cache WHERE prompt = $1", [prompt], database);
  return rows[0]?.n ?? -1;
}

test("every hit is counted through shared memory, and none is sent to the daemon", async () => {
  const prompt = "a hit counted in shared memory";
  await stack.query("SELECT steadytext_generate_cached($1, 8)", [prompt]);
  await stack.waitFor(async () => (await accessCount(prompt)) >= 0);
  const before = await accessCount(prompt);
  const requestsBefore = await daemonRequests();

  const session = await stack.connect();
  const { rows } = await session.query<{ n: string }>("SELECT count(steadytext_generate($1, 8)) AS n FROM generate_series(1, 300)", [prompt]);
  assert.equal(rows[0]!.n, "300");
  for (let i = 0; i < 4; i++) await session.query("SELECT steadytext_generate($1, 8)", [prompt]);
  await session.end();

  await stack.waitFor(async () => (await accessCount(prompt)) === before + 304, 30_000);
  // Only the status request that asks: the hits took no message at all.
  assert.equal((await daemonRequests()) - requestsBefore, 1);
});

test("hits of another database are counted in that database's table", async () => {
  await stack.cluster.createDatabase("hits_elsewhere");
  await stack.cluster.query(`ALTER DATABASE hits_elsewhere SET steadytext.daemon_port = ${stack.daemonPort}`);
  const prompt = "a hit in another database";
  await stack.cluster.query("SELECT steadytext_generate_cached($1, 8)", [prompt], "hits_elsewhere");
  const before = await accessCount(prompt, "hits_elsewhere");
  await stack.cluster.query("SELECT count(steadytext_generate($1, 8)) FROM generate_series(1, 25)", [prompt], "hits_elsewhere");
  await stack.waitFor(async () => (await accessCount(prompt, "hits_elsewhere")) === before + 25, 30_000);
  assert.equal(await accessCount(prompt), -1, "nothing in the first database");
});
