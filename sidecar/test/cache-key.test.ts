// Pins the cache key: 64 hex, sensitive to every input that changes an answer, canonical JSON, no field-boundary collisions.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import {
  cacheKey,
  canonicalJson,
  embedKey,
  generateKey,
  rerankKey,
  type GenerateKeyInput,
} from "../src/cache/key.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);

const base: GenerateKeyInput = {
  modelSha256: SHA_A,
  prompt: "Write a haiku",
  maxTokens: 512,
  seed: 42,
  eosString: "[EOS]",
  temperature: 0,
  constraint: { kind: "none" },
};

describe("key shape", () => {
  test("every key is 64 lowercase hex characters", () => {
    for (const key of [
      generateKey(base),
      embedKey(SHA_A, "text", 42, "query"),
      rerankKey(SHA_A, "q", "d", "task", 42),
      cacheKey("generate", SHA_A, []),
    ]) {
      assert.match(key, /^[0-9a-f]{64}$/);
    }
  });

  test("the same input always gives the same key", () => {
    assert.equal(generateKey({ ...base }), generateKey({ ...base }));
  });
});

describe("each generate field changes the key", () => {
  const variants: Array<[string, Partial<GenerateKeyInput>]> = [
    ["prompt", { prompt: "Write a haiku." }],
    ["prompt whitespace", { prompt: "Write a haiku " }],
    ["max_tokens", { maxTokens: 511 }],
    ["seed", { seed: 43 }],
    ["eos_string", { eosString: "<END>" }],
    ["temperature", { temperature: 0.5 }],
    ["model sha", { modelSha256: SHA_B }],
    ["constraint kind regex", { constraint: { kind: "regex", pattern: "" } }],
    ["constraint kind json", { constraint: { kind: "json", schema: "" } }],
    ["constraint kind choice", { constraint: { kind: "choice", choices: [] } }],
  ];
  const reference = generateKey(base);
  for (const [name, change] of variants) {
    test(name, () => {
      assert.notEqual(generateKey({ ...base, ...change }), reference);
    });
  }

  test("all variants give distinct keys", () => {
    const keys = variants.map(([, change]) => generateKey({ ...base, ...change }));
    assert.equal(new Set([reference, ...keys]).size, variants.length + 1);
  });

  test("the constraint text changes the key for the same kind", () => {
    const regex = (pattern: string) => generateKey({ ...base, constraint: { kind: "regex", pattern } });
    assert.notEqual(regex("[a-z]+"), regex("[a-z]*"));
    const json = (schema: string) => generateKey({ ...base, constraint: { kind: "json", schema } });
    assert.notEqual(json('{"type":"string"}'), json('{"type":"number"}'));
    const choice = (choices: string[]) => generateKey({ ...base, constraint: { kind: "choice", choices } });
    assert.notEqual(choice(["yes", "no"]), choice(["no", "yes"]));
  });

  test("choices are length-prefixed: a separator inside a choice does not merge choices", () => {
    const choice = (choices: string[]) => generateKey({ ...base, constraint: { kind: "choice", choices } });
    assert.notEqual(choice(["a;", "b"]), choice(["a", ";b"]));
    assert.notEqual(choice(["1:a;1:b"]), choice(["a", "b"]));
    assert.notEqual(choice(["ab"]), choice(["a", "b"]));
  });
});

describe("embed and rerank keys", () => {
  test("each embed field and the kind change the key", () => {
    const reference = embedKey(SHA_A, "text", 42, "query");
    const variants = [
      embedKey(SHA_B, "text", 42, "query"),
      embedKey(SHA_A, "text ", 42, "query"),
      embedKey(SHA_A, "text", 41, "query"),
      embedKey(SHA_A, "text", 42, "passage"),
    ];
    assert.equal(new Set([reference, ...variants]).size, 5);
  });

  test("each rerank field changes the key, and query/document are not interchangeable", () => {
    const reference = rerankKey(SHA_A, "q", "d", "t", 42);
    const variants = [
      rerankKey(SHA_B, "q", "d", "t", 42),
      rerankKey(SHA_A, "d", "q", "t", 42),
      rerankKey(SHA_A, "q", "d", "t2", 42),
      rerankKey(SHA_A, "q", "d", "t", 7),
    ];
    assert.equal(new Set([reference, ...variants]).size, 5);
  });

  test("the same fields under a different kind give a different key", () => {
    const fields = [["text", "x"]] as const;
    assert.notEqual(cacheKey("embed", SHA_A, fields), cacheKey("generate", SHA_A, fields));
  });
});

