// bench/gpu.sh: determinism and throughput of GPU offload, against the CPU
// of the same machine. Installs nothing and reaches no network: the models
// are random-weight GGUF files the project generates itself (realistic
// shapes on a GPU, the tiny test models otherwise), computed by the
// sidecar's own code in separate processes (bench/gpu-worker.ts) and by a
// daemon started for the run.
//
// Checks (each request is compared by the sha256 of its text or of its
// vector's float32 bytes):
//   alone, run to run       the same requests twice in the same context
//   fresh contexts          the model loaded again, new contexts
//   second process          another process, same backend
//   concurrent requests     all requests at once (twice each) through a daemon
//                           with several contexts per model
// For information, not checks: prompts decoded together as sequences of one
// context (the daemon never does that: on a GPU it changes their bits), and
// whether this backend's answers equal the CPU's (on a GPU they do not: that
// is why the backend is part of a result's identity). Then throughput, one
// call at a time, against STEADYTEXT_GPU=off on the same machine.
//
//   bench/gpu.sh [--gpu auto|vulkan|cuda|off] [--models tiny|realistic]

import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { getLlamaGpuTypes } from "node-llama-cpp";
import { freePort, SidecarProcess } from "../scripts/lib/sidecar-process.js";
import { GPU_SETTINGS, type GpuSetting } from "../sidecar/src/config/settings.js";
import type { StatusResult } from "../sidecar/src/protocol/index.js";
import { buildTestModel, TEST_MODEL_SHAPES, type TestModelShape } from "../sidecar/src/models/test-models/architectures.js";
import { encodeGguf } from "../sidecar/src/models/test-models/gguf-writer.js";
import { sha256, vectorHash, type WorkerConfig, type WorkerResult } from "./gpu-worker.js";

const ROOT = resolve(import.meta.dirname, "..");
const WORKER = join(ROOT, "bench", "gpu-worker.ts");

/** Random-weight models shaped like small real ones: a 0.19B llama generator and a 0.15B Qwen3-style embedder (f32). */
const REALISTIC: Record<"generation" | "embedding", TestModelShape> = {
  generation: { arch: "llama", embeddingLength: 1024, blockCount: 16, feedForwardLength: 2816, headCount: 16, headCountKv: 8, headDim: 64, contextLength: 2048 },
  embedding: { arch: "qwen3", embeddingLength: 1024, blockCount: 12, feedForwardLength: 3072, headCount: 16, headCountKv: 8, headDim: 64, contextLength: 2048, poolingType: 1 },
};

const { values: flags } = parseArgs({
  options: {
    gpu: { type: "string", default: process.env.STEADYTEXT_GPU ?? "auto" },
    models: { type: "string" },
  },
});
if (!(GPU_SETTINGS as readonly string[]).includes(flags.gpu)) throw new Error(`--gpu must be one of ${GPU_SETTINGS.join(", ")}`);
const gpu = flags.gpu as GpuSetting;
const gpuPresent = gpu !== "off" && (await getLlamaGpuTypes("supported")).some((type) => type !== false);
const models = (flags.models ?? (gpuPresent ? "realistic" : "tiny")) as "tiny" | "realistic";
if (models !== "tiny" && models !== "realistic") throw new Error("--models must be tiny or realistic");

const TOKENS = 64;
// About 64 tokens each with either vocabulary.
const prompts = ["Write a short story about a lighthouse keeper.", "List three facts about PostgreSQL indexes.", "Explain determinism to a child."];
const texts = Array.from({ length: 8 }, (_, i) =>
  `Document ${i}: ${["vectors", "indexes", "queries", "tables", "caches", "models", "tokens", "shaders"][i]} ` +
  "are stored and searched by the database so that similar passages land near each other in the embedding space. ".repeat(2),
);

