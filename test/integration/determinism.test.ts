// Determinism from SQL: the same request gives identical bytes across calls,
// daemon processes, restarts, thread counts and concurrent callers, and
// whether it is computed or served from a cache.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

const PROMPTS = ["Tell me about cats", "SQL is", "naïve café — 日本語", "x", "Write a haiku about databases", "🧪 emoji prompt"];
const TEXTS = ["hello world", "a quick brown fox", "Äpfel und Birnen", "PostgreSQL vectors", "same", "日本"];

interface Answers {
  generated: Array<string | null>;
  embedded: Array<string | null>;
}

let stack: TestStack;
let baseline: Answers;

/** Compute (never from a cache) every prompt and text, in the given session or a fresh one. */
async function answers(session?: pg.Client): Promise<Answers> {
  const run = async (sql: string, params: unknown[]): Promise<Array<{ v: string | null }>> =>
    session ? (await session.query<{ v: string | null }>(sql, params)).rows : stack.query<{ v: string | null }>(sql, params);
  const generated = await run(
    "SELECT steadytext_generate(p, 24, false) AS v FROM unnest($1::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i",
    [PROMPTS],
  );
  const embedded = await run(
    "SELECT steadytext_embed(p, false)::text AS v FROM unnest($1::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i",
    [TEXTS],
  );
  return { generated: generated.map((r) => r.v), embedded: embedded.map((r) => r.v) };
}

before(async () => {
  stack = await TestStack.start();
  baseline = await answers();
});
after(() => stack.stop());

test("the baseline is complete: every call produced an answer", () => {
  assert.ok(baseline.generated.every((g) => typeof g === "string"));
  assert.ok(baseline.embedded.every((e) => typeof e === "string"));
});

test("embeddings are unit vectors of 1024 dimensions, and different texts differ", async () => {
  const rows = await stack.query<{ dims: number; norm: number }>(
    "SELECT vector_dims(steadytext_embed(t, false)) AS dims, vector_norm(steadytext_embed(t, false)) AS norm FROM unnest($1::text[]) t",
    [TEXTS],
  );
  for (const row of rows) {
    assert.equal(row.dims, 1024);
    assert.ok(Math.abs(row.norm - 1) < 1e-6, `norm ${row.norm}`);
  }
  assert.equal(new Set(baseline.embedded.slice(0, 5)).size, 5);
});

test("calling again gives identical bytes", async () => {
  assert.deepEqual(await answers(), baseline);
});

test("a cached answer equals the computed one", async () => {
  const cached = await stack.query<{ g: string; e: string }>(
    "SELECT steadytext_generate($1, 24) AS g, steadytext_embed($2)::text AS e",
    [PROMPTS[0], TEXTS[0]],
  );
  // The second query must be served from the mirrored rows: wait until both are written.
  await stack.waitFor(async () =>
    (await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = ANY($1)", [[PROMPTS[0], TEXTS[0]]])).length === 2,
  );
  const again = await stack.query<{ g: string; e: string }>(
    "SELECT steadytext_generate($1, 24) AS g, steadytext_embed($2)::text AS e",
    [PROMPTS[0], TEXTS[0]],
  );
  assert.equal(cached[0]!.g, baseline.generated[0]);
  assert.equal(cached[0]!.e, baseline.embedded[0]);
  assert.deepEqual(again, cached);
});

test("after a daemon restart", async () => {
  await stack.stopSidecar();
  await stack.startSidecar();
  assert.deepEqual(await answers(), baseline);
});

test("from a second daemon process, running at the same time", async () => {
  const second = await SidecarProcess.start({ port: await freePort(), cacheDir: join(stack.dir, "second"), testModels: true });
  try {
    const session = await stack.connect();
    await session.query(`SET steadytext.daemon_port = ${second.options.port}`);
    assert.deepEqual(await answers(session), baseline);
  } finally {
    await second.stop();
  }
});

test("with two threads per context instead of one", async () => {
  await stack.stopSidecar();
  await stack.startSidecar({ STEADYTEXT_THREADS: "2" });
  try {
    assert.deepEqual(await answers(), baseline);
  } finally {
    await stack.stopSidecar();
    await stack.startSidecar();
  }
});

test("16 concurrent sessions each get their own, correct answer", async () => {
  const sessions = await Promise.all(Array.from({ length: 16 }, () => stack.connect()));
  const results = await Promise.all(
    sessions.map(async (session, i) => {
      const p = i % PROMPTS.length;
      const t = i % TEXTS.length;
      const { rows } = await session.query(
        "SELECT steadytext_generate($1, 24, false) AS g, steadytext_embed($2, false)::text AS e",
        [PROMPTS[p], TEXTS[t]],
      );
      return { p, t, g: rows[0].g as string, e: rows[0].e as string };
    }),
  );
  for (const r of results) {
    assert.equal(r.g, baseline.generated[r.p]);
    assert.equal(r.e, baseline.embedded[r.t]);
  }
});

test("a batch spread over several contexts equals its texts embedded one at a time, with one context or many", async () => {
  const texts = Array.from({ length: 80 }, (_, i) => `${TEXTS[i % TEXTS.length]} #${i}`);
  const batch = async () =>
    (await stack.query<{ v: string }>("SELECT embedding::text AS v FROM steadytext_embed_batch($1::text[], false) ORDER BY idx", [texts])).map((r) => r.v);
  const singles = (await stack.query<{ v: string }>(
    "SELECT steadytext_embed(t, false)::text AS v FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i", [texts])).map((r) => r.v);
  assert.deepEqual(await batch(), singles);
  // One context: nothing to spread over.
  await stack.stopSidecar();
  await stack.startSidecar({ STEADYTEXT_CONTEXTS_PER_MODEL: "1" });
  try {
    assert.deepEqual(await batch(), singles);
  } finally {
    await stack.stopSidecar();
    await stack.startSidecar();
  }
});
