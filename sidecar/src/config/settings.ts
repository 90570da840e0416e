// Every STEADYTEXT_* environment variable, parsed and validated once.

import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { DEFAULT_MAX_REQUEST_BYTES } from "../protocol/codec.js";
import { GENERATION_SIZES, type GenerationSize } from "../protocol/messages.js";

export const DEFAULT_DAEMON_HOST = "127.0.0.1";
/** Contexts per model when STEADYTEXT_CONTEXTS_PER_MODEL is not set and the model is not small (LoadedModel.contexts). */
export const DEFAULT_CONTEXTS_PER_MODEL = 2;
export const DEFAULT_DAEMON_PORT = 5557;

/** Where models compute: `off` is the CPU (the default); `auto` takes a GPU when one works, else the CPU. */
export const GPU_SETTINGS = ["off", "auto", "vulkan", "cuda"] as const;
export type GpuSetting = (typeof GPU_SETTINGS)[number];
export type GpuLayers = number | "max";

const flag = z
  .string()
  .transform((v) => ["1", "true", "yes", "on"].includes(v.trim().toLowerCase()))
  .optional();
const positiveInt = z.coerce.number().int().positive().optional();
const positiveNumber = z.coerce.number().positive().optional();
const text = z.string().min(1).optional();
/** Layers to offload to the GPU: all of them ("max") or a fixed count. Never llama.cpp's "auto", which depends on free VRAM. */
const gpuLayers = z
  .string()
  .trim()
  .regex(/^(max|\d+)$/, "must be 'max' or a whole number of layers")
  .transform((v): GpuLayers => (v === "max" ? "max" : Number(v)))
  .optional();

