// The OpenAI-compatible HTTP face of the daemon: the same request over HTTP
// and over SQL gives the same bytes; bodies are validated and errors come in
// OpenAI's shape; the bearer token is enforced; a client that leaves, or a
// hostile body, leaves the daemon healthy.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { parseHttpAddress } from "../../sidecar/src/config/settings.js";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let base: string;

interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}, url = base): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function completion(prompt: string, maxTokens: number, extra: Record<string, unknown> = {}): Promise<string> {
  const { status, json } = await post("/v1/completions", { model: "default", prompt, max_tokens: maxTokens, ...extra });
  assert.equal(status, 200, JSON.stringify(json));
  return (json as { choices: Array<{ text: string }> }).choices[0]!.text;
}

/** The data of each server-sent event, in order, up to and including [DONE]. */
async function events(path: string, body: unknown): Promise<string[]> {
  const response = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}

async function healthy(url = base): Promise<void> {
  const response = await fetch(`${url}/health`);
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { status: string }).status, "ok");
}

function assertOpenAiError(json: unknown, type = "invalid_request_error"): OpenAiError["error"] {
  const error = (json as OpenAiError).error;
  assert.equal(typeof error?.message, "string", JSON.stringify(json));
  assert.ok(error.message.length > 0);
  assert.equal(error.type, type);
  return error;
}

before(async () => {
  const port = await freePort();
  stack = await TestStack.start({ sidecarEnv: { STEADYTEXT_HTTP_ADDR: String(port) } });
  base = `http://127.0.0.1:${port}`;
});
after(() => stack.stop());