describe("canonicalJson", () => {
  test("no whitespace anywhere outside strings", () => {
    const text = canonicalJson({ b: [1, { d: null, c: true }], a: "x y", e: { f: [] } });
    assert.equal(text, '{"a":"x y","b":[1,{"c":true,"d":null}],"e":{"f":[]}}');
    assert.doesNotMatch(text.replace(/"[^"]*"/g, ""), /\s/);
  });

  test("keys are sorted by code point, not by UTF-16 code unit", () => {
    // U+FF5E (BMP, one UTF-16 unit 0xFF5E) sorts before U+1F600 (astral, units 0xD83D 0xDE00) by code point,
    // though JavaScript's default sort puts the astral key first.
    const bmpHigh = "\uff5e";
    const astral = "\u{1f600}";
    const value = { [astral]: 1, [bmpHigh]: 2, z: 3, "é": 4, A: 5 };
    assert.deepEqual(Object.keys(value).sort(), ["A", "z", "é", astral, bmpHigh], "premise: UTF-16 order differs");
    assert.equal(canonicalJson(value), `{"A":5,"z":3,"é":4,"${bmpHigh}":2,"${astral}":1}`);
  });

  test("the order the keys were written in does not matter, at any depth", () => {
    const one = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name"] };
    const two = { required: ["name"], properties: { age: { type: "integer" }, name: { type: "string" } }, type: "object" };
    assert.equal(canonicalJson(one), canonicalJson(two));
  });

  test("array order matters", () => {
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  test("strings are escaped as JSON", () => {
    assert.equal(canonicalJson({ 'q"k': 'a"b\\c\n' }), '{"q\\"k":"a\\"b\\\\c\\n"}');
  });
});

describe("JSON schema constraints", () => {
  test("a schema object and the same object in another key order give the same key", () => {
    const one = { type: "object", properties: { b: { type: "string" }, a: { type: "number" } } };
    const two = { properties: { a: { type: "number" }, b: { type: "string" } }, type: "object" };
    assert.equal(
      generateKey({ ...base, constraint: { kind: "json", schema: one } }),
      generateKey({ ...base, constraint: { kind: "json", schema: two } }),
    );
  });

  test("a schema object keys like its canonical JSON text", () => {
    const schema = { type: "object", properties: { b: { type: "string" }, a: { type: "number" } } };
    assert.equal(
      generateKey({ ...base, constraint: { kind: "json", schema } }),
      generateKey({ ...base, constraint: { kind: "json", schema: canonicalJson(schema) } }),
    );
  });
});

describe("length prefixing", () => {
  test("a prompt imitating a field boundary does not collide with the real fields", () => {
    // Without length prefixes, prompt "hi\nseed=42" with an empty next field could serialise like prompt "hi" + seed 42.
    const honest = cacheKey("generate", SHA_A, [
      ["prompt", "hi"],
      ["seed", "42"],
    ]);
    for (const prompt of ["hi\nseed=42", "hi\nseed=2:42", "hi\nseed=2:42\n"]) {
      assert.notEqual(cacheKey("generate", SHA_A, [["prompt", prompt]]), honest, JSON.stringify(prompt));
    }
    const forgedPrefix = cacheKey("generate", SHA_A, [["prompt", "2:hi\nseed=2:42"]]);
    assert.notEqual(forgedPrefix, honest);
  });

  test("moving text between adjacent fields changes the key", () => {
    const key = (prompt: string, eosString: string) => generateKey({ ...base, prompt, eosString });
    assert.notEqual(key("ab", "c"), key("a", "bc"));
  });

  test("a crafted prompt cannot reproduce another request's seed and max_tokens", () => {
    const target = generateKey({ ...base, prompt: "x", maxTokens: 5, seed: 1 });
    const crafted = generateKey({ ...base, prompt: "x\nmax_tokens=1:5\nseed=1:1", maxTokens: 512, seed: 42 });
    assert.notEqual(crafted, target);
  });

  test("lengths count UTF-8 bytes, as SQL's octet_length does", () => {
    // "é" is 2 UTF-8 bytes and 1 UTF-16 unit; "😀" is 4 bytes and 2 units. The SQL side prefixes with byte lengths.
    const material = `steadytext-cache-v1\nkind=5:embed\nmodel=64:${SHA_A}\ntext=7:é\u{1f600}x\n`;
    const expected = createHash("sha256").update(material, "utf8").digest("hex");
    assert.equal(cacheKey("embed", SHA_A, [["text", "é\u{1f600}x"]]), expected);
  });
});
