// The async queue end to end: a real cluster, real sidecars working the
// queue. Results equal the synchronous functions byte for byte; waiting is
// woken by the completion (no polling); leases, retries, permanent failures,
// priority, several sidecars and several databases.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

const one = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R> =>
  (await stack.query<R>(sql, params))[0]!;

async function status(sidecar: SidecarProcess): Promise<StatusResult> {
  const client = sidecar.client(5000);
  try {
    return await client.request<StatusResult>("status", {});
  } finally {
    await client.close();
  }
}

/** Run `body` with the stack's sidecar replaced by one started with `env` (the stack's own comes back after). */
async function withSidecar<T>(env: Record<string, string>, body: (sidecar: SidecarProcess) => Promise<T>): Promise<T> {
  await stack.stopSidecar();
  try {
    return await body(await stack.startSidecar(env));
  } finally {
    await stack.stopSidecar();
    await stack.startSidecar();
  }
}

async function result(id: string, timeout = 60): Promise<string> {
  return (await one<{ r: string }>("SELECT steadytext_get_async_result($1, $2) AS r", [id, timeout])).r;
}

describe("results", () => {
  test("every async function answers byte for byte what its synchronous twin computes", async () => {
    const ids = await one<Record<string, string | string[]>>(`SELECT
        steadytext_generate_async('async twin', 24, seed := 7) AS gen,
        steadytext_generate_batch_async(ARRAY['async batch one', 'async batch two'], 16) AS gens,
        steadytext_embed_async('async vector') AS emb,
        steadytext_embed_batch_async(ARRAY['async vector one', 'async vector two']) AS embs,
        steadytext_rerank_async('which fruit', ARRAY['apples are fruit', 'cars are not', 'pears too']) AS rr,
        steadytext_rerank_batch_async(ARRAY['fruit', 'cars'], ARRAY['apples', 'engines']) AS rrs`);

    assert.equal(await result(ids.gen as string), (await one<{ t: string }>("SELECT steadytext_generate('async twin', 24, false, 7) AS t")).t);
    const gens = ids.gens as string[];
    assert.equal(await result(gens[0]!), (await one<{ t: string }>("SELECT steadytext_generate('async batch one', 16, false) AS t")).t);
    assert.equal(await result(gens[1]!), (await one<{ t: string }>("SELECT steadytext_generate('async batch two', 16, false) AS t")).t);

    assert.equal(await result(ids.emb as string), (await one<{ v: string }>("SELECT steadytext_embed('async vector', false)::text AS v")).v);
    const embs = ids.embs as string[];
    for (const [i, text] of ["async vector one", "async vector two"].entries()) {
      assert.equal(await result(embs[i]!), (await one<{ v: string }>("SELECT steadytext_embed($1, false)::text AS v", [text])).v);
    }

    const sync = async (query: string, documents: string[]) =>
      (await stack.query<{ document: string; score: number }>("SELECT * FROM steadytext_rerank($1, $2)", [query, documents])).map((r) => [
        r.document,
        r.score,
      ]);
    assert.deepEqual(JSON.parse(await result(ids.rr as string)), await sync("which fruit", ["apples are fruit", "cars are not", "pears too"]));
    const rrs = ids.rrs as string[];
    assert.deepEqual(JSON.parse(await result(rrs[0]!)), await sync("fruit", ["apples", "engines"]));
    assert.deepEqual(JSON.parse(await result(rrs[1]!)), await sync("cars", ["apples", "engines"]));

    const checked = await one<{ status: string; processing_time_ms: number; results: string[] }>(
      "SELECT * FROM steadytext_check_async($1)",
      [ids.rr],
    );
    assert.equal(checked.status, "completed");
    assert.deepEqual(checked.results, JSON.parse(await result(ids.rr as string)).map(([d]: [string]) => d));
  });

  test("an async result lands in the Postgres cache", async () => {
    const { id } = await one<{ id: string }>("SELECT steadytext_embed_async('async and cached') AS id");
    await result(id);
    await stack.waitFor(async () => (await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'async and cached' AND kind = 'embed'")).length > 0);
  });
});

describe("waiting", () => {
  test("get_async_result sleeps on one queue_wait until another sidecar's completion wakes it", async () => {
    // The sidecar the session talks to does not work the queue; a second one, started later, does.
    await withSidecar({ STEADYTEXT_QUEUE_WORKER: "0" }, async (waiter) => {
      const { id } = await one<{ id: string }>("SELECT steadytext_generate_async('woken by notify', 32) AS id");
      await assert.rejects(result(id, 1), /Timeout waiting for async result \(1 seconds\)/);

      let statusCalls = 0;
      const counted = async () => (statusCalls++, status(waiter));
      const before = (await counted()).requests;
      const answer = result(id, 60);
      await stack.waitFor(async () => (await counted()).in_flight === 1);
      const worker = await SidecarProcess.start(stack.sidecarOptions({}, await freePort()));
      try {
        const text = await answer;
        // The waiter got one queue_wait (besides this test's own status calls): nothing polled.
        assert.equal((await counted()).requests - before, 1 + statusCalls - 1);
        assert.equal(text, (await one<{ t: string }>("SELECT steadytext_generate('woken by notify', 32, false) AS t")).t);
      } finally {
        await worker.stop();
      }
    });
  });

  test("a waiting get_async_result stops at once when the query is cancelled", async () => {
    await withSidecar({ STEADYTEXT_QUEUE_WORKER: "0" }, async (waiter) => {
      const { id } = await one<{ id: string }>("SELECT steadytext_embed_async('never worked') AS id");
      const session = await stack.connect();
      const { rows } = await session.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      const waiting = session.query("SELECT steadytext_get_async_result($1, 600)", [id]).then(
        () => undefined,
        (error: { code?: string }) => error,
      );
      await stack.waitFor(async () => (await status(waiter)).in_flight === 1);
      await stack.query("SELECT pg_cancel_backend($1)", [rows[0]!.pid]);
      assert.equal((await waiting)?.code, "57014");
      await stack.waitFor(async () => (await status(waiter)).in_flight === 0);
    });
  });

  test("waiting inside a REPEATABLE READ transaction is a clear error, not a silent timeout", async () => {
    const { id } = await one<{ id: string }>("SELECT steadytext_embed_async('snapshot bound') AS id");
    await stack.query("SELECT steadytext_cancel_async($1)", [id]);
    const session = await stack.connect();
    const { id: pending } = (await session.query<{ id: string }>("SELECT steadytext_generate_async('pending forever', priority := 1) AS id")).rows[0]!;
    await session.query("UPDATE steadytext_queue SET next_attempt_at = 'infinity' WHERE request_id = $1", [pending]);
    await session.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await assert.rejects(session.query("SELECT steadytext_get_async_result($1, 5)", [pending]), /cannot wait inside a REPEATABLE READ transaction/);
    await session.query("ROLLBACK");
  });
});

describe("the worker", () => {
  test("an idle worker is woken by the NOTIFY of new work, not by polling", async () => {
    // With the safety poll an hour away, only the notification can make the worker look within the minute.
    await withSidecar({ STEADYTEXT_QUEUE_SAFETY_POLL_SECONDS: "3600" }, async (sidecar) => {
      await stack.waitFor(async () => (await status(sidecar)).queue?.test?.idle_lanes === 3);
      const { id } = await one<{ id: string }>("SELECT steadytext_embed_async('wake up') AS id");
      assert.equal(await result(id, 60), (await one<{ v: string }>("SELECT steadytext_embed('wake up', false)::text AS v")).v);
      const { ms } = await one<{ ms: number }>("SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM steadytext_queue WHERE request_id = $1", [id]);
      console.log(`# enqueue to claim: ${Number(ms).toFixed(1)} ms`);
    });
  });

  test("an item whose worker died is taken over when its lease runs out", async () => {
    let id = "";
    await withSidecar({ STEADYTEXT_QUEUE_WORKER: "0" }, async () => {
      ({ id } = await one<{ id: string }>("SELECT steadytext_embed_async('orphaned by a crash') AS id"));
      const claimed = await stack.query("SELECT * FROM _steadytext_queue_claim('ghost-worker', 10, 1)");
      assert.equal(claimed.length, 1);
    });
    // The stack's own sidecar (worker on) is back: the lease runs out after a second and it takes over.
    assert.equal(await result(id), (await one<{ v: string }>("SELECT steadytext_embed('orphaned by a crash', false)::text AS v")).v);
    const row = await one<{ retry_count: number; locked_by: string }>("SELECT retry_count, locked_by FROM steadytext_queue WHERE request_id = $1", [id]);
    assert.equal(row.retry_count, 1);
    assert.notEqual(row.locked_by, "ghost-worker");
  });

  test("a transient failure is retried with backoff, then fails for good with its error, logged once", async () => {
    await withSidecar({ STEADYTEXT_EMBEDDING_MODEL_PATH: "/nonexistent/model.gguf" }, async (sidecar) => {
      const { id } = await one<{ id: string }>("SELECT steadytext_embed_async('no model to embed with') AS id");
      await stack.query("UPDATE steadytext_queue SET max_retries = 2 WHERE request_id = $1", [id]);
      await assert.rejects(result(id, 60), /Request failed: unavailable/);
      const row = await one<{ retry_count: number; error: string }>("SELECT retry_count, error FROM steadytext_queue WHERE request_id = $1", [id]);
      assert.equal(row.retry_count, 3);
      const logged = sidecar.log.split("\n").filter((line) => line.includes("failed for good"));
      assert.equal(logged.length, 1);
    });
  });

  test("invalid input fails at once: retrying cannot change a deterministic error", async () => {
    const long = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(" ");
    const { id } = await one<{ id: string }>("SELECT steadytext_embed_async($1) AS id", [long]);
    await assert.rejects(result(id), /Request failed: invalid_params: Text is too long/);
    assert.equal((await one<{ retry_count: number }>("SELECT retry_count FROM steadytext_queue WHERE request_id = $1", [id])).retry_count, 1);
  });

  test("the highest priority goes first", async () => {
    await stack.stopSidecar();
    const ids = await one<{ low: string[]; high: string }>(`SELECT steadytext_embed_batch_async(ARRAY['low one', 'low two', 'low three'], priority := 2) AS low,
                                                                  steadytext_embed_async('high', priority := 9) AS high`);
    // One item per claim, one claim at a time: the order of claims is the order of work.
    await withSidecar({ STEADYTEXT_QUEUE_BATCH_SIZE: "1", STEADYTEXT_QUEUE_CONCURRENCY: "1" }, async () => {
      for (const id of [...ids.low, ids.high]) await result(id);
    });
    const order = await stack.query<{ prompt: string }>(
      "SELECT prompt FROM steadytext_queue WHERE request_id = ANY ($1) ORDER BY started_at, id",
      [[...ids.low, ids.high]],
    );
    assert.equal(order[0]!.prompt, "high");
  });

  test("two sidecars on one queue share the work and do no item twice", async () => {
    const second = await SidecarProcess.start(stack.sidecarOptions({}, await freePort()));
    try {
      const before = await Promise.all([status(stack.sidecar!), status(second)]);
      const { ids } = await one<{ ids: string[] }>(
        "SELECT steadytext_embed_batch_async(ARRAY(SELECT 'shared work ' || g FROM generate_series(1, 100) g)) || steadytext_generate_batch_async(ARRAY(SELECT 'shared prompt ' || g FROM generate_series(1, 12) g), 8) AS ids",
      );
      for (const id of ids) await result(id);
      const after = await Promise.all([status(stack.sidecar!), status(second)]);
      const did = after.map((s, i) => s.queue!.test!.claimed - before[i]!.queue!.test!.claimed);
      assert.equal(did[0]! + did[1]!, 112, `claims per sidecar: ${did.join(", ")}`);
      const rows = await stack.query<{ locked_by: string; retry_count: number }>(
        "SELECT locked_by, retry_count FROM steadytext_queue WHERE request_id = ANY ($1)",
        [ids],
      );
      assert.ok(rows.every((r) => r.retry_count === 0));
      assert.equal(new Set(rows.map((r) => r.locked_by)).size, 2, "both sidecars took a share");
      // Each answer is the synchronous one, whichever sidecar computed it.
      const mismatched = await one<{ n: string }>(
        "SELECT count(*) AS n FROM steadytext_queue q WHERE q.request_id = ANY ($1) AND q.request_type = 'embed' AND q.embedding::text <> steadytext_embed(q.prompt, false)::text",
        [ids],
      );
      assert.equal(mismatched.n, "0");
    } finally {
      await second.stop();
    }
  });

  test("one sidecar serves the queues of several databases", async () => {
    await stack.cluster.createDatabase("second_db");
    await withSidecar({ STEADYTEXT_QUEUE_DATABASES: "second_db" }, async (sidecar) => {
      const { id } = (await stack.cluster.query<{ id: string }>("SELECT steadytext_embed_async('from the second database') AS id", [], "second_db"))[0]!;
      await stack.waitFor(
        async () =>
          (await stack.cluster.query<{ status: string }>("SELECT status FROM steadytext_check_async($1)", [id], "second_db"))[0]!.status === "completed",
        60_000,
      );
      assert.ok((await status(sidecar)).queue!.second_db!.completed >= 1);
      // The result was cached in that database's own table.
      await stack.waitFor(async () =>
        (await stack.cluster.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'from the second database'", [], "second_db")).length > 0,
      );
    });
  });
});
