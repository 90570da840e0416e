// pg_steadytext_warm in session_preload_libraries: a new session does its
// first call's catalog work while connecting. It must change no answer, call
// no daemon, wait for no lock and refuse no connection, whatever it finds.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
  // Per role, so the same database also has sessions that do not warm up to compare with.
  await stack.query("CREATE ROLE st_warm LOGIN");
  await stack.query("ALTER ROLE st_warm SET session_preload_libraries = 'pg_steadytext_warm'");
});
after(() => stack.stop());

interface Session {
  client: pg.Client;
  /** What the server said while the connection was set up (DEBUG1 and up). */
  notices: Array<{ severity: string; message: string; detail: string | undefined }>;
}

async function connect(user: string, database = "test"): Promise<Session> {
  const client = new pg.Client({ ...stack.cluster.connectionConfig(database), user, options: "-c client_min_messages=debug1" });
  const notices: Session["notices"] = [];
  client.on("notice", (n) => notices.push({ severity: n.severity ?? "", message: n.message ?? "", detail: n.detail }));
  await client.connect();
  return { client, notices };
}

const warmedUp = (s: Session) => s.notices.filter((n) => n.message.startsWith("pg_steadytext: session warmed up"));
const prompts = ["warm-up prompt", "warm-up prompt ü 日本 \u2028", "warm-up ' quote"];

async function answers(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ g: string; e: string }>(
    "SELECT steadytext_generate(p, 16) AS g, steadytext_embed(p)::real[]::text AS e FROM unnest($1::text[]) WITH ORDINALITY AS x(p, i) ORDER BY i",
    [prompts],
  );
  return rows.flatMap((r) => [r.g, r.e]);
}

test("a new session warms up while connecting, and its first calls answer byte for byte what other sessions answer", async () => {
  const plain = await stack.connect();
  await plain.query("SELECT steadytext_generate_cached(p, 16), steadytext_embed_cached(p) FROM unnest($1::text[]) p", [prompts]);
  const expected = await answers(plain);
  assert.ok(expected.every((a) => typeof a === "string" && a.length > 0));

  const sessions = await Promise.all(Array.from({ length: 4 }, () => connect("st_warm")));
  try {
    for (const session of sessions) {
      const [notice] = warmedUp(session);
      assert.ok(notice, `no warm-up reported; the server said: ${JSON.stringify(session.notices)}`);
      assert.match(notice.message, /3 tables read, [1-9]\d* functions resolved/);
      assert.equal(notice.detail, undefined, "nothing was left for the first call");
    }
    const results = await Promise.all(sessions.map((s) => answers(s.client)));
    for (const result of results) assert.deepEqual(result, expected);
  } finally {
    await Promise.all(sessions.map((s) => s.client.end()));
  }
  // A session without the warm-up says nothing of it.
  const cold = await connect("postgres");
  assert.deepEqual(warmedUp(cold), []);
  await cold.client.end();
});

test("the warm-up calls no daemon: with the daemon stopped, sessions open and cached calls answer", async () => {
  const plain = await stack.connect();
  await plain.query("SELECT steadytext_generate_cached('warm-up without daemon', 16)");
  const expected = (await plain.query<{ g: string }>("SELECT steadytext_generate('warm-up without daemon', 16) AS g")).rows[0]!.g;
  await stack.stopSidecar();
  try {
    const session = await connect("st_warm");
    try {
      assert.equal(warmedUp(session).length, 1);
      const { rows } = await session.client.query<{ hit: string; miss: string | null }>(
        "SELECT steadytext_generate('warm-up without daemon', 16) AS hit, steadytext_generate('warm-up never computed', 16) AS miss",
      );
      assert.equal(rows[0]!.hit, expected);
      assert.equal(rows[0]!.miss, null, "a miss without a daemon is NULL, as without the warm-up");
    } finally {
      await session.client.end();
    }
  } finally {
    await stack.startSidecar();
  }
});

// A warm-up that waited would wait for the locking transaction, which waits for the connection: the test's
// timeout (far beyond the milliseconds a connection takes) turns that into a failure rather than a hang.
test("a table another session holds locked does not hold up the connection; it is left for the first call", { timeout: 60_000 }, async () => {
  const plain = await stack.connect();
  await plain.query("SELECT steadytext_generate_cached('warm-up behind a lock', 16)");
  const expected = (await plain.query<{ g: string }>("SELECT steadytext_generate('warm-up behind a lock', 16) AS g")).rows[0]!.g;
  const locker = await stack.connect();
  await locker.query("BEGIN");
  await locker.query("LOCK TABLE steadytext_cache IN ACCESS EXCLUSIVE MODE");
  try {
    const session = await connect("st_warm");
    const [notice] = warmedUp(session);
    assert.ok(notice);
    assert.match(notice.message, /2 tables read/);
    assert.match(notice.detail ?? "", /left for the first call: steadytext_cache\./);
    await locker.query("ROLLBACK");
    const { rows } = await session.client.query<{ g: string }>("SELECT steadytext_generate('warm-up behind a lock', 16) AS g");
    assert.equal(rows[0]!.g, expected);
    await session.client.end();
  } finally {
    await locker.query("ROLLBACK");
  }
});

