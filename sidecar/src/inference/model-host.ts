// Loads each model file once, lazily, behind a shared promise (the lock),
// and keeps a small pool of contexts per model so several requests run at
// once. Any failure to find, download or load a model is `unavailable`:
// the caller answers NULL, never a made-up value.

import { access } from "node:fs/promises";
import { availableParallelism } from "node:os";
import {
  LlamaChat,
  resolveChatWrapper,
  type ChatWrapper,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaModel,
} from "node-llama-cpp";
import { DEFAULT_CONTEXTS_PER_MODEL, type GpuSetting, type ModelRole, type Settings } from "../config/settings.js";
import { downloadModel } from "../models/download.js";
import { deviceClass, resultIdentity } from "../models/compute-identity.js";
import type { ModelIdentities } from "../models/identity.js";
import type { ResolvedModel } from "../models/resolve.js";
import { unavailable } from "../protocol/errors.js";
import { logger } from "../util/logger.js";
import { ResourcePool } from "../util/resource-pool.js";
import { ComputeBackendError, computeRuntime, cpuCompute, type ComputeDevice, type Runtime } from "./runtime.js";

const DEFAULT_CONTEXT_WINDOW = 8192;
/** Below this size a model computes so little per token that extra threads only add synchronisation. */
const SMALL_MODEL_BYTES = 64 * 1024 * 1024;
/** Fixed so prompts are always split the same way: a different batch size can change the low bits. */
const GENERATION_BATCH_SIZE = 512;

/** One context with one sequence: a request runs alone in it, from an empty state. */
export interface GenerationSlot {
  sequence: LlamaContextSequence;
  chat: LlamaChat;
  clear(): Promise<void>;
}

export class LoadedModel {
  readonly chatWrapper: ChatWrapper;
  private generationPool: ResourcePool<GenerationSlot> | undefined;
  private embeddingPool: ResourcePool<LlamaEmbeddingContext> | undefined;

  constructor(
    readonly resolved: ResolvedModel,
    readonly model: LlamaModel,
    /** The model file's sha256. */
    readonly sha256: string,
    private readonly settings: Settings,
    /** Where it computes. */
    readonly compute: ComputeDevice,
    /** What cache keys use: the file's sha256 on the CPU, a hash of file, backend, device and layers on a GPU. */
    readonly identity: string,
  ) {
    this.chatWrapper = resolveChatWrapper(model);
  }

  get name(): string {
    return this.resolved.name;
  }

  /**
   * Threads per context: STEADYTEXT_THREADS, else one for tiny models (a
   * second thread made the test models 10x slower) and otherwise the cores
   * shared among the contexts. Results are the same for any thread count.
   */
  get threads(): number {
    if (this.settings.threads !== undefined) return this.settings.threads;
    if (this.model.size < SMALL_MODEL_BYTES) return 1;
    return Math.max(1, Math.floor(availableParallelism() / this.contexts));
  }

  /**
   * Requests computing at once: STEADYTEXT_CONTEXTS_PER_MODEL, else two, and
   * two per core for a small model. A small model's token costs so little
   * that the JavaScript work between tokens (on the one main thread) is what
   * keeps a context waiting; more contexts than cores keep the cores busy
   * (test models, 2 cores, 8 backends: 1.4-1.7x one backend with 2 contexts,
   * 1.8-1.9x with 4). Outputs do not depend on it: a request always runs
   * alone in its context, from an empty state.
   */
  get contexts(): number {
    if (this.settings.contextsPerModel !== undefined) return this.settings.contextsPerModel;
    if (this.model.size < SMALL_MODEL_BYTES) return Math.max(DEFAULT_CONTEXTS_PER_MODEL, 2 * availableParallelism());
    return DEFAULT_CONTEXTS_PER_MODEL;
  }

  /** Tokens one request may use: prompt plus output, or embedding input. */
  get contextSize(): number {
    return Math.min(this.model.trainContextSize, this.settings.maxContextWindow ?? DEFAULT_CONTEXT_WINDOW);
  }

