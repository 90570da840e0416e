// Where models come from, and what happens when they cannot: downloads from
// a hub (verified), a fast "unavailable" when offline or when downloads are
// off, no downloads on a request's behalf, and unloadable files.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { freePort } from "../../scripts/lib/sidecar-process.js";
import { loadSettings } from "../src/config/settings.js";
import { Engine } from "../src/engine/engine.js";
import { writeTestModels } from "../src/models/test-models/index.js";
import { generateParams, parseParams, ProtocolError } from "../src/protocol/index.js";

let dir: string;
let hub: Server;
let hubUrl: string;
let modelBytes: Buffer;
const requested: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "steadytext-availability-"));
  const [generation] = await writeTestModels(join(dir, "source"));
  modelBytes = await readFile(generation!.path);
  const sha256 = createHash("sha256").update(modelBytes).digest("hex");
  hub = createServer((request, response) => {
    requested.push(request.url ?? "");
    if (request.url === "/ggml-org/gemma-3n-E2B-it-GGUF/resolve/main/gemma-3n-E2B-it-Q8_0.gguf") {
      response.writeHead(200, { "content-length": modelBytes.length, "x-linked-etag": `"${sha256}"` });
      response.end(modelBytes);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => hub.listen(0, "127.0.0.1", resolve));
  const address = hub.address();
  hubUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});

after(async () => {
  await new Promise((resolve) => hub.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function engineWith(env: Record<string, string>): Engine {
  return new Engine(loadSettings({ HOME: dir, STEADYTEXT_LOG_LEVEL: "silent", ...env }), { localCache: false });
}

const ask = (extra: Record<string, unknown> = {}) => parseParams(generateParams, { prompt: "hello", max_new_tokens: 4, ...extra });

// The test's own timeout stands for "at once": the hang it guards against lasted 12 minutes.
test("offline, a missing model is unavailable at once: no 12-minute download hang", { timeout: 60_000 }, async () => {
  const closedPort = await freePort();
  const engine = engineWith({ STEADYTEXT_CACHE_DIR: join(dir, "offline"), STEADYTEXT_HF_ENDPOINT: `http://127.0.0.1:${closedPort}` });
  await assert.rejects(engine.generate(ask()), (error: unknown) => error instanceof ProtocolError && error.code === "unavailable" && /cannot download/.test(error.message));
  await engine.close();
});

test("with downloads off, a missing model is unavailable and says why", async () => {
  const engine = engineWith({ STEADYTEXT_CACHE_DIR: join(dir, "off"), STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0", STEADYTEXT_HF_ENDPOINT: hubUrl });
  await assert.rejects(engine.generate(ask()), /STEADYTEXT_ALLOW_MODEL_DOWNLOADS is off/);
  assert.equal(requested.length, 0);
  await engine.close();
});

test("a default model is downloaded, verified against the hub's checksum, and used", async () => {
  const cacheDir = join(dir, "online");
  const engine = engineWith({ STEADYTEXT_CACHE_DIR: cacheDir, STEADYTEXT_HF_ENDPOINT: hubUrl });
  const text = await engine.generate(ask());
  assert.equal(typeof text, "string");
  const path = join(cacheDir, "models", "gemma-3n-E2B-it-Q8_0.gguf");
  assert.ok((await readFile(path)).equals(modelBytes));
  assert.ok(requested.includes("/ggml-org/gemma-3n-E2B-it-GGUF/resolve/main/gemma-3n-E2B-it-Q8_0.gguf"));
  await engine.close();
});

test("a model a request names by repo and file is never downloaded for it", async () => {
  const before = requested.length;
  const engine = engineWith({ STEADYTEXT_CACHE_DIR: join(dir, "custom"), STEADYTEXT_HF_ENDPOINT: hubUrl });
  await assert.rejects(
    engine.generate(ask({ model_repo: "someone/evil-GGUF", model_filename: "evil.gguf" })),
    /models a request names by repo and file are only loaded from there/,
  );
  assert.equal(requested.length, before);
  assert.ok(!existsSync(join(dir, "custom", "models", "evil.gguf")));
  await engine.close();
});

test("a file that is not a model is unavailable, not a crash", async () => {
  const bad = join(dir, "not-a-model.gguf");
  await writeFile(bad, "GGUF but not really".repeat(100));
  const engine = engineWith({ STEADYTEXT_CACHE_DIR: join(dir, "bad"), STEADYTEXT_GENERATION_MODEL_PATH: bad });
  await assert.rejects(engine.generate(ask()), (error: unknown) => error instanceof ProtocolError && error.code === "unavailable" && /could not be loaded/.test(error.message));
  // The engine stays usable: the next request tries again and fails the same clear way.
  await assert.rejects(engine.generate(ask()), /could not be loaded/);
  await engine.close();
});
