// The model-calling functions are STABLE, not IMMUTABLE: the planner never
// runs a model (a plain EXPLAIN does not call the daemon) and never freezes
// an answer, or a NULL from a daemon that was down, into a cached plan;
// pgvector's index still serves ORDER BY ... <=> steadytext_embed(...); and a
// generated column or index expression works through an IMMUTABLE wrapper
// the user declares (README: "Volatility").

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { freePort } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

async function requestsServed(): Promise<number> {
  const client = stack.sidecar!.client(5000);
  try {
    return (await client.request<StatusResult>("status")).requests;
  } finally {
    await client.close();
  }
}

test("a plain EXPLAIN of a model call does not call the daemon", async () => {
  const before = await requestsServed();
  await stack.query("EXPLAIN SELECT steadytext_generate('explained, never run', 5, false)");
  await stack.query("EXPLAIN SELECT steadytext_embed('explained, never embedded', false, 7)");
  // The status request itself counts once.
  assert.equal(await requestsServed(), before + 1);
});

test("a NULL from a daemon that was down is not frozen into a cached generic plan", async () => {
  const session = await stack.connect();
  try {
    await session.query("SET plan_cache_mode = force_generic_plan");
    await session.query("PREPARE ask AS SELECT steadytext_generate('planned while the daemon was away', 5) AS answer");
    await session.query(`SET steadytext.daemon_endpoint = 'tcp://127.0.0.1:${await freePort()}'`);
    await session.query("SET steadytext.connect_timeout_ms = 200");
    assert.equal((await session.query("EXECUTE ask")).rows[0].answer, null, "no daemon: NULL");
    await session.query("RESET steadytext.daemon_endpoint");
    const answer = (await session.query("EXECUTE ask")).rows[0].answer as string | null;
    assert.equal(typeof answer, "string", "the same prepared statement answers once the daemon is there");
    assert.equal(answer, (await stack.query<{ t: string }>("SELECT steadytext_generate('planned while the daemon was away', 5) AS t"))[0]!.t);
  } finally {
    await session.end();
  }
});

test("pgvector's index serves ORDER BY distance to steadytext_embed(), and EXPLAIN shows it without embedding", async () => {
  await stack.query("CREATE TABLE notes (id int PRIMARY KEY, body text, embedding vector(1024))");
  await stack.query("INSERT INTO notes SELECT i, 'note ' || i, steadytext_embed('note ' || i) FROM generate_series(1, 4) i");
  await stack.query("CREATE INDEX notes_hnsw ON notes USING hnsw (embedding vector_cosine_ops)");
  const session = await stack.connect();
  try {
    await session.query("SET enable_seqscan = off");
    const before = await requestsServed();
    const plan = (await session.query("EXPLAIN (COSTS OFF) SELECT id FROM notes ORDER BY embedding <=> steadytext_embed('which note?') LIMIT 2")).rows
      .map((row: { "QUERY PLAN": string }) => row["QUERY PLAN"])
      .join("\n");
    assert.match(plan, /Index Scan using notes_hnsw/);
    assert.equal(await requestsServed(), before + 1, "EXPLAIN embedded nothing");
    const nearest = await session.query("SELECT id FROM notes ORDER BY embedding <=> steadytext_embed('note 3') LIMIT 1");
    assert.equal(nearest.rows[0].id, 3);
  } finally {
    await session.end();
  }
});

test("a generated column and an index expression work through an IMMUTABLE wrapper, with the same bytes as a direct call", async () => {
  await stack.query(`CREATE FUNCTION my_summary(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
                     AS $$ SELECT steadytext_generate(t, 8) $$`);
  await stack.query("CREATE TABLE tickets (id int PRIMARY KEY, body text, summary text GENERATED ALWAYS AS (my_summary(body)) STORED)");
  await stack.query("CREATE INDEX tickets_summary ON tickets (my_summary(body))");
  await stack.query("INSERT INTO tickets VALUES (1, 'the printer is on fire'), (2, 'the coffee machine is empty')");
  const rows = await stack.query<{ id: number; summary: string; direct: string }>(
    "SELECT id, summary, steadytext_generate(body, 8) AS direct FROM tickets ORDER BY id",
  );
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.equal(typeof row.summary, "string");
    assert.equal(row.summary, row.direct);
  }
});
