// Whatever a daemon sends, a backend answers with a value or a clear error,
// never a crash or a made-up value: a fake daemon (a bare ZeroMQ ROUTER)
// replies with invalid UTF-8, NUL characters, broken JSON, extra frames and
// stale ids, and the same session goes on working after each.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { FakeDaemon } from "../harness/fake-daemon.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let daemon: FakeDaemon;
let port: number;

/** What the fake daemon sends for a prompt: the frames after the identity, given the request's id. */
const REPLIES: Record<string, (id: string) => Buffer[]> = {
  "invalid utf-8": (id) => [Buffer.alloc(0), Buffer.concat([Buffer.from(`{"id":"${id}","result":"bad `), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('","error":null}')])],
  "a NUL character": (id) => [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, result: "before\u0000after", error: null }))],
  "not JSON": () => [Buffer.alloc(0), Buffer.from("<html>500</html>")],
  "too many frames": (id) => [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, result: "x", error: null })), Buffer.from("a"), Buffer.from("b")],
  "a stale reply first": (id) => [Buffer.alloc(0), Buffer.from(JSON.stringify({ id: `${id}-earlier`, result: "stale", error: null }))],
  "a result of the wrong type": (id) => [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, result: { text: "an object" }, error: null }))],
  "fine": (id) => [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, result: "a fine answer", error: null }))],
};

before(async () => {
  stack = await TestStack.start({ sidecar: false });
  daemon = await FakeDaemon.start(async (request, reply) => {
    if (request.method !== "generate") return;
    const prompt = typeof request.params.prompt === "string" ? request.params.prompt : "";
    await reply(REPLIES[prompt]!(request.id));
    // The stale reply is followed by the real one, which the backend must still take.
    if (prompt === "a stale reply first") await reply(REPLIES.fine!(request.id));
  });
  port = daemon.port;
});
after(async () => {
  await daemon.stop();
  await stack.stop();
});

async function generate(prompt: string): Promise<{ value?: string | null; code?: string; message?: string }> {
  const session = await stack.connect();
  try {
    await session.query(`SET steadytext.daemon_port = ${port}`);
    try {
      const { rows } = await session.query<{ g: string | null }>("SELECT steadytext_generate($1, 8, false) AS g", [prompt]);
      return { value: rows[0]!.g };
    } catch (error) {
      const e = error as { code?: string; message?: string };
      return { code: e.code, message: e.message };
    } finally {
      // The same session goes on working.
      const { rows } = await session.query<{ g: string }>("SELECT steadytext_generate('fine', 8, false) AS g");
      assert.equal(rows[0]!.g, "a fine answer", `after ${prompt}`);
    }
  } finally {
    await session.end();
  }
}

test("a reply that is not valid UTF-8 is a protocol violation naming it", async () => {
  const outcome = await generate("invalid utf-8");
  assert.equal(outcome.code, "08P01");
  assert.match(outcome.message!, /malformed reply from the steadytext daemon/);
});

test("a NUL character, which text cannot hold, is an error, not a truncated answer", async () => {
  const outcome = await generate("a NUL character");
  assert.equal(outcome.value, undefined, `answered ${JSON.stringify(outcome.value)}`);
  assert.ok(outcome.code, "an error with a SQLSTATE");
});

test("a reply that is not JSON, or has too many frames, is a protocol violation", async () => {
  for (const prompt of ["not JSON", "too many frames"]) {
    const outcome = await generate(prompt);
    assert.equal(outcome.code, "08P01", prompt);
    assert.match(outcome.message!, /malformed reply/, prompt);
  }
});

test("a result of the wrong type is an error, never a made-up value", async () => {
  const outcome = await generate("a result of the wrong type");
  assert.equal(outcome.value, undefined);
  assert.equal(outcome.code, "08P01");
  assert.match(outcome.message!, /malformed reply from the steadytext daemon/);
});

test("a reply to an earlier request is skipped and the right one taken", async () => {
  assert.deepEqual(await generate("a stale reply first"), { value: "a fine answer" });
});
