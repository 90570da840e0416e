// What SQL callers see when the daemon is down, slow, or the query is
// cancelled: NULL (or the chosen error) promptly, never a hang; the daemon
// stops working on a request its caller gave up on; when the daemon comes
// back the next call simply works.
//
// No timed assertions: "promptly" is shown by making the alternative a hang
// (an hour-long timeout the test would not survive) or by the daemon's own
// count of cancelled requests; waits are for events, never fixed sleeps.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { TestStack } from "../harness/test-stack.js";


async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T | undefined; error: (Error & { code?: string }) | undefined }> {
  const started = performance.now();
  try {
    const value = await work();
    return { ms: performance.now() - started, value, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, value: undefined, error: error as Error & { code?: string } };
  }
}

/** Occupy the only generation context with long generations, so a further call waits in the queue. */
async function occupyDaemon(stack: TestStack, count: number): Promise<Promise<unknown>[]> {
  const sessions = await Promise.all(Array.from({ length: count }, () => stack.connect()));
  const running = sessions.map((session, i) =>
    session.query("SELECT steadytext_generate($1, 1800, false)", [`long generation ${i} to keep the daemon busy`]).catch(() => undefined),
  );
  await stack.waitFor(async () => (await daemonStatus(stack)).in_flight >= count, 30_000);
  return running;
}

async function daemonStatus(stack: TestStack): Promise<StatusResult> {
  const client = stack.sidecar!.client(2000);
  try {
    return await client.request<StatusResult>("status");
  } finally {
    await client.close();
  }
}

/** Run a scenario and check that the daemon aborted exactly one request because of it. */
async function expectOneCancellation(stack: TestStack, scenario: () => Promise<void>): Promise<void> {
  const before = (await daemonStatus(stack)).cancelled;
  await scenario();
  await stack.waitFor(async () => (await daemonStatus(stack)).cancelled === before + 1, 30_000);
}

describe("daemon down", () => {
  let stack: TestStack;
  let session: pg.Client;

  before(async () => {
    stack = await TestStack.start({ sidecar: false });
    session = await stack.connect();
  });
  after(() => stack.stop());

  test("calls return NULL within the connect timeout", async () => {
    // An hour-long request timeout: only the connect timeout can end this call.
    await session.query("SET steadytext.connect_timeout_ms = 500; SET steadytext.request_timeout_ms = 3600000");
    const first = await timed(() => session.query("SELECT steadytext_generate('hello') AS g, steadytext_embed('hello') AS e"));
    assert.equal(first.error, undefined);
    assert.equal(first.value!.rows[0].g, null);
    assert.equal(first.value!.rows[0].e, null);
  });

  test("later calls do not wait again while the daemon stays down", async () => {
    // Were they to wait for a connection again, 50 rows would take 50 hours.
    await session.query("SET steadytext.connect_timeout_ms = 3600000");
    const rows = await timed(() => session.query("SELECT steadytext_generate('row ' || i) FROM generate_series(1, 50) i"));
    await session.query("SET steadytext.connect_timeout_ms = 500");
    assert.equal(rows.error, undefined);
    assert.ok(rows.value!.rows.every((r: { steadytext_generate: unknown }) => r.steadytext_generate === null));
  });

  test("every kind of call answers NULL, never a made-up value", async () => {
    const rerank = await session.query("SELECT document, score FROM steadytext_rerank('cats', ARRAY['a cat', 'stocks'])");
    assert.deepEqual(rerank.rows, [{ document: "a cat", score: null }, { document: "stocks", score: null }]);
    const batch = await session.query("SELECT idx, embedding FROM steadytext_embed_batch(ARRAY['a', 'b'])");
    assert.deepEqual(batch.rows, [{ idx: 1, embedding: null }, { idx: 2, embedding: null }]);
    const structured = await session.query(
      `SELECT steadytext_generate_json('p', '{"type":"object","properties":{"ok":{"type":"boolean"}}}') AS j,
              steadytext_generate_regex('p', '[a-z]+') AS r, steadytext_generate_choice('p', ARRAY['x', 'y']) AS c`,
    );
    assert.deepEqual(structured.rows, [{ j: null, r: null, c: null }]);
    const stream = await session.query("SELECT count(*)::int AS n FROM steadytext_generate_stream('p')");
    assert.equal(stream.rows[0].n, 0);
  });

  test("on_unavailable = 'error' raises system_error (58000), not a connection-failure class 08 that pools read as a broken database connection", async () => {
    await session.query("SET steadytext.on_unavailable = 'error'");
    const result = await timed(() => session.query("SELECT steadytext_generate('hello')"));
    await session.query("RESET steadytext.on_unavailable");
    assert.equal(result.error?.code, "58000");
    assert.match(result.error!.message, /steadytext is unavailable/);
  });

  test("input errors are still errors without a daemon", async () => {
    await assert.rejects(session.query("SELECT steadytext_generate('')"), { code: "P0001", message: "Prompt cannot be empty" });
  });

  test("after the daemon comes back the next call works, without reconnecting", async () => {
    await stack.startSidecar();
    // zmq reconnects in the background (every 100 ms): the same session's calls answer again once it has.
    const text = await stack.waitFor(async () => (await session.query("SELECT steadytext_generate('hello', 10) AS g")).rows[0].g as string | null ?? undefined, 30_000);
    assert.equal(typeof text, "string");
  });
});