describe("cross-face determinism", () => {
  test("a completion with prompt P and max_tokens N is exactly steadytext_generate(P, N)", async () => {
    const prompts = ["HTTP face: tell me about cats", "HTTP face: naïve café — 日本語 🧪", "x"];
    for (const prompt of prompts) {
      const overHttp = await completion(prompt, 17);
      const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, 17, false) AS v", [prompt]);
      assert.equal(typeof row!.v, "string");
      assert.equal(overHttp, row!.v, `prompt ${prompt}`);
    }
  });

  test("a chat with one user message is the completion of its text, streamed or not", async () => {
    // A prompt whose answer differs from that of "User: SQL is" on the tiny test model.
    const prompt = "SQL is";
    const { json } = await post("/v1/chat/completions", { model: "default", messages: [{ role: "user", content: prompt }], max_tokens: 20 });
    const chat = (json as { choices: Array<{ message: { role: string; content: string }; finish_reason: string }> }).choices[0]!;
    assert.equal(chat.message.role, "assistant");
    assert.equal(chat.message.content, await completion(prompt, 20));
    const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, 20) AS v", [prompt]);
    assert.equal(chat.message.content, row!.v);

    const data = await events("/v1/chat/completions", { messages: [{ role: "user", content: prompt }], max_tokens: 20, stream: true });
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as { object: string; choices: Array<{ delta: { content?: string }; finish_reason: string | null }> });
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "stop");
    assert.equal(chunks.map((c) => c.choices[0]!.delta.content ?? "").join(""), chat.message.content);
  });

  test("a longer chat is one prompt of its turns, each prefixed with its role, ending with 'Assistant:'", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "SQL " }, { type: "text", text: "is" }] },
    ];
    const { status, json } = await post("/v1/chat/completions", { messages, max_tokens: 12 });
    assert.equal(status, 200, JSON.stringify(json));
    const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, 12) AS v", ["System: Be brief.\n\nUser: SQL is\n\nAssistant:"]);
    assert.equal((json as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, row!.v);
  });

  test("a streamed completion computed token by token has the chunks of the same text replayed from the cache", async () => {
    const body = { prompt: "HTTP face: streamed once, then cached", max_tokens: 24, stream: true };
    const computed = await events("/v1/completions", body);
    const replayed = await events("/v1/completions", body);
    const texts = (data: string[]) => data.slice(0, -1).map((d) => (JSON.parse(d) as { choices: Array<{ text: string }> }).choices[0]!.text);
    assert.ok(texts(computed).length > 2, "more than one chunk");
    assert.deepEqual(texts(replayed), texts(computed));
    assert.equal(texts(computed).join(""), await completion(body.prompt, 24));
  });

  test("an embedding, as floats or base64, equals steadytext_embed", async () => {
    const texts = ["HTTP face: hello world", "Äpfel und Birnen", "日本"];
    const floats = await post("/v1/embeddings", { model: "default", input: texts });
    const packed = await post("/v1/embeddings", { input: texts, encoding_format: "base64" });
    assert.equal(floats.status, 200);
    const floatData = (floats.json as { data: Array<{ index: number; embedding: number[] }> }).data;
    const packedData = (packed.json as { data: Array<{ index: number; embedding: string }> }).data;
    assert.deepEqual(floatData.map((d) => d.index), [0, 1, 2]);
    for (const [i, text] of texts.entries()) {
      const [row] = await stack.query<{ v: string }>("SELECT steadytext_embed($1, false)::text AS v", [text]);
      const fromSql = (JSON.parse(row!.v) as number[]).map(Math.fround);
      assert.equal(fromSql.length, 1024);
      assert.deepEqual(floatData[i]!.embedding.map(Math.fround), fromSql);
      const bytes = Buffer.from(packedData[i]!.embedding, "base64");
      assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)), fromSql);
    }
  });

  test("a rerank has steadytext_rerank's scores and order, with each document's input index", async () => {
    const documents = ["cheap flights to Lisbon", "a recipe for soup", "discount airfare", "a recipe for soup"];
    const { json } = await post("/v1/rerank", { query: "cheap flights", documents, top_n: 3 });
    const results = (json as { results: Array<{ index: number; relevance_score: number; document: { text: string } }> }).results;
    const rows = await stack.query<{ document: string; score: number }>("SELECT document, score FROM steadytext_rerank($1, $2)", ["cheap flights", documents]);
    assert.equal(results.length, 3);
    assert.deepEqual(results.map((r) => [r.document.text, r.relevance_score]), rows.slice(0, 3).map((r) => [r.document, r.score]));
    for (const r of results) assert.equal(documents[r.index], r.document.text);
    assert.equal(new Set(results.map((r) => r.index)).size, 3);
  });

  test("concurrent identical requests all get the same bytes", async () => {
    const body = { prompt: "HTTP face: many at once", max_tokens: 16 };
    const texts = await Promise.all(Array.from({ length: 6 }, () => completion(body.prompt, body.max_tokens)));
    assert.equal(new Set(texts).size, 1);
    assert.ok(texts[0]!.length > 0);
  });
});

describe("the official openai client", () => {
  const client = () => new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });

  test("completions, chat (streamed too) and embeddings come back with SQL's bytes", async () => {
    const prompt = "official client: what is a B-tree";
    const [generated] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, 18) AS v", [prompt]);
    const completion = await client().completions.create({ model: "default", prompt, max_tokens: 18 });
    assert.equal(completion.choices[0]!.text, generated!.v);

    const chat = await client().chat.completions.create({ model: "default", messages: [{ role: "user", content: prompt }], max_tokens: 18 });
    assert.equal(chat.choices[0]!.message.content, generated!.v);
    let streamed = "";
    for await (const chunk of await client().chat.completions.create({ model: "default", messages: [{ role: "user", content: prompt }], max_tokens: 18, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? "";
    }
    assert.equal(streamed, generated!.v);

    // The client asks for base64 by default and decodes it to float32 values; pgvector prints the same
    // float32 values in their shortest decimal form, which Math.fround maps back bit for bit.
    const embedding = await client().embeddings.create({ model: "default", input: prompt });
    const [row] = await stack.query<{ v: string }>("SELECT steadytext_embed($1)::text AS v", [prompt]);
    assert.deepEqual(embedding.data[0]!.embedding, (JSON.parse(row!.v) as number[]).map(Math.fround));
  });

  test("a bad request surfaces as the client's own error class, with OpenAI's error body", async () => {
    await assert.rejects(client().completions.create({ model: "default", prompt: "", max_tokens: 5 }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.status, 400);
      return true;
    });
    await assert.rejects(client().completions.create({ model: "no-such-model", prompt: "x", max_tokens: 5 }), OpenAI.NotFoundError);
  });
});

