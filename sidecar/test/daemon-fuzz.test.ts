// The daemon fed random, mutated and truncated input: ZeroMQ messages with
// random frames and bodies, and raw bytes (broken ZMTP handshakes) on its
// TCP port. Expectation: no crash, every delimited request answered, no
// request left in flight, and the daemon still answers afterwards.
// STEADYTEXT_FUZZ_ITERATIONS sets the size (npm run test:fuzz runs a big one).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Dealer } from "zeromq";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import type { StatusResult } from "../src/protocol/index.js";
import { SeededRandom } from "../src/models/test-models/weights.js";

const ITERATIONS = Number(process.env.STEADYTEXT_FUZZ_ITERATIONS ?? 1500);
let dir: string;
let daemon: SidecarProcess;
let port: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "steadytext-fuzz-"));
  port = await freePort();
  daemon = await SidecarProcess.start({ port, cacheDir: dir, testModels: true, env: { STEADYTEXT_MAX_REQUEST_BYTES: String(64 * 1024) } });
});
after(async () => {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
});

const SEEDS: readonly object[] = [
  { id: 1, method: "ping", params: {} },
  { id: "s", method: "status" },
  { id: 2, method: "embed", params: { text_input: "fuzz", seed: 3 } },
  { id: 3, method: "embed_batch", params: { text_input: ["a", "b"] } },
  { id: 4, method: "rerank", params: { query: "q", documents: ["d1", "d2"], return_scores: true } },
  { id: 5, method: "generate", params: { prompt: "fuzz me", max_new_tokens: 2 } },
  { id: 6, method: "generate", params: { prompt: "json", max_new_tokens: 8, response_format: { type: "json_object" }, schema: { type: "object", properties: { a: { type: "integer" } } } } },
  { id: 7, method: "generate", params: { prompt: "regex", max_new_tokens: 4, regex: "(a|b)+c?" } },
  { id: 8, method: "cancel", params: { request_id: 5 } },
  { id: 9, method: "template_render", params: { template: "Hi {{ name }}", variables: { name: "x" } } },
  { id: 10, method: "cache_touch", params: { keys: ["ab"] } },
  { id: 11, method: "queue_wait", params: { request_id: "00000000-0000-0000-0000-000000000000", timeout_ms: 10 } },
  { id: 12, method: "shutdown", params: {} },
];
const TOKENS = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "null", "true", "1e999", "-", "\u0000", "\u202e", "ACK"];

function mutate(random: () => number, text: string): Buffer {
  let bytes = Buffer.from(text, "utf8");
  const rounds = 1 + Math.floor(random() * 5);
  for (let r = 0; r < rounds; r++) {
    const pos = Math.floor(random() * (bytes.length + 1));
    switch (Math.floor(random() * 5)) {
      case 0:
        bytes = bytes.subarray(0, pos); // truncate
        break;
      case 1:
        if (bytes.length) bytes[pos % bytes.length]! ^= 1 << Math.floor(random() * 8);
        break;
      case 2: {
        const token = Buffer.from(TOKENS[Math.floor(random() * TOKENS.length)]!, "utf8");
        bytes = Buffer.concat([bytes.subarray(0, pos), token, bytes.subarray(pos)]);
        break;
      }
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from([0xff, 0xc3, 0xed, 0xa0, 0x80].slice(0, 1 + Math.floor(random() * 5))), bytes.subarray(pos)]);
        break;
      default:
        bytes = Buffer.concat([bytes.subarray(0, pos), bytes.subarray(Math.min(bytes.length, pos + Math.floor(random() * 8)))]);
    }
  }
  return bytes;
}

async function status(): Promise<StatusResult> {
  const client = daemon.client(10_000);
  try {
    return await client.request<StatusResult>("status");
  } finally {
    await client.close();
  }
}

test(`${ITERATIONS} random and mutated messages: no crash, every delimited request answered, nothing left in flight`, { timeout: 600_000 }, async () => {
  const seeded = new SeededRandom(20261130);
  const random = () => seeded.next();
  const socket = new Dealer({ linger: 0, receiveTimeout: 60_000, sendHighWaterMark: 100_000 });
  socket.connect(daemon.endpoint);
  let expectReplies = 0;
  let shutdownsRefused = 0;
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const kind = random();
      let frames: Buffer[];
      if (kind < 0.15) {
        // Random frames: any count, any bytes (answered when they look like [delimiter, payload], else dropped or answered with an error).
        frames = Array.from({ length: Math.floor(random() * 4) }, () => Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))));
        if (frames.length === 0) frames = [Buffer.alloc(0)];
      } else {
        const seed = SEEDS[Math.floor(random() * SEEDS.length)]!;
        frames = [Buffer.alloc(0), mutate(random, JSON.stringify({ ...seed, id: `f${i}` }))];
        if (random() < 0.05) frames.push(Buffer.from("extra"));
      }
      await socket.send(frames);
      // Count what must be answered: [empty delimiter, one payload that is not an ACK].
      if (frames.length === 2 && frames[0]!.length === 0 && frames[1]!.toString("latin1") !== "ACK") expectReplies++;
      else if (frames.length >= 3 && frames[0]!.length === 0) expectReplies++;
    }
    // Drain: read until each expected reply came (streams started by mutated requests may add chunks; ACK none of them).
    let received = 0;
    const deadline = Date.now() + 300_000;
    while (received < expectReplies && Date.now() < deadline) {
      const reply = await socket.receive();
      const body = reply.at(-1)!.toString("utf8");
      const parsed = JSON.parse(body) as { id: unknown; result: unknown; error: string | null };
      assert.deepEqual(Object.keys(parsed).sort(), ["error", "id", "result"]);
      if (parsed.error?.startsWith("forbidden:")) shutdownsRefused++;
      received++;
    }
    assert.ok(received >= expectReplies, `${received} of ${expectReplies} replies`);
  } finally {
    socket.close();
  }
  assert.ok(daemon.running, "the daemon is still running");
  const deadline = Date.now() + 120_000;
  let after = await status();
  while (after.in_flight > 0 && Date.now() < deadline) after = await status();
  assert.equal(after.in_flight, 0, "no request left in flight");
  console.log(`[fuzz figures] daemon: ${ITERATIONS} messages, ${expectReplies} answered, ${shutdownsRefused} unauthenticated shutdowns refused, 0 crashes, ${after.in_flight} in flight after`);
});

test("raw bytes and truncated ZMTP handshakes on the daemon's port do not hurt it", { timeout: 120_000 }, async () => {
  const seeded = new SeededRandom(77);
  const random = () => seeded.next();
  const greeting = Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]), Buffer.from("NULL"), Buffer.alloc(16), Buffer.from([0]), Buffer.alloc(31)]);
  const connections = Math.max(20, Math.floor(ITERATIONS / 20));
  for (let i = 0; i < connections; i++) {
    const bytes = random() < 0.5
      ? greeting.subarray(0, Math.floor(random() * greeting.length))
      : Buffer.from(Array.from({ length: Math.floor(random() * 512) }, () => Math.floor(random() * 256)));
    await new Promise<void>((resolve) => {
      const raw = new Socket();
      raw.on("error", () => resolve());
      raw.connect(port, "127.0.0.1", () => raw.end(bytes, () => resolve()));
    });
  }
  assert.ok(daemon.running);
  const client = daemon.client(10_000);
  try {
    assert.equal(await client.request("ping"), "pong");
  } finally {
    await client.close();
  }
  console.log(`[fuzz figures] daemon: ${connections} raw connections with random bytes or truncated handshakes, 0 crashes`);
});