test("a broken install is logged and the session opens and works as without the warm-up", async () => {
  await stack.cluster.createDatabase("warm_broken");
  await stack.cluster.query("ALTER TABLE steadytext_models RENAME TO steadytext_models_moved", [], "warm_broken");
  const session = await connect("st_warm", "warm_broken");
  try {
    assert.deepEqual(warmedUp(session), []);
    const failure = session.notices.find((n) => n.message.includes("session warm-up failed"));
    assert.ok(failure, `no failure logged; the server said: ${JSON.stringify(session.notices)}`);
    assert.equal(failure.severity, "LOG");
    assert.match(failure.message, /"steadytext_models" is missing/);
    // The failed warm-up's subtransaction is gone: the session runs transactions, and the call reports the install.
    await session.client.query("BEGIN; CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1); COMMIT");
    await assert.rejects(session.client.query("SELECT steadytext_generate('broken install', 16)"), /steadytext_models/);
    assert.equal((await session.client.query<{ x: number }>("SELECT x FROM t")).rows[0]!.x, 1);
  } finally {
    await session.client.end();
  }
});

test("parallel workers load the module with the session's libraries and run the query without warming up", async () => {
  await stack.query("CREATE TABLE warm_parallel AS SELECT g AS id, 'row ' || g AS body FROM generate_series(1, 20000) g");
  await stack.query("GRANT SELECT ON warm_parallel TO st_warm");
  await stack.query("ANALYZE warm_parallel");
  const session = await connect("st_warm");
  try {
    for (const setting of ["max_parallel_workers_per_gather = 2", "parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0"]) {
      await session.client.query(`SET ${setting}`);
    }
    const sql = "SELECT count(*)::int AS n, sum(length(body))::int AS l FROM warm_parallel";
    const plan = (await session.client.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF) ${sql}`)).rows.map((r) => r["QUERY PLAN"]).join("\n");
    assert.match(plan, /Workers Launched: [1-9]/, plan);
    const before = warmedUp(session).length;
    const { rows } = await session.client.query<{ n: number; l: number }>(sql);
    assert.deepEqual(rows[0], (await stack.query<{ n: number; l: number }>(sql))[0]);
    assert.equal(warmedUp(session).length, before, "a worker warmed up");
    assert.equal(before, 1);
  } finally {
    await session.client.end();
  }
});

test("a role with no privilege on pg_steadytext's schema warms up quietly, as a cached call reads by key", async () => {
  await stack.cluster.createDatabase("warm_private");
  await stack.cluster.query("REVOKE ALL ON SCHEMA public FROM PUBLIC", [], "warm_private");
  const session = await connect("st_warm", "warm_private");
  try {
    const [notice] = warmedUp(session);
    assert.ok(notice, `no warm-up reported; the server said: ${JSON.stringify(session.notices)}`);
    assert.match(notice.message, /3 tables read, [1-9]\d* functions resolved/);
    assert.deepEqual(session.notices.filter((n) => n.severity === "LOG" || n.severity === "WARNING"), []);
    // The warm-up gave the role nothing: its own statements still meet the schema's privileges.
    await assert.rejects(session.client.query("SELECT steadytext_generate('private', 16)"), /permission denied|does not exist/);
  } finally {
    await session.client.end();
  }
});

test("a database without pg_steadytext opens without a word from the warm-up", async () => {
  await stack.cluster.query("CREATE DATABASE warm_none");
  const session = await connect("st_warm", "warm_none");
  try {
    assert.ok(session.notices.some((n) => n.message.includes('loaded library "pg_steadytext_warm"')), "the module was loaded");
    assert.deepEqual(
      session.notices.filter((n) => n.message.includes("pg_steadytext:")),
      [],
    );
    assert.equal((await session.client.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one, 1);
  } finally {
    await session.client.end();
  }
});

// Last: it restarts the server with its own settings.
test("listed in shared_preload_libraries by mistake, the module warns at server start and warms nothing", async () => {
  await stack.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_steadytext_warm'");
  await stack.cluster.restart();
  const log = await readFile(join(stack.dir, "pg", "server.log"), "utf8");
  assert.match(log, /WARNING: {2}pg_steadytext_warm does nothing in shared_preload_libraries/);
  assert.match(log, /HINT: {2}List it in session_preload_libraries\./);
  // The role's session_preload_libraries names a library the postmaster already loaded: it is not initialised again.
  const session = await connect("st_warm");
  try {
    assert.deepEqual(warmedUp(session), []);
    const { rows } = await session.client.query<{ g: string | null }>("SELECT steadytext_generate('warm-up prompt', 16) AS g");
    assert.equal(typeof rows[0]!.g, "string");
  } finally {
    await session.client.end();
  }
});
