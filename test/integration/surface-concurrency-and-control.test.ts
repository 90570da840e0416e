// The wider SQL surface under load and the daemon controls: rerank and
// structured calls from 8 sessions at once, streams abandoned mid-way, and
// steadytext_daemon_start()/_stop() run as an administrator would.

import assert from "node:assert/strict";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

const DOCUMENTS = ["a cat sleeps", "markets fell", "kittens play", "bond yields rose", "cats purr loudly", "databases index rows"];
const SCHEMA = '{"type":"object","properties":{"ok":{"type":"boolean"},"tier":{"enum":["gold","silver","bronze"]}}}';

describe("8 sessions at once", () => {
  test("rerank, JSON, regex and choice calls each get their own deterministic answer", async () => {
    const expected = await stack.query<{ r: string; j: string; x: string; c: string }>(
      `SELECT (SELECT string_agg(document || '=' || score, ';') FROM steadytext_rerank('cats', $1)) AS r,
              steadytext_generate_json('session json', $2::jsonb, 64, false) AS j,
              steadytext_generate_regex('session regex', '[A-Z]{2}-[0-9]{3}', 16, false) AS x,
              steadytext_generate_choice('session choice', ARRAY['red','green','blue'], 8, false) AS c`,
      [DOCUMENTS, SCHEMA],
    );
    const sessions = await Promise.all(Array.from({ length: 8 }, () => stack.connect()));
    const results = await Promise.all(
      sessions.map(async (session, i) => {
        const query = i % 2 === 0 ? "cats" : `query ${i}`;
        const { rows } = await session.query(
          `SELECT (SELECT string_agg(document || '=' || score, ';') FROM steadytext_rerank($3, $1)) AS r,
                  steadytext_generate_json('session json', $2::jsonb, 64, false) AS j,
                  steadytext_generate_regex('session regex', '[A-Z]{2}-[0-9]{3}', 16, false) AS x,
                  steadytext_generate_choice('session choice', ARRAY['red','green','blue'], 8, false) AS c`,
          [DOCUMENTS, SCHEMA, query],
        );
        return { i, query, row: rows[0] as { r: string; j: string; x: string; c: string } };
      }),
    );
    for (const { query, row } of results) {
      if (query === "cats") assert.equal(row.r, expected[0]!.r);
      assert.equal(row.j, expected[0]!.j);
      assert.equal(row.x, expected[0]!.x);
      assert.equal(row.c, expected[0]!.c);
      assert.ok(JSON.parse(row.j));
      assert.match(row.x, /^[A-Z]{2}-[0-9]{3}$/);
    }
    // Sessions with other queries got rankings of their own, and each is reproducible.
    const odd = results.find((r) => r.i === 1)!;
    const [again] = await stack.query<{ r: string }>("SELECT string_agg(document || '=' || score, ';') AS r FROM steadytext_rerank($2, $1)", [DOCUMENTS, odd.query]);
    assert.equal(again!.r, odd.row.r);
  });

  test("8 concurrent batch embeddings equal the single calls", async () => {
    const texts = Array.from({ length: 12 }, (_, i) => `batch text ${i}`);
    const singles = await stack.query<{ e: string }>("SELECT steadytext_embed(t, false)::text AS e FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i", [texts]);
    const sessions = await Promise.all(Array.from({ length: 8 }, () => stack.connect()));
    const batches = await Promise.all(
      sessions.map((s) => s.query<{ e: string }>("SELECT embedding::text AS e FROM steadytext_embed_batch($1, false) ORDER BY idx", [texts])),
    );
    for (const batch of batches) assert.deepEqual(batch.rows.map((r) => r.e), singles.map((r) => r.e));
  });
});

describe("streams", () => {
  test("a stream stopped midway by statement_timeout leaves no work running", async () => {
    const status = async () => {
      const client = stack.sidecar!.client(2000);
      try {
        return await client.request<StatusResult>("status");
      } finally {
        await client.close();
      }
    };
    const before = (await status()).cancelled;
    const session = await stack.connect();
    await session.query("SET statement_timeout = 300");
    await assert.rejects(
      session.query("SELECT count(*) FROM steadytext_generate_stream('a very long stream', 1900, false)"),
      { code: "57014" },
    );
    await stack.waitFor(async () => {
      const s = await status();
      return s.cancelled === before + 1 && s.in_flight === 0;
    }, 5000);
  });
});

