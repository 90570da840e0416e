// GPU offload on a machine without a GPU (CI): STEADYTEXT_GPU is off unless
// set; the compute backend and device are part of every result's identity,
// so CPU and GPU answers never share a cache key while CPU keys stay what they
// were; `auto` falls back to the CPU with one log line saying why.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlamaGpuTypes } from "node-llama-cpp";
import { embedKey, generateKey, rerankKey } from "../src/cache/key.js";
import { loadSettings, SettingsError, type Settings } from "../src/config/settings.js";
import { encodeText } from "../src/cache/cached-values.js";
import { Engine } from "../src/engine/engine.js";
import { warmUp } from "../src/inference/warm-up.js";
import { ComputeBackendError, computeRuntime, openRuntime, type ComputeDevice, type Runtime } from "../src/inference/runtime.js";
import { resultIdentity } from "../src/models/compute-identity.js";
import { writeTestModels } from "../src/models/test-models/index.js";
import { embedParams, generateParams, parseParams } from "../src/protocol/index.js";

const FILE_SHA = "f".repeat(64);
const CPU: ComputeDevice = { setting: "off", backend: "cpu", devices: [], fallback: null };
const H200: ComputeDevice = { setting: "vulkan", backend: "vulkan", devices: ["NVIDIA H200"], fallback: null };

describe("the STEADYTEXT_GPU setting", () => {
  test("models compute on the CPU unless STEADYTEXT_GPU says otherwise", () => {
    assert.equal(loadSettings({}).gpu, "off");
  });

  test("STEADYTEXT_GPU takes off, auto, vulkan or cuda; anything else is an error naming the variable", () => {
    for (const value of ["off", "auto", "vulkan", "cuda"] as const) assert.equal(loadSettings({ STEADYTEXT_GPU: value }).gpu, value);
    for (const value of ["metal", "gpu", "true", ""]) {
      assert.throws(() => loadSettings({ STEADYTEXT_GPU: value }), (e: unknown) => e instanceof SettingsError && e.message.startsWith("STEADYTEXT_GPU"));
    }
  });

  test("every model offloads all its layers unless told a count, and a role's own count wins over the common one", () => {
    assert.deepEqual(loadSettings({}).gpuLayers, { generation: "max", embedding: "max", reranking: "max" });
    const settings = loadSettings({ STEADYTEXT_GPU_LAYERS: "20", STEADYTEXT_RERANKING_GPU_LAYERS: "max", STEADYTEXT_EMBEDDING_GPU_LAYERS: "0" });
    assert.deepEqual(settings.gpuLayers, { generation: 20, embedding: 0, reranking: "max" });
  });

  test("a layer count is 'max' or a whole number: llama.cpp's VRAM-dependent 'auto' is refused", () => {
    for (const value of ["auto", "-1", "1.5", "many"]) {
      assert.throws(() => loadSettings({ STEADYTEXT_GPU_LAYERS: value }), /STEADYTEXT_GPU_LAYERS: must be 'max' or a whole number/);
    }
  });
});

