// Where models compute, as the daemon, `st daemon status` and SQL report it,
// on a machine without a GPU: STEADYTEXT_GPU=auto falls back to the CPU with
// a log line that says why, keeps the CPU's cache identity (the model file's
// sha256, so SQL's cache keys do not change), and an explicit GPU backend that
// cannot run stops the daemon from starting instead of silently using the CPU.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { getLlamaGpuTypes } from "node-llama-cpp";
import { freePort, SidecarProcess, ST_CLI } from "../../scripts/lib/sidecar-process.js";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";
import { TestStack } from "../harness/test-stack.js";

const run = promisify(execFile);
const FALLBACK_LINE = "STEADYTEXT_GPU=auto: no GPU backend is usable here, so models compute on the CPU";

async function st(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ST_CLI, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Wait (polling the file) until the daemon's log holds a line containing `text`. */
async function logLine(file: string, text: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const content = await readFile(file, "utf8").catch(() => "");
    const line = content.split("\n").find((l) => l.includes(text));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`no log line with '${text}' in ${file}:\n${content}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const gpuTypes = await getLlamaGpuTypes("supported");
const noGpu = gpuTypes.every((type) => type === false) ? false : "this machine has a GPU backend";

describe("STEADYTEXT_GPU unset", { skip: process.env.STEADYTEXT_GPU ? "STEADYTEXT_GPU is set in this environment" : false }, () => {
  let dir: string;
  let daemon: SidecarProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-gpu-off-"));
    daemon = await SidecarProcess.start({ port: await freePort(), cacheDir: dir, testModels: true });
  });

  after(async () => {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("the daemon computes on the CPU, does not warm up, and caches under each model file's sha256", async () => {
    const client = daemon.client(60_000);
    try {
      const before = await client.request<StatusResult>("status");
      assert.deepEqual(before.compute, { setting: "off", backend: "cpu", devices: [], fallback: null });
      assert.deepEqual(before.models, [], "no model is loaded before a request needs it");
      await client.request("generate", { prompt: "where?", max_new_tokens: 4 });
      const [model] = (await client.request<StatusResult>("status")).models;
      assert.deepEqual(
        { ...model, sha256: typeof model!.sha256 },
        { role: "generation", name: "steadytext-test-generation.gguf", sha256: "string", loaded: true, error: null, backend: "cpu", device: "cpu", gpu_layers: 0, identity: model!.sha256, warmed: false },
      );
    } finally {
      await client.close();
    }
  });
});

describe("STEADYTEXT_GPU=auto without a GPU, through st", { skip: noGpu }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-gpu-cli-"));
    env = {
      ...process.env,
      STEADYTEXT_CACHE_DIR: dir,
      STEADYTEXT_DAEMON_PORT: String(await freePort()),
      STEADYTEXT_TEST_MODELS: "1",
      STEADYTEXT_LOG_LEVEL: "info",
      STEADYTEXT_LOG_FILE: join(dir, "daemon.log"),
      STEADYTEXT_GPU: "auto",
    };
  });

  after(async () => {
    await st(env, "daemon", "stop");
    await rm(dir, { recursive: true, force: true });
  });

  test("the daemon logs that it falls back to the CPU and why, and st daemon status shows where each model runs", async () => {
    const started = await st(env, "daemon", "start");
    assert.equal(started.code, 0, started.stderr);
    const line = await logLine(join(dir, "daemon.log"), FALLBACK_LINE);
    assert.equal(line.level, 40, "a warning");
    assert.match(String(line.reason), /no working CUDA or Vulkan/);

    const before = JSON.parse((await st(env, "daemon", "status", "--json")).stdout) as { compute: unknown; models: unknown[] };
    assert.deepEqual(before.compute, { setting: "auto", backend: "cpu", devices: [], fallback: line.reason });

    assert.equal((await st(env, "embed", "where do I run?")).code, 0);
    const text = (await st(env, "daemon", "status")).stdout;
    assert.match(text, /compute: cpu, STEADYTEXT_GPU=auto, no GPU: /);
    assert.match(text, /embedding: steadytext-test-embedding\.gguf loaded on cpu \(cpu\)/);
  });
});

describe("STEADYTEXT_GPU=auto without a GPU, from SQL", { skip: noGpu }, () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({ sidecarEnv: { STEADYTEXT_GPU: "auto" } });
  });

  after(async () => {
    await stack.stop();
  });

  test("steadytext_daemon_models() reports the CPU, and SQL's cache keys keep the file's sha256", async () => {
    const [embedded] = await stack.query<{ ok: boolean }>("SELECT steadytext_embed('from SQL', false) IS NOT NULL AS ok");
    assert.equal(embedded!.ok, true);
    const [model] = await stack.query<{ backend: string; device: string; gpu_layers: number; file_sha256: string; cache_identity: string }>(
      "SELECT backend, device, gpu_layers, file_sha256, cache_identity FROM steadytext_daemon_models() WHERE role = 'embedding'",
    );
    assert.deepEqual([model!.backend, model!.device, model!.gpu_layers], ["cpu", "cpu", 0]);
    assert.equal(model!.cache_identity, model!.file_sha256);
    const published = await stack.waitFor(async () => {
      const rows = await stack.query<{ model_sha256: string }>("SELECT model_sha256 FROM steadytext_models WHERE selector = 'embedding:default'");
      return rows[0]?.model_sha256;
    });
    assert.equal(published, model!.file_sha256);
  });

  test("steadytext_daemon_models() has no rows while the daemon does not answer", async () => {
    await stack.stopSidecar();
    assert.deepEqual(await stack.query("SELECT * FROM steadytext_daemon_models()"), []);
  });
});

for (const backend of ["vulkan", "cuda"] as const) {
  const usable = gpuTypes.includes(backend) ? `${backend} runs on this machine` : false;
  describe(`STEADYTEXT_GPU=${backend} where ${backend} cannot run`, { skip: usable }, () => {
    test("the daemon does not start, and says why and what to set instead", async () => {
      const dir = await mkdtemp(join(tmpdir(), "steadytext-gpu-refused-"));
      try {
        const env = { ...process.env, STEADYTEXT_CACHE_DIR: dir, STEADYTEXT_DAEMON_PORT: String(await freePort()), STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_GPU: backend };
        const outcome = await st(env, "daemon", "start", "--foreground");
        assert.notEqual(outcome.code, 0);
        assert.match(outcome.stderr, new RegExp(`STEADYTEXT_GPU=${backend}, but node-llama-cpp's prebuilt ${backend} binary does not run on this machine`));
        assert.match(outcome.stderr, /use STEADYTEXT_GPU=auto to fall back to the CPU/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
