// The two cache tiers seen from SQL: the Postgres mirror serves repeated
// questions without a daemon, never mixes up entries of different seeds,
// lengths or models, counts hits without writing in the caller's
// transaction, and loses nothing when the database restarts or stalls.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { after, before, describe, test } from "node:test";
import { LocalCache } from "../../sidecar/src/cache/local-cache.js";
import { loadSettings } from "../../sidecar/src/config/settings.js";
import { writeTestModels } from "../../sidecar/src/models/test-models/index.js";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { PausableProxy } from "../harness/pausable-proxy.js";
import { DATABASE, TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

async function generate(prompt: string, extra = ""): Promise<string | null> {
  const rows = await stack.query<{ g: string | null }>(`SELECT steadytext_generate($1, 16${extra}) AS g`, [prompt]);
  return rows[0]!.g;
}

async function cachedRow(prompt: string): Promise<{ access_count: number; response: string } | undefined> {
  return (await stack.query<{ access_count: number; response: string }>(
    "SELECT access_count, response FROM steadytext_cache WHERE prompt = $1 AND kind = 'generate'",
    [prompt],
  ))[0];
}

describe("with the daemon stopped", () => {
  test("a cached generation and embedding come back byte-identical; an uncached one is NULL", async () => {
    const text = await generate("cached while up");
    const [vector] = await stack.query<{ e: string }>("SELECT steadytext_embed('cached vector')::text AS e");
    await stack.waitFor(() => cachedRow("cached while up"));
    await stack.waitFor(async () => (await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'cached vector'")).length > 0);

    await stack.stopSidecar();
    try {
      assert.equal(await generate("cached while up"), text);
      const [again] = await stack.query<{ e: string }>("SELECT steadytext_embed('cached vector')::text AS e");
      assert.equal(again!.e, vector!.e);
      assert.equal(await generate("never asked before"), null);
      // A different seed or length is a different question: no other entry answers it.
      assert.equal(await generate("cached while up", ", true, 43"), null);
      assert.equal(await stack.query("SELECT steadytext_generate('cached while up', 17) AS g").then((r) => r[0]!.g), null);
      assert.equal(await stack.query("SELECT steadytext_embed('cached vector', true, 7) AS e").then((r) => r[0]!.e), null);
      // use_cache = false never reads the cache.
      assert.equal(await generate("cached while up", ", false"), null);
    } finally {
      await stack.startSidecar();
    }
  });
});

describe("cache behaviour", () => {
  test("the cached answer is the computed answer", async () => {
    const computed = await generate("compare tiers", ", false");
    const first = await generate("compare tiers");
    await stack.waitFor(() => cachedRow("compare tiers"));
    const fromTable = await generate("compare tiers");
    assert.equal(first, computed);
    assert.equal(fromTable, computed);
  });

  test("use_cache = false neither reads nor writes either tier", async () => {
    const localFile = join(stack.dir, "cache", "caches", "steadytext-cache.sqlite3");
    const localEntries = () => {
      const db = new Database(localFile, { readonly: true, fileMustExist: true });
      try {
        return db.prepare("SELECT count(*) AS n FROM generation_cache").pluck().get() as number;
      } finally {
        db.close();
      }
    };
    const before = localEntries();
    await generate("not to be cached", ", false");
    // A cached call after it, whose row's arrival shows the mirror has written what it was given before.
    await generate("cached after the uncached one");
    await stack.waitFor(() => cachedRow("cached after the uncached one"));
    assert.equal(await cachedRow("not to be cached"), undefined, "the Postgres tier has no row");
    assert.equal(localEntries(), before + 1, "the local tier gained only the cached call's entry");
  });

  test("steadytext_generate_cached returns only once the row is committed", async () => {
    const rows = await stack.query<{ g: string }>("SELECT steadytext_generate_cached('guaranteed row', 12) AS g");
    const row = await cachedRow("guaranteed row");
    assert.ok(row, "the row is in the table as soon as the call returns");
    assert.equal(row.response, rows[0]!.g);
    const [embedded] = await stack.query<{ e: string }>("SELECT steadytext_embed_cached('guaranteed vector')::text AS e");
    const [stored] = await stack.query<{ e: string }>("SELECT embedding::text AS e FROM steadytext_cache WHERE prompt = 'guaranteed vector'");
    assert.equal(stored?.e, embedded!.e);
  });

  test("hits in a read-only transaction are served and counted, without writing there", async () => {
    await generate("read only hit");
    const before = await stack.waitFor(() => cachedRow("read only hit"));
    const session = await stack.connect();
    await session.query("BEGIN TRANSACTION READ ONLY");
    const { rows } = await session.query("SELECT steadytext_generate('read only hit', 16) AS g");
    await session.query("COMMIT");
    assert.equal(rows[0].g, before.response);
    await stack.waitFor(async () => ((await cachedRow("read only hit"))?.access_count ?? 0) > before.access_count);
    const [stats] = await stack.query<{ cache_hit_rate: number }>("SELECT cache_hit_rate FROM steadytext_cache_stats()");
    assert.ok(stats!.cache_hit_rate > 0);
  });

  test("hits in one statement reach the daemon in a few batches, and every hit is counted, committed or not", async () => {
    await generate("bulk hit");
    const before = await stack.waitFor(() => cachedRow("bulk hit"));
    const requests = async () => {
      const client = stack.sidecar!.client(2000);
      try {
        return (await client.request<StatusResult>("status")).requests;
      } finally {
        await client.close();
      }
    };
    const requestsBefore = await requests();
    // substr keeps the planner from folding the call into one constant.
    const bulk = "SELECT count(DISTINCT steadytext_generate(substr('bulk hit' || g, 1, 8), 16)) AS n FROM generate_series(1, 1000) g";
    const session = await stack.connect();
    assert.equal((await session.query(bulk)).rows[0].n, "1");
    await session.query("BEGIN");
    await session.query(bulk);
    await session.query("ROLLBACK");
    await stack.waitFor(async () => (await cachedRow("bulk hit"))?.access_count === before.access_count + 2000);
    // 2000 hits: four batches of at most 256 keys per statement, and our own status requests.
    const messages = (await requests()) - requestsBefore;
    assert.ok(messages <= 10, `${messages} messages for 2000 hits`);
  });

  test("frecency eviction keeps the frequently used entries", async () => {
    await stack.query("SELECT steadytext_cache_clear()");
    const prompts = Array.from({ length: 8 }, (_, i) => `evict ${i}`);
    for (const p of prompts) await generate(p);
    await stack.waitFor(async () => (await stack.query("SELECT 1 FROM steadytext_cache WHERE kind = 'generate'")).length === 8);
    const favourites = prompts.slice(0, 3);
    for (let round = 0; round < 4; round++) for (const p of favourites) await generate(p);
    await stack.waitFor(async () => {
      const rows = await stack.query<{ n: number }>("SELECT min(access_count) AS n FROM steadytext_cache WHERE prompt = ANY($1)", [favourites]);
      return rows[0]!.n >= 5;
    });
    const [result] = await stack.query<{ evicted_count: number; remaining_entries: string }>(
      "SELECT * FROM steadytext_cache_evict_by_frecency(target_entries => 3, min_age_hours => 0)",
    );
    assert.equal(result!.evicted_count, 5);
    const left = await stack.query<{ prompt: string }>("SELECT prompt FROM steadytext_cache ORDER BY prompt");
    assert.deepEqual(left.map((r) => r.prompt), favourites);
  });
});

describe("model identity", () => {
  test("another model never returns the first model's entry", async () => {
    const firstText = await generate("which model answers");
    await stack.waitFor(() => cachedRow("which model answers"));
    const otherModels = join(stack.dir, "other-models");
    const [otherGeneration] = await writeTestModels(otherModels, 43);
    await stack.stopSidecar();
    await stack.startSidecar({ STEADYTEXT_GENERATION_MODEL_PATH: otherGeneration!.path });
    try {
      await stack.waitFor(async () =>
        (await stack.query("SELECT 1 FROM steadytext_models WHERE selector = 'generation:default' AND model_sha256 = $1", [otherGeneration!.sha256])).length > 0,
      );
      const secondText = await generate("which model answers");
      assert.notEqual(secondText, firstText);
      const rows = await stack.waitFor(async () => {
        const r = await stack.query<{ model_sha256: string }>("SELECT DISTINCT model_sha256 FROM steadytext_cache WHERE prompt = 'which model answers'");
        return r.length === 2 ? r : undefined;
      });
      assert.ok(rows.some((r) => r.model_sha256 === otherGeneration!.sha256));
    } finally {
      await stack.stopSidecar();
      await stack.startSidecar();
    }
    await stack.waitFor(async () =>
      (await stack.query("SELECT 1 FROM steadytext_models WHERE selector = 'generation:default' AND model_sha256 <> $1", [otherGeneration!.sha256])).length > 0,
    );
    assert.equal(await generate("which model answers"), firstText);
  });
});

describe("a hot standby", () => {
  test("serves cached answers and asks the daemon for the rest, writing nothing itself", async () => {
    const cached = await stack.query<{ g: string }>("SELECT steadytext_generate_cached('asked on the primary', 8) AS g");
    const standby = await stack.cluster.createStandby({ dataDir: join(stack.dir, "standby"), socketDir: join(stack.dir, "standby-run"), port: await freePort() });
    await standby.start();
    try {
      await stack.waitFor(async () =>
        (await standby.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'asked on the primary'", [], DATABASE)).length > 0,
      );
      const [hit] = await standby.query<{ g: string; recovery: boolean }>(
        "SELECT steadytext_generate('asked on the primary', 8) AS g, pg_is_in_recovery() AS recovery", [], DATABASE);
      assert.equal(hit!.recovery, true);
      assert.equal(hit!.g, cached[0]!.g);
      // A miss on the standby is computed by the daemon and mirrored to the primary, from where it replicates.
      const [miss] = await standby.query<{ g: string }>("SELECT steadytext_generate('asked on the standby', 8) AS g", [], DATABASE);
      assert.equal(typeof miss!.g, "string");
      await stack.waitFor(async () =>
        (await standby.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'asked on the standby'", [], DATABASE)).length > 0,
      );
    } finally {
      await standby.stop("immediate");
    }
  });
});

describe("one sidecar, several databases", () => {
  test("each result is mirrored into the database it was asked from", async () => {
    await stack.cluster.createDatabase("second_db");
    await stack.cluster.query(`ALTER DATABASE second_db SET steadytext.daemon_port = ${stack.daemonPort}`);
    const [row] = await stack.cluster.query<{ g: string }>("SELECT steadytext_generate('asked from the second database', 8) AS g", [], "second_db");
    assert.equal(typeof row!.g, "string");
    await stack.waitFor(async () =>
      (await stack.cluster.query("SELECT 1 FROM steadytext_cache WHERE prompt = 'asked from the second database'", [], "second_db")).length > 0,
    );
    assert.equal(await cachedRow("asked from the second database"), undefined);
  });
});

/** What a sidecar still holds back from the test database's steadytext_cache. */
async function mirrorBacklog(sidecar: SidecarProcess): Promise<{ queued: number; failures: number }> {
  const client = sidecar.client(10_000);
  try {
    return (await client.request<StatusResult>("status")).mirror?.[DATABASE] ?? { queued: 0, failures: 0 };
  } finally {
    await client.close();
  }
}

describe("the mirror across a database restart", () => {
  test("results computed while Postgres is down are written once it is back", async () => {
    const client = stack.sidecar!.client(60_000);
    try {
      await stack.cluster.stop("fast");
      const prompts = Array.from({ length: 5 }, (_, i) => `written after restart ${i}`);
      for (const prompt of prompts) {
        await client.request("generate", { prompt, max_new_tokens: 8 }, { origin: { database: DATABASE } });
      }
      // Held back, and the database already refused at least one attempt to write them.
      await stack.waitFor(async () => {
        const backlog = await mirrorBacklog(stack.sidecar!);
        return backlog.queued === prompts.length && backlog.failures > 0;
      });
      await stack.cluster.start();
      await stack.waitFor(async () => {
        const rows = await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = ANY($1)", [prompts]);
        return rows.length === prompts.length;
      }, 20_000);
      assert.deepEqual(await mirrorBacklog(stack.sidecar!), { queued: 0, failures: 0 });
    } finally {
      await client.close();
    }
  });
});

describe("a mirror database that stalls", () => {
  test("calls are answered while it holds every byte; what it held back is written once it moves again", { timeout: 180_000 }, async () => {
    const proxy = await PausableProxy.start(join(stack.dir, "stalling-run"), stack.cluster.socketDir, stack.cluster.port);
    const port = await freePort();
    const options = stack.sidecarOptions({}, port);
    const sidecar = await SidecarProcess.start({ ...options, pgUrl: options.pgUrl!.replace(encodeURIComponent(stack.cluster.socketDir), encodeURIComponent(proxy.socketDir)) });
    const session = await stack.connect();
    try {
      await session.query(`SET steadytext.daemon_port = ${port}`);
      // A user with limits, so that every model request asks the stalled database.
      await session.query("INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour, requests_per_day) VALUES (session_user, 1000, 10000, 100000)");
      // Connections through the proxy exist (heartbeat, rate-limit checks) before it stalls.
      assert.equal(typeof (await session.query("SELECT steadytext_generate('before the stall', 8) AS g")).rows[0].g, "string");
      proxy.pause();
      const prompts = Array.from({ length: 4 }, (_, i) => `computed while the mirror stalls ${i}`);
      for (const prompt of prompts) {
        // The rate-limit check cannot reach the database: the call goes ahead anyway.
        const [row] = (await session.query<{ g: string | null }>("SELECT steadytext_generate($1, 8) AS g", [prompt])).rows;
        assert.equal(typeof row!.g, "string", prompt);
      }
      assert.equal((await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = ANY($1)", [prompts])).length, 0, "nothing got through the stalled proxy");
      assert.ok((await mirrorBacklog(sidecar)).queued >= prompts.length);
      proxy.resume();
      await stack.waitFor(async () => (await stack.query("SELECT 1 FROM steadytext_cache WHERE prompt = ANY($1)", [prompts])).length === prompts.length, 60_000);
      assert.match(sidecar.log, /rate limits could not be checked in time/);
    } finally {
      proxy.resume();
      await session.query("DELETE FROM steadytext_rate_limits WHERE user_id = session_user");
      await session.end();
      await sidecar.stop();
      await proxy.close();
    }
  });
});

describe("the local cache file", () => {
  test("a corrupt file is moved aside and rebuilt; the daemon keeps working", async () => {
    await stack.stopSidecar();
    const caches = join(stack.dir, "cache", "caches");
    await mkdir(caches, { recursive: true });
    await writeFile(join(caches, "steadytext-cache.sqlite3"), "this is not a database".repeat(100));
    await stack.startSidecar();
    assert.equal(typeof (await generate("after corruption", ", false")), "string");
    assert.equal(typeof (await generate("after corruption 2")), "string");
    const files = await readdir(caches);
    assert.ok(files.some((f) => f.startsWith("steadytext-cache.sqlite3.corrupt-")), files.join(", "));
  });

  test("capacity limits hold", async () => {
    await stack.stopSidecar();
    await stack.startSidecar({ STEADYTEXT_GENERATION_CACHE_CAPACITY: "5" });
    const client = stack.sidecar!.client(60_000);
    try {
      for (let i = 0; i < 12; i++) await client.request("generate", { prompt: `limited ${i}`, max_new_tokens: 4 });
    } finally {
      await client.close();
    }
    // Eviction runs off the request path, once a second and when the cache closes: stop the daemon to see its result.
    await stack.stopSidecar();
    const path = join(stack.dir, "cache", "caches", "steadytext-cache.sqlite3");
    assert.ok(existsSync(path));
    const local = new LocalCache({ path, limits: { ...loadSettings().cacheLimits, generation: { capacity: 5, maxSizeMb: 50 } } });
    try {
      const generation = local.stats().find((s) => s.cache === "generation")!;
      assert.ok(generation.entries <= 5, `${generation.entries} entries`);
    } finally {
      local.close();
    }
    await stack.startSidecar();
  });
});
