// The daemon on the wire: SteadyText's REQ clients and our DEALER clients,
// malformed and hostile messages, concurrency, streaming, cancellation.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Dealer, Request } from "zeromq";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import type { DaemonClient } from "../src/client/daemon-client.js";
import type { StatusResult } from "../src/protocol/index.js";
import { normalisedMean } from "../src/daemon/server.js";

let dir: string;
let daemon: SidecarProcess;
let client: DaemonClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "steadytext-protocol-"));
  daemon = await SidecarProcess.start({
    port: await freePort(),
    cacheDir: dir,
    testModels: true,
    env: { STEADYTEXT_STREAM_ACK_TIMEOUT_MS: "500", STEADYTEXT_MAX_REQUEST_BYTES: String(1024 * 1024) },
  });
  client = daemon.client(60_000);
});

after(async () => {
  await client.close();
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
});

/** One exchange with a REQ socket, the way SteadyText's Python client talks. */
async function reqExchange(payload: string | Buffer): Promise<Record<string, unknown>> {
  const socket = new Request({ linger: 0, receiveTimeout: 30_000 });
  socket.connect(daemon.endpoint);
  try {
    await socket.send(payload);
    const [reply] = await socket.receive();
    return JSON.parse(reply!.toString("utf8")) as Record<string, unknown>;
  } finally {
    socket.close();
  }
}

/** Send raw frames from a DEALER socket and return the raw reply frames. */
async function dealerExchange(frames: Buffer[]): Promise<Buffer[]> {
  const socket = new Dealer({ linger: 0, receiveTimeout: 30_000 });
  socket.connect(daemon.endpoint);
  try {
    await socket.send(frames);
    return await socket.receive();
  } finally {
    socket.close();
  }
}