describe("the backend is part of a result's identity", () => {
  test("on the CPU a result's identity is the model file's sha256, so caches from before GPU support stay valid", () => {
    assert.equal(resultIdentity(FILE_SHA, CPU, "max"), FILE_SHA);
    const autoFallback: ComputeDevice = { ...CPU, setting: "auto", fallback: "no GPU" };
    assert.equal(resultIdentity(FILE_SHA, autoFallback, 12), FILE_SHA);
  });

  test("on a GPU the identity differs from the file's, and from any other backend, device class or layer count", () => {
    const identities = [
      FILE_SHA,
      resultIdentity(FILE_SHA, H200, "max"),
      resultIdentity(FILE_SHA, { ...H200, backend: "cuda" }, "max"),
      resultIdentity(FILE_SHA, { ...H200, devices: ["NVIDIA A100"] }, "max"),
      resultIdentity(FILE_SHA, { ...H200, devices: ["NVIDIA H200", "NVIDIA H200"] }, "max"),
      resultIdentity(FILE_SHA, H200, 10),
      resultIdentity("e".repeat(64), H200, "max"),
    ];
    for (const identity of identities) assert.match(identity, /^[0-9a-f]{64}$/);
    assert.equal(new Set(identities).size, identities.length);
    const autoH200: ComputeDevice = { ...H200, setting: "auto" };
    assert.equal(resultIdentity(FILE_SHA, H200, "max"), resultIdentity(FILE_SHA, autoH200, "max"), "what was asked for does not matter, only what runs");
  });

  test("the same request has different cache keys on the CPU and on a GPU", () => {
    const cpu = resultIdentity(FILE_SHA, CPU, "max");
    const gpu = resultIdentity(FILE_SHA, H200, "max");
    const generate = (modelSha256: string) =>
      generateKey({ modelSha256, prompt: "p", maxTokens: 8, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "none" } });
    assert.notEqual(generate(cpu), generate(gpu));
    assert.notEqual(embedKey(cpu, "t", 42, "query"), embedKey(gpu, "t", 42, "query"));
    assert.notEqual(rerankKey(cpu, "q", "d", "task", 42), rerankKey(gpu, "q", "d", "task", 42));
  });
});

describe("engines on different backends sharing one cache", () => {
  let dir: string;
  let fileSha: string;
  let settingsFor: (gpu: Settings["gpu"]) => Settings;
  // The CPU binary stands in for a GPU one: only the identity is under test here.
  const pretendGpu = async (): Promise<Runtime> => ({ llama: (await openRuntime("off")).llama, compute: H200 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "steadytext-gpu-"));
    const written = await writeTestModels(join(dir, "test-models"));
    fileSha = written.find((m) => m.kind === "embedding")!.sha256;
    settingsFor = (gpu) => loadSettings({ STEADYTEXT_CACHE_DIR: dir, STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_GPU: gpu });
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("an answer computed on a GPU is cached under the GPU identity and never served to a CPU engine", async () => {
    const params = parseParams(embedParams, { text_input: "computed where?" });
    const cpuKey = embedKey(fileSha, "computed where?", 42, "query");
    const gpuKey = embedKey(resultIdentity(fileSha, H200, "max"), "computed where?", 42, "query");

    const gpu = new Engine(settingsFor("vulkan"), { runtime: pretendGpu });
    try {
      await gpu.embed(params);
      assert.ok(gpu.cache!.get("embedding", gpuKey), "stored under the GPU identity");
      assert.equal(gpu.cache!.get("embedding", cpuKey), undefined, "and not under the CPU one");
      const status = gpu.host.modelStatus().find((m) => m.role === "embedding")!;
      assert.equal(status.backend, "vulkan");
      assert.equal(status.device, "NVIDIA H200");
      assert.equal(status.identity, resultIdentity(fileSha, H200, "max"));
      assert.equal(status.sha256, fileSha);
    } finally {
      await gpu.close();
    }

    const cpu = new Engine(settingsFor("off"));
    try {
      await cpu.embed(params);
      assert.ok(cpu.cache!.get("embedding", cpuKey), "the CPU engine computed and stored its own answer");
      const status = cpu.host.modelStatus().find((m) => m.role === "embedding")!;
      assert.deepEqual([status.backend, status.device, status.gpu_layers, status.identity], ["cpu", "cpu", 0, fileSha]);
    } finally {
      await cpu.close();
    }
  });

  test("with the model file gone, a GPU engine looks cached answers up under the GPU identity", async () => {
    const lastFileSha = "d".repeat(64);
    const settings = { ...settingsFor("vulkan"), testModels: false, modelPaths: { generation: join(dir, "gone.gguf") } };
    const engine = new Engine(settings, { runtime: pretendGpu });
    try {
      // The local cache remembers the file's sha256 per selector; the engine combines it with the backend it runs on.
      engine.cache!.rememberIdentity("generation:default", lastFileSha, "gone.gguf");
      const keyFor = (modelSha256: string) =>
        generateKey({ modelSha256, prompt: "cached where?", maxTokens: 4, seed: 42, eosString: "[EOS]", temperature: 0, constraint: { kind: "none" } });
      engine.cache!.put("generation", keyFor(lastFileSha), encodeText("from the CPU"));
      engine.cache!.put("generation", keyFor(resultIdentity(lastFileSha, H200, "max")), encodeText("from the GPU"));
      assert.equal(await engine.generate(parseParams(generateParams, { prompt: "cached where?", max_new_tokens: 4 })), "from the GPU");
    } finally {
      await engine.close();
    }
  });

  test("no two requests share a decode batch: each generation context holds a single sequence", async () => {
    const engine = new Engine({ ...settingsFor("off"), contextsPerModel: 2 });
    try {
      const loaded = await engine.host.get(engine.resolveDefaults().find((m) => m.role === "generation")!);
      const pool = loaded.generationSlots();
      const leases = await Promise.all([pool.acquire(), pool.acquire()]);
      assert.notEqual(leases[0]!.resource.sequence.context, leases[1]!.resource.sequence.context, "concurrent requests get separate contexts");
      for (const lease of leases) {
        assert.equal(lease.resource.sequence.context.totalSequences, 1);
        lease.release();
      }
    } finally {
      await engine.close();
    }
  });

  test("warm-up runs each default model that is on disk once, marks it warmed, and skips a missing one", async () => {
    const settings = { ...settingsFor("off"), modelPaths: { reranking: join(dir, "no-such-reranker.gguf") } };
    const engine = new Engine(settings);
    const cached = () => engine.cache!.stats().reduce((sum, s) => sum + s.entries, 0);
    try {
      const before = cached();
      await warmUp(engine.host, engine.resolveDefaults());
      const status = engine.host.modelStatus();
      assert.deepEqual(
        status.map((m) => [m.role, m.loaded, m.warmed]).sort(),
        [["embedding", true, true], ["generation", true, true]],
      );
      assert.equal(cached(), before, "and caches nothing");
    } finally {
      await engine.close();
    }
  });
});

