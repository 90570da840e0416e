// Vectors reach SQL as a binary float32 frame (steadytext.binary_vectors, on
// by default) or as JSON numbers: the same bits either way, and a frame that
// does not fit its header is an error, never a wrong vector.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Router } from "zeromq";
import { freePort } from "../../scripts/lib/sidecar-process.js";
import { encodeVectorFrame } from "../../sidecar/src/protocol/index.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());

const texts = Array.from({ length: 12 }, (_, i) => `binary vector ${i} ü 日本`);

async function vectors(binary: boolean): Promise<{ single: string[]; batch: string[] }> {
  const session = await stack.connect();
  await session.query(`SET steadytext.binary_vectors = ${binary ? "on" : "off"}`);
  const single = await session.query<{ v: string }>(
    "SELECT steadytext_embed(t, false)::real[]::text AS v FROM unnest($1::text[]) WITH ORDINALITY AS x(t, i) ORDER BY i",
    [texts],
  );
  const batch = await session.query<{ v: string }>("SELECT embedding::real[]::text AS v FROM steadytext_embed_batch($1, false) ORDER BY idx", [texts]);
  // Set before the library loaded (the session's first call loads it), the value must survive the load:
  // it did not while the settings' prefix was reserved before every setting was defined.
  const { rows } = await session.query<{ v: string }>("SELECT current_setting('steadytext.binary_vectors') AS v");
  assert.equal(rows[0]!.v, binary ? "on" : "off");
  return { single: single.rows.map((r) => r.v), batch: batch.rows.map((r) => r.v) };
}

test("embeddings through the binary frame and through JSON are bit-identical, one by one and in a batch", async () => {
  const framed = await vectors(true);
  const json = await vectors(false);
  assert.equal(framed.single.length, texts.length);
  assert.ok(framed.single.every((v) => v !== null && v.split(",").length === 1024));
  // real[]::text prints each float4 exactly (shortest round-trip digits).
  assert.deepEqual(framed.single, json.single);
  assert.deepEqual(framed.batch, json.batch);
  assert.deepEqual(framed.batch, framed.single);
});

test("the C client decodes a frame exactly and rejects one whose length does not fit its header", async () => {
  const router = new Router({ linger: 0 });
  const port = await freePort();
  await router.bind(`tcp://127.0.0.1:${port}`);
  const awkward = [0, -0, 1e-45, -3.4028235e38, 1 / 3, Math.PI].map((v) => Math.fround(v));
  const serve = (async () => {
    for await (const [identity, , payload] of router) {
      const request = JSON.parse(payload!.toString()) as { id: string; params: { text_input: string; vector_encoding?: string } };
      assert.equal(request.params.vector_encoding, "f32le", "the C client asks for the frame");
      const { header, frame } = encodeVectorFrame([awkward]);
      const body = request.params.text_input === "short" ? frame.subarray(0, frame.length - 1)
        : request.params.text_input === "two" ? Buffer.concat([frame, frame]) : frame;
      await router.send([identity!, Buffer.alloc(0), Buffer.from(JSON.stringify({ id: request.id, result: header, error: null })), body]);
    }
  })().catch(() => undefined);
  const session = await stack.connect();
  try {
    await session.query(`SET steadytext.daemon_port = ${port}`);
    const { rows } = await session.query<{ v: number[] }>("SELECT _steadytext_call_vector('embed', '{\"text_input\": \"exact\"}') AS v");
    assert.equal(rows[0]!.v.length, awkward.length);
    rows[0]!.v.forEach((x, i) => assert.ok(Object.is(Math.fround(Number(x)), awkward[i]), `value ${i}: ${x}`));
    await assert.rejects(session.query("SELECT _steadytext_call_vector('embed', '{\"text_input\": \"short\"}')"), /malformed result/);
    await assert.rejects(session.query("SELECT _steadytext_call_vector('embed', '{\"text_input\": \"two\"}')"), /malformed result/);
  } finally {
    router.close();
    await serve;
  }
});
