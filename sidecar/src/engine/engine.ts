// The engine answers generate, embed and rerank requests: it resolves the
// model, looks the answer up in the cache tiers, computes what is missing and
// writes it back. The daemon, the library and the CLI all go through it.

import { join } from "node:path";
import type { ModelRole, Settings } from "../config/settings.js";
import { embedKey, generateKey, rerankKey, type GenerationConstraint } from "../cache/key.js";
import { LocalCache, type CacheName } from "../cache/local-cache.js";
import type { MirrorEntry, PgMirror } from "../cache/pg-mirror.js";
import { embedTexts } from "../inference/embed.js";
import { generateText } from "../inference/generate.js";
import { compileConstraint, constraintFrom } from "../inference/grammar.js";
import { ModelHost } from "../inference/model-host.js";
import { scoreDocuments } from "../inference/rerank.js";
import type { Runtime } from "../inference/runtime.js";
import { ModelIdentities } from "../models/identity.js";
import { resolveModel, type ResolvedModel } from "../models/resolve.js";
import { invalidParams, ProtocolError, unavailable } from "../protocol/errors.js";
import type { EmbedParams, GenerateParams, RerankParams } from "../protocol/messages.js";
import { isRemoteRequest, remoteEmbed, remoteGenerate, remoteTarget } from "../remote/remote-provider.js";
import { decodeScore, decodeText, decodeVector, encodeScore, encodeText, encodeVector } from "../cache/cached-values.js";
import { logger } from "../util/logger.js";

export interface RequestContext {
  signal?: AbortSignal | undefined;
  /** The database a SQL request came from; results are mirrored there. */
  database?: string | undefined;
  /** The session user of a SQL request: its steadytext_rate_limits apply to work that needs a model. */
  user?: string | undefined;
  /** false when the client saw no steadytext_rate_limits row for the user: nothing to check or count. */
  rateLimited?: boolean | undefined;
}

export interface EngineOptions {
  /** Keep results in the local SQLite cache (default true). */
  localCache?: boolean;
  mirror?: PgMirror | undefined;
  /** Opens the llama.cpp runtime for STEADYTEXT_GPU (default: the process's shared one). */
  runtime?: ((setting: Settings["gpu"]) => Promise<Runtime>) | undefined;
}

interface Identity {
  sha256: string;
  name: string;
}

export class Engine {
  readonly host: ModelHost;
  readonly cache: LocalCache | undefined;
  private readonly mirror: PgMirror | undefined;
  /** The identity last recorded per selector, so the local cache is written only when it changes. */
  private readonly recordedIdentities = new Map<string, string>();

  constructor(
    readonly settings: Settings,
    options: EngineOptions = {},
  ) {
    this.host = new ModelHost(settings, new ModelIdentities(join(settings.cacheDir, "model-identities.json")), options.runtime);
    this.cache =
      options.localCache === false
        ? undefined
        : new LocalCache({
            path: join(settings.cacheDir, "caches", "steadytext-cache.sqlite3"),
            limits: settings.cacheLimits,
            ttlSeconds: settings.cacheTtlSeconds,
          });
    this.mirror = options.mirror;
  }

  /**
   * The model identity for cache keys, without loading the model: the file's
   * sha256 when it is on disk, else the last one seen for the selector, so
   * cached answers survive a missing model file; on a GPU, combined with the
   * backend and device (host.resultIdentity).
   */
  private async identity(resolved: ResolvedModel, database: string | undefined): Promise<Identity | undefined> {
    const fileSha256 = await this.host.identityIfPresent(resolved);
    if (fileSha256 === undefined) {
      const last = this.cache?.lastKnownIdentity(resolved.selector);
      return last && { sha256: await this.host.resultIdentity(resolved.role, last.sha256), name: last.name };
    }
    if (this.recordedIdentities.get(resolved.selector) !== fileSha256) {
      this.cache?.rememberIdentity(resolved.selector, fileSha256, resolved.name);
      this.recordedIdentities.set(resolved.selector, fileSha256);
    }
    const sha256 = await this.host.resultIdentity(resolved.role, fileSha256);
    this.mirror?.publishModel(database, resolved.selector, sha256, resolved.name);
    return { sha256, name: resolved.name };
  }

  private lookup(cache: CacheName, key: string | undefined, enabled: boolean): Buffer | undefined {
    return key && enabled ? this.cache?.get(cache, key) : undefined;
  }

  /** Per database: results not yet written to its steadytext_cache (undefined without a mirror). */
  mirrorBacklog(): Record<string, { queued: number; failures: number }> | undefined {
    return this.mirror?.backlog();
  }

  private async mirrorWrite(entry: MirrorEntry, ctx: RequestContext, sync: boolean): Promise<void> {
    if (!this.mirror) {
      if (sync) throw unavailable("the result cannot be written to the Postgres cache: STEADYTEXT_PG_URL is not set");
      return;
    }
    const written = this.mirror.write(ctx.database, entry, sync);
    if (sync) {
      await written.catch((error: unknown) => {
        throw unavailable(`the result could not be written to the Postgres cache: ${(error as Error).message}`);
      });
    }
  }

