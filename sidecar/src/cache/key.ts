// The cache key: SHA-256 over everything that can change an answer, the
// model file's own sha256 included. This is the one definition; the SQL
// functions _steadytext_cache_key_* compute the same bytes, and a test holds
// the two together. Every field is length-prefixed so no two different
// inputs can serialise alike.

import { createHash } from "node:crypto";

export const CACHE_KEY_VERSION = "steadytext-cache-v1";

export type CacheKind = "generate" | "embed" | "rerank";

function field(name: string, value: string): string {
  return `${name}=${Buffer.byteLength(value, "utf8")}:${value}\n`;
}

export function cacheKey(kind: CacheKind, modelSha256: string, fields: ReadonlyArray<readonly [string, string]>): string {
  let material = `${CACHE_KEY_VERSION}\n${field("kind", kind)}${field("model", modelSha256)}`;
  for (const [name, value] of fields) material += field(name, value);
  return createHash("sha256").update(material, "utf8").digest("hex");
}

/** JSON with object keys in code point order and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")),
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export type GenerationConstraint =
  | { kind: "none" }
  | { kind: "json"; schema: string | Record<string, unknown> }
  | { kind: "regex"; pattern: string }
  | { kind: "choice"; choices: readonly string[] };

export interface GenerateKeyInput {
  modelSha256: string;
  prompt: string;
  maxTokens: number;
  seed: number;
  eosString: string;
  temperature: number;
  constraint: GenerationConstraint;
}

function constraintText(constraint: GenerationConstraint): string {
  switch (constraint.kind) {
    case "none":
      return "";
    case "json":
      // SQL sends the schema as jsonb text and hashes that same text.
      return typeof constraint.schema === "string" ? constraint.schema : canonicalJson(constraint.schema);
    case "regex":
      return constraint.pattern;
    case "choice":
      return constraint.choices.map((c) => `${Buffer.byteLength(c, "utf8")}:${c};`).join("");
  }
}

export function generateKey(input: GenerateKeyInput): string {
  return cacheKey("generate", input.modelSha256, [
    ["prompt", input.prompt],
    ["max_tokens", String(input.maxTokens)],
    ["seed", String(input.seed)],
    ["eos_string", input.eosString],
    ["temperature", String(input.temperature)],
    ["constraint_kind", input.constraint.kind],
    ["constraint", constraintText(input.constraint)],
  ]);
}

export function embedKey(modelSha256: string, text: string, seed: number, mode: string): string {
  return cacheKey("embed", modelSha256, [
    ["text", text],
    ["seed", String(seed)],
    ["mode", mode],
  ]);
}

export function rerankKey(modelSha256: string, query: string, document: string, task: string, seed: number): string {
  return cacheKey("rerank", modelSha256, [
    ["query", query],
    ["document", document],
    ["task", task],
    ["seed", String(seed)],
  ]);
}