  generationSlots(): ResourcePool<GenerationSlot> {
    this.generationPool ??= new ResourcePool(this.contexts, async () => {
      const contextSize = this.contextSize;
      const context = await this.model.createContext({
        contextSize,
        batchSize: Math.min(GENERATION_BATCH_SIZE, contextSize),
        threads: this.threads,
        sequences: 1,
      });
      const sequence = context.getSequence();
      return {
        sequence,
        chat: new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper }),
        clear: () => sequence.clearHistory(),
      };
    });
    return this.generationPool;
  }

  embeddingContexts(): ResourcePool<LlamaEmbeddingContext> {
    this.embeddingPool ??= new ResourcePool(this.contexts, () =>
      // The whole input is one batch, so pooling sees every token at once.
      this.model.createEmbeddingContext({ contextSize: this.contextSize, batchSize: this.contextSize, threads: this.threads }),
    );
    return this.embeddingPool;
  }
}

export interface ModelStatus {
  role: ModelRole;
  name: string;
  /** The model file's sha256. */
  sha256: string | null;
  loaded: boolean;
  error: string | null;
  /** "cpu", "vulkan", "cuda" or "metal"; null until loaded. */
  backend: ComputeDevice["backend"] | null;
  /** The device class: GPU names, or "cpu". */
  device: string | null;
  /** Layers on the GPU (0 on the CPU). */
  gpu_layers: number | null;
  /** The identity its results are cached under (equals sha256 on the CPU). */
  identity: string | null;
  /** Whether the daemon's start-up warm-up has run it once (GPU backends only). */
  warmed: boolean;
}