  /** Write a computed result to both tiers; with `sync`, wait until the Postgres row is committed. */
  private async store(cache: CacheName, value: Buffer, entry: MirrorEntry, ctx: RequestContext, sync: boolean): Promise<void> {
    this.cache?.put(cache, entry.key, value);
    await this.mirrorWrite(entry, ctx, sync);
  }

  /** A local hit for a SQL caller means its table lacks the row: write it there too. */
  private async backfill(entry: MirrorEntry, ctx: RequestContext, sync: boolean): Promise<void> {
    if (ctx.database !== undefined || sync) await this.mirrorWrite(entry, ctx, sync);
  }

  /** Rate limits apply only to work that reaches a model: cache hits (in SQL or here) are never limited. */
  private async admit(ctx: RequestContext): Promise<void> {
    if (ctx.user === undefined || ctx.rateLimited === false || !this.mirror) return;
    const refusal = await this.mirror.admit(ctx.database, ctx.user);
    if (refusal !== undefined) throw new ProtocolError("rate_limited", refusal);
  }

  async generate(params: GenerateParams, ctx: RequestContext = {}, onText?: (chunk: string) => void): Promise<string> {
    if (params.return_logprobs) throw invalidParams("return_logprobs is not supported");
    if (isRemoteRequest(params)) {
      // A provider's answer is not deterministic: it is never cached nor mirrored as if it were.
      await this.admit(ctx);
      const text = await remoteGenerate(remoteTarget(this.settings, params.model!), params, ctx.signal);
      onText?.(text);
      return text;
    }
    const resolved = resolveModel(this.settings, "generation", params);
    const constraint = constraintFrom(params);
    const keyFor = (sha256: string) =>
      generateKey({
        modelSha256: sha256,
        prompt: params.prompt,
        maxTokens: params.max_new_tokens,
        seed: params.seed,
        eosString: params.eos_string,
        temperature: params.temperature,
        constraint,
      });
    const sync = params.sync_mirror === true;
    const known = await this.identity(resolved, ctx.database);
    const cached = this.lookup("generation", known && keyFor(known.sha256), params.use_cache);
    if (cached && known) {
      // A hit is quick, but a caller that already gave up gets no answer (a stream must not outlive its client).
      ctx.signal?.throwIfAborted();
      const text = decodeText(cached);
      onText?.(text);
      await this.backfill(this.generationEntry(keyFor(known.sha256), params, constraint, known, text, 0), ctx, sync);
      return text;
    }

    await this.admit(ctx);
    const loaded = await this.host.get(resolved);
    const compiled = await compileConstraint((await this.host.runtime()).llama, constraint);
    const started = performance.now();
    const text = await generateText(loaded, {
      prompt: params.prompt,
      maxTokens: params.max_new_tokens,
      temperature: params.temperature,
      seed: params.seed,
      eosString: params.eos_string,
      grammar: compiled.grammar,
      trim: compiled.trim,
      signal: ctx.signal,
      onText,
    });
    compiled.check(text, params.max_new_tokens);
    if (params.use_cache) {
      const key = keyFor(loaded.identity);
      const entry = this.generationEntry(key, params, constraint, { sha256: loaded.identity, name: loaded.name }, text, performance.now() - started);
      await this.store("generation", encodeText(text), entry, ctx, sync);
    }
    return text;
  }

  private generationEntry(
    key: string,
    params: GenerateParams,
    constraint: GenerationConstraint,
    model: Identity,
    text: string,
    ms: number,
  ): MirrorEntry {
    return {
      key,
      kind: "generate",
      prompt: params.prompt,
      response: text,
      modelName: model.name,
      modelSha256: model.sha256,
      seed: params.seed,
      eosString: params.eos_string,
      params: { max_tokens: params.max_new_tokens, temperature: params.temperature, constraint: constraint.kind },
      generationTimeMs: ms,
    };
  }