/** Wait until the daemon works on at least `count` requests (polling its status, not sleeping blind). */
async function untilInFlight(count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await status()).in_flight < count) {
    if (Date.now() > deadline) throw new Error(`never ${count} requests in flight`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function status(): Promise<StatusResult> {
  return client.request<StatusResult>("status");
}

describe("SteadyText's REQ client", () => {
  test("ping answers pong, with exactly id, result and error", async () => {
    const reply = await reqExchange(JSON.stringify({ id: "abc", method: "ping", params: {} }));
    assert.deepEqual(Object.keys(reply).sort(), ["error", "id", "result"]);
    assert.deepEqual(reply, { id: "abc", result: "pong", error: null });
  });

  test("generate with the Python client's parameters returns the text", async () => {
    const params = { prompt: "Hello", max_new_tokens: 12, seed: 42, eos_string: "[EOS]", model: null, model_repo: null,
      model_filename: null, size: null, temperature: 0.0, response_format: null, schema: null, regex: null, choices: null,
      unsafe_mode: false, return_logprobs: false, options: null };
    const reply = await reqExchange(JSON.stringify({ id: "g1", method: "generate", params }));
    assert.equal(reply.error, null);
    assert.equal(typeof reply.result, "string");
    assert.equal(reply.result, await client.request("generate", { prompt: "Hello", max_new_tokens: 12 }));
  });

  test("embed returns 1024 floats", async () => {
    const reply = await reqExchange(JSON.stringify({ id: "e1", method: "embed", params: { text_input: "hi", seed: 42, model: null, mode: "query", unsafe_mode: false } }));
    assert.equal(reply.error, null);
    assert.equal((reply.result as number[]).length, 1024);
  });

  test("embed of a list returns one vector, the L2-normalised mean of the texts' embeddings, as SteadyText's daemon does", async () => {
    const texts = ["first text", "second text", "third"];
    const reply = await reqExchange(JSON.stringify({ id: "e2", method: "embed", params: { text_input: texts, seed: 42 } }));
    assert.equal(reply.error, null);
    const singles = await Promise.all(texts.map((t) => client.request<number[]>("embed", { text_input: t })));
    assert.deepEqual(reply.result, normalisedMean(singles));
    assert.ok(Math.abs(Math.hypot(...(reply.result as number[])) - 1) < 1e-9, "unit length");
  });

  test("embed_batch returns one vector per text, each equal to the text's own embedding", async () => {
    const texts = ["first text", "second text"];
    const batch = await client.request<number[][]>("embed_batch", { text_input: texts });
    assert.deepEqual(batch, await Promise.all(texts.map((t) => client.request<number[]>("embed", { text_input: t }))));
    assert.deepEqual(await client.request<number[][]>("embed_batch", { text_input: "one" }), [await client.request<number[]>("embed", { text_input: "one" })]);
  });

  test("rerank returns [document, score] pairs, best first; return_scores false returns documents", async () => {
    const documents = ["a cat sat", "the market fell", "dogs bark", "cats purr"];
    const reply = await reqExchange(JSON.stringify({ id: "r1", method: "rerank", params: { query: "cats", documents, return_scores: true, seed: 42 } }));
    const pairs = reply.result as Array<[string, number]>;
    assert.equal(pairs.length, documents.length);
    assert.deepEqual([...pairs.map((p) => p[0])].sort(), [...documents].sort());
    for (let i = 1; i < pairs.length; i++) assert.ok(pairs[i - 1]![1] >= pairs[i]![1]);
    for (const [, score] of pairs) assert.ok(score >= 0 && score <= 1);
    const docsOnly = await reqExchange(JSON.stringify({ id: "r2", method: "rerank", params: { query: "cats", documents, return_scores: false } }));
    assert.deepEqual(docsOnly.result, pairs.map((p) => p[0]));
  });

  test("generate_iter streams tokens, each acknowledged with ACK, ending with ##STREAM_END##", async () => {
    const socket = new Request({ linger: 0, receiveTimeout: 30_000 });
    socket.connect(daemon.endpoint);
    const chunks: string[] = [];
    try {
      await socket.send(JSON.stringify({ id: "s1", method: "generate_iter", params: { prompt: "Stream this", max_new_tokens: 30 } }));
      for (;;) {
        const [frame] = await socket.receive();
        const reply = JSON.parse(frame!.toString()) as { id: string; result: { token: string }; error: null };
        assert.equal(reply.id, "s1");
        if (reply.result.token === "##STREAM_END##") break;
        chunks.push(reply.result.token);
        await socket.send("ACK");
      }
    } finally {
      socket.close();
    }
    assert.ok(chunks.length > 1);
    assert.equal(chunks.join(""), await client.request("generate", { prompt: "Stream this", max_new_tokens: 30 }));
  });
});

describe("DEALER clients", () => {
  test("a message without the empty delimiter is answered without one", async () => {
    const frames = await dealerExchange([Buffer.from(JSON.stringify({ id: 7, method: "ping" }))]);
    assert.equal(frames.length, 1);
    assert.deepEqual(JSON.parse(frames[0]!.toString()), { id: 7, result: "pong", error: null });
  });

  test("a message with the delimiter is answered with one", async () => {
    const frames = await dealerExchange([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: "d", method: "ping" }))]);
    assert.equal(frames.length, 2);
    assert.equal(frames[0]!.length, 0);
  });
});