async function writeModels(dir: string): Promise<{ generation: string; embedding: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { generation: join(dir, `bench-${models}-generation.gguf`), embedding: join(dir, `bench-${models}-embedding.gguf`) };
  for (const kind of ["generation", "embedding"] as const) {
    const shape = models === "realistic" ? REALISTIC[kind] : TEST_MODEL_SHAPES[kind];
    const path = paths[kind];
    // The recipe is deterministic: a file already written for this shape is reused.
    const marker = `${path}.shape.json`;
    const wanted = JSON.stringify(shape);
    const existing = await readFile(marker, "utf8").catch(() => "");
    if (existing === wanted && (await stat(path).catch(() => undefined))) continue;
    const { metadata, tensors } = buildTestModel(kind, 42, shape);
    await writeFile(path, encodeGguf(metadata, tensors));
    await writeFile(marker, wanted);
  }
  return paths;
}

function runWorker(config: WorkerConfig): Promise<WorkerResult> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify(config)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("exit", (code) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      if (code === 0 && line.startsWith("{")) resolveResult(JSON.parse(line) as WorkerResult);
      else reject(new Error(`worker (STEADYTEXT_GPU=${config.gpu}) exited with ${String(code)}:\n${stderr.slice(-4000)}`));
    });
  });
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const verdict = (a: readonly string[], b: readonly string[]): string => (same(a, b) ? "identical" : `DIFFER (${a.filter((x, i) => x !== b[i]).length}/${a.length})`);
const where = (c: WorkerResult["compute"]): string =>
  c.backend === "cpu" ? `cpu${c.fallback ? ` (no GPU: ${c.fallback})` : ""}` : `${c.backend} (${c.devices.join(" + ")})`;

