// Remote providers: a `provider:model` name reaches an OpenAI-compatible
// server only with unsafe_mode, from SQL, the library, the CLI and HTTP; the
// key comes from the environment; the answers are marked non-deterministic
// and never cached. The provider here is a local server that speaks the
// OpenAI API and answers differently every time, as a real one may.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import * as library from "../../sidecar/src/index.js";
import { freePort, ST_CLI } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

interface Seen {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

let stack: TestStack;
let provider: Server;
let providerUrl: string;
let httpBase: string;
let failNext = false;
const seen: Seen[] = [];
let env: NodeJS.ProcessEnv;

function startProvider(): Promise<Server> {
  let answers = 0;
  const server = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (raw += chunk));
    req.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ path: req.url ?? "", authorization: req.headers.authorization, body });
      res.setHeader("content-type", "application/json");
      if (req.headers.authorization !== "Bearer test-key") {
        res.writeHead(401).end(JSON.stringify({ error: { message: "bad key" } }));
      } else if (failNext) {
        failNext = false;
        res.writeHead(500).end(JSON.stringify({ error: { message: "the provider is on fire" } }));
      } else if (req.url === "/v1/chat/completions") {
        const messages = body.messages as Array<{ content: string }>;
        answers++;
        res.end(JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content: `answer ${answers} to ${messages[0]!.content}` }, finish_reason: "stop" }] }));
      } else if (req.url === "/v1/embeddings") {
        const input = body.input as string[];
        res.end(JSON.stringify({ data: input.map((text, index) => ({ index, embedding: Array.from({ length: 1024 }, (_, i) => (i === text.length % 1024 ? 3 : 0)) })) }));
      } else {
        res.writeHead(404).end(JSON.stringify({ error: { message: "no such path" } }));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const lastSeen = () => seen.at(-1)!;

before(async () => {
  provider = await startProvider();
  providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1`;
  const httpPort = await freePort();
  const providers = JSON.stringify({ fake: { base_url: providerUrl, api_key_env: "FAKE_API_KEY" } });
  stack = await TestStack.start({ sidecarEnv: { STEADYTEXT_REMOTE_PROVIDERS: providers, FAKE_API_KEY: "test-key", STEADYTEXT_HTTP_ADDR: String(httpPort) } });
  httpBase = `http://127.0.0.1:${httpPort}`;
  env = {
    ...process.env,
    STEADYTEXT_TEST_MODELS: "1",
    STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0",
    STEADYTEXT_LOG_LEVEL: "silent",
    STEADYTEXT_REMOTE_PROVIDERS: providers,
    FAKE_API_KEY: "test-key",
    STEADYTEXT_DAEMON_ENDPOINT: stack.sidecar!.endpoint,
    STEADYTEXT_CACHE_DIR: join(stack.dir, "remote-client-cache"),
  };
});
after(async () => {
  await library.close();
  await stack.stop();
  await new Promise((resolve) => provider.close(resolve));
});

describe("from SQL", () => {
  test("with unsafe_mode a provider:model is answered by the provider, with the key from the environment, and never from a cache", async () => {
    const first = await stack.query<{ v: string }>("SELECT steadytext_generate('hello remote', 33, model := 'fake:chat-1', unsafe_mode := true) AS v");
    assert.match(first[0]!.v, /^answer \d+ to hello remote$/);
    assert.equal(lastSeen().path, "/v1/chat/completions");
    assert.equal(lastSeen().authorization, "Bearer test-key");
    assert.equal(lastSeen().body.model, "chat-1");
    assert.equal(lastSeen().body.max_tokens, 33);
    assert.equal(lastSeen().body.seed, 42);
    const second = await stack.query<{ v: string }>("SELECT steadytext_generate('hello remote', 33, model := 'fake:chat-1', unsafe_mode := true) AS v");
    assert.notEqual(second[0]!.v, first[0]!.v, "the second call reached the provider again");
    const cached = await stack.query<{ n: string }>("SELECT count(*) AS n FROM steadytext_cache WHERE prompt = 'hello remote'");
    assert.equal(Number(cached[0]!.n), 0);
  });

  test("without unsafe_mode the same name is refused before anything is sent", async () => {
    const before = seen.length;
    await assert.rejects(stack.query("SELECT steadytext_generate('x', model := 'fake:chat-1')"), /require unsafe_mode=TRUE/);
    assert.equal(seen.length, before);
  });

  test("a remote embedding is normalised to unit length and has 1024 dimensions", async () => {
    const [row] = await stack.query<{ dims: number; norm: number }>(
      "SELECT vector_dims(e) AS dims, vector_norm(e) AS norm FROM (SELECT steadytext_embed('abc', model := 'fake:embed-1', unsafe_mode := true) AS e) s",
    );
    assert.equal(row!.dims, 1024);
    assert.ok(Math.abs(row!.norm - 1) < 1e-6);
    assert.equal(lastSeen().path, "/v1/embeddings");
  });

  test("an unknown provider, a constraint, and a failing provider are clear errors, not made-up answers", async () => {
    await assert.rejects(stack.query("SELECT steadytext_generate('x', model := 'nosuch:m', unsafe_mode := true)"), /Unknown remote provider 'nosuch'; configured: openai, fake/);
    await assert.rejects(
      stack.query("SELECT steadytext_generate_regex('x', '[0-9]+', model := 'fake:m', unsafe_mode := true)"),
      /Remote models do not support schema, regex or choices/,
    );
    failNext = true;
    const [row] = await stack.query<{ v: string | null }>("SELECT steadytext_generate('provider down', model := 'fake:m', unsafe_mode := true) AS v");
    assert.equal(row!.v, null, "an unavailable provider is NULL, like an unavailable model");
  });
});

describe("from HTTP, the library and the CLI", () => {
  test("HTTP needs unsafe_mode in the body and marks the answer deterministic: false", async () => {
    const ask = (extra: Record<string, unknown>) =>
      fetch(`${httpBase}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "fake:chat-1", prompt: "over http", ...extra }) });
    const refused = await ask({});
    assert.equal(refused.status, 400);
    const answered = await ask({ unsafe_mode: true });
    const json = (await answered.json()) as { deterministic: boolean; choices: Array<{ text: string }> };
    assert.equal(answered.status, 200);
    assert.match(json.choices[0]!.text, /^answer \d+ to over http$/);
    assert.equal(json.deterministic, false);
    const local = (await (await fetch(`${httpBase}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "local", max_tokens: 3 }) })).json()) as { deterministic: boolean };
    assert.equal(local.deterministic, true);
  });

  for (const backend of ["daemon", "local"] as const) {
    test(`the library (${backend}) reaches the provider with unsafeMode and is refused without it`, async () => {
      await library.configure({ backend, env });
      try {
        assert.match(await library.generate("from the library", { model: "fake:chat-1", unsafeMode: true }), /^answer \d+ to from the library$/);
        await assert.rejects(library.generate("x", { model: "fake:chat-1" }), (e: unknown) => e instanceof library.SteadyTextError && e.code === "invalid_params");
        assert.equal((await library.embed("abcd", { model: "fake:embed-1", unsafeMode: true })).length, 1024);
      } finally {
        await library.close();
      }
    });
  }

  test("in-process, a missing key names the variable to set", async () => {
    await library.configure({ backend: "local", env: { ...env, FAKE_API_KEY: "" } });
    try {
      await assert.rejects(library.generate("x", { model: "fake:chat-1", unsafeMode: true }), /Remote provider 'fake' needs FAKE_API_KEY in the daemon's environment/);
    } finally {
      await library.close();
    }
  });

  test("the CLI passes --unsafe-mode and says the answer is not deterministic", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [ST_CLI, "generate", "from the cli", "--model", "fake:chat-1", "--unsafe-mode", "--json", "--daemon"], { env });
    const json = JSON.parse(stdout) as { text: string; deterministic: boolean };
    assert.match(json.text, /^answer \d+ to from the cli$/);
    assert.equal(json.deterministic, false);
  });
});