describe("malformed and hostile messages get error replies and the daemon carries on", () => {
  const cases: Array<[string, Buffer[], RegExp]> = [
    ["not JSON", [Buffer.alloc(0), Buffer.from("hello?")], /^invalid_request: payload is not valid JSON/],
    ["a JSON array", [Buffer.alloc(0), Buffer.from("[1,2]")], /^invalid_request: request must be a JSON object/],
    ["an empty payload", [Buffer.alloc(0), Buffer.alloc(0)], /^invalid_request: empty payload/],
    ["invalid UTF-8", [Buffer.alloc(0), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])], /^invalid_request: payload is not valid UTF-8/],
    ["too many frames", [Buffer.alloc(0), Buffer.from("a"), Buffer.from("b")], /^invalid_request: expected/],
    ["an object id", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: {}, method: "ping" }))], /^invalid_request: id/],
    ["a numeric method", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: 5 }))], /^invalid_request: method/],
    ["array params", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "ping", params: [] }))], /^invalid_request: params/],
    ["an unknown method", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "format_disk" }))], /^unknown_method: Unknown method: format_disk/],
    ["a huge request", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "x".repeat(2 * 1024 * 1024) } }))], /^invalid_request: request of \d+ bytes exceeds the limit/],
    ["a prompt of the wrong type", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: 42 } }))], /^invalid_params: prompt/],
    ["an empty prompt", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "  " } }))], /^invalid_params: prompt: prompt cannot be empty/],
    ["a negative seed", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", seed: -1 } }))], /^invalid_params: seed: seed must be non-negative/],
    ["a fractional seed", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "embed", params: { text_input: "a", seed: 1.5 } }))], /^invalid_params: seed: seed must be an integer/],
    ["max_new_tokens 0", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", max_new_tokens: 0 } }))], /^invalid_params: max_new_tokens: max_new_tokens must be at least 1/],
    ["max_new_tokens huge", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", max_new_tokens: 1e9 } }))], /^invalid_params: max_new_tokens: max_new_tokens cannot exceed 4096/],
    ["an empty document list", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "rerank", params: { query: "q", documents: [] } }))], /^invalid_params: documents: documents cannot be empty/],
    ["an unknown model", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", model: "gpt-9" } }))], /^invalid_params: Unknown generation model 'gpt-9'/],
    ["a path as model file", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", model_repo: "a/b", model_filename: "../../etc/passwd" } }))], /^invalid_params: model_filename/],
    ["a remote model", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "a", model: "openai:gpt-4o" } }))], /^invalid_params: Remote models/],
    ["a prompt too long for the context", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "generate", params: { prompt: "word ".repeat(3000), max_new_tokens: 10 } }))], /^invalid_params: Prompt is too long: \d+ tokens/],
    ["queue_wait for something that is not a UUID", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "queue_wait", params: { request_id: "'; DROP TABLE x; --", timeout_ms: 10 } }))], /^invalid_params: request_id: request_id must be a UUID/],
    ["queue_wait with a negative timeout", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "queue_wait", params: { request_id: "00000000-0000-4000-8000-000000000000", timeout_ms: -1 } }))], /^invalid_params: timeout_ms: timeout_ms must not be negative/],
    ["queue_wait with a timeout over an hour", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "queue_wait", params: { request_id: "00000000-0000-4000-8000-000000000000", timeout_ms: 1e10 } }))], /^invalid_params: timeout_ms: timeout_ms cannot exceed 3600000/],
    ["queue_wait without a database to watch", [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "queue_wait", params: { request_id: "00000000-0000-4000-8000-000000000000", timeout_ms: 10 } }))], /^unavailable: the daemon has no database to watch/],
  ];

  for (const [name, frames, expected] of cases) {
    test(name, async () => {
      const reply = await dealerExchange(frames);
      const body = JSON.parse(reply[reply.length - 1]!.toString()) as { id: unknown; result: unknown; error: string | null };
      assert.deepEqual(Object.keys(body).sort(), ["error", "id", "result"]);
      assert.match(body.error ?? "", expected);
      assert.equal(body.result, null);
      assert.equal(await client.request("ping"), "pong");
    });
  }

  test("deeply nested JSON in params is parsed without a stack overflow and answered (ping ignores unknown params)", async () => {
    const reply = await dealerExchange([Buffer.alloc(0), Buffer.from(`{"id":1,"method":"ping","params":{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`)]);
    assert.deepEqual(JSON.parse(reply.at(-1)!.toString()), { id: 1, result: "pong", error: null });
  });

  test("a cancel naming another client's request cancels nothing", async () => {
    const reply = await dealerExchange([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: 1, method: "cancel", params: { request_id: "someone-else" } }))]);
    assert.deepEqual(JSON.parse(reply.at(-1)!.toString()), { id: 1, result: false, error: null });
  });

  test("a prompt with NUL and control characters is answered like any other", async () => {
    const text = await client.request<string>("generate", { prompt: "a\u0000b\u0001c\u202e", max_new_tokens: 5 });
    assert.equal(typeof text, "string");
  });
});