const gpuTypes = await getLlamaGpuTypes("supported");
const noGpu = gpuTypes.every((type) => type === false) ? false : "this machine has a GPU backend";

describe("auto without a GPU", { skip: noGpu }, () => {
  test("with STEADYTEXT_GPU=auto and no usable GPU, models compute on the CPU and one log line says so and why", async () => {
    const lines: Array<{ message: string; reason: string }> = [];
    const runtime = await openRuntime("auto", (message, reason) => lines.push({ message, reason }));
    assert.equal(runtime.llama.gpu, false);
    assert.deepEqual({ ...runtime.compute, fallback: typeof runtime.compute.fallback }, { setting: "auto", backend: "cpu", devices: [], fallback: "string" });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.message, /STEADYTEXT_GPU=auto: no GPU backend is usable here, so models compute on the CPU/);
    assert.equal(lines[0]!.reason, runtime.compute.fallback);
  });

  test("off opens the CPU binary and logs nothing", async () => {
    const lines: string[] = [];
    const runtime = await openRuntime("off", (message) => lines.push(message));
    assert.equal(runtime.llama.gpu, false);
    assert.deepEqual(runtime.compute, CPU);
    assert.deepEqual(lines, []);
  });

  for (const backend of ["vulkan", "cuda"] as const) {
    test(`STEADYTEXT_GPU=${backend} where ${backend} cannot run is an error naming the setting and the way out`, async () => {
      await assert.rejects(
        openRuntime(backend),
        (e: unknown) => e instanceof ComputeBackendError && e.message.includes(`STEADYTEXT_GPU=${backend}`) && e.message.includes("STEADYTEXT_GPU=auto"),
      );
    });
  }

  test("a process computes on one backend: asking for a second one is an error", async () => {
    await computeRuntime("off");
    await assert.rejects(computeRuntime("auto"), /already computes with STEADYTEXT_GPU=off; it cannot also use auto/);
  });
});