describe("slow daemon and cancellation", () => {
  let stack: TestStack;

  before(async () => {
    // One generation context, so requests queue behind each other.
    stack = await TestStack.start({ sidecarEnv: { STEADYTEXT_CONTEXTS_PER_MODEL: "1" } });
    await stack.query("SELECT steadytext_generate('warm up', 1)");
  });
  after(() => stack.stop());

  /** Run `sql` in a session of its own and, once it waits on the daemon, signal that backend from another. */
  async function signalWhileWaiting(signal: "pg_cancel_backend" | "pg_terminate_backend", sql: string) {
    const session = await stack.connect();
    const { rows } = await session.query("SELECT pg_backend_pid() AS pid");
    const before = (await daemonStatus(stack)).in_flight;
    const waiting = timed(() => session.query(sql));
    await stack.waitFor(async () => (await daemonStatus(stack)).in_flight > before, 30_000);
    await stack.query(`SELECT ${signal}($1)`, [rows[0].pid]);
    return waiting;
  }

  test("statement_timeout cancels a waiting call promptly, and the daemon drops the request", async () => {
    await expectOneCancellation(stack, async () => {
      const busy = await occupyDaemon(stack, 2);
      const session = await stack.connect();
      await session.query("SET statement_timeout = 400");
      const result = await timed(() => session.query("SELECT steadytext_generate('cancel me', 100, false)"));
      assert.equal(result.error?.code, "57014", `expected query_canceled, got ${result.error?.message ?? "a result"}`);
      await Promise.all(busy);
    });
  });

  test("pg_cancel_backend interrupts a waiting call", async () => {
    await expectOneCancellation(stack, async () => {
      const busy = await occupyDaemon(stack, 2);
      const result = await signalWhileWaiting("pg_cancel_backend", "SELECT steadytext_generate('cancel me too', 100, false)");
      assert.equal(result.error?.code, "57014");
      await Promise.all(busy);
    });
  });

  test("pg_terminate_backend ends a waiting session, and the daemon forgets its request", async () => {
    // The cancel sent as the backend exits means the 1500-token generation never runs.
    await expectOneCancellation(stack, async () => {
      const busy = await occupyDaemon(stack, 2);
      const result = await signalWhileWaiting("pg_terminate_backend", "SELECT steadytext_generate('terminate me', 1500, false)");
      assert.ok(result.error, "the session should have been terminated");
      await Promise.all(busy);
    });
  });

  test("request_timeout_ms gives NULL, and the daemon drops the request", async () => {
    await expectOneCancellation(stack, async () => {
      const busy = await occupyDaemon(stack, 2);
      const session = await stack.connect();
      await session.query("SET steadytext.request_timeout_ms = 300");
      const result = await timed(() => session.query("SELECT steadytext_generate('too slow', 1500, false) AS g"));
      assert.equal(result.error, undefined);
      assert.equal(result.value!.rows[0].g, null);
      await Promise.all(busy);
    });
  });

  test("a stale reply to a call that gave up is never taken for the next call's answer", async () => {
    const session = await stack.connect();
    const busy = await occupyDaemon(stack, 1);
    await session.query("SET steadytext.request_timeout_ms = 100");
    const gaveUp = await session.query("SELECT steadytext_generate('first question', 5, false) AS g");
    assert.equal(gaveUp.rows[0].g, null);
    await Promise.all(busy);
    await session.query("RESET steadytext.request_timeout_ms");
    const { rows } = await session.query("SELECT steadytext_generate('second question', 5, false) AS g");
    const expected = await stack.query("SELECT steadytext_generate('second question', 5, false) AS g");
    assert.equal(rows[0].g, expected[0]!.g);
  });
});
