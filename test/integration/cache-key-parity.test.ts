// SQL and the sidecar compute the same cache key, byte for byte, for every
// input: otherwise SQL would never find what the sidecar wrote.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { embedKey, generateKey, rerankKey } from "../../sidecar/src/cache/key.js";
import { chunkWords } from "../../sidecar/src/daemon/word-chunker.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
const MODEL = "ab".repeat(32);

before(async () => {
  stack = await TestStack.start({ sidecar: false });
  await stack.query(
    `INSERT INTO steadytext_models (selector, model_sha256, model_name) VALUES
       ('generation:default', $1, 'm'), ('generation:size:large', $1, 'm'), ('embedding:default', $1, 'm'), ('reranking:default', $1, 'm')`,
    [MODEL],
  );
});
after(() => stack.stop());

/** Texts that stress encodings and separators. */
function samples(): string[] {
  const fixed = ["a", " ", "x=1:2\n", "naïve café", "日本語のテキスト", "emoji 🧪🚀 and ZWJ 👩‍🔬", "tab\tand\r\nlines", "quote ' \" \\ backslash",
    "\u00a0non-breaking", "\u200bzero width", "Ω≈ç√∫", "combining é vs é", "a".repeat(5000)];
  // Deterministic pseudo-random strings over a mixed alphabet.
  const alphabet = [..."abcXYZ09 _-:=;\n\t\"'\\éüß日本🧪€→"];
  let state = 12345;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
  const random = Array.from({ length: 60 }, () =>
    Array.from({ length: 1 + (next() % 40) }, () => alphabet[next() % alphabet.length]).join(""),
  );
  return [...fixed, ...random];
}

test("generate keys match for every prompt, length and eos string", async () => {
  const inputs = samples().map((prompt, i) => ({ prompt, maxTokens: 1 + (i % 4096), seed: i * 7919, eos: i % 3 === 0 ? "[EOS]" : `stop${i}é` }));
  const rows = await stack.query<{ k: string }>(
    `SELECT _steadytext_generate_key('generation:default', p, m, s, e, 'none', '') AS k
     FROM unnest($1::text[], $2::int[], $3::int[], $4::text[]) WITH ORDINALITY AS t(p, m, s, e, i) ORDER BY i`,
    [inputs.map((x) => x.prompt), inputs.map((x) => x.maxTokens), inputs.map((x) => x.seed), inputs.map((x) => x.eos)],
  );
  inputs.forEach((x, i) => {
    const expected = generateKey({ modelSha256: MODEL, prompt: x.prompt, maxTokens: x.maxTokens, seed: x.seed, eosString: x.eos, temperature: 0, constraint: { kind: "none" } });
    assert.equal(rows[i]!.k, expected, `prompt ${JSON.stringify(x.prompt).slice(0, 60)}`);
  });
});

test("structured generation keys match: jsonb schema text, patterns, choice lists", async () => {
  const schemas = ['{"type": "object", "properties": {"b": {"type": "boolean"}, "aé": {"enum": ["x", "日本"]}}}', '{"type": "integer"}'];
  for (const schema of schemas) {
    const [row] = await stack.query<{ k: string; text: string }>(
      "SELECT _steadytext_generate_key('generation:default', 'p', 512, 42, '[EOS]', 'json', $1::jsonb::text) AS k, $1::jsonb::text AS text",
      [schema],
    );
    assert.equal(row!.k, generateKey({ modelSha256: MODEL, prompt: "p", maxTokens: 512, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "json", schema: row!.text } }));
  }
  for (const pattern of ["[0-9]{3}", "é+|日本", "\\d+\\.\\d*"]) {
    const [row] = await stack.query<{ k: string }>("SELECT _steadytext_generate_key('generation:default', 'p', 512, 42, '[EOS]', 'regex', $1) AS k", [pattern]);
    assert.equal(row!.k, generateKey({ modelSha256: MODEL, prompt: "p", maxTokens: 512, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "regex", pattern } }));
  }
  for (const choices of [["yes", "no"], ["a;b", "1:c", "日本", "🧪"], ["x", "xx", "x"]]) {
    const [row] = await stack.query<{ k: string }>(
      "SELECT _steadytext_generate_key('generation:default', 'p', 512, 42, '[EOS]', 'choice', _steadytext_choices_text($1)) AS k",
      [choices],
    );
    assert.equal(row!.k, generateKey({ modelSha256: MODEL, prompt: "p", maxTokens: 512, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "choice", choices } }));
  }
});

test("embed and rerank keys match", async () => {
  const texts = samples();
  const rows = await stack.query<{ e: string; r: string }>(
    `SELECT _steadytext_embed_key('embedding:default', t, 42, 'query') AS e,
            _steadytext_rerank_key('reranking:default', 'query ' || t, t, 'task ' || t, 7) AS r
     FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i`,
    [texts],
  );
  texts.forEach((t, i) => {
    assert.equal(rows[i]!.e, embedKey(MODEL, t, 42, "query"));
    assert.equal(rows[i]!.r, rerankKey(MODEL, `query ${t}`, t, `task ${t}`, 7));
  });
});