describe("models", () => {
  test("/v1/models lists models by role, and every listed name (and 'default') is accepted for its role", async () => {
    const response = await fetch(`${base}/v1/models`);
    const list = (await response.json()) as { object: string; data: Array<{ id: string; object: string; role: string }> };
    assert.equal(list.object, "list");
    const roles = new Set(list.data.map((m) => m.role));
    assert.deepEqual([...roles].sort(), ["embedding", "generation", "reranking"]);
    for (const model of list.data.filter((m) => m.role === "generation").map((m) => m.id).concat("default")) {
      const { status, json } = await post("/v1/completions", { model, prompt: "HTTP face: models", max_tokens: 4 });
      assert.equal(status, 200, `${model}: ${JSON.stringify(json)}`);
    }
    for (const model of list.data.filter((m) => m.role === "embedding").map((m) => m.id)) {
      assert.equal((await post("/v1/embeddings", { model, input: "x" })).status, 200, model);
    }
  });

  test("a model that is not listed is a 404 model_not_found, and an embedding model cannot complete", async () => {
    const unknown = await post("/v1/completions", { model: "no-such-model", prompt: "x" });
    assert.equal(unknown.status, 404);
    assert.equal(assertOpenAiError(unknown.json).code, "model_not_found");
    const list = (await (await fetch(`${base}/v1/models`)).json()) as { data: Array<{ id: string; role: string }> };
    const embedder = list.data.find((m) => m.role === "embedding")!.id;
    assert.equal((await post("/v1/completions", { model: embedder, prompt: "x" })).status, 404);
  });

  test("a remote provider:model is refused without unsafe mode", async () => {
    const { status, json } = await post("/v1/completions", { model: "openai:gpt-4o-mini", prompt: "x" });
    assert.equal(status, 400);
    assert.match(assertOpenAiError(json).message, /unsafe_mode/);
  });
});

describe("bad input", () => {
  const cases: Array<[string, string, unknown, number, RegExp]> = [
    ["an empty body", "/v1/completions", "", 400, /no body/],
    ["malformed JSON", "/v1/completions", "{\"prompt\": ", 400, /parse the JSON/],
    ["a JSON array", "/v1/completions", "[1,2]", 400, /./],
    ["JSON null", "/v1/embeddings", "null", 400, /./],
    ["a missing prompt", "/v1/completions", {}, 400, /prompt/],
    ["an empty prompt", "/v1/completions", { prompt: "   " }, 400, /prompt cannot be empty/],
    ["a numeric prompt", "/v1/completions", { prompt: 42 }, 400, /prompt/],
    ["max_tokens 0", "/v1/completions", { prompt: "x", max_tokens: 0 }, 400, /max_tokens/],
    ["max_tokens over the limit", "/v1/completions", { prompt: "x", max_tokens: 1e9 }, 400, /max_tokens/],
    ["a negative seed", "/v1/completions", { prompt: "x", seed: -1 }, 400, /seed/],
    ["n = 2", "/v1/completions", { prompt: "x", n: 2 }, 400, /n must be 1/],
    ["logprobs", "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], logprobs: true }, 400, /logprobs/],
    ["no messages", "/v1/chat/completions", { messages: [] }, 400, /messages cannot be empty/],
    ["a message with an unknown role", "/v1/chat/completions", { messages: [{ role: "root", content: "x" }] }, 400, /role/],
    ["an image content part", "/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, 400, /text/],
    ["token arrays as input", "/v1/embeddings", { input: [[1, 2, 3]] }, 400, /token arrays/],
    ["an empty input list", "/v1/embeddings", { input: [] }, 400, /input cannot be empty/],
    ["an empty input string", "/v1/embeddings", { input: ["ok", ""] }, 400, /input item cannot be empty/],
    ["2049 inputs", "/v1/embeddings", { input: Array.from({ length: 2049 }, (_, i) => `t${i}`) }, 400, /2048/],
    ["other dimensions", "/v1/embeddings", { input: "x", dimensions: 256 }, 400, /dimensions/],
    ["no documents", "/v1/rerank", { query: "q", documents: [] }, 400, /documents cannot be empty/],
    ["top_n 0", "/v1/rerank", { query: "q", documents: ["a"], top_n: 0 }, 400, /top_n/],
    ["an empty query", "/v1/rerank", { query: "", documents: ["a"] }, 400, /query cannot be empty/],
  ];
  for (const [name, path, body, status, message] of cases) {
    test(`${name} on ${path} is a ${status} in OpenAI's error shape`, async () => {
      const response = await post(path, body);
      assert.equal(response.status, status, JSON.stringify(response.json));
      assert.match(assertOpenAiError(response.json).message, message);
    });
  }

  test("an unknown URL is a 404 and a wrong method a 405", async () => {
    const missing = await post("/v1/engines", {});
    assert.equal(missing.status, 404);
    assert.equal(assertOpenAiError(missing.json).code, "unknown_url");
    const wrong = await fetch(`${base}/v1/completions`);
    assert.equal(wrong.status, 405);
    assertOpenAiError(await wrong.json());
  });

  test("hostile prompts (control characters, a JSON-looking prompt, 100 kB of text) are answered like any other", async () => {
    for (const prompt of ["\u0001\u0007\u001b[31m red", "{\"error\": \"not really\"}\n\ndata: [DONE]\n\n", "word ".repeat(20_000)]) {
      const { status, json } = await post("/v1/completions", { prompt, max_tokens: 4 });
      assert.ok(status === 200 || status === 400, `${status} ${JSON.stringify(json).slice(0, 200)}`);
      if (status === 400) assertOpenAiError(json);
    }
    await healthy();
  });

  test("a client that leaves in the middle of a stream leaves the daemon healthy and answering", async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "HTTP face: a long stream to abandon" }], max_tokens: 400, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await healthy();
    assert.ok((await completion("HTTP face: after the abandoned stream", 6)).length > 0);
  });
});

