// Pins the sidecar's SQLite cache: round trips, isolation, frecency eviction, limits, TTL, corruption recovery, multi-process writes, stats.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { CACHE_NAMES, LocalCache, type CacheName, type LocalCacheOptions } from "../src/cache/local-cache.js";
import type { CacheLimits } from "../src/config/settings.js";

const LOCAL_CACHE_MODULE = fileURLToPath(new URL("../src/cache/local-cache.ts", import.meta.url));

let root: string;
let counter = 0;
const open: LocalCache[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), "steadytext-local-cache-"));
});
afterEach(() => {
  for (const cache of open.splice(0)) {
    try {
      cache.close();
    } catch {
      // closed by the test
    }
  }
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function limits(limit: Partial<CacheLimits> = {}): Record<CacheName, CacheLimits> {
  const one = { capacity: 1000, maxSizeMb: 10, ...limit };
  return { generation: { ...one }, embedding: { ...one }, reranking: { ...one } };
}

function freshPath(): string {
  return join(root, `cache-${++counter}`, "cache.sqlite3");
}

function openCache(options: Partial<LocalCacheOptions> & { path?: string } = {}): LocalCache {
  const cache = new LocalCache({ path: options.path ?? freshPath(), limits: options.limits ?? limits(), ...options });
  open.push(cache);
  return cache;
}

const value = (text: string): Buffer => Buffer.from(text, "utf8");

describe("LocalCache basics", () => {
  test("put then get returns the same bytes, in every cache", () => {
    const cache = openCache();
    for (const name of CACHE_NAMES) {
      const bytes = Buffer.from([0, 1, 2, 255, ...value(`answer for ${name} 🙂`)]);
      cache.put(name, "k1", bytes);
      assert.deepEqual(cache.get(name, "k1"), bytes);
    }
  });

  test("a missing key is undefined", () => {
    assert.equal(openCache().get("generation", "nope"), undefined);
  });

  test("putting a key again replaces its value", () => {
    const cache = openCache();
    cache.put("generation", "k", value("one"));
    cache.put("generation", "k", value("two"));
    assert.deepEqual(cache.get("generation", "k"), value("two"));
    assert.equal(cache.stats().find((s) => s.cache === "generation")!.entries, 1);
  });

  test("the caches do not see each other's keys", () => {
    const cache = openCache();
    cache.put("generation", "shared-key", value("generated"));
    assert.equal(cache.get("embedding", "shared-key"), undefined);
    assert.equal(cache.get("reranking", "shared-key"), undefined);
    cache.put("embedding", "shared-key", value("embedded"));
    assert.deepEqual(cache.get("generation", "shared-key"), value("generated"));
    assert.deepEqual(cache.get("embedding", "shared-key"), value("embedded"));
    assert.equal(cache.clear("embedding"), 1);
    assert.deepEqual(cache.get("generation", "shared-key"), value("generated"));
  });

  test("entries survive closing and reopening the file", () => {
    const path = freshPath();
    const first = openCache({ path });
    first.put("reranking", "k", value("0.5"));
    first.close();
    assert.deepEqual(openCache({ path }).get("reranking", "k"), value("0.5"));
  });
});

describe("LocalCache limits", () => {
  test("over capacity, it evicts down to at most the capacity", () => {
    const cache = openCache({ limits: limits({ capacity: 20 }) });
    for (let i = 0; i < 100; i++) {
      cache.put("generation", `k${i}`, value(`v${i}`));
      assert.ok(cache.stats().find((s) => s.cache === "generation")!.entries <= 20, `over capacity after ${i + 1} puts`);
    }
    // The newest entry is always kept.
    assert.deepEqual(cache.get("generation", "k99"), value("v99"));
  });

  test("a hit is served while another process holds the write lock, without waiting for it", () => {
    const path = freshPath();
    const cache = openCache({ path });
    cache.put("generation", "k", value("v"));
    const other = new Database(path, { timeout: 0 });
    other.exec("BEGIN IMMEDIATE");
    try {
      // Before, every hit wrote its access statistics: it waited out the busy timeout and came back a miss.
      assert.deepEqual(cache.get("generation", "k"), value("v"));
      assert.deepEqual(cache.get("generation", "k"), value("v"));
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    cache.maintain();
    const row = new Database(path, { readonly: true });
    try {
      assert.equal(row.prepare("SELECT frequency FROM generation_cache WHERE key = 'k'").pluck().get(), 3, "the two hits were counted later");
    } finally {
      row.close();
    }
  });

  test("eviction is by frecency: the oldest but most used entry survives, untouched old ones go", () => {
    let clock = 1_000_000;
    const cache = openCache({ limits: limits({ capacity: 10 }), now: () => clock });
    cache.put("generation", "favourite", value("fav"));
    for (let i = 0; i < 30; i++) {
      clock += 1000;
      assert.deepEqual(cache.get("generation", "favourite"), value("fav"));
    }
    clock += 1000;
    cache.put("generation", "second", value("2"));
    for (let i = 0; i < 40; i++) {
      clock += 1000;
      cache.put("generation", `filler-${i}`, value(`f${i}`));
    }
    cache.maintain(); // eviction runs off the request path, once a second
    assert.deepEqual(cache.get("generation", "favourite"), value("fav"), "the most used entry was evicted (FIFO?)");
    assert.equal(cache.get("generation", "second"), undefined, "an old, unused entry survived");
    assert.equal(cache.get("generation", "filler-0"), undefined);
    assert.deepEqual(cache.get("generation", "filler-39"), value("f39"));
  });

  test("the size limit holds", () => {
    const maxSizeMb = 0.002; // about 2 KiB
    const cache = openCache({ limits: limits({ maxSizeMb }) });
    for (let i = 0; i < 100; i++) cache.put("embedding", `k${i}`, Buffer.alloc(100, i));
    const stats = cache.stats().find((s) => s.cache === "embedding")!;
    assert.ok(stats.sizeBytes <= maxSizeMb * 1024 * 1024, `${stats.sizeBytes} bytes`);
    assert.ok(stats.entries > 0 && stats.entries <= 20, `${stats.entries} entries`);
    assert.deepEqual(cache.get("embedding", "k99"), Buffer.alloc(100, 99));
  });

  test("limits of one cache do not evict from another", () => {
    const cache = openCache({
      limits: { generation: { capacity: 5, maxSizeMb: 10 }, embedding: { capacity: 1000, maxSizeMb: 10 }, reranking: { capacity: 1000, maxSizeMb: 10 } },
    });
    for (let i = 0; i < 50; i++) cache.put("embedding", `e${i}`, value("e"));
    for (let i = 0; i < 50; i++) cache.put("generation", `g${i}`, value("g"));
    const stats = Object.fromEntries(cache.stats().map((s) => [s.cache, s.entries]));
    assert.equal(stats.embedding, 50);
    assert.ok(stats.generation! <= 5);
  });

  test("with a TTL, entries older than it are gone and younger ones are served", () => {
    let clock = 5_000_000;
    const cache = openCache({ ttlSeconds: 60, now: () => clock });
    cache.put("generation", "k", value("v"));
    clock += 59_000;
    assert.deepEqual(cache.get("generation", "k"), value("v"));
    clock += 2_000;
    assert.equal(cache.get("generation", "k"), undefined);
    assert.equal(cache.stats().find((s) => s.cache === "generation")!.entries, 0, "the expired entry was not removed");
  });

  test("a TTL counts from when the entry was written, not from its last access", () => {
    let clock = 0;
    const cache = openCache({ ttlSeconds: 10, now: () => clock });
    cache.put("generation", "k", value("v"));
    for (clock = 1_000; clock <= 9_000; clock += 1_000) assert.ok(cache.get("generation", "k"));
    clock = 10_001;
    assert.equal(cache.get("generation", "k"), undefined);
  });
});

describe("LocalCache recovery", () => {
  test("a corrupt file is moved aside to <path>.corrupt-* and the cache works", async () => {
    const path = freshPath();
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, Buffer.alloc(8192, "garbage! "));
    const cache = openCache({ path });
    cache.put("generation", "k", value("v"));
    assert.deepEqual(cache.get("generation", "k"), value("v"));
    const files = await readdir(join(path, ".."));
    assert.ok(files.some((f) => f.startsWith("cache.sqlite3.corrupt-")), `files: ${files.join(", ")}`);
  });
});

describe("LocalCache across processes", () => {
  test("two processes writing to one file at once lose nothing", { timeout: 60_000 }, async () => {
    const path = freshPath();
    const highLimits = limits({ capacity: 100_000, maxSizeMb: 100 });
    const parent = openCache({ path, limits: highLimits });
    const script = `
      const { LocalCache } = await import(${JSON.stringify(LOCAL_CACHE_MODULE)});
      const cache = new LocalCache({ path: ${JSON.stringify(path)}, limits: ${JSON.stringify(highLimits)} });
      process.stdout.write("ready\\n");
      await new Promise((resolve) => process.stdin.once("data", resolve));
      const started = Date.now();
      for (let i = 0; i < 200; i++) {
        cache.put("generation", "child-" + i, Buffer.from("from child " + i));
        if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      cache.close();
      process.stdout.write(JSON.stringify([started, Date.now()]));`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const [firstLine] = (await once(child.stdout, "data")) as [Buffer];
    assert.equal(firstLine.toString().trim(), "ready", stderr);
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = once(child, "exit");
    child.stdin.end("go\n");
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      parent.put("generation", `parent-${i}`, value(`from parent ${i}`));
      if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const ended = Date.now();
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
    const [childStarted, childEnded] = JSON.parse(stdout) as [number, number];
    const overlap = Math.min(ended, childEnded) - Math.max(started, childStarted);
    console.log(`parent wrote for ${ended - started} ms, child for ${childEnded - childStarted} ms, overlapping ${overlap} ms`);
    for (let i = 0; i < 200; i++) {
      assert.deepEqual(parent.get("generation", `parent-${i}`), value(`from parent ${i}`));
      assert.deepEqual(parent.get("generation", `child-${i}`), value(`from child ${i}`), `child-${i} is missing`);
    }
    assert.equal(parent.stats().find((s) => s.cache === "generation")!.entries, 400);
  });
});

describe("LocalCache stats", () => {
  test("hits and misses are counted per cache and persist across instances", () => {
    const path = freshPath();
    const first = openCache({ path });
    first.put("generation", "k", value("v"));
    first.get("generation", "k");
    first.get("generation", "k");
    first.get("generation", "missing");
    first.get("embedding", "missing");
    const live = Object.fromEntries(first.stats().map((s) => [s.cache, s]));
    assert.deepEqual([live.generation!.hits, live.generation!.misses], [2, 1]);
    assert.deepEqual([live.embedding!.hits, live.embedding!.misses], [0, 1]);
    first.get("generation", "k");
    first.close();

    const second = openCache({ path });
    second.get("reranking", "missing");
    const stats = Object.fromEntries(second.stats().map((s) => [s.cache, s]));
    assert.deepEqual([stats.generation!.hits, stats.generation!.misses], [3, 1]);
    assert.deepEqual([stats.embedding!.hits, stats.embedding!.misses], [0, 1]);
    assert.deepEqual([stats.reranking!.hits, stats.reranking!.misses], [0, 1]);
    assert.equal(stats.generation!.entries, 1);
    assert.equal(stats.generation!.sizeBytes, 1);
  });
});