describe("concurrency", () => {
  test("a slow generation does not hold up a ping or a cached answer", async () => {
    await client.request("generate", { prompt: "cached question", max_new_tokens: 5 });
    const order: string[] = [];
    const slow = client.request("generate", { prompt: "slow one", max_new_tokens: 1800, use_cache: false }).then(() => order.push("slow"));
    await untilInFlight(1);
    await client.request("ping").then(() => order.push("ping"));
    await client.request("generate", { prompt: "cached question", max_new_tokens: 5 }).then(() => order.push("cached"));
    await slow;
    assert.deepEqual(order, ["ping", "cached", "slow"]);
  });

  test("cancel stops a running generation", async () => {
    const other = daemon.client(60_000);
    try {
      const before = (await status()).cancelled;
      const running = other.request("generate", { prompt: "to be cancelled", max_new_tokens: 1800, use_cache: false });
      await untilInFlight(1);
      // The cancel must come from the same client (identity) that asked.
      const id = `ts-${process.pid}-1`;
      const cancelled = await other.request("cancel", { request_id: id });
      assert.equal(cancelled, true);
      await assert.rejects(running, { code: "cancelled" });
      assert.equal((await status()).cancelled, before + 1);
    } finally {
      await other.close();
    }
  });

  test("a client that stops acknowledging a stream leaves no work running", async () => {
    const before = (await status()).cancelled;
    const socket = new Dealer({ linger: 0, receiveTimeout: 30_000 });
    socket.connect(daemon.endpoint);
    try {
      await socket.send([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: "gone", method: "generate_iter", params: { prompt: "abandoned stream", max_new_tokens: 1800, use_cache: false } }))]);
      await socket.receive(); // the first chunk; then silence
    } finally {
      socket.close();
    }
    const deadline = Date.now() + 10_000;
    while ((await status()).cancelled === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const after = await status();
    assert.equal(after.cancelled, before + 1);
    assert.equal(after.in_flight, 0);
  });
});

describe("shutdown", () => {
  test("a local user with a raw ZeroMQ socket cannot stop the daemon without its admin token", async () => {
    for (const admin_token of [undefined, "", "not-the-token-0123456789", daemon.adminToken.slice(1)]) {
      const reply = await dealerExchange([Buffer.alloc(0), Buffer.from(JSON.stringify({ id: "stop", method: "shutdown", params: {}, admin_token }))]);
      assert.deepEqual(JSON.parse(reply.at(-1)!.toString()), { id: "stop", result: null, error: "forbidden: shutdown needs the daemon's admin token" });
    }
    assert.equal(await client.request("ping"), "pong");
    assert.ok(daemon.running);
  });

  test("the token is kept in a file only its owner can read, where `st daemon stop` finds it", async () => {
    const { stat, readdir, readFile } = await import("node:fs/promises");
    const run = join(dir, "run");
    const file = (await readdir(run)).find((f) => f.endsWith(".admin-token"));
    assert.ok(file, "an admin-token file");
    assert.equal((await stat(join(run, file))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(run, file), "utf8"), daemon.adminToken);
  });

  test("answers, then the daemon exits cleanly", async () => {
    const own = await SidecarProcess.start({ port: await freePort(), cacheDir: join(dir, "second"), testModels: true });
    const ownClient = own.client(30_000);
    assert.equal(await ownClient.request("shutdown", {}, { adminToken: own.adminToken }), "shutdown initiated");
    await ownClient.close();
    const code = await new Promise<number | null>((resolve) => {
      if (!own.running) resolve(own.child.exitCode);
      else own.child.once("exit", resolve);
    });
    assert.equal(code, 0);
  });

  test("the reply to shutdown arrives every time, although the daemon closes its socket right after it", async () => {
    // libzmq could lose a reply sent just before the socket closed and the
    // process exited: about one shutdown in seven went unanswered.
    // A fresh cache directory each round: the loss showed up with those.
    for (let round = 0; round < 12; round++) {
      const own = await SidecarProcess.start({ port: await freePort(), cacheDir: join(dir, `round-${round}`), testModels: true });
      const dealer = new Dealer({ immediate: true, linger: 0, receiveTimeout: 5000 });
      dealer.connect(own.endpoint);
      try {
        await new Promise((r) => setTimeout(r, 100));
        await dealer.send(["", JSON.stringify({ id: round, method: "shutdown", params: {}, admin_token: own.adminToken })]);
        const reply = await dealer.receive().catch(() => undefined);
        assert.ok(reply, `round ${round}: the reply was lost`);
        assert.equal(JSON.parse(reply.at(-1)!.toString("utf8")).result, "shutdown initiated");
      } finally {
        dealer.close();
        await own.stop();
      }
    }
  });
});
