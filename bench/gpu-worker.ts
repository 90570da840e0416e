// One process of bench/gpu.sh: opens the llama.cpp runtime for the
// STEADYTEXT_GPU it is given, loads the models through the sidecar's own
// ModelHost, and computes through the sidecar's own generateText and
// embedTexts (what the daemon answers with). It prints one JSON line:
// where it computed, the hash of every answer (alone, twice in the same
// context, then again in fresh contexts), and its throughput.
//
//   node --import tsx bench/gpu-worker.ts '<WorkerConfig JSON>'

import { createHash } from "node:crypto";
import { join } from "node:path";
import { LlamaChat } from "node-llama-cpp";
import { loadSettings, type GpuSetting } from "../sidecar/src/config/settings.js";
import { embedTexts } from "../sidecar/src/inference/embed.js";
import { generateText } from "../sidecar/src/inference/generate.js";
import { ModelHost, type LoadedModel } from "../sidecar/src/inference/model-host.js";
import { ModelIdentities } from "../sidecar/src/models/identity.js";
import { resolveModel } from "../sidecar/src/models/resolve.js";
import { DEFAULT_EOS_STRING } from "../sidecar/src/protocol/messages.js";

export interface WorkerConfig {
  gpu: GpuSetting;
  cacheDir: string;
  generationModel: string;
  embeddingModel: string;
  prompts: string[];
  texts: string[];
  maxTokens: number;
  /** Calls timed for throughput (after the determinism checks, which also warm the model up). */
  throughputCalls: number;
  threads: number;
}

export interface WorkerResult {
  compute: { setting: string; backend: string; devices: string[]; fallback: string | null };
  gpuLayers: { generation: number; embedding: number };
  /** sha256 of each prompt's text and of each text's vector (float32 bytes), computed alone in a fresh context. */
  generation: string[];
  embedding: string[];
  /** The same requests again in the same contexts, and then in contexts of a newly loaded model. */
  generationAgain: string[];
  embeddingAgain: string[];
  generationFresh: string[];
  embeddingFresh: string[];
  /**
   * The prompts decoded together as sequences of one context (one decode
   * batch), which the daemon never does: on a GPU this changes the bits.
   */
  generationBatched: string[];
  firstCallMs: { generation: number; embedding: number };
  embeddingsPerSecond: number;
  tokensPerSecond: number;
}

export const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");
export const vectorHash = (vector: readonly number[]): string => sha256(new Uint8Array(Float32Array.from(vector).buffer));

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;
  const settings = loadSettings({
    STEADYTEXT_CACHE_DIR: config.cacheDir,
    STEADYTEXT_GPU: config.gpu,
    STEADYTEXT_GENERATION_MODEL_PATH: config.generationModel,
    STEADYTEXT_EMBEDDING_MODEL_PATH: config.embeddingModel,
    STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0",
    STEADYTEXT_CONTEXTS_PER_MODEL: "1",
    STEADYTEXT_THREADS: String(config.threads),
    STEADYTEXT_MAX_CONTEXT_WINDOW: "2048",
    STEADYTEXT_LOG_LEVEL: "warn",
  });
  const identities = new ModelIdentities(join(config.cacheDir, "model-identities.json"));
  const generationModel = resolveModel(settings, "generation", {});
  const embeddingModel = resolveModel(settings, "embedding", {});

  const generate = (loaded: LoadedModel, prompt: string) =>
    generateText(loaded, { prompt, maxTokens: config.maxTokens, temperature: 0, seed: 42, eosString: DEFAULT_EOS_STRING, trim: true });
  const embed = async (loaded: LoadedModel, text: string) => (await embedTexts(loaded, [text], "passage"))[0]!;
  const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const value = await work();
    return [value, performance.now() - started];
  };

  // First model load: each request alone, twice, in the one context per model.
  let host = new ModelHost(settings, identities);
  let generator = await host.get(generationModel);
  let embedder = await host.get(embeddingModel);
  const compute = await host.compute();
  const [firstText, firstGenerationMs] = await timed(() => generate(generator, config.prompts[0]!));
  const [firstVector, firstEmbeddingMs] = await timed(() => embed(embedder, config.texts[0]!));
  const generation = [sha256(firstText)];
  for (const prompt of config.prompts.slice(1)) generation.push(sha256(await generate(generator, prompt)));
  const embedding = [vectorHash(firstVector)];
  for (const text of config.texts.slice(1)) embedding.push(vectorHash(await embed(embedder, text)));
  const generationAgain: string[] = [];
  for (const prompt of config.prompts) generationAgain.push(sha256(await generate(generator, prompt)));
  const embeddingAgain: string[] = [];
  for (const text of config.texts) embeddingAgain.push(vectorHash(await embed(embedder, text)));
  const gpuLayers = { generation: generator.model.gpuLayers, embedding: embedder.model.gpuLayers };
  await host.dispose();

  // The model loaded again: new weights in memory, new contexts.
  host = new ModelHost(settings, identities);
  generator = await host.get(generationModel);
  embedder = await host.get(embeddingModel);
  const generationFresh: string[] = [];
  for (const prompt of config.prompts) generationFresh.push(sha256(await generate(generator, prompt)));
  const embeddingFresh: string[] = [];
  for (const text of config.texts) embeddingFresh.push(vectorHash(await embed(embedder, text)));

  // What the daemon avoids: all prompts as sequences of one context, decoded in shared batches.
  const batchedContext = await generator.model.createContext({
    contextSize: 2048 * config.prompts.length,
    batchSize: 512,
    threads: config.threads,
    sequences: config.prompts.length,
  });
  const generationBatched = await Promise.all(
    config.prompts.map(async (prompt) => {
      const chat = new LlamaChat({ contextSequence: batchedContext.getSequence(), chatWrapper: generator.chatWrapper });
      const response = await chat.generateResponse([{ type: "user", text: prompt }], { maxTokens: config.maxTokens, temperature: 0, repeatPenalty: false });
      return sha256(response.response.trim());
    }),
  );
  await batchedContext.dispose();

  // Throughput, one call at a time: embeddings of the texts, and greedy tokens (counted as they come).
  const [, embedMs] = await timed(async () => {
    for (let i = 0; i < config.throughputCalls; i++) await embed(embedder, config.texts[i % config.texts.length]!);
  });
  let tokens = 0;
  const lease = await generator.generationSlots().acquire();
  const [, generateMs] = await timed(async () => {
    for (let i = 0; i < config.throughputCalls; i++) {
      await lease.resource.clear();
      const chat = new LlamaChat({ contextSequence: lease.resource.sequence, chatWrapper: generator.chatWrapper });
      await chat.generateResponse([{ type: "user", text: config.prompts[i % config.prompts.length]! }], {
        maxTokens: config.maxTokens,
        temperature: 0,
        repeatPenalty: false,
        onToken: (chunk) => (tokens += chunk.length),
      });
    }
  });
  lease.release();
  await host.dispose();

  const result: WorkerResult = {
    compute,
    gpuLayers,
    generation,
    embedding,
    generationAgain,
    embeddingAgain,
    generationFresh,
    embeddingFresh,
    generationBatched,
    firstCallMs: { generation: firstGenerationMs, embedding: firstEmbeddingMs },
    embeddingsPerSecond: (config.throughputCalls * 1000) / embedMs,
    tokensPerSecond: (tokens * 1000) / generateMs,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