  /** One vector for a string, a list of vectors for a list; each equals the single-text result bit for bit. */
  async embed(params: EmbedParams, ctx: RequestContext = {}): Promise<number[] | number[][]> {
    if (isRemoteRequest(params)) {
      await this.admit(ctx);
      const vectors = await remoteEmbed(remoteTarget(this.settings, params.model!), params, ctx.signal);
      return typeof params.text_input === "string" ? vectors[0]! : vectors;
    }
    const texts = typeof params.text_input === "string" ? [params.text_input] : params.text_input;
    const mode = params.mode ?? this.settings.embeddingMode;
    const resolved = resolveModel(this.settings, "embedding", params);
    const sync = params.sync_mirror === true;
    const known = await this.identity(resolved, ctx.database);
    const results: Array<number[] | undefined> = texts.map((text) => {
      const hit = this.lookup("embedding", known && embedKey(known.sha256, text, params.seed, mode), params.use_cache);
      return hit && decodeVector(hit);
    });
    const entryFor = (model: Identity, text: string, vector: number[], ms: number): MirrorEntry => ({
      key: embedKey(model.sha256, text, params.seed, mode),
      kind: "embed",
      prompt: text,
      embedding: vector,
      modelName: model.name,
      modelSha256: model.sha256,
      seed: params.seed,
      params: { mode },
      generationTimeMs: ms,
    });

    ctx.signal?.throwIfAborted();
    const missing = texts.map((_, i) => i).filter((i) => results[i] === undefined);
    if (known) {
      await Promise.all(
        texts.map((text, i) => (results[i] ? this.backfill(entryFor(known, text, results[i], 0), ctx, sync) : undefined)),
      );
    }
    if (missing.length > 0) {
      await this.admit(ctx);
      const loaded = await this.host.get(resolved);
      const started = performance.now();
      const vectors = await embedTexts(loaded, missing.map((i) => texts[i]!), mode, ctx.signal);
      const ms = (performance.now() - started) / missing.length;
      await Promise.all(
        missing.map(async (index, j) => {
          const vector = vectors[j]!;
          results[index] = vector;
          if (params.use_cache) await this.store("embedding", encodeVector(vector), entryFor({ sha256: loaded.identity, name: loaded.name }, texts[index]!, vector, ms), ctx, sync);
        }),
      );
    }
    const vectors = results as number[][];
    return typeof params.text_input === "string" ? vectors[0]! : vectors;
  }

  /** Documents with scores, best first; ties keep the input order. */
  async rerank(params: RerankParams, ctx: RequestContext = {}): Promise<Array<[string, number]>> {
    const resolved = resolveModel(this.settings, "reranking", {});
    const known = await this.identity(resolved, ctx.database);
    const scores: Array<number | undefined> = params.documents.map((document) => {
      const hit = this.lookup("reranking", known && rerankKey(known.sha256, params.query, document, params.task, params.seed), params.use_cache);
      return hit && decodeScore(hit);
    });
    ctx.signal?.throwIfAborted();
    const entryFor = (model: Identity, document: string, score: number, ms: number): MirrorEntry => ({
      key: rerankKey(model.sha256, params.query, document, params.task, params.seed),
      kind: "rerank",
      prompt: params.query,
      response: document,
      score,
      modelName: model.name,
      modelSha256: model.sha256,
      seed: params.seed,
      params: { task: params.task },
      generationTimeMs: ms,
    });
    // Hits are mirrored too, as generate and embed do: the SQL table may lack them.
    if (known) {
      await Promise.all(
        params.documents.map((document, i) => (scores[i] !== undefined ? this.backfill(entryFor(known, document, scores[i], 0), ctx, false) : undefined)),
      );
    }
    const missing = params.documents.map((_, i) => i).filter((i) => scores[i] === undefined);
    if (missing.length > 0) {
      await this.admit(ctx);
      const loaded = await this.host.get(resolved);
      const started = performance.now();
      const computed = await scoreDocuments(loaded, params.query, missing.map((i) => params.documents[i]!), params.task, ctx.signal);
      const ms = (performance.now() - started) / missing.length;
      await Promise.all(
        missing.map(async (index, j) => {
          const score = computed[j]!;
          scores[index] = score;
          if (!params.use_cache) return;
          const entry = entryFor({ sha256: loaded.identity, name: loaded.name }, params.documents[index]!, score, ms);
          await this.store("reranking", encodeScore(score), entry, ctx, false);
        }),
      );
    }
    return params.documents
      .map((document, index) => ({ document, index, score: scores[index]! }))
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .map(({ document, score }) => [document, score]);
  }

  /** Count cache hits SQL served from its table (the access statistics live in the mirror). */
  touch(database: string | undefined, keys: readonly string[]): void {
    this.mirror?.touch(database, keys);
  }

  private preloading: "off" | "loading" | "done" = "off";

  /**
   * Load the default models of `roles` in the background: requests are
   * answered meanwhile, and one that needs such a model waits for the same
   * load. A model that cannot load is reported by status, not fatal.
   */
  preload(roles: readonly ModelRole[]): void {
    const models = this.resolveDefaults().filter((resolved) => roles.includes(resolved.role));
    if (models.length === 0) return;
    this.preloading = "loading";
    void Promise.allSettled(models.map((resolved) => this.host.get(resolved))).then((settled) => {
      settled.forEach((outcome, i) => {
        if (outcome.status === "rejected") {
          const reason = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
          logger().warn({ role: models[i]!.role, error: reason }, "preloading a model failed");
        }
      });
      this.preloading = "done";
    });
  }

  /** Whether the start-up preload is off, still loading, or done. */
  get preloadState(): "off" | "loading" | "done" {
    return this.preloading;
  }

  /** Resolve what each role's default model means now (for status and for publishing to SQL). */
  resolveDefaults(): ResolvedModel[] {
    const roles: ModelRole[] = ["generation", "embedding", "reranking"];
    return roles.map((role) => resolveModel(this.settings, role, {}));
  }

  async close(): Promise<void> {
    await this.host.dispose();
    this.cache?.close();
  }
}
