// The wire protocol as types and schemas: one definition shared by the
// daemon, the clients and the tests. See docs/protocol.md.

import { z } from "zod";
import { VECTOR_ENCODINGS } from "./vector-frame.js";

export const DEFAULT_SEED = 42;
export const DEFAULT_MAX_NEW_TOKENS = 512;
export const MAX_NEW_TOKENS_LIMIT = 4096;
export const DEFAULT_EOS_STRING = "[EOS]";
export const DEFAULT_RERANK_TASK = "Given a web search query, retrieve relevant passages that answer the query";
export const STREAM_END_MARKER = "##STREAM_END##";
export const STREAM_ACK = "ACK";
export const EMBEDDING_DIMENSION = 1024;
/** The original's generation sizes (SQL checks the same list). */
export const GENERATION_SIZES = ["mini", "small", "medium", "large"] as const;
export type GenerationSize = (typeof GENERATION_SIZES)[number];

const nonEmptyText = (what: string) =>
  z.string({ error: `${what} must be a string` }).refine((s) => s.trim().length > 0, `${what} cannot be empty`);

const optionalName = z.string().min(1).max(512).nullish();

const seed = z
  .number({ error: "seed must be a number" })
  .int("seed must be an integer")
  .min(0, "seed must be non-negative")
  .max(2147483647, "seed must be at most 2147483647")
  .nullish()
  .transform((v) => v ?? DEFAULT_SEED);

const useCache = z.boolean().nullish().transform((v) => v ?? true);

export const generateParams = z.object({
  prompt: nonEmptyText("prompt"),
  max_new_tokens: z
    .number({ error: "max_new_tokens must be a number" })
    .int("max_new_tokens must be an integer")
    .min(1, "max_new_tokens must be at least 1")
    .max(MAX_NEW_TOKENS_LIMIT, `max_new_tokens cannot exceed ${MAX_NEW_TOKENS_LIMIT}`)
    .nullish()
    .transform((v) => v ?? DEFAULT_MAX_NEW_TOKENS),
  seed,
  eos_string: z
    .string()
    .min(1, "eos_string cannot be empty")
    .max(256, "eos_string is longer than 256 characters")
    .nullish()
    .transform((v) => v ?? DEFAULT_EOS_STRING),
  temperature: z
    .number()
    .min(0, "temperature must be between 0 and 2")
    .max(2, "temperature must be between 0 and 2")
    .nullish()
    .transform((v) => v ?? 0),
  model: optionalName,
  model_repo: optionalName,
  model_filename: optionalName,
  size: z.enum(GENERATION_SIZES, { error: `size must be one of: ${GENERATION_SIZES.join(", ")}` }).nullish(),
  unsafe_mode: z.boolean().nullish(),
  return_logprobs: z.boolean().nullish(),
  schema: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
  response_format: z.record(z.string(), z.unknown()).nullish(),
  regex: z.string().nullish(),
  choices: z.array(z.string()).nullish(),
  use_cache: useCache,
  /** Ours: reply only once the result is committed to the Postgres cache (steadytext_*_cached). */
  sync_mirror: z.boolean().nullish(),
});
export type GenerateParams = z.output<typeof generateParams>;

export const embedParams = z.object({
  text_input: z.union([
    nonEmptyText("text_input"),
    z
      .array(nonEmptyText("text_input element"), { error: "text_input must be a string or a list of strings" })
      .min(1, "text_input list cannot be empty"),
  ]),
  seed,
  model: optionalName,
  mode: z.enum(["query", "passage"], { error: "mode must be 'query' or 'passage'" }).nullish(),
  unsafe_mode: z.boolean().nullish(),
  use_cache: useCache,
  sync_mirror: z.boolean().nullish(),
  /** Ours: "f32le" asks for the vectors as one binary frame after the JSON reply (vector-frame.ts). */
  vector_encoding: z.enum(VECTOR_ENCODINGS, { error: "vector_encoding must be 'json' or 'f32le'" }).nullish(),
});
export type EmbedParams = z.output<typeof embedParams>;

export const rerankParams = z.object({
  query: nonEmptyText("query"),
  documents: z.array(z.string({ error: "documents must be strings" })).min(1, "documents cannot be empty"),
  task: z
    .string()
    .nullish()
    .transform((v) => v ?? DEFAULT_RERANK_TASK),
  return_scores: z.boolean().nullish().transform((v) => v ?? true),
  seed,
  use_cache: useCache,
});
export type RerankParams = z.output<typeof rerankParams>;