const environmentSchema = z.object({
  STEADYTEXT_DAEMON_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, '.', '_' and '-' only").optional(),
  STEADYTEXT_DAEMON_HOST: text,
  STEADYTEXT_DAEMON_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STEADYTEXT_DAEMON_ENDPOINT: z
    .string()
    .regex(/^(tcp|ipc):\/\/.+/, "must start with tcp:// or ipc://")
    .optional(),
  STEADYTEXT_CACHE_DIR: text,
  STEADYTEXT_MODEL_DIR: text,
  STEADYTEXT_ALLOW_MODEL_DOWNLOADS: flag,
  STEADYTEXT_TEST_MODELS: flag,
  STEADYTEXT_GENERATION_MODEL_PATH: text,
  STEADYTEXT_EMBEDDING_MODEL_PATH: text,
  STEADYTEXT_RERANKING_MODEL_PATH: text,
  STEADYTEXT_GENERATION_MODEL_REPO: text,
  STEADYTEXT_GENERATION_MODEL_FILENAME: text,
  STEADYTEXT_EMBEDDING_MODEL_REPO: text,
  STEADYTEXT_EMBEDDING_MODEL_FILENAME: text,
  STEADYTEXT_RERANKING_MODEL_REPO: text,
  STEADYTEXT_RERANKING_MODEL_FILENAME: text,
  STEADYTEXT_GENERATION_SIZE: z.enum(GENERATION_SIZES).optional(),
  STEADYTEXT_EMBEDDING_MODE: z.enum(["query", "passage"]).optional(),
  STEADYTEXT_HF_ENDPOINT: z.url().optional(),
  STEADYTEXT_THREADS: positiveInt,
  STEADYTEXT_GPU: z.enum(GPU_SETTINGS).optional(),
  STEADYTEXT_GPU_LAYERS: gpuLayers,
  STEADYTEXT_GENERATION_GPU_LAYERS: gpuLayers,
  STEADYTEXT_EMBEDDING_GPU_LAYERS: gpuLayers,
  STEADYTEXT_RERANKING_GPU_LAYERS: gpuLayers,
  STEADYTEXT_CONTEXTS_PER_MODEL: positiveInt,
  STEADYTEXT_MAX_CONTEXT_WINDOW: positiveInt,
  STEADYTEXT_MAX_REQUEST_BYTES: positiveInt,
  STEADYTEXT_STREAM_ACK_TIMEOUT_MS: positiveInt,
  STEADYTEXT_PG_URL: text,
  STEADYTEXT_PID_FILE: text,
  STEADYTEXT_ADMIN_TOKEN: z.string().min(16, "STEADYTEXT_ADMIN_TOKEN must be at least 16 characters").max(512).optional(),
  STEADYTEXT_ADMIN_TOKEN_FILE: text,
  STEADYTEXT_CURVE_SECRET_KEY_FILE: text,
  STEADYTEXT_CURVE_CLIENT_KEYS_FILE: text,
  STEADYTEXT_ALLOW_INSECURE_REMOTE: z.enum(["0", "1", "false", "true"]).optional(),
  STEADYTEXT_LOG_FILE: text,
  STEADYTEXT_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
  STEADYTEXT_GENERATION_CACHE_CAPACITY: positiveInt,
  STEADYTEXT_GENERATION_CACHE_MAX_SIZE_MB: positiveNumber,
  STEADYTEXT_EMBEDDING_CACHE_CAPACITY: positiveInt,
  STEADYTEXT_EMBEDDING_CACHE_MAX_SIZE_MB: positiveNumber,
  STEADYTEXT_RERANKING_CACHE_CAPACITY: positiveInt,
  STEADYTEXT_RERANKING_CACHE_MAX_SIZE_MB: positiveNumber,
  STEADYTEXT_CACHE_TTL_SECONDS: positiveInt,
  STEADYTEXT_PRELOAD: flag,
  STEADYTEXT_PRELOAD_SKIP_EMBEDDINGS: flag,
  STEADYTEXT_QUEUE_WORKER: flag,
  STEADYTEXT_QUEUE_DATABASES: z
    .string()
    .regex(/^\s*[^,\s]{1,63}(\s*,\s*[^,\s]{1,63})*\s*$/, "a comma-separated list of database names")
    .optional(),
  STEADYTEXT_QUEUE_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).optional(),
  STEADYTEXT_QUEUE_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  STEADYTEXT_QUEUE_LEASE_SECONDS: z.coerce.number().int().min(2).max(86_400).optional(),
  STEADYTEXT_QUEUE_SAFETY_POLL_SECONDS: z.coerce.number().int().min(1).max(86_400).optional(),
  /** The OpenAI-compatible HTTP API: "[HOST:]PORT"; a bare port listens on loopback. */
  STEADYTEXT_HTTP_ADDR: z
    .string()
    .regex(/^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$/, "must be PORT or HOST:PORT ([IPv6]:PORT)")
    .optional(),
  /** A bearer token the HTTP API requires (none: no authentication, which is why it listens on loopback by default). */
  STEADYTEXT_HTTP_TOKEN: text,
  /** How the TypeScript library answers: "auto" (the daemon when one answers, else in-process), "daemon" or "local". */
  STEADYTEXT_LIBRARY_BACKEND: z.enum(["auto", "daemon", "local"]).optional(),
  /**
   * More OpenAI-compatible providers for `provider:model` names (used only with unsafe_mode), as JSON:
   * {"name": {"base_url": "https://…/v1", "api_key_env": "NAME_API_KEY"}}. The key itself stays in its own variable.
   */
  STEADYTEXT_REMOTE_PROVIDERS: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON object" });
        return z.NEVER;
      }
    })
    .pipe(
      z.record(
        z.string().regex(/^[a-z0-9_-]{1,32}$/, "provider names are lower-case letters, digits, '_' and '-'"),
        z.object({ base_url: z.url(), api_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/, "api_key_env must name an environment variable") }),
      ),
    )
    .optional(),
  XDG_CACHE_HOME: text,
});

/** OpenAI-compatible providers known without configuration (SteadyText's own list starts with OpenAI). */
const BUILT_IN_PROVIDERS: Record<string, { base_url: string; api_key_env: string }> = {
  openai: { base_url: "https://api.openai.com/v1", api_key_env: "OPENAI_API_KEY" },
};

export type ModelRole = "generation" | "embedding" | "reranking";

export interface CacheLimits {
  capacity: number;
  maxSizeMb: number;
}

