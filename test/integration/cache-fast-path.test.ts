// steadytext_generate and steadytext_embed serve cache hits in C (a key
// hashed in C, a direct read through the key's index). What they return must
// be byte for byte what the daemon computed and what the SQL path returns;
// what the fast path does not handle must still behave as before.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

const prompts = Array.from({ length: 20 }, (_, i) => `fast path prompt ${i} é 日本`);

test("generate hits served in C equal the daemon's answers and the SQL path's, for many prompts in one statement", async () => {
  const computed = await stack.query<{ p: string; g: string }>(
    "SELECT p, steadytext_generate_cached(p, 12) AS g FROM unnest($1::text[]) AS p",
    [prompts],
  );
  const session = await stack.connect();
  const { rows } = await session.query<{ p: string; fast: string; sql: string }>(
    `SELECT p, steadytext_generate(p, 12) AS fast,
            _steadytext_generate(p, 12, true, 42, '[EOS]', NULL, NULL, NULL, NULL, false, 'none', '', NULL, false) AS sql
     FROM unnest($1::text[]) AS p`,
    [prompts],
  );
  const byPrompt = new Map(computed.map((r) => [r.p, r.g]));
  for (const row of rows) {
    assert.ok(byPrompt.get(row.p), `the daemon answered ${row.p}`);
    assert.equal(row.fast, byPrompt.get(row.p));
    assert.equal(row.sql, row.fast);
  }
});

test("embed hits served in C are bit-identical to the daemon's vectors and the SQL path's", async () => {
  const texts = prompts.map((p) => `embed ${p}`);
  await stack.query("SELECT count(steadytext_embed_cached(t)) FROM unnest($1::text[]) AS t", [texts]);
  const session = await stack.connect();
  const { rows } = await session.query<{ fast: string; sql: string; daemon: string }>(
    `SELECT steadytext_embed(t)::real[]::text AS fast,
            _steadytext_embed(t, true, 42, NULL, false, false)::real[]::text AS sql,
            steadytext_embed(t, use_cache := false)::real[]::text AS daemon
     FROM unnest($1::text[]) AS t`,
    [texts],
  );
  assert.equal(rows.length, texts.length);
  for (const row of rows) {
    assert.ok(row.fast);
    assert.equal(row.fast, row.daemon);
    assert.equal(row.sql, row.fast);
  }
});

test("with the daemon stopped, hits are still served (from C) and misses are NULL", async () => {
  await stack.query("SELECT steadytext_generate_cached('offline hit', 16), steadytext_embed_cached('offline vector')");
  await stack.query("SELECT steadytext_config_set('default_max_tokens', '16')");
  const expected = await stack.query<{ g: string; e: string }>("SELECT steadytext_generate('offline hit', 16) AS g, steadytext_embed('offline vector')::text AS e");
  await stack.stopSidecar();
  try {
    const session = await stack.connect();
    await session.query("SET steadytext.connect_timeout_ms = 100");
    const { rows } = await session.query<{ g: string; d: string; e: string; miss: string | null }>(
      `SELECT steadytext_generate('offline hit', 16) AS g,
              steadytext_generate('offline hit') AS d,
              steadytext_embed('offline vector')::text AS e,
              steadytext_generate('never computed', 16) AS miss`,
    );
    assert.equal(rows[0]!.g, expected[0]!.g);
    assert.equal(rows[0]!.d, expected[0]!.g, "max_tokens NULL takes the configured default_max_tokens");
    assert.equal(rows[0]!.e, expected[0]!.e);
    assert.equal(rows[0]!.miss, null);
  } finally {
    await stack.query("SELECT steadytext_config_set('default_max_tokens', '512')");
    await stack.startSidecar();
  }
});

test("arguments the fast path leaves to SQL behave as before: other seeds, sizes, NULL seeds and bad input", async () => {
  const [row] = await stack.query<{ a: string; b: string; c: string; d: string }>(
    `SELECT steadytext_generate('other args', 8, seed := 7) AS a,
            steadytext_generate('other args', 8, seed := 7, size := 'small') AS b,
            steadytext_generate('other args', 8, seed := NULL) AS c,
            steadytext_generate('other args', 8) AS d`,
  );
  assert.ok(row!.a && row!.b && row!.c);
  assert.equal(row!.c, row!.d, "a NULL seed is the configured default seed (42)");
  await assert.rejects(stack.query("SELECT steadytext_generate(NULL)"), /Prompt cannot be null/);
  await assert.rejects(stack.query("SELECT steadytext_generate(' \t')"), /Prompt cannot be empty/);
  await assert.rejects(stack.query("SELECT steadytext_generate('x', 8, seed := -1)"), /seed must be non-negative/);
  await assert.rejects(stack.query("SELECT steadytext_generate('x', 0)"), /max_tokens must be at least 1/);
  await assert.rejects(stack.query("SELECT steadytext_embed(NULL)"), /Text cannot be null/);
  await assert.rejects(stack.query("SELECT steadytext_embed('   ')"), /Text cannot be empty/);
  await assert.rejects(stack.query("SELECT steadytext_embed('x', model := 'a:b')"), /unsafe_mode/);
});

test("misses sent from C give the SQL path's answers byte for byte, in every session and under concurrency", async () => {
  const inputs = ['miss "quoted" \\ back\\slash', "miss\nnew line\ttab", "miss é 日本 😀", '{"prompt":"json-looking"}'];
  const reference = await stack.query<{ p: string; g: string; e: string }>(
    `SELECT p, _steadytext_generate(p, 16, false, 42, '[EOS]', NULL, NULL, NULL, NULL, false, 'none', '', NULL, false) AS g,
            _steadytext_embed(p, false, 42, NULL, false, false)::text AS e
     FROM unnest($1::text[]) AS p`,
    [inputs],
  );
  const fromC = async (): Promise<Array<{ p: string; g: string; e: string }>> => {
    const session = await stack.connect();
    const { rows } = await session.query<{ p: string; g: string; e: string }>(
      "SELECT p, steadytext_generate(p, 16, false) AS g, steadytext_embed(p, false)::text AS e FROM unnest($1::text[]) AS p",
      [inputs],
    );
    return rows;
  };
  for (const rows of [await fromC(), ...(await Promise.all(Array.from({ length: 4 }, fromC)))]) {
    assert.deepEqual(rows, reference);
  }
  assert.ok(reference.every((r) => r.g && r.e), "every input answered");
  // A prompt the model cannot take is the same error either way.
  const tooLong = "word ".repeat(5000);
  await assert.rejects(stack.query("SELECT steadytext_generate($1, 16, false)", [tooLong]), /Prompt is too long/);
  await assert.rejects(
    stack.query("SELECT _steadytext_generate($1, 16, false, 42, '[EOS]', NULL, NULL, NULL, NULL, false, 'none', '', NULL, false)", [tooLong]),
    /Prompt is too long/,
  );
});
