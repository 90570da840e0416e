// The two ways the library answers: through a running daemon (one DEALER
// socket per process) or with the models in this process (an Engine, sharing
// the daemon's cache directory and therefore its cached answers).

import { DaemonClient, DaemonError } from "../client/daemon-client.js";
import type { Settings } from "../config/settings.js";
import { Engine } from "../engine/engine.js";
import { WordChunker } from "../daemon/word-chunker.js";
import { resolveModel } from "../models/resolve.js";
import { embedParams, generateParams, parseParams, rerankParams, type GenerationSize } from "../protocol/index.js";

export interface PreloadOptions {
  size?: GenerationSize;
  skipGeneration?: boolean;
  skipEmbeddings?: boolean;
  skipReranking?: boolean;
}

export interface Backend {
  readonly kind: "daemon" | "local";
  generate(params: Record<string, unknown>): Promise<string>;
  stream(params: Record<string, unknown>): AsyncGenerator<string>;
  /** One vector per text for a list (not the protocol's averaged `embed`). */
  embed(params: Record<string, unknown>): Promise<number[] | number[][]>;
  rerank(params: Record<string, unknown>): Promise<Array<[string, number]>>;
  preload(options: PreloadOptions): Promise<void>;
  close(): Promise<void>;
}

/** A generation may run for minutes on a CPU; the daemon answers pings at once, so this only bounds a dead daemon. */
const DAEMON_REQUEST_TIMEOUT_MS = 600_000;

export class DaemonBackend implements Backend {
  readonly kind = "daemon";
  private constructor(private readonly client: DaemonClient) {}

  /** A backend when a daemon answers a ping within `pingTimeoutMs`, else undefined. */
  static async connect(settings: Settings, pingTimeoutMs: number): Promise<DaemonBackend | undefined> {
    const client = new DaemonClient(settings.endpoint, DAEMON_REQUEST_TIMEOUT_MS);
    if (await client.ping(pingTimeoutMs)) return new DaemonBackend(client);
    await client.close();
    return undefined;
  }

  generate(params: Record<string, unknown>): Promise<string> {
    return this.client.request<string>("generate", params);
  }

  stream(params: Record<string, unknown>): AsyncGenerator<string> {
    return this.client.stream(params);
  }

  embed(params: Record<string, unknown>): Promise<number[] | number[][]> {
    return this.client.request(Array.isArray(params.text_input) ? "embed_batch" : "embed", params);
  }

  rerank(params: Record<string, unknown>): Promise<Array<[string, number]>> {
    return this.client.request("rerank", { ...params, return_scores: true });
  }

  /** The daemon preloads its own models at start; here it only has to be there. */
  async preload(): Promise<void> {
    if (!(await this.client.ping(5000))) throw new DaemonError("unavailable", `the daemon on ${this.client.endpoint} does not answer`);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export class LocalBackend implements Backend {
  readonly kind = "local";
  private constructor(private readonly engine: Engine) {}

  static async open(settings: Settings): Promise<LocalBackend> {
    if (settings.testModels) {
      const { writeTestModels } = await import("../models/test-models/index.js");
      await writeTestModels(settings.testModelDir);
    }
    return new LocalBackend(new Engine(settings));
  }

  generate(params: Record<string, unknown>): Promise<string> {
    return this.engine.generate(parseParams(generateParams, params));
  }

  /** Chunks as the model produces them, split at the same word boundaries as the daemon's stream. */
  async *stream(params: Record<string, unknown>): AsyncGenerator<string> {
    const chunks: string[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    const controller = new AbortController();
    const chunker = new WordChunker((chunk) => {
      chunks.push(chunk);
      wake?.();
    });
    const generation = this.engine
      .generate(parseParams(generateParams, params), { signal: controller.signal }, (text) => chunker.push(text))
      .then(
        () => chunker.end(),
        (error: unknown) => (failure = error),
      )
      .finally(() => {
        done = true;
        wake?.();
      });
    try {
      for (;;) {
        if (chunks.length > 0) {
          yield chunks.shift()!;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (done) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      // A consumer that stopped early stops the generation too.
      if (!done) controller.abort();
      await generation;
    }
  }

  embed(params: Record<string, unknown>): Promise<number[] | number[][]> {
    return this.engine.embed(parseParams(embedParams, params));
  }

  rerank(params: Record<string, unknown>): Promise<Array<[string, number]>> {
    return this.engine.rerank(parseParams(rerankParams, params));
  }

  async preload(options: PreloadOptions): Promise<void> {
    const settings = this.engine.settings;
    if (!options.skipGeneration) await this.engine.host.get(resolveModel(settings, "generation", { size: options.size ?? null }));
    if (!options.skipEmbeddings) await this.engine.host.get(resolveModel(settings, "embedding", {}));
    if (!options.skipReranking) await this.engine.host.get(resolveModel(settings, "reranking", {}));
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}
