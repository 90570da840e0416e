// The library's option objects: the original's parameter names in camelCase,
// turned into the protocol's params (which are then checked by the protocol's
// own schemas, so the library rejects exactly what the daemon rejects).

import type { GenerationSize } from "../protocol/messages.js";

export interface ModelOptions {
  /** A registry name (see `st models list`), or `provider:model` with `unsafeMode`. */
  model?: string;
  modelRepo?: string;
  modelFilename?: string;
  /** The original's size names: mini, small, medium, large. */
  size?: GenerationSize;
  unsafeMode?: boolean;
}

export interface GenerateOptions extends ModelOptions {
  maxNewTokens?: number;
  seed?: number;
  eosString?: string;
  /** 0 (the default) is greedy decoding. */
  temperature?: number;
  /** Read and write the caches (default true). */
  useCache?: boolean;
}

export interface EmbedOptions {
  seed?: number;
  model?: string;
  mode?: "query" | "passage";
  unsafeMode?: boolean;
  useCache?: boolean;
}

export interface RerankOptions {
  task?: string;
  seed?: number;
  useCache?: boolean;
}

export interface RankedDocument {
  document: string;
  score: number;
}

/** What a generation is held to, besides the prompt. */
export type Constraint = { schema: Record<string, unknown> | string } | { regex: string } | { choices: string[] } | Record<string, never>;

/** Drop undefined values: the protocol treats a missing key as its default. */
function defined(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
}

export function generateParamsFrom(prompt: string, options: GenerateOptions, constraint: Constraint = {}): Record<string, unknown> {
  return defined({
    prompt,
    max_new_tokens: options.maxNewTokens,
    seed: options.seed,
    eos_string: options.eosString,
    temperature: options.temperature,
    model: options.model,
    model_repo: options.modelRepo,
    model_filename: options.modelFilename,
    size: options.size,
    unsafe_mode: options.unsafeMode,
    use_cache: options.useCache,
    ...constraint,
  });
}

export function embedParamsFrom(text: string | readonly string[], options: EmbedOptions): Record<string, unknown> {
  return defined({
    text_input: typeof text === "string" ? text : [...text],
    seed: options.seed,
    model: options.model,
    mode: options.mode,
    unsafe_mode: options.unsafeMode,
    use_cache: options.useCache,
  });
}

export function rerankParamsFrom(query: string, documents: readonly string[], options: RerankOptions): Record<string, unknown> {
  return defined({ query, documents: [...documents], task: options.task, seed: options.seed, use_cache: options.useCache });
}