const started = performance.now();
const work = await mkdtemp(join(tmpdir(), "steadytext-gpu-bench-"));
let failures = 0;
try {
  const paths = await writeModels(join(ROOT, ".steadytext", "bench-models"));
  const sizes = await Promise.all([stat(paths.generation), stat(paths.embedding)]);
  const threads = models === "tiny" ? 1 : availableParallelism();
  const base = { cacheDir: work, generationModel: paths.generation, embeddingModel: paths.embedding, prompts, texts, maxTokens: TOKENS, threads };
  const calls = models === "tiny" ? 40 : 12;

  const first = await runWorker({ ...base, gpu, throughputCalls: calls });
  const second = await runWorker({ ...base, gpu, throughputCalls: calls });
  const cpu = gpu === "off" ? second : await runWorker({ ...base, gpu: "off", throughputCalls: calls });

  // The daemon: several contexts per model, every request in flight at once (twice each, interleaved).
  const daemonStarted = performance.now();
  const daemon = await SidecarProcess.start({
    port: await freePort(),
    cacheDir: join(work, "daemon"),
    env: {
      STEADYTEXT_GPU: gpu,
      STEADYTEXT_GENERATION_MODEL_PATH: paths.generation,
      STEADYTEXT_EMBEDDING_MODEL_PATH: paths.embedding,
      STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0",
      STEADYTEXT_CONTEXTS_PER_MODEL: "4",
      STEADYTEXT_THREADS: String(threads),
      STEADYTEXT_MAX_CONTEXT_WINDOW: "2048",
    },
  }, 240_000);
  let status: StatusResult;
  let daemonGeneration: string[];
  let daemonEmbedding: string[];
  let warmedMs: number;
  const client = daemon.client(240_000);
  try {
    // On a GPU the daemon warms both models up at start; wait until it has (on the CPU there is no warm-up).
    const deadline = Date.now() + 240_000;
    for (;;) {
      status = await client.request<StatusResult>("status");
      const done = (role: string) => status.models.some((m) => m.role === role && (m.warmed === true || m.error !== null));
      if (!status.compute || status.compute.backend === "cpu" || (done("generation") && done("embedding"))) break;
      if (Date.now() > deadline) throw new Error(`the daemon did not finish its warm-up: ${JSON.stringify(status.models)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    warmedMs = performance.now() - daemonStarted;
    const rounds = [0, 1];
    const generated = Promise.all(
      rounds.flatMap(() => prompts.map((prompt) => client.request<string>("generate", { prompt, max_new_tokens: TOKENS, use_cache: false }))),
    );
    const embedded = Promise.all(
      rounds.flatMap(() => texts.map((text) => client.request<number[]>("embed", { text_input: text, mode: "passage", use_cache: false }))),
    );
    daemonGeneration = (await generated).map((text) => sha256(text));
    daemonEmbedding = (await embedded).map((vector) => vectorHash(vector));
    status = await client.request<StatusResult>("status");
  } finally {
    await client.close();
    await daemon.stop();
  }

  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  console.log(`pg_steadytext GPU bench: STEADYTEXT_GPU=${gpu} computes on ${where(first.compute)}`);
  console.log(
    `models: ${models} random weights (generation ${mb(sizes[0]!.size)}, ${first.gpuLayers.generation} layers on the GPU; ` +
      `embedding ${mb(sizes[1]!.size)}, ${first.gpuLayers.embedding} layers on the GPU); ${prompts.length} prompts x ${TOKENS} greedy tokens, ${texts.length} texts`,
  );
  if (!gpuPresent) console.log("no GPU backend is usable here: this run proves the script end to end on the CPU, and its ratios compare the CPU with itself");
  console.log("");
  console.log(`${"determinism (sha256 of every answer)".padEnd(66)} ${"generation".padEnd(15)} embeddings`);
  const row = (name: string, g: string, e: string) => {
    if (g !== "identical" || e !== "identical") failures++;
    console.log(`  ${name.padEnd(64)} ${g.padEnd(15)} ${e}`);
  };
  row("alone, run to run (same context)", verdict(first.generation, first.generationAgain), verdict(first.embedding, first.embeddingAgain));
  row("fresh contexts (model loaded again)", verdict(first.generation, first.generationFresh), verdict(first.embedding, first.embeddingFresh));
  row("second process", verdict(first.generation, second.generation), verdict(first.embedding, second.embedding));
  row(
    `concurrent through the daemon (${daemonGeneration.length + daemonEmbedding.length} in flight, 4 contexts/model)`,
    verdict([...first.generation, ...first.generation], daemonGeneration),
    verdict([...first.embedding, ...first.embedding], daemonEmbedding),
  );
  console.log(
    `  ${"prompts batched in one context (the daemon never does)".padEnd(64)} ${verdict(first.generation, first.generationBatched).padEnd(15)} -`,
  );
  console.log(
    `  ${"this backend against the CPU (not guaranteed)".padEnd(64)} ${verdict(cpu.generation, first.generation).padEnd(15)} ${verdict(cpu.embedding, first.embedding)}`,
  );
  console.log("");
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log(`throughput, one call at a time, against STEADYTEXT_GPU=off on this machine (${threads} CPU thread${threads > 1 ? "s" : ""})`);
  console.log(`  embeddings/s  ${first.embeddingsPerSecond.toFixed(1).padStart(9)}  vs CPU ${cpu.embeddingsPerSecond.toFixed(1).padStart(9)}  = ${ratio(first.embeddingsPerSecond, cpu.embeddingsPerSecond)}`);
  console.log(`  tokens/s      ${first.tokensPerSecond.toFixed(1).padStart(9)}  vs CPU ${cpu.tokensPerSecond.toFixed(1).padStart(9)}  = ${ratio(first.tokensPerSecond, cpu.tokensPerSecond)}`);
  console.log(
    `first call after loading (no warm-up): generation ${first.firstCallMs.generation.toFixed(0)} ms, embedding ${first.firstCallMs.embedding.toFixed(0)} ms ` +
      `(second process ${second.firstCallMs.generation.toFixed(0)} / ${second.firstCallMs.embedding.toFixed(0)} ms; CPU ${cpu.firstCallMs.generation.toFixed(0)} / ${cpu.firstCallMs.embedding.toFixed(0)} ms)`,
  );
  console.log(`daemon: answering and warmed up ${warmedMs.toFixed(0)} ms after its start`);
  for (const m of status.models) {
    console.log(`  ${m.role}: ${m.name} on ${m.backend ?? "?"} (${m.device ?? "?"}), ${m.gpu_layers ?? "?"} GPU layers, warmed: ${String(m.warmed ?? false)}, identity ${m.identity?.slice(0, 12) ?? "?"}... (file ${m.sha256?.slice(0, 12) ?? "?"}...)`);
  }
  console.log("");
  console.log(`${failures === 0 ? "PASS" : "FAIL"}: ${failures === 0 ? "every determinism check is bit-identical" : `${failures} determinism check(s) differ`} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
process.exitCode = failures === 0 ? 0 : 1;
