// Pipelines that must survive crashes: a 10,000-row auto-embed backfill
// while the sidecar is killed with SIGKILL three times, and while PostgreSQL
// restarts under a running sidecar. In the end every row holds exactly
// steadytext_embed of its text, written once, and nothing is left pending.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestStack } from "../harness/test-stack.js";

const ROWS = 10_000;
// Short leases, so work a killed sidecar held is taken over within seconds.
const SIDECAR_ENV = { STEADYTEXT_QUEUE_LEASE_SECONDS: "3" };

let stack: TestStack;

before(async () => {
  stack = await TestStack.start({ sidecarEnv: SIDECAR_ENV });
});
after(() => stack.stop());

async function progress(table: string): Promise<{ embedded: number; pending: number; processing: number; failed: number; written: number }> {
  const [s] = await stack.query<{ rows_embedded: string; rows_pending: string; rows_processing: string; rows_failed: string; written: string }>(
    `SELECT s.rows_embedded, s.rows_pending, s.rows_processing, s.rows_failed, p.rows_embedded AS written
     FROM steadytext_auto_embed_status s JOIN steadytext_auto_embed_pipelines p ON p.id = s.pipeline_id
     WHERE s.source = $1::regclass`,
    [table],
  );
  return {
    embedded: Number(s!.rows_embedded),
    pending: Number(s!.rows_pending),
    processing: Number(s!.rows_processing),
    failed: Number(s!.rows_failed),
    written: Number(s!.written),
  };
}

async function startBackfill(table: string): Promise<void> {
  await stack.query(`CREATE TABLE ${table} (id int PRIMARY KEY, body text)`);
  await stack.query(`INSERT INTO ${table} SELECT g, '${table} row ' || g FROM generate_series(1, ${ROWS}) g`);
  await stack.query(`SELECT steadytext_auto_embed('${table}', 'body', create_index := false)`);
}

async function waitForEmbedded(table: string, atLeast: number): Promise<void> {
  await stack.waitFor(async () => (await progress(table)).embedded >= atLeast, 600_000);
}

/** Every row embedded once, equal to steadytext_embed; nothing pending, failed or written twice. */
async function assertComplete(table: string): Promise<void> {
  await stack.waitFor(async () => {
    const p = await progress(table);
    return p.pending === 0 && p.processing === 0;
  }, 600_000);
  const p = await progress(table);
  assert.deepEqual(p, { embedded: ROWS, pending: 0, processing: 0, failed: 0, written: ROWS });
  // Every vector against the cached answer, and a sample recomputed from scratch.
  const [cached] = await stack.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${table} t WHERE t.embedding::text IS DISTINCT FROM steadytext_embed(t.body)::text`,
  );
  assert.equal(cached!.n, "0");
  const [fresh] = await stack.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT * FROM ${table} WHERE id % 50 = 7) t WHERE t.embedding::text IS DISTINCT FROM steadytext_embed(t.body, false)::text`,
  );
  assert.equal(fresh!.n, "0");
}

test("a 10,000-row backfill survives the sidecar killed with SIGKILL three times", async () => {
  await startBackfill("crashy");
  for (const fraction of [0.15, 0.4, 0.65]) {
    await waitForEmbedded("crashy", ROWS * fraction);
    await stack.sidecar!.kill();
    await stack.startSidecar(SIDECAR_ENV);
  }
  await assertComplete("crashy");
});

test("a 10,000-row backfill survives PostgreSQL restarting under the running sidecar", async () => {
  await startBackfill("restarted");
  for (const fraction of [0.3, 0.6]) {
    await waitForEmbedded("restarted", ROWS * fraction);
    await stack.cluster.restart();
  }
  await assertComplete("restarted");
  assert.ok(stack.sidecar!.running, "the sidecar rode it out");
});
