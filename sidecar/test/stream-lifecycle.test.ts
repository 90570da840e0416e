// A generate_iter stream ends when its client leaves, is cancelled, or the
// daemon stops, and only then: a DEALER client that multiplexes other
// requests beside its stream keeps the stream, and a cancelled request gets
// no cached answer.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Dealer } from "zeromq";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import type { DaemonClient } from "../src/client/daemon-client.js";
import { StreamSession } from "../src/daemon/stream-session.js";
import { Engine } from "../src/engine/engine.js";
import { loadSettings } from "../src/config/settings.js";
import { parseParams, generateParams, STREAM_END_MARKER, type StatusResult } from "../src/protocol/index.js";
import { writeTestModels } from "../src/models/test-models/index.js";
import { ModelIdentities } from "../src/models/identity.js";

describe("StreamSession", () => {
  test("finishing a stream its client already abandoned resolves at once instead of never", async () => {
    const sent: string[] = [];
    const session = new StreamSession((token) => sent.push(token), 60_000);
    session.push("first ");
    session.abandon("the client left");
    await session.finish(STREAM_END_MARKER); // hung forever before: nobody acknowledges an abandoned stream
    assert.deepEqual(sent, ["first "]);
  });
});

describe("the engine", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-stream-engine-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a cache hit for a caller that already gave up is an abort, not an answer", async () => {
    const settings = loadSettings({ HOME: dir, STEADYTEXT_CACHE_DIR: dir, STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0", STEADYTEXT_LOG_LEVEL: "silent" });
    const identities = new ModelIdentities(join(dir, "model-identities.json"));
    for (const model of await writeTestModels(settings.testModelDir)) await identities.remember(model.path, model.sha256);
    const engine = new Engine(settings);
    try {
      const params = parseParams(generateParams, { prompt: "cached for the abort test", max_new_tokens: 6 });
      const text = await engine.generate(params);
      assert.equal(await engine.generate(params), text, "the second call is a hit");
      const gaveUp = new AbortController();
      gaveUp.abort(new Error("the client left"));
      await assert.rejects(engine.generate(params, { signal: gaveUp.signal }), /the client left/);
    } finally {
      await engine.close();
    }
  });
});

describe("the daemon", () => {
  let dir: string;
  let daemon: SidecarProcess;
  let client: DaemonClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-stream-lifecycle-"));
    daemon = await SidecarProcess.start({ port: await freePort(), cacheDir: dir, testModels: true, env: { STEADYTEXT_STREAM_ACK_TIMEOUT_MS: "20000" } });
    client = daemon.client(60_000);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A DEALER whose replies are read by request id, so interleaved streams and answers can be told apart. */
  function dealer() {
    const socket = new Dealer({ linger: 0, receiveTimeout: 20_000 });
    socket.connect(daemon.endpoint);
    return {
      socket,
      send: (message: string) => socket.send([Buffer.alloc(0), Buffer.from(message)]),
      request: (id: string, method: string, params: Record<string, unknown>) => socket.send([Buffer.alloc(0), Buffer.from(JSON.stringify({ id, method, params }))]),
      async next(): Promise<{ id: unknown; result: unknown; error: string | null }> {
        const frames = await socket.receive();
        return JSON.parse(frames.at(-1)!.toString("utf8")) as { id: unknown; result: unknown; error: string | null };
      },
    };
  }

  const cachedPrompt = { prompt: "a stream served from the cache, several words long", max_new_tokens: 24 };

  test("a client with other requests in flight that sends a non-ACK message keeps its stream", async () => {
    const whole = await client.request<string>("generate", cachedPrompt);
    const d = dealer();
    try {
      await d.request("slow", "generate", { prompt: "busy in the background", max_new_tokens: 1800, use_cache: false });
      await d.request("s", "generate_iter", cachedPrompt);
      let text = "";
      let first = true;
      let pong = false;
      for (;;) {
        const reply = await d.next();
        if (reply.id === "p") {
          pong = reply.result === "pong";
          continue;
        }
        assert.equal(reply.id, "s", `unexpected reply ${JSON.stringify(reply)}`);
        assert.equal(reply.error, null);
        const token = (reply.result as { token: string }).token;
        if (token === STREAM_END_MARKER) break;
        text += token;
        if (first) {
          first = false;
          await d.request("p", "ping", {}); // before the fix, this ended the stream
        }
        await d.send("ACK");
      }
      assert.equal(text, whole);
      assert.ok(pong);
      await d.request("c", "cancel", { request_id: "slow" });
    } finally {
      d.socket.close();
    }
  });

  test("a cancelled stream sends nothing more, even when its text is computed and an ACK arrives", async () => {
    await client.request<string>("generate", cachedPrompt);
    const d = dealer();
    try {
      await d.request("s2", "generate_iter", cachedPrompt);
      const firstChunk = await d.next();
      assert.equal(firstChunk.id, "s2");
      await d.request("c2", "cancel", { request_id: "s2" });
      const cancelReply = await d.next();
      assert.deepEqual(cancelReply, { id: "c2", result: true, error: null });
      await d.send("ACK"); // before the fix, this brought the next chunk
      await d.request("p2", "ping", {});
      const next = await d.next();
      assert.deepEqual(next, { id: "p2", result: "pong", error: null });
      // The stream's own bookkeeping ends just after the cancel's reply: nothing may stay in flight after it.
      const deadline = Date.now() + 10_000;
      while ((await client.request<StatusResult>("status")).in_flight !== 0) {
        assert.ok(Date.now() < deadline, "the cancelled stream stayed in flight");
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      d.socket.close();
    }
  });
});