export class ModelHost {
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private readonly downloads = new Map<string, Promise<void>>();
  private readonly status = new Map<string, ModelStatus>();
  private openedCompute: ComputeDevice | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly identities: ModelIdentities,
    /** The process's llama.cpp runtime for a STEADYTEXT_GPU setting (replaceable in tests). */
    private readonly openRuntime: (setting: GpuSetting) => Promise<Runtime> = computeRuntime,
  ) {}

  /** The loaded model for a resolved request, loading it on first use. Throws `unavailable`. */
  async get(resolved: ResolvedModel): Promise<LoadedModel> {
    let loading = this.models.get(resolved.path);
    if (!loading) {
      loading = this.load(resolved);
      this.models.set(resolved.path, loading);
      loading.catch((error: unknown) => {
        this.models.delete(resolved.path);
        this.status.set(resolved.path, {
          role: resolved.role,
          name: resolved.name,
          sha256: null,
          loaded: false,
          error: error instanceof Error ? error.message : String(error),
          backend: null,
          device: null,
          gpu_layers: null,
          identity: null,
          warmed: false,
        });
      });
    }
    return loading;
  }

  /** Where this process computes; opens the runtime. Throws `unavailable`. */
  async compute(): Promise<ComputeDevice> {
    return (await this.runtime()).compute;
  }

  /** The llama.cpp runtime models and grammars use. Throws `unavailable` when the asked-for backend cannot run. */
  async runtime(): Promise<Runtime> {
    try {
      const runtime = await this.openRuntime(this.settings.gpu);
      this.openedCompute = runtime.compute;
      return runtime;
    } catch (error) {
      if (error instanceof ComputeBackendError) throw unavailable(error.message);
      throw error;
    }
  }

  /**
   * The identity results of a model file are cached under on this process's
   * backend (see models/compute-identity.ts). With STEADYTEXT_GPU=off it is
   * the file's sha256 and nothing is opened.
   */
  async resultIdentity(role: ModelRole, fileSha256: string): Promise<string> {
    if (this.settings.gpu === "off") return fileSha256;
    return resultIdentity(fileSha256, await this.compute(), this.settings.gpuLayers[role]);
  }

  /** Where this process computes, if known yet without opening anything (always known when STEADYTEXT_GPU is off). */
  knownCompute(): ComputeDevice | undefined {
    return this.settings.gpu === "off" ? cpuCompute("off") : this.openedCompute;
  }

  /** Record that the start-up warm-up ran this model. */
  markWarmed(resolved: ResolvedModel): void {
    const status = this.status.get(resolved.path);
    if (status) status.warmed = true;
  }

  /** The sha256 of a model file without loading it (for publishing to SQL); undefined if it is not on disk. */
  async identityIfPresent(resolved: ResolvedModel): Promise<string | undefined> {
    try {
      // of() stats the file first: a missing file throws, with no separate existence check.
      return await this.identities.of(resolved.path);
    } catch {
      return undefined;
    }
  }

  modelStatus(): ModelStatus[] {
    return [...this.status.values()];
  }

  private async ensureFile(resolved: ResolvedModel): Promise<void> {
    try {
      await access(resolved.path);
      return;
    } catch {
      // missing: download it if we may
    }
    const source = resolved.source;
    if (!source) throw unavailable(`model file ${resolved.path} does not exist`);
    if (!resolved.downloadable) {
      throw unavailable(
        `model ${source.repo}/${source.filename} is not in ${this.settings.modelDir}; models a request names by repo and file are only loaded from there`,
      );
    }
    if (!this.settings.allowModelDownloads) {
      throw unavailable(
        `model ${source.repo}/${source.filename} is not in ${this.settings.modelDir} and STEADYTEXT_ALLOW_MODEL_DOWNLOADS is off`,
      );
    }
    let download = this.downloads.get(resolved.path);
    if (!download) {
      download = downloadModel({
        endpoint: this.settings.hfEndpoint,
        repo: source.repo,
        filename: source.filename,
        destination: resolved.path,
        // A terminal gets a progress bar; a daemon's log gets a line every 64 MiB.
        progressBar: process.stderr.isTTY === true,
      }).then((sha256) => this.identities.remember(resolved.path, sha256));
      this.downloads.set(resolved.path, download);
      void download.finally(() => this.downloads.delete(resolved.path)).catch(() => undefined);
    }
    try {
      await download;
    } catch (error) {
      throw unavailable(error instanceof Error ? error.message : String(error));
    }
  }

  private async load(resolved: ResolvedModel): Promise<LoadedModel> {
    await this.ensureFile(resolved);
    const started = performance.now();
    const { llama, compute } = await this.runtime();
    const gpuLayers = this.settings.gpuLayers[resolved.role];
    let model: LlamaModel;
    try {
      // The CPU path loads exactly as before; a GPU offloads a fixed number of layers, never a VRAM-dependent "auto".
      model = await llama.loadModel({ modelPath: resolved.path, ...(compute.backend === "cpu" ? {} : { gpuLayers }) });
    } catch (error) {
      throw unavailable(`model ${resolved.name} could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
    }
    const sha256 = await this.identities.of(resolved.path);
    const identity = resultIdentity(sha256, compute, gpuLayers);
    const loaded = new LoadedModel(resolved, model, sha256, this.settings, compute, identity);
    const device = deviceClass(compute);
    this.status.set(resolved.path, {
      role: resolved.role,
      name: resolved.name,
      sha256,
      loaded: true,
      error: null,
      backend: compute.backend,
      device,
      gpu_layers: model.gpuLayers,
      identity,
      warmed: false,
    });
    logger().info(
      { model: resolved.name, role: resolved.role, sha256, backend: compute.backend, device, gpuLayers: model.gpuLayers, ms: Math.round(performance.now() - started) },
      "model loaded",
    );
    return loaded;
  }

  async dispose(): Promise<void> {
    const loaded = await Promise.allSettled(this.models.values());
    this.models.clear();
    await Promise.all(loaded.map((r) => (r.status === "fulfilled" ? r.value.model.dispose() : undefined)));
  }
}
