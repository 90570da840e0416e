// Pins the mirror writer's SQL (mirror-sql.ts) on pg-mem tables laid out like the extension's: idempotent inserts, summed hit counts, upserted models and heartbeats.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeEach, describe, test } from "node:test";
import pg from "pg";
import { DataType, newDb, type IMemoryDb } from "pg-mem";
import { float32Values } from "../src/util/float32.js";
import {
  applyHitCountsSql,
  heartbeatSql,
  insertEntriesSql,
  MAX_PARAMETERS,
  publishModelsSql,
  quoteIdent,
  type SqlStatement,
} from "../src/cache/mirror-sql.js";
import type { Heartbeat, MirrorEntry } from "../src/cache/pg-mirror.js";

const EXTENSION_SQL = fileURLToPath(new URL("../../sql/pg_steadytext--2026.11.26.sql", import.meta.url));
const SCHEMA_NAME = "steady text"; // a name that needs quoting, like any schema the extension may be installed in
const SCHEMA = quoteIdent(SCHEMA_NAME);
const MIRRORED_TABLES = ["steadytext_cache", "steadytext_models", "steadytext_daemon_health"];

/** The CREATE TABLE statements of the mirrored tables, from the extension script, for a database without pgvector. */
function tableDefinitions(): string[] {
  const script = readFileSync(EXTENSION_SQL, "utf8");
  return MIRRORED_TABLES.map((table) => {
    const match = new RegExp(`CREATE TABLE @extschema@\\.${table} \\([\\s\\S]*?\\n\\);`).exec(script);
    assert.ok(match, `${table} is not defined in ${EXTENSION_SQL}`);
    return match[0].replaceAll("@extschema@", SCHEMA).replace(/\bvector\(1024\)/g, "text");
  });
}

let db: IMemoryDb;

beforeEach(() => {
  db = newDb();
  // pg-mem lacks octet_length (used by the insert) and the ~ operator (a CHECK on steadytext_models); these behave like PostgreSQL's.
  db.public.registerFunction({
    name: "octet_length",
    args: [DataType.text],
    returns: DataType.integer,
    implementation: (text: string) => Buffer.byteLength(text, "utf8"),
  });
  db.public.registerOperator({
    operator: "~",
    left: DataType.text,
    right: DataType.text,
    returns: DataType.bool,
    implementation: (text: string, pattern: string) => new RegExp(pattern).test(text),
  });
  db.createSchema(SCHEMA_NAME);
  // The extension's C function, as the text of the real[] it returns (where there is no pgvector the column is text).
  db.getSchema(SCHEMA_NAME).registerFunction({
    name: "_steadytext_real4_from_f32le",
    args: [DataType.bytea],
    returns: DataType.text,
    implementation: (bytes: Buffer) => `[${float32Values(bytes).join(",")}]`,
  });
  for (const definition of tableDefinitions()) db.public.none(definition);
});

/** How node-postgres turns a JavaScript value into the text it sends for a parameter (arrays become '{...}'). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;

/** Run statements with their values bound as parameters (pg-mem's prepared statements, fed what pg would send). */
async function run(statements: SqlStatement | readonly SqlStatement[]): Promise<void> {
  for (const statement of Array.isArray(statements) ? statements : [statements as SqlStatement]) {
    db.public.prepare(statement.text).bind(statement.values.map(prepareValue)).executeAll();
  }
}

function rows<T>(sql: string): T[] {
  return db.public.many(sql) as T[];
}

function entry(key: string, extra: Partial<MirrorEntry> = {}): MirrorEntry {
  return {
    key,
    kind: "generate",
    prompt: `prompt for ${key}`,
    response: `answer for ${key}`,
    modelName: "steadytext-test-generation.gguf",
    modelSha256: "a".repeat(64),
    seed: 42,
    eosString: "[EOS]",
    params: { max_new_tokens: 16 },
    generationTimeMs: 12.6,
    ...extra,
  };
}

interface CacheRow {
  cache_key: string;
  kind: string;
  prompt: string;
  response: string | null;
  embedding: string | null;
  score: number | null;
  access_count: number;
  last_accessed: Date;
  model_name: string;
  model_sha256: string;
  seed: number;
  eos_string: string | null;
  generation_params: unknown;
  response_size: number;
  generation_time_ms: number;
}

const cacheRows = (): CacheRow[] => rows<CacheRow>(`SELECT * FROM ${SCHEMA}.steadytext_cache ORDER BY cache_key`);