export interface Settings {
  /** The row this daemon keeps in steadytext_daemon_health. */
  daemonId: string;
  endpoint: string;
  host: string;
  port: number;
  cacheDir: string;
  modelDir: string;
  testModelDir: string;
  allowModelDownloads: boolean;
  testModels: boolean;
  modelPaths: Partial<Record<ModelRole, string>>;
  modelOverrides: Partial<Record<ModelRole, { repo: string; filename: string }>>;
  generationSize: GenerationSize;
  embeddingMode: "query" | "passage";
  hfEndpoint: string;
  /** STEADYTEXT_GPU: the compute backend asked for. */
  gpu: GpuSetting;
  /** Layers each role's model offloads when a GPU backend runs (STEADYTEXT_GPU_LAYERS, per role STEADYTEXT_<ROLE>_GPU_LAYERS). */
  gpuLayers: Record<ModelRole, GpuLayers>;
  /** Threads per context; undefined lets each model choose (see LoadedModel.threads). */
  threads: number | undefined;
  /** Requests one model computes at once; undefined lets each model choose (see LoadedModel.contexts). */
  contextsPerModel: number | undefined;
  maxContextWindow: number | undefined;
  maxRequestBytes: number;
  streamAckTimeoutMs: number;
  pgUrl: string | undefined;
  pidFile: string;
  /** The secret admin methods (shutdown) must carry; generated and kept in adminTokenFile when not given. */
  adminToken: string | undefined;
  /** Where the daemon keeps its admin token (mode 0600), for `st daemon stop` of the same OS user. */
  adminTokenFile: string;
  /** The daemon's CURVE secret key (Z85, from `st keys generate`); required on a non-loopback endpoint. */
  curveSecretKeyFile: string | undefined;
  /** The client public keys the daemon admits (Z85, one per line); unset: any client that knows the daemon's public key. */
  curveClientKeysFile: string | undefined;
  /** Plain TCP on a non-loopback endpoint, knowingly. */
  allowInsecureRemote: boolean;
  logFile: string;
  logLevel: string;
  cacheLimits: Record<"generation" | "embedding" | "reranking", CacheLimits>;
  cacheTtlSeconds: number | undefined;
  queue: QueueSettings;
  /** Default models loaded when the daemon starts, so the first request does not pay for loading. */
  preload: ModelRole[];
  /** The OpenAI-compatible HTTP API, when STEADYTEXT_HTTP_ADDR asks for it. */
  http: HttpSettings | undefined;
  libraryBackend: "auto" | "daemon" | "local";
  /** Providers a `provider:model` name may use with unsafe_mode; the key is read from api_key_env at load. */
  remoteProviders: Record<string, RemoteProvider>;
}

export interface RemoteProvider {
  baseUrl: string;
  apiKeyEnv: string;
  apiKey: string | undefined;
}

export interface HttpSettings {
  host: string;
  port: number;
  token: string | undefined;
}

/** "[HOST:]PORT" to a listen address; loopback unless a host is named. */
export function parseHttpAddress(address: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new SettingsError(`'${address}' is not PORT or HOST:PORT (port 1-65535)`);
  return { host: match[1]?.replace(/^\[|\]$/g, "") ?? DEFAULT_DAEMON_HOST, port };
}

export interface QueueSettings {
  /** Claim and work queue items (switched off, the daemon still serves queue_wait). */
  worker: boolean;
  /** Databases whose queues this sidecar serves from the start (besides any a SQL request comes from). */
  databases: string[];
  /** Most embeddings claimed in one batch (a pipeline's own batch_size can lower it). */
  batchSize: number;
  /** Batches worked at once per database. */
  concurrency: number;
  /** How long a claim is held before another worker may take the item over; renewed while the work runs. */
  leaseSeconds: number;
  /** A look at the queue this often even without a notification (a safety net, not the mechanism). */
  safetyPollSeconds: number;
}

export class SettingsError extends Error {}

function endpointFile(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//, "").replace(/[^A-Za-z0-9.-]+/g, "_");
}

