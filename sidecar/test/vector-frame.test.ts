// Vectors as a binary frame (vector_encoding "f32le"): the same bits as the
// JSON numbers, length-checked, and only for clients that ask; SteadyText's
// own clients keep getting JSON.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Dealer, Request } from "zeromq";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import type { DaemonClient } from "../src/client/daemon-client.js";
import { decodeVectorFrame, encodeVectorFrame } from "../src/protocol/index.js";

/** Every float32 bit pattern class: signs, zeros, subnormals, extremes, ordinary values. */
const awkward = [0, -0, 1, -1, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 0.1, 1 / 3, Math.PI]
  .map((v) => Math.fround(v));

describe("the frame codec", () => {
  test("vectors survive encoding and decoding bit for bit, in order", () => {
    const vectors = [awkward, [], awkward.slice().reverse()];
    const { header, frame } = encodeVectorFrame(vectors);
    assert.deepEqual(header, { encoding: "f32le", dimensions: [awkward.length, 0, awkward.length] });
    assert.equal(frame.length, awkward.length * 2 * 4);
    const decoded = decodeVectorFrame(header, frame);
    assert.equal(decoded.length, 3);
    decoded.forEach((v, i) => v.forEach((x, j) => assert.ok(Object.is(x, vectors[i]![j]), `vector ${i} value ${j}`)));
  });

  test("the values are little-endian IEEE float32", () => {
    const { frame } = encodeVectorFrame([[1, -2]]);
    assert.deepEqual([...frame], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
  });

  test("a frame whose length does not fit its header is rejected", () => {
    const { header, frame } = encodeVectorFrame([awkward]);
    assert.throws(() => decodeVectorFrame(header, frame.subarray(0, frame.length - 1)), /bytes/);
    assert.throws(() => decodeVectorFrame(header, Buffer.concat([frame, Buffer.alloc(4)])), /bytes/);
    assert.throws(() => decodeVectorFrame({ encoding: "f64le", dimensions: [1] }, Buffer.alloc(8)), /malformed/);
    assert.throws(() => decodeVectorFrame({ encoding: "f32le", dimensions: [-1] }, Buffer.alloc(0)), /malformed/);
    assert.throws(() => decodeVectorFrame(null, Buffer.alloc(0)), /malformed/);
  });
});

describe("the daemon", () => {
  let dir: string;
  let daemon: SidecarProcess;
  let client: DaemonClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-vector-frame-"));
    daemon = await SidecarProcess.start({ port: await freePort(), cacheDir: dir, testModels: true });
    client = daemon.client(60_000);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("embed and embed_batch give the same bits as a frame and as JSON, computed or cached", async () => {
    const texts = ["frame one", "frame two é", "日本語"];
    for (const useCache of [false, true, true]) {
      for (const text of texts) {
        const json = await client.request<number[]>("embed", { text_input: text, use_cache: useCache });
        const framed = await client.request<number[]>("embed", { text_input: text, use_cache: useCache, vector_encoding: "f32le" });
        assert.equal(framed.length, 1024);
        framed.forEach((x, i) => assert.ok(Object.is(x, json[i]), `${text}[${i}]`));
      }
      const json = await client.request<number[][]>("embed_batch", { text_input: texts, use_cache: useCache });
      const framed = await client.request<number[][]>("embed_batch", { text_input: texts, use_cache: useCache, vector_encoding: "f32le" });
      assert.deepEqual(framed, json);
    }
  });

  test("the reply to a frame request is [delimiter, JSON, frame]; without one it stays [delimiter, JSON]", async () => {
    const socket = new Dealer({ linger: 0, receiveTimeout: 30_000 });
    socket.connect(daemon.endpoint);
    try {
      const ask = (params: Record<string, unknown>) =>
        socket.send([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: "f", method: "embed", params }))]);
      await ask({ text_input: "raw frames", vector_encoding: "f32le" });
      const framed = await socket.receive();
      assert.equal(framed.length, 3);
      assert.deepEqual(JSON.parse(framed[1]!.toString()), { id: "f", result: { encoding: "f32le", dimensions: [1024] }, error: null });
      assert.equal(framed[2]!.length, 4096);
      await ask({ text_input: "raw frames" });
      const plain = await socket.receive();
      assert.equal(plain.length, 2);
      const reply = JSON.parse(plain[1]!.toString()) as { result: number[] };
      assert.deepEqual(Object.keys(reply), ["id", "result", "error"]);
      assert.deepEqual(decodeVectorFrame({ encoding: "f32le", dimensions: [1024] }, framed[2]!), [reply.result]);
    } finally {
      socket.close();
    }
  });

  test("SteadyText's REQ client still gets a JSON list of numbers", async () => {
    const socket = new Request({ linger: 0, receiveTimeout: 30_000 });
    socket.connect(daemon.endpoint);
    try {
      await socket.send(JSON.stringify({ id: "req", method: "embed", params: { text_input: "original client" } }));
      const frames = await socket.receive();
      assert.equal(frames.length, 1);
      const reply = JSON.parse(frames[0]!.toString()) as { result: number[] };
      assert.equal(reply.result.length, 1024);
      assert.ok(reply.result.every((x) => typeof x === "number"));
    } finally {
      socket.close();
    }
  });

  test("an unknown vector encoding is invalid_params", async () => {
    await assert.rejects(client.request("embed", { text_input: "x", vector_encoding: "f64be" }), (e: Error & { code?: string }) => {
      assert.equal(e.code, "invalid_params");
      assert.match(e.message, /vector_encoding/);
      return true;
    });
  });
});