describe("statement shape", () => {
  test("every statement's numbered parameters match its values, within PostgreSQL's limit", () => {
    const touches = Array.from({ length: 40_000 }, (_, i) => [`k${i}`, 1] as const);
    const statements = [
      ...applyHitCountsSql(SCHEMA, touches),
      ...insertEntriesSql(SCHEMA, "text", Array.from({ length: 500 }, (_, i) => entry(`e${i}`))),
      ...publishModelsSql(SCHEMA, [["generation:default", { sha256: "b".repeat(64), name: "m" }]]),
    ];
    assert.ok(applyHitCountsSql(SCHEMA, touches).length > 1, "40 000 touches must be split over several statements");
    for (const statement of statements) {
      const numbers = [...statement.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
      assert.ok(statement.values.length <= MAX_PARAMETERS, `${statement.values.length} parameters`);
      assert.equal(Math.max(...numbers), statement.values.length);
      assert.equal(new Set(numbers).size, statement.values.length, "a parameter is unused or repeated");
    }
    assert.equal(
      applyHitCountsSql(SCHEMA, touches).reduce((sum, s) => sum + s.values.length, 0),
      touches.length * 2,
      "a touch was lost when splitting",
    );
  });

  test("nothing to write means no statement", () => {
    assert.deepEqual(publishModelsSql(SCHEMA, []), []);
    assert.deepEqual(insertEntriesSql(SCHEMA, "text", []), []);
    assert.deepEqual(applyHitCountsSql(SCHEMA, []), []);
  });

  test("the embedding is cast to the given type: pgvector's in PostgreSQL", () => {
    const [statement] = insertEntriesSql(SCHEMA, `"extensions".vector(1024)`, [entry("k")]);
    assert.match(statement!.text, /_steadytext_real4_from_f32le\(embedding\)::"extensions"\.vector\(1024\)/);
  });
});

describe("inserting entries", () => {
  test("every column is written as the SQL functions read it", async () => {
    await run(insertEntriesSql(SCHEMA, "text", [
      entry("g", { response: "héllo 🙂", params: { max_new_tokens: 16, nested: { a: [1, 2] } } }),
      entry("e", { kind: "embed", response: undefined, embedding: [0.5, -0.25, 1e-7], eosString: undefined, seed: 7 }),
      entry("r", { kind: "rerank", response: undefined, score: 0.875, generationTimeMs: 3.4 }),
    ]));
    const byKey = Object.fromEntries(cacheRows().map((r) => [r.cache_key, r]));
    assert.deepEqual(Object.keys(byKey).sort(), ["e", "g", "r"]);
    const g = byKey.g!;
    assert.equal(g.kind, "generate");
    assert.equal(g.response, "héllo 🙂");
    assert.equal(g.response_size, Buffer.byteLength("héllo 🙂", "utf8"), "response_size counts bytes");
    assert.deepEqual(g.generation_params, { max_new_tokens: 16, nested: { a: [1, 2] } });
    assert.equal(g.generation_time_ms, 13);
    assert.equal(g.access_count, 1);
    assert.equal(g.eos_string, "[EOS]");
    assert.equal(g.model_sha256, "a".repeat(64));
    const e = byKey.e!;
    // Sent as float32 bytes: each value arrives as the float32 it was.
    assert.deepEqual(JSON.parse(e.embedding!), [0.5, -0.25, Math.fround(1e-7)]);
    assert.equal(e.response, null);
    assert.equal(e.response_size, 4096);
    assert.equal(e.eos_string, null);
    assert.equal(e.seed, 7);
    const r = byKey.r!;
    assert.equal(r.score, 0.875);
    assert.equal(r.response_size, 0);
    assert.equal(r.generation_time_ms, 3);
  });

  test("inserting the same key twice keeps one row, the first one", async () => {
    await run(insertEntriesSql(SCHEMA, "text", [entry("k", { response: "first" })]));
    await run(insertEntriesSql(SCHEMA, "text", [entry("k", { response: "second" }), entry("other")]));
    const all = cacheRows();
    assert.deepEqual(all.map((r) => r.cache_key), ["k", "other"]);
    assert.equal(all[0]!.response, "first");
  });

  test("a batch repeating a key inserts it once", async () => {
    await run(insertEntriesSql(SCHEMA, "text", [entry("dup"), entry("dup", { response: "again" }), entry("x")]));
    assert.deepEqual(cacheRows().map((r) => r.cache_key), ["dup", "x"]);
  });

  test("awkward text survives: quotes, backslashes, newlines, SQL-looking input", async () => {
    const prompt = `it's "quoted" \\ back\nslash'); DROP TABLE steadytext_cache; --`;
    await run(insertEntriesSql(SCHEMA, "text", [entry("awkward", { prompt, response: prompt })]));
    const [row] = cacheRows();
    assert.equal(row!.prompt, prompt);
    assert.equal(row!.response, prompt);
  });
});

describe("hit counts", () => {
  test("hits add up per key, across statements, and unknown keys are ignored", async () => {
    await run(insertEntriesSql(SCHEMA, "text", [entry("a"), entry("b"), entry("c")]));
    const before = Object.fromEntries(cacheRows().map((r) => [r.cache_key, r.last_accessed.getTime()]));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await run(applyHitCountsSql(SCHEMA, [["a", 2], ["b", 1], ["missing", 9]]));
    await run(applyHitCountsSql(SCHEMA, [["a", 3]]));
    const after = Object.fromEntries(cacheRows().map((r) => [r.cache_key, r]));
    assert.equal(after.a!.access_count, 1 + 2 + 3);
    assert.equal(after.b!.access_count, 1 + 1);
    assert.equal(after.c!.access_count, 1);
    assert.ok(after.a!.last_accessed.getTime() > before.a!, "last_accessed was not refreshed");
    assert.equal(after.c!.last_accessed.getTime(), before.c, "an untouched row changed");
    assert.equal(cacheRows().length, 3, "a hit on a missing key created a row");
  });

  test("a batch large enough to be split still counts every hit", async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(3, "0")}`);
    await run(insertEntriesSql(SCHEMA, "text", keys.map((k) => entry(k))));
    await run(applyHitCountsSql(SCHEMA, keys.map((k, i) => [k, i] as const)));
    for (const [i, row] of cacheRows().entries()) assert.equal(row.access_count, 1 + i, row.cache_key);
  });
});

describe("publishing models", () => {
  const models = () => rows<{ selector: string; model_sha256: string; model_name: string; updated_at: Date }>(
    `SELECT * FROM ${SCHEMA}.steadytext_models ORDER BY selector`,
  );

  test("a selector is inserted, then updated in place", async () => {
    await run(publishModelsSql(SCHEMA, [
      ["generation:default", { sha256: "1".repeat(64), name: "gen-a.gguf" }],
      ["embedding:default", { sha256: "2".repeat(64), name: "emb.gguf" }],
    ]));
    const first = models();
    assert.deepEqual(first.map((m) => [m.selector, m.model_sha256, m.model_name]), [
      ["embedding:default", "2".repeat(64), "emb.gguf"],
      ["generation:default", "1".repeat(64), "gen-a.gguf"],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await run(publishModelsSql(SCHEMA, [["generation:default", { sha256: "3".repeat(64), name: "gen-b.gguf" }]]));
    const second = models();
    assert.equal(second.length, 2);
    assert.deepEqual([second[1]!.model_sha256, second[1]!.model_name], ["3".repeat(64), "gen-b.gguf"]);
    assert.ok(second[1]!.updated_at.getTime() > first[1]!.updated_at.getTime(), "updated_at was not refreshed");
    assert.equal(second[0]!.model_sha256, "2".repeat(64), "another selector changed");
  });

  test("the table's check refuses a sha256 that is not 64 hex digits", async () => {
    await assert.rejects(run(publishModelsSql(SCHEMA, [["generation:default", { sha256: "not-a-hash", name: "x" }]])));
    assert.equal(models().length, 0);
  });
});

describe("heartbeat", () => {
  const heartbeat = (extra: Partial<Heartbeat> = {}): Heartbeat => ({
    daemonId: "default",
    endpoint: "tcp://127.0.0.1:5557",
    version: "2026.11.26",
    startedAt: new Date(1_000_000),
    models: ["gen.gguf"],
    totalRequests: 1,
    ...extra,
  });
  const health = () => rows<{
    daemon_id: string;
    endpoint: string;
    status: string;
    uptime_seconds: number;
    version: string;
    models_loaded: string[];
    total_requests: number | string;
    last_heartbeat: Date;
  }>(`SELECT * FROM ${SCHEMA}.steadytext_daemon_health ORDER BY daemon_id`);

  test("the first beat inserts the daemon's row", async () => {
    await run(heartbeatSql(SCHEMA, heartbeat(), 1_000_000 + 61_400));
    const [row] = health();
    assert.equal(row!.daemon_id, "default");
    assert.equal(row!.status, "healthy");
    assert.equal(row!.uptime_seconds, 61);
    assert.deepEqual(row!.models_loaded, ["gen.gguf"]);
    assert.equal(Number(row!.total_requests), 1);
  });

  test("later beats update the same row; another daemon gets its own", async () => {
    await run(heartbeatSql(SCHEMA, heartbeat(), 1_010_000));
    const first = health()[0]!.last_heartbeat.getTime();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await run(heartbeatSql(SCHEMA, heartbeat({ endpoint: "ipc:///tmp/s", models: ["gen.gguf", "emb.gguf"], totalRequests: 99 }), 1_020_000));
    await run(heartbeatSql(SCHEMA, heartbeat({ daemonId: "second" }), 1_005_000));
    const rowsNow = health();
    assert.deepEqual(rowsNow.map((r) => r.daemon_id), ["default", "second"]);
    const main = rowsNow[0]!;
    assert.equal(main.endpoint, "ipc:///tmp/s");
    assert.equal(main.uptime_seconds, 20);
    assert.deepEqual(main.models_loaded, ["gen.gguf", "emb.gguf"]);
    assert.equal(Number(main.total_requests), 99);
    assert.ok(main.last_heartbeat.getTime() > first, "last_heartbeat was not refreshed");
  });
});