describe("daemon control from SQL", () => {
  test("steadytext_daemon_stop() stops the daemon, for steadytext_admin only", async () => {
    await stack.query("CREATE ROLE st_operator LOGIN IN ROLE steadytext_admin");
    const operator = await stack.connect();
    await operator.query("SET ROLE st_operator");
    assert.equal((await operator.query("SELECT steadytext_daemon_stop() AS ok")).rows[0].ok, true);
    await stack.sidecar!.stop(); // our handle on the process: wait until it has exited
    stack.sidecar = undefined;
    const [down] = await stack.query<{ status: string }>("SELECT status FROM steadytext_daemon_status()");
    assert.notEqual(down!.status, "healthy");
    assert.equal((await operator.query("SELECT steadytext_daemon_stop() AS ok")).rows[0].ok, false, "nothing left to stop");
    await stack.startSidecar();
  });

  test("the daemon checks the stop itself: without its admin token even a superuser's stop is refused", async () => {
    const session = await stack.connect();
    await session.query("SET steadytext.daemon_admin_token_file = ''");
    await assert.rejects(session.query("SELECT steadytext_daemon_stop()"), { code: "42501", message: /admin token/ });
    const wrong = join(stack.dir, "wrong-token");
    await writeFile(wrong, "a-wrong-token-of-enough-length");
    await stack.cluster.chownToServer(wrong);
    await session.query(`SET steadytext.daemon_admin_token_file = '${wrong}'`);
    await assert.rejects(session.query("SELECT steadytext_daemon_stop()"), { code: "42501" });
    assert.ok(stack.sidecar!.running);
    const client = stack.sidecar!.client(5000);
    try {
      assert.equal(await client.request("ping"), "pong");
    } finally {
      await client.close();
    }
  });

  test("steadytext_daemon_start() runs the configured command with fixed arguments, as the server's user, without a shell", async () => {
    // A stand-in for st that records how it was run: the checkout itself may
    // not be readable by the server's OS user, and `st daemon start` with
    // these arguments is covered by the CLI tests.
    const workDir = join(stack.dir, "daemon-start");
    await mkdir(workDir, { recursive: true });
    await stack.cluster.chownToServer(workDir);
    const record = join(workDir, "invocation");
    const script = join(stack.dir, "st-stand-in.sh");
    await writeFile(script, `#!/bin/sh
printf '%s\n' "$(id -un)" "$@" > '${record}'
[ "$1" = daemon ] && [ "$2" = start ]
`);
    await chmod(script, 0o755);

    const operator = await stack.connect();
    await operator.query(`SET steadytext.daemon_command = '${script}'`);
    await operator.query("SET ROLE st_operator");
    assert.equal((await operator.query("SELECT steadytext_daemon_start() AS ok")).rows[0].ok, true);
    const [user, ...args] = (await readFile(record, "utf8")).trim().split("\n");
    assert.equal(user, process.getuid?.() === 0 ? "postgres" : userInfo().username);
    assert.deepEqual(args, ["daemon", "start", "--endpoint", `tcp://127.0.0.1:${stack.daemonPort}`]);

    // A failing command is reported as false, not hidden.
    await writeFile(script, "#!/bin/sh\nexit 3\n");
    assert.equal((await operator.query("SELECT steadytext_daemon_start() AS ok")).rows[0].ok, false);
    await operator.query("RESET ROLE");
    const plain = await stack.connect();
    await stack.query("CREATE ROLE st_nobody LOGIN");
    await plain.query("SET ROLE st_nobody");
    await assert.rejects(plain.query("SELECT steadytext_daemon_start()"), { code: "42501" });
  });

  test("steadytext_daemon_start() gives the daemon HOME and a STEADYTEXT_PG_URL for this database, which connects", async () => {
    const workDir = join(stack.dir, "daemon-env");
    await mkdir(workDir, { recursive: true });
    await stack.cluster.chownToServer(workDir);
    const record = join(workDir, "environment");
    const script = join(stack.dir, "st-env-recorder.sh");
    await writeFile(script, `#!/bin/sh\nenv > '${record}'\n`);
    await chmod(script, 0o755);
    const operator = await stack.connect();
    await operator.query(`SET steadytext.daemon_command = '${script}'`);
    assert.equal((await operator.query("SELECT steadytext_daemon_start() AS ok")).rows[0].ok, true);
    const environment = new Map(
      (await readFile(record, "utf8")).trim().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    assert.ok(environment.get("HOME"), "HOME is set");
    const url = environment.get("STEADYTEXT_PG_URL");
    assert.ok(url, "STEADYTEXT_PG_URL is set");
    // The URL reaches this very database (over the server's socket, as its OS user).
    const pg = await import("pg");
    const probe = new pg.default.Client({ connectionString: url });
    await probe.connect();
    try {
      assert.equal((await probe.query("SELECT current_database() AS d")).rows[0].d, "test");
    } finally {
      await probe.end();
    }
  });

  test("a steadytext_daemon_start() cancelled by statement_timeout kills and reaps its command: no child, no zombie", async () => {
    const script = join(stack.dir, "st-hangs.sh");
    await writeFile(script, "#!/bin/sh\nexec sleep 60\n");
    await chmod(script, 0o755);
    const operator = await stack.connect();
    await operator.query(`SET steadytext.daemon_command = '${script}'`);
    const backend = (await operator.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    await operator.query("SET statement_timeout = '300ms'");
    await assert.rejects(operator.query("SELECT steadytext_daemon_start()"), { code: "57014" });
    const children: string[] = [];
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === backend) children.push(`${entry} (${fields[0]})`);
    }
    assert.deepEqual(children, [], "the backend still has children");
  });
});

describe("rate limits", () => {
  test("the daemon checks a user's limits when the backend says the user has a row, and only then", async () => {
    await stack.query("INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('limited by flag', 0)");
    const client = stack.sidecar!.client(60_000);
    try {
      const ask = (rateLimited?: unknown) =>
        client.request("generate", { prompt: "asked under a limit", max_new_tokens: 4, use_cache: false }, {
          origin: { database: "test", user: "limited by flag", ...(rateLimited === undefined ? {} : { rate_limited: rateLimited }) } as never,
        });
      // Older clients send no flag: the daemon looks, as before.
      await assert.rejects(ask(), { code: "rate_limited" });
      await assert.rejects(ask(true), { code: "rate_limited" });
      // The backend read steadytext_rate_limits under its snapshot and found no row: no round trip, no refusal.
      assert.equal(typeof (await ask(false)), "string");
      await assert.rejects(ask("yes"), { code: "invalid_request" });
    } finally {
      await client.close();
      await stack.query("DELETE FROM steadytext_rate_limits WHERE user_id = 'limited by flag'");
    }
  });
});