test("selectors match and an unknown model identity gives no key", async () => {
  const [row] = await stack.query<{ a: string; b: string; c: string; d: string; k: string | null }>(
    `SELECT _steadytext_model_selector('generation', NULL, NULL, NULL, NULL, false) AS a,
            _steadytext_model_selector('generation', NULL, NULL, NULL, 'large', false) AS b,
            _steadytext_model_selector('generation', 'gemma-3n-4b', NULL, NULL, 'small', false) AS c,
            _steadytext_model_selector('generation', NULL, 'o/r', 'f.gguf', NULL, false) AS d,
            _steadytext_generate_key('generation:name:nothing-published', 'p', 1, 1, '[EOS]', 'none', '') AS k`,
  );
  const { selectorFor } = await import("../../sidecar/src/models/resolve.js");
  assert.equal(row!.a, selectorFor("generation", {}));
  assert.equal(row!.b, selectorFor("generation", { size: "large" }));
  assert.equal(row!.c, selectorFor("generation", { model: "gemma-3n-4b", size: "small" }));
  assert.equal(row!.d, selectorFor("generation", { model_repo: "o/r", model_filename: "f.gguf" }));
  assert.equal(row!.k, null);
});

test("SQL splits a cached stream into the same chunks as the daemon streams it", async () => {
  const texts = [...samples(), "  lead", "trail \n", " a b", "   ", "one\u00a0two three", "x \t\ny"];
  const rows = await stack.query<{ i: string; chunks: string[] }>(
    `SELECT t.i, coalesce((SELECT array_agg(c ORDER BY n) FROM _steadytext_chunks(t.p) WITH ORDINALITY AS x(c, n)), '{}') AS chunks
     FROM unnest($1::text[]) WITH ORDINALITY AS t(p, i) ORDER BY t.i`,
    [texts],
  );
  rows.forEach((row, i) => assert.deepEqual(row.chunks, chunkWords(texts[i]!), JSON.stringify(texts[i])));
});

test("the SQL statement of the key (_steadytext_cache_key over _steadytext_key_field) gives the C functions' bytes", async () => {
  const texts = samples();
  const rows = await stack.query<{ c_gen: string; sql_gen: string; c_emb: string; sql_emb: string; c_rr: string; sql_rr: string }>(
    `SELECT _steadytext_generate_key('generation:default', t, i::int, 42, '[EOS]', 'none', '') AS c_gen,
            _steadytext_cache_key('generate', 'generation:default',
                _steadytext_key_field('prompt', t) || _steadytext_key_field('max_tokens', i::text) || _steadytext_key_field('seed', '42')
                || _steadytext_key_field('eos_string', '[EOS]') || _steadytext_key_field('temperature', '0')
                || _steadytext_key_field('constraint_kind', 'none') || _steadytext_key_field('constraint', '')) AS sql_gen,
            _steadytext_embed_key('embedding:default', t, 7, 'passage') AS c_emb,
            _steadytext_cache_key('embed', 'embedding:default',
                _steadytext_key_field('text', t) || _steadytext_key_field('seed', '7') || _steadytext_key_field('mode', 'passage')) AS sql_emb,
            _steadytext_rerank_key('reranking:default', t, 'doc', 'task', 3) AS c_rr,
            _steadytext_cache_key('rerank', 'reranking:default',
                _steadytext_key_field('query', t) || _steadytext_key_field('document', 'doc') || _steadytext_key_field('task', 'task')
                || _steadytext_key_field('seed', '3')) AS sql_rr
     FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i`,
    [texts],
  );
  texts.forEach((t, i) => {
    const row = rows[i]!;
    assert.equal(row.c_gen, row.sql_gen, `generate ${JSON.stringify(t).slice(0, 40)}`);
    assert.equal(row.c_gen, generateKey({ modelSha256: MODEL, prompt: t, maxTokens: i + 1, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "none" } }));
    assert.equal(row.c_emb, row.sql_emb);
    assert.equal(row.c_emb, embedKey(MODEL, t, 7, "passage"));
    assert.equal(row.c_rr, row.sql_rr);
    assert.equal(row.c_rr, rerankKey(MODEL, t, "doc", "task", 3));
  });
});

test("a model identity published during a session is used by the session's next statement", async () => {
  const session = await stack.connect();
  const key = async () => (await session.query("SELECT _steadytext_embed_key('embedding:default', 'x', 42, 'query') AS k")).rows[0].k as string;
  assert.equal(await key(), embedKey(MODEL, "x", 42, "query"));
  const other = "cd".repeat(32);
  await stack.query("UPDATE steadytext_models SET model_sha256 = $1 WHERE selector = 'embedding:default'", [other]);
  try {
    assert.equal(await key(), embedKey(other, "x", 42, "query"));
  } finally {
    await stack.query("UPDATE steadytext_models SET model_sha256 = $1 WHERE selector = 'embedding:default'", [MODEL]);
  }
  assert.equal(await key(), embedKey(MODEL, "x", 42, "query"));
});
