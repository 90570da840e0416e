// Pins the wire codec: what requests are accepted or refused (and how), framing, replies, params defaults and limits.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeReply,
  encodeReply,
  isStreamAck,
  parseParams,
  parseRequest,
  routerReplyFrames,
  splitRouterFrames,
} from "../src/protocol/codec.js";
import { ERROR_CODES, ProtocolError, parseWireError } from "../src/protocol/errors.js";
import {
  DEFAULT_EOS_STRING,
  DEFAULT_MAX_NEW_TOKENS,
  DEFAULT_SEED,
  embedParams,
  generateParams,
  rerankParams,
} from "../src/protocol/messages.js";

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), "utf8");

/** The refusal of a payload, asserting it was refused. */
function refusal(payload: Buffer, maxBytes?: number) {
  const parsed = parseRequest(payload, maxBytes);
  assert.equal(parsed.ok, false, `accepted ${payload.toString("utf8").slice(0, 80)}`);
  if (parsed.ok) throw new Error("unreachable");
  assert.ok(parsed.error instanceof ProtocolError);
  assert.equal(parsed.error.code, "invalid_request");
  return parsed;
}

/** The params error message, asserting parseParams refused them with invalid_params. */
function paramsError(schema: Parameters<typeof parseParams>[0], params: unknown): string {
  try {
    parseParams(schema, params);
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `threw ${String(error)}`);
    assert.equal(error.code, "invalid_params");
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(params)}`);
}

describe("parseRequest", () => {
  test("an empty payload is refused", () => {
    assert.match(refusal(Buffer.alloc(0)).error.message, /empty/);
  });

  test("a payload over the byte limit is refused with both sizes in the message", () => {
    const payload = json({ id: 1, method: "ping", params: { pad: "x".repeat(200) } });
    const { error } = refusal(payload, 100);
    assert.match(error.message, new RegExp(`${payload.length} bytes`));
    assert.match(error.message, /100 bytes/);
    assert.equal(parseRequest(payload, payload.length).ok, true, "a payload exactly at the limit is fine");
  });

  test("a payload that is not UTF-8 is refused", () => {
    const payload = Buffer.concat([Buffer.from('{"id":1,"method":"ping","params":{"p":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
    assert.match(refusal(payload).error.message, /UTF-8/);
  });

  test("a payload that is not JSON is refused", () => {
    assert.match(refusal(Buffer.from("{id: 1")).error.message, /JSON/);
  });

  test("a JSON array, string or null is refused as not an object", () => {
    for (const value of [[{ id: 1, method: "ping" }], "ping", null, 42]) {
      assert.match(refusal(json(value)).error.message, /object/);
    }
  });

  test("a bad id type is refused without echoing an id", () => {
    for (const id of [null, true, { a: 1 }, [1]]) {
      const parsed = refusal(json({ id, method: "ping", params: {} }));
      assert.equal(parsed.id, null);
      assert.match(parsed.error.message, /^id: /);
    }
  });

  test("an over-long string id is refused", () => {
    assert.match(refusal(json({ id: "x".repeat(201), method: "ping" })).error.message, /id.*200/);
  });

  test("a bad method type is refused and the valid id is echoed", () => {
    const parsed = refusal(json({ id: "r1", method: 7, params: {} }));
    assert.equal(parsed.id, "r1");
    assert.match(parsed.error.message, /^method: method must be a string/);
  });

  test("params that are not an object are refused", () => {
    for (const params of [[1, 2], "x", 3]) {
      const parsed = refusal(json({ id: 9, method: "generate", params }));
      assert.equal(parsed.id, 9);
      assert.match(parsed.error.message, /^params: /);
    }
  });

  test("a bad origin database is refused", () => {
    assert.match(refusal(json({ id: 1, method: "ping", origin: { database: "" } })).error.message, /^origin\.database/);
    assert.match(refusal(json({ id: 1, method: "ping", origin: { database: "d".repeat(64) } })).error.message, /^origin\.database/);
  });

  test("a valid request with an origin is accepted as sent", () => {
    const request = { id: "abc", method: "generate", params: { prompt: "hi" }, origin: { database: "app_db" } };
    const parsed = parseRequest(json(request));
    assert.deepEqual(parsed, { ok: true, request });
  });

  test("a valid request without params or origin is accepted", () => {
    const parsed = parseRequest(json({ id: 0, method: "ping" }));
    assert.equal(parsed.ok, true);
    if (parsed.ok) assert.deepEqual(parsed.request, { id: 0, method: "ping" });
  });

  test("non-ASCII UTF-8 in a request survives decoding", () => {
    const parsed = parseRequest(json({ id: "ü", method: "generate", params: { prompt: "日本語 🙂" } }));
    assert.equal(parsed.ok, true);
    if (parsed.ok) assert.deepEqual(parsed.request.params, { prompt: "日本語 🙂" });
  });
});

describe("splitRouterFrames", () => {
  const identity = Buffer.from([0, 1, 2, 3, 4]);
  const payload = json({ id: 1, method: "ping" });

  test("one frame (only an identity) is refused", () => {
    const split = splitRouterFrames([identity]);
    assert.ok(split instanceof ProtocolError);
    assert.equal(split.code, "invalid_request");
    assert.match(split.message, /0 frames/);
  });

  test("no frames at all is refused", () => {
    const split = splitRouterFrames([]);
    assert.ok(split instanceof ProtocolError);
    assert.match(split.message, /empty message/);
  });

  test("two frames are a DEALER request without delimiter", () => {
    assert.deepEqual(splitRouterFrames([identity, payload]), { identity, delimited: false, payload });
  });

  test("three frames with an empty second frame are a REQ request", () => {
    assert.deepEqual(splitRouterFrames([identity, Buffer.alloc(0), payload]), { identity, delimited: true, payload });
  });

  test("three frames without an empty delimiter are refused", () => {
    const split = splitRouterFrames([identity, Buffer.from("x"), payload]);
    assert.ok(split instanceof ProtocolError);
    assert.match(split.message, /2 frames/);
  });

  test("the reply frames mirror the request's framing", () => {
    const reply = Buffer.from("r");
    assert.deepEqual(routerReplyFrames({ identity, delimited: true }, reply), [identity, Buffer.alloc(0), reply]);
    assert.deepEqual(routerReplyFrames({ identity, delimited: false }, reply), [identity, reply]);
  });
});

describe("isStreamAck", () => {
  test("only the exact bytes ACK are an acknowledgement", () => {
    assert.equal(isStreamAck(Buffer.from("ACK")), true);
    for (const other of ["ack", "ACK ", " ACK", "AC", "", '"ACK"', "ACKACK"]) {
      assert.equal(isStreamAck(Buffer.from(other)), false, JSON.stringify(other));
    }
  });
});

describe("replies", () => {
  test("encodeReply writes exactly the keys id, result and error, in that order", () => {
    const extra = { id: "a", result: "pong", error: null, cached: true } as unknown as Parameters<typeof encodeReply>[0];
    const decoded = JSON.parse(encodeReply(extra).toString("utf8")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(decoded), ["id", "result", "error"]);
    assert.deepEqual(decoded, { id: "a", result: "pong", error: null });
  });

  test("an undefined result is sent as null, not left out", () => {
    const decoded = JSON.parse(encodeReply({ id: 3, result: undefined, error: "internal: boom" }).toString("utf8"));
    assert.deepEqual(decoded, { id: 3, result: null, error: "internal: boom" });
  });

  test("decodeReply round-trips an encoded reply", () => {
    const reply = { id: 12, result: { text: "ü 🙂", logprobs: [0.5] }, error: null };
    assert.deepEqual(decodeReply(encodeReply(reply)), reply);
  });

  test("decodeReply rejects replies with fields of the wrong type", () => {
    assert.throws(() => decodeReply(json({ id: true, result: 1, error: null })), /id has the wrong type/);
    assert.throws(() => decodeReply(json({ id: 1, result: 1, error: 5 })), /error has the wrong type/);
    assert.throws(() => decodeReply(json({ id: 1, result: 1 })), /error has the wrong type/);
    assert.throws(() => decodeReply(json(null)), /not a JSON object/);
    assert.throws(() => decodeReply(Buffer.from("nope")), SyntaxError);
    assert.throws(() => decodeReply(Buffer.from([0xff, 0xfe])), TypeError);
  });
});

describe("generate params", () => {
  test("defaults are applied for everything left out or null", () => {
    for (const params of [{ prompt: "hi" }, { prompt: "hi", max_new_tokens: null, seed: null, eos_string: null, temperature: null }]) {
      const parsed = parseParams(generateParams, params);
      assert.equal(parsed.max_new_tokens, DEFAULT_MAX_NEW_TOKENS);
      assert.equal(parsed.max_new_tokens, 512);
      assert.equal(parsed.seed, DEFAULT_SEED);
      assert.equal(parsed.seed, 42);
      assert.equal(parsed.eos_string, DEFAULT_EOS_STRING);
      assert.equal(parsed.eos_string, "[EOS]");
      assert.equal(parsed.temperature, 0);
      assert.equal(parsed.use_cache, true);
    }
  });

  test("max_new_tokens accepts 1..4096 and refuses outside", () => {
    assert.equal(parseParams(generateParams, { prompt: "p", max_new_tokens: 1 }).max_new_tokens, 1);
    assert.equal(parseParams(generateParams, { prompt: "p", max_new_tokens: 4096 }).max_new_tokens, 4096);
    assert.match(paramsError(generateParams, { prompt: "p", max_new_tokens: 0 }), /^max_new_tokens: .*at least 1/);
    assert.match(paramsError(generateParams, { prompt: "p", max_new_tokens: 4097 }), /^max_new_tokens: .*4096/);
    assert.match(paramsError(generateParams, { prompt: "p", max_new_tokens: 2.5 }), /integer/);
    assert.match(paramsError(generateParams, { prompt: "p", max_new_tokens: "10" }), /must be a number/);
  });

  test("seed accepts 0..2147483647 and refuses outside", () => {
    assert.equal(parseParams(generateParams, { prompt: "p", seed: 0 }).seed, 0);
    assert.equal(parseParams(generateParams, { prompt: "p", seed: 2147483647 }).seed, 2147483647);
    assert.match(paramsError(generateParams, { prompt: "p", seed: -1 }), /^seed: seed must be non-negative/);
    assert.match(paramsError(generateParams, { prompt: "p", seed: 2147483648 }), /^seed: .*2147483647/);
    assert.match(paramsError(generateParams, { prompt: "p", seed: 1.5 }), /integer/);
  });

  test("an empty or blank prompt is refused, a missing one too", () => {
    assert.match(paramsError(generateParams, { prompt: "" }), /prompt cannot be empty/);
    assert.match(paramsError(generateParams, { prompt: " \n\t" }), /prompt cannot be empty/);
    assert.match(paramsError(generateParams, {}), /^prompt: prompt must be a string/);
    assert.match(paramsError(generateParams, null), /^prompt: /);
  });

  test("eos_string must be non-empty and at most 256 characters", () => {
    assert.match(paramsError(generateParams, { prompt: "p", eos_string: "" }), /eos_string cannot be empty/);
    assert.match(paramsError(generateParams, { prompt: "p", eos_string: "e".repeat(257) }), /256/);
    assert.equal(parseParams(generateParams, { prompt: "p", eos_string: "e".repeat(256) }).eos_string.length, 256);
  });

  test("size is one of the original's mini, small, medium, large", () => {
    for (const size of ["mini", "small", "medium", "large"] as const) assert.equal(parseParams(generateParams, { prompt: "p", size }).size, size);
    assert.match(paramsError(generateParams, { prompt: "p", size: "huge" }), /size must be one of: mini, small, medium, large/);
  });
});

describe("embed params", () => {
  test("a string or a list of strings is accepted, with the default seed", () => {
    assert.deepEqual(parseParams(embedParams, { text_input: "a" }).text_input, "a");
    const parsed = parseParams(embedParams, { text_input: ["a", "b"] });
    assert.deepEqual(parsed.text_input, ["a", "b"]);
    assert.equal(parsed.seed, 42);
  });

  test("an empty list is refused", () => {
    assert.match(paramsError(embedParams, { text_input: [] }), /text_input list cannot be empty/);
  });

  test("a list with an empty element is refused", () => {
    assert.match(paramsError(embedParams, { text_input: ["ok", ""] }), /text_input element cannot be empty/);
    assert.match(paramsError(embedParams, { text_input: ["ok", "  "] }), /text_input element cannot be empty/);
  });

  test("an empty string, a number and a bad mode are refused", () => {
    assert.match(paramsError(embedParams, { text_input: "" }), /text_input/);
    assert.match(paramsError(embedParams, { text_input: 5 }), /text_input/);
    assert.match(paramsError(embedParams, { text_input: "a", mode: "document" }), /mode must be 'query' or 'passage'/);
  });
});

describe("rerank params", () => {
  test("task, return_scores and seed get their defaults", () => {
    const parsed = parseParams(rerankParams, { query: "q", documents: ["d"] });
    assert.match(parsed.task, /web search query/);
    assert.equal(parsed.return_scores, true);
    assert.equal(parsed.seed, 42);
  });

  test("an empty query or document list is refused, non-string documents too", () => {
    assert.match(paramsError(rerankParams, { query: "", documents: ["d"] }), /query cannot be empty/);
    assert.match(paramsError(rerankParams, { query: "q", documents: [] }), /documents cannot be empty/);
    assert.match(paramsError(rerankParams, { query: "q", documents: [1] }), /documents must be strings/);
  });

  test("empty documents are allowed (they are scored, not refused)", () => {
    assert.deepEqual(parseParams(rerankParams, { query: "q", documents: [""] }).documents, [""]);
  });
});

describe("wire errors", () => {
  test("every code survives toWire → parseWireError, message included", () => {
    for (const code of ERROR_CODES) {
      const error = new ProtocolError(code, "something: went wrong");
      assert.deepEqual(parseWireError(error.toWire()), { code, message: "something: went wrong" });
    }
  });

  test("an unknown prefix or no prefix is internal with the whole text as message", () => {
    assert.deepEqual(parseWireError("boom: x"), { code: "internal", message: "boom: x" });
    assert.deepEqual(parseWireError("plain failure"), { code: "internal", message: "plain failure" });
    assert.deepEqual(parseWireError(": x"), { code: "internal", message: ": x" });
  });
});