describe("listening and authentication", () => {
  test("a bare port listens on loopback; a host is taken as given, IPv6 in brackets", () => {
    assert.deepEqual(parseHttpAddress("8080"), { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseHttpAddress("0.0.0.0:9000"), { host: "0.0.0.0", port: 9000 });
    assert.deepEqual(parseHttpAddress("[::1]:9001"), { host: "::1", port: 9001 });
    assert.throws(() => parseHttpAddress("99999"), /port 1-65535/);
    assert.throws(() => parseHttpAddress("host:"), /PORT or HOST:PORT/);
  });

  test("with a token, /v1 needs 'Authorization: Bearer <token>'; health does not; bodies over the limit are a 413", async () => {
    const httpPort = await freePort();
    const sidecar = await SidecarProcess.start({
      ...stack.sidecarOptions({ STEADYTEXT_HTTP_ADDR: `127.0.0.1:${httpPort}`, STEADYTEXT_HTTP_TOKEN: "s3cret-token", STEADYTEXT_MAX_REQUEST_BYTES: "65536" }, await freePort()),
      pgUrl: undefined,
    } as Parameters<typeof SidecarProcess.start>[0]);
    const url = `http://127.0.0.1:${httpPort}`;
    try {
      await healthy(url);
      const anonymous = await fetch(`${url}/v1/models`);
      assert.equal(anonymous.status, 401);
      assert.equal(assertOpenAiError(await anonymous.json()).code, "invalid_api_key");
      const wrong = await post("/v1/completions", { prompt: "x" }, { authorization: "Bearer s3cret-tokeN" }, url);
      assert.equal(wrong.status, 401);
      const right = await post("/v1/completions", { prompt: "HTTP face: authorised", max_tokens: 5 }, { authorization: "Bearer s3cret-token" }, url);
      assert.equal(right.status, 200, JSON.stringify(right.json));
      const huge = await post("/v1/embeddings", { input: "y".repeat(70_000) }, { authorization: "Bearer s3cret-token" }, url);
      assert.equal(huge.status, 413);
      assertOpenAiError(huge.json);
      await healthy(url);
    } finally {
      await sidecar.stop();
    }
  });
});