/** Read settings from an environment (process.env by default); invalid values are an error naming the variable. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SettingsError(`${issue.path.join(".")}: ${issue.message}`);
  }
  const e = parsed.data;
  const host = e.STEADYTEXT_DAEMON_HOST ?? DEFAULT_DAEMON_HOST;
  const port = e.STEADYTEXT_DAEMON_PORT ?? DEFAULT_DAEMON_PORT;
  const endpoint = e.STEADYTEXT_DAEMON_ENDPOINT ?? `tcp://${host}:${port}`;
  const cacheDir = resolve(e.STEADYTEXT_CACHE_DIR ?? join(e.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "steadytext"));
  const override = (repo?: string, filename?: string) => (repo && filename ? { repo, filename } : undefined);
  const contextsPerModel = e.STEADYTEXT_CONTEXTS_PER_MODEL;
  const modelOverrides: Settings["modelOverrides"] = {};
  const generationOverride = override(e.STEADYTEXT_GENERATION_MODEL_REPO, e.STEADYTEXT_GENERATION_MODEL_FILENAME);
  const embeddingOverride = override(e.STEADYTEXT_EMBEDDING_MODEL_REPO, e.STEADYTEXT_EMBEDDING_MODEL_FILENAME);
  const rerankingOverride = override(e.STEADYTEXT_RERANKING_MODEL_REPO, e.STEADYTEXT_RERANKING_MODEL_FILENAME);
  if (generationOverride) modelOverrides.generation = generationOverride;
  if (embeddingOverride) modelOverrides.embedding = embeddingOverride;
  if (rerankingOverride) modelOverrides.reranking = rerankingOverride;
  const modelPaths: Settings["modelPaths"] = {};
  if (e.STEADYTEXT_GENERATION_MODEL_PATH) modelPaths.generation = resolve(e.STEADYTEXT_GENERATION_MODEL_PATH);
  if (e.STEADYTEXT_EMBEDDING_MODEL_PATH) modelPaths.embedding = resolve(e.STEADYTEXT_EMBEDDING_MODEL_PATH);
  if (e.STEADYTEXT_RERANKING_MODEL_PATH) modelPaths.reranking = resolve(e.STEADYTEXT_RERANKING_MODEL_PATH);

  return {
    daemonId: e.STEADYTEXT_DAEMON_ID ?? "default",
    endpoint,
    host,
    port,
    cacheDir,
    modelDir: resolve(e.STEADYTEXT_MODEL_DIR ?? join(cacheDir, "models")),
    testModelDir: join(cacheDir, "test-models"),
    allowModelDownloads: e.STEADYTEXT_ALLOW_MODEL_DOWNLOADS ?? true,
    testModels: e.STEADYTEXT_TEST_MODELS ?? false,
    modelPaths,
    modelOverrides,
    generationSize: e.STEADYTEXT_GENERATION_SIZE ?? "small",
    embeddingMode: e.STEADYTEXT_EMBEDDING_MODE ?? "query",
    hfEndpoint: (e.STEADYTEXT_HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, ""),
    gpu: e.STEADYTEXT_GPU ?? "off",
    gpuLayers: {
      generation: e.STEADYTEXT_GENERATION_GPU_LAYERS ?? e.STEADYTEXT_GPU_LAYERS ?? "max",
      embedding: e.STEADYTEXT_EMBEDDING_GPU_LAYERS ?? e.STEADYTEXT_GPU_LAYERS ?? "max",
      reranking: e.STEADYTEXT_RERANKING_GPU_LAYERS ?? e.STEADYTEXT_GPU_LAYERS ?? "max",
    },
    threads: e.STEADYTEXT_THREADS,
    contextsPerModel,
    maxContextWindow: e.STEADYTEXT_MAX_CONTEXT_WINDOW,
    maxRequestBytes: e.STEADYTEXT_MAX_REQUEST_BYTES ?? DEFAULT_MAX_REQUEST_BYTES,
    streamAckTimeoutMs: e.STEADYTEXT_STREAM_ACK_TIMEOUT_MS ?? 30_000,
    pgUrl: e.STEADYTEXT_PG_URL,
    pidFile: resolve(e.STEADYTEXT_PID_FILE ?? join(cacheDir, "run", `daemon-${endpointFile(endpoint)}.pid`)),
    adminToken: e.STEADYTEXT_ADMIN_TOKEN,
    curveSecretKeyFile: e.STEADYTEXT_CURVE_SECRET_KEY_FILE === undefined ? undefined : resolve(e.STEADYTEXT_CURVE_SECRET_KEY_FILE),
    curveClientKeysFile: e.STEADYTEXT_CURVE_CLIENT_KEYS_FILE === undefined ? undefined : resolve(e.STEADYTEXT_CURVE_CLIENT_KEYS_FILE),
    allowInsecureRemote: e.STEADYTEXT_ALLOW_INSECURE_REMOTE === "1" || e.STEADYTEXT_ALLOW_INSECURE_REMOTE === "true",
    adminTokenFile: resolve(e.STEADYTEXT_ADMIN_TOKEN_FILE ?? join(cacheDir, "run", `daemon-${endpointFile(endpoint)}.admin-token`)),
    logFile: resolve(e.STEADYTEXT_LOG_FILE ?? join(cacheDir, "run", `daemon-${endpointFile(endpoint)}.log`)),
    logLevel: e.STEADYTEXT_LOG_LEVEL ?? "info",
    cacheLimits: {
      generation: {
        capacity: e.STEADYTEXT_GENERATION_CACHE_CAPACITY ?? 256,
        maxSizeMb: e.STEADYTEXT_GENERATION_CACHE_MAX_SIZE_MB ?? 50,
      },
      embedding: {
        capacity: e.STEADYTEXT_EMBEDDING_CACHE_CAPACITY ?? 512,
        maxSizeMb: e.STEADYTEXT_EMBEDDING_CACHE_MAX_SIZE_MB ?? 100,
      },
      reranking: {
        capacity: e.STEADYTEXT_RERANKING_CACHE_CAPACITY ?? 256,
        maxSizeMb: e.STEADYTEXT_RERANKING_CACHE_MAX_SIZE_MB ?? 25,
      },
    },
    cacheTtlSeconds: e.STEADYTEXT_CACHE_TTL_SECONDS,
    preload:
      (e.STEADYTEXT_PRELOAD ?? true)
        ? (["generation", "embedding", "reranking"] as const).filter((role) => !(role === "embedding" && e.STEADYTEXT_PRELOAD_SKIP_EMBEDDINGS))
        : [],
    queue: {
      worker: e.STEADYTEXT_QUEUE_WORKER ?? true,
      databases: (e.STEADYTEXT_QUEUE_DATABASES ?? "").split(",").map((d) => d.trim()).filter((d) => d.length > 0),
      batchSize: e.STEADYTEXT_QUEUE_BATCH_SIZE ?? 64,
      // One lane more than contexts: one claims or stores while the others compute.
      concurrency: e.STEADYTEXT_QUEUE_CONCURRENCY ?? (contextsPerModel ?? DEFAULT_CONTEXTS_PER_MODEL) + 1,
      leaseSeconds: e.STEADYTEXT_QUEUE_LEASE_SECONDS ?? 60,
      safetyPollSeconds: e.STEADYTEXT_QUEUE_SAFETY_POLL_SECONDS ?? 60,
    },
    libraryBackend: e.STEADYTEXT_LIBRARY_BACKEND ?? "auto",
    remoteProviders: Object.fromEntries(
      Object.entries({ ...BUILT_IN_PROVIDERS, ...e.STEADYTEXT_REMOTE_PROVIDERS }).map(([name, p]) => [
        name,
        { baseUrl: p.base_url.replace(/\/+$/, ""), apiKeyEnv: p.api_key_env, apiKey: env[p.api_key_env] || undefined },
      ]),
    ),
    http: e.STEADYTEXT_HTTP_ADDR ? { ...parseHttpAddress(e.STEADYTEXT_HTTP_ADDR), token: e.STEADYTEXT_HTTP_TOKEN } : undefined,
  };
}
