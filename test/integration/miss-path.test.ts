// steadytext_generate and steadytext_embed send a miss of the default model
// to the daemon from C, without PL/pgSQL. What they send must be what the SQL
// implementation (_steadytext_generate, _steadytext_embed) sends for the same
// arguments, whatever the text holds, and what they return must be the same
// bytes: checked against a fake daemon that records every request, and
// against the real one.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { FakeDaemon } from "../harness/fake-daemon.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let daemon: FakeDaemon;
const received: Array<{ method: string; params: Record<string, unknown> }> = [];

/** Texts a JSON writer must escape, or that look like JSON themselves. */
const HOSTILE_TEXTS = [
  "plain words",
  'quotes "double" and \'single\'',
  "back\\slash, \\n not a newline, \\u0041 not an A",
  "real newline\nand tab\tand carriage return\r",
  "control \u0001\u0007\u001b\u001f characters",
  "é 日本語 😀 \u2028 line separator",
  '","model":"evil","unsafe_mode":true,"x":"',
  "</script><script>alert(1)</script>",
  "x".repeat(200_000),
];

/** A vector the fake daemon answers every embed with: 1,024 float32 values, as JSON numbers. */
const FAKE_VECTOR = Array.from({ length: 1024 }, (_, i) => Math.fround(((i % 17) - 8) / 64));

before(async () => {
  stack = await TestStack.start({ sidecar: false });
  daemon = await FakeDaemon.start(async (request, reply) => {
    received.push({ method: request.method, params: request.params });
    const result = request.method === "embed" ? FAKE_VECTOR : `answer to ${String(request.params.prompt).length} characters`;
    await reply([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: request.id, result, error: null }))]);
  });
});
after(async () => {
  await daemon.stop();
  await stack.stop();
});

/** The params the daemon receives for one statement, and what the statement returns. */
async function sent(sql: string, params: unknown[], binaryVectors = true): Promise<{ params: Record<string, unknown>; value: unknown }> {
  const session = await stack.connect();
  try {
    await session.query(`SET steadytext.daemon_port = ${daemon.port}`);
    await session.query(`SET steadytext.binary_vectors = ${binaryVectors ? "on" : "off"}`);
    received.length = 0;
    const { rows } = await session.query<{ v: unknown }>(sql, params);
    assert.equal(received.length, 1, `one request for ${sql}`);
    return { params: received[0]!.params, value: rows[0]!.v };
  } finally {
    await session.end();
  }
}

test("a generate miss sends from C exactly the request the SQL path sends, for hostile text and every argument shape", async () => {
  // prompt, max_tokens, use_cache, seed, eos_string, size, unsafe_mode
  const shapes: unknown[][] = [
    [64, false, 42, "[EOS]", null, false],
    [8, true, 0, "[EOS]", "", null],
    [4096, null, 7, "custom end", null, false],
    [null, false, 42, '"}{', null, false], // max_tokens from steadytext_config
  ];
  let compared = 0;
  for (const text of HOSTILE_TEXTS) {
    for (const shape of shapes) {
      const args = [text, ...shape];
      const fast = await sent("SELECT steadytext_generate($1, $2, $3, $4, $5, NULL, NULL, NULL, $6, $7) AS v", args);
      const sql = await sent(
        "SELECT _steadytext_generate($1, $2, $3, $4, $5, NULL, NULL, NULL, $6, $7, 'none', '', NULL, false) AS v",
        args,
      );
      assert.deepEqual(fast.params, sql.params, `${JSON.stringify(shape)} for ${JSON.stringify(text.slice(0, 40))}`);
      assert.equal(fast.params.prompt, text, "the prompt arrives unchanged");
      assert.equal(fast.value, sql.value);
      compared++;
    }
  }
  assert.equal(compared, HOSTILE_TEXTS.length * shapes.length);
});

test("an embed miss sends from C exactly the request the SQL path sends, and returns the same vector", async () => {
  for (const binary of [true, false]) {
    for (const text of HOSTILE_TEXTS) {
      // text_input, use_cache, seed, unsafe_mode
      for (const shape of [[false, 42, false], [true, 0, null], [null, 9, false]]) {
        const args = [text, ...shape];
        const fast = await sent("SELECT steadytext_embed($1, $2, $3, NULL, $4)::text AS v", args, binary);
        const sql = await sent("SELECT _steadytext_embed($1, $2, $3, NULL, $4, false)::text AS v", args, binary);
        assert.deepEqual(fast.params, sql.params, `binary ${binary}, ${JSON.stringify(shape)} for ${JSON.stringify(text.slice(0, 40))}`);
        assert.equal(fast.params.vector_encoding, binary ? "f32le" : undefined);
        assert.equal(fast.params.text_input, text);
        assert.equal(fast.value, sql.value);
        assert.equal(fast.value, `[${FAKE_VECTOR.join(",")}]`);
      }
    }
  }
});