export const cancelParams = z.object({ request_id: z.union([z.string().max(200), z.number()]) });
export const cacheTouchParams = z.object({
  keys: z.array(z.string().regex(/^[0-9a-f]{64}$/, "keys must be sha256 hex strings")).max(10000),
});
export const emptyParams = z.object({});
/** Ours: wait until an async request of the queue has finished (steadytext_get_async_result). */
export const MAX_QUEUE_WAIT_MS = 3_600_000;
export const queueWaitParams = z.object({
  request_id: z.uuid({ error: "request_id must be a UUID" }),
  timeout_ms: z
    .number({ error: "timeout_ms must be a number" })
    .int("timeout_ms must be an integer")
    .min(0, "timeout_ms must not be negative")
    .max(MAX_QUEUE_WAIT_MS, `timeout_ms cannot exceed ${MAX_QUEUE_WAIT_MS}`),
});

/** Prompt templates (Jinja2): parse one, or render one with variables. No model is involved. */
export const templateAnalyzeParams = z.object({ template: z.string({ error: "template must be a string" }) });
export const templateRenderParams = z.object({
  template: z.string({ error: "template must be a string" }),
  variables: z
    .record(z.string(), z.unknown(), { error: "variables must be a JSON object" })
    .nullish()
    .transform((v) => v ?? {}),
  strict: z.boolean().nullish().transform((v) => v ?? true),
});
export type TemplateErrorKind = "syntax" | "missing" | "render";
/** The result of template_analyze ({variables}) and template_render ({text}); a template's own errors are results, not protocol errors. */
export type TemplateOutcome<T> =
  | ({ ok: true } & T)
  | { ok: false; kind: TemplateErrorKind; message: string; missing?: string[] };

export const METHODS = [
  "ping",
  "status",
  "generate",
  "generate_iter",
  "embed",
  "embed_batch",
  "rerank",
  "cancel",
  "cache_touch",
  "queue_wait",
  "template_analyze",
  "template_render",
  "shutdown",
] as const;
export type Method = (typeof METHODS)[number];

const identifier = z.string().min(1).max(63);

export const requestEnvelope = z.object({
  id: z.union([z.string().max(200, "id is longer than 200 characters"), z.number()], {
    error: "id must be a string or a number",
  }),
  method: z.string({ error: "method must be a string" }).max(64),
  params: z.record(z.string(), z.unknown(), { error: "params must be an object" }).nullish(),
  /** Ours: the database a SQL request came from, and its session user (whose steadytext_rate_limits apply). */
  // rate_limited: false says the user has no steadytext_rate_limits row, so the daemon need not look (the
  // backend read the table under the statement's snapshot); absent means "look".
  origin: z.object({ database: identifier, user: identifier.nullish(), rate_limited: z.boolean().nullish() }).nullish(),
  /** Ours: the daemon's admin token, which admin methods (shutdown) must carry. */
  admin_token: z.string().max(512).nullish(),
});
export type RequestEnvelope = z.output<typeof requestEnvelope>;
export type RequestId = RequestEnvelope["id"];
export type Origin = NonNullable<RequestEnvelope["origin"]>;

/** A reply has exactly these three keys: SteadyText's Python client builds a dataclass from them. */
export interface Reply {
  id: RequestId | null;
  result: unknown;
  error: string | null;
}

export interface StatusResult {
  daemon_id: string;
  version: string;
  endpoint: string;
  pid: number;
  started_at: string;
  uptime_seconds: number;
  requests: number;
  in_flight: number;
  /** Requests aborted because their client cancelled or went away. */
  cancelled: number;
  /** Where models compute: what STEADYTEXT_GPU asked for and what runs (null until the runtime is open). */
  compute: { setting: string; backend: string; devices: string[]; fallback: string | null } | null;
  models: Array<{
    role: string;
    name: string;
    sha256: string | null;
    loaded: boolean;
    error: string | null;
    /** "cpu", "vulkan", "cuda" or "metal"; null until loaded. */
    backend?: string | null;
    /** GPU device names, or "cpu". */
    device?: string | null;
    gpu_layers?: number | null;
    /** What cache keys use for this model: the file's sha256 on the CPU, combined with backend and device on a GPU. */
    identity?: string | null;
    warmed?: boolean;
  }>;
  /** The default models loaded at start (STEADYTEXT_PRELOAD): off, still loading, or done. */
  preload?: "off" | "loading" | "done";
  /** Per database whose queue this daemon serves. */
  queue?: Record<string, QueueStats>;
  /** Per database mirrored into: results waiting to be written to its steadytext_cache, and failed attempts in a row. */
  mirror?: Record<string, { queued: number; failures: number }>;
}

export interface QueueStats {
  /** How this worker's leases read in steadytext_queue.locked_by. */
  worker_id: string;
  claimed: number;
  completed: number;
  failed: number;
  /** Lanes asleep until a notification (or a timer) says there is work. */
  idle_lanes: number;
}
