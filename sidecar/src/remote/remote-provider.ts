// Remote models named `provider:model`, allowed only with unsafe_mode: the
// request goes to an OpenAI-compatible provider. Nothing about the answer is
// deterministic (the provider decides), so the engine never caches it; the
// daemon logs each use. Keys come from the environment (STEADYTEXT_REMOTE_PROVIDERS
// names the variable; OPENAI_API_KEY for the built-in openai provider).

import { z } from "zod";
import type { Settings } from "../config/settings.js";
import { DEFAULT_EOS_STRING, EMBEDDING_DIMENSION, type EmbedParams, type GenerateParams } from "../protocol/messages.js";
import { invalidParams, unavailable } from "../protocol/errors.js";
import { logger } from "../util/logger.js";

/** A provider that says nothing for this long is unavailable. */
const REMOTE_TIMEOUT_MS = 120_000;
const MAX_REMOTE_REPLY_BYTES = 64 * 1024 * 1024;

export interface RemoteTarget {
  provider: string;
  model: string;
  baseUrl: string;
  apiKey: string;
}

/** Whether a request names a remote model it is allowed to use. */
export function isRemoteRequest(params: { model?: string | null | undefined; unsafe_mode?: boolean | null | undefined }): boolean {
  return params.unsafe_mode === true && typeof params.model === "string" && params.model.includes(":");
}

export function remoteTarget(settings: Settings, name: string): RemoteTarget {
  const colon = name.indexOf(":");
  const provider = name.slice(0, colon);
  const model = name.slice(colon + 1);
  const known = Object.keys(settings.remoteProviders);
  const entry = settings.remoteProviders[provider];
  if (!entry) throw invalidParams(`Unknown remote provider '${provider}'; configured: ${known.join(", ")} (STEADYTEXT_REMOTE_PROVIDERS adds more)`);
  if (model.trim() === "") throw invalidParams(`Remote model '${name}' names no model after '${provider}:'`);
  if (!entry.apiKey) throw invalidParams(`Remote provider '${provider}' needs ${entry.apiKeyEnv} in the daemon's environment`);
  return { provider, model, baseUrl: entry.baseUrl, apiKey: entry.apiKey };
}

const chatReply = z.object({ choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1) });
const embeddingReply = z.object({ data: z.array(z.object({ index: z.number().int(), embedding: z.array(z.number()) })) });

async function post<S extends z.ZodType>(target: RemoteTarget, path: string, body: unknown, schema: S, signal?: AbortSignal): Promise<z.output<S>> {
  const where = `remote provider '${target.provider}'`;
  logger().warn({ provider: target.provider, model: target.model, path }, "remote model used (unsafe_mode): the answer is not deterministic and is not cached");
  let response: Response;
  try {
    response = await fetch(`${target.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${target.apiKey}` },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(REMOTE_TIMEOUT_MS)]) : AbortSignal.timeout(REMOTE_TIMEOUT_MS),
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw unavailable(`${where} could not be reached: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  if (text.length > MAX_REMOTE_REPLY_BYTES) throw unavailable(`${where} sent a reply over ${MAX_REMOTE_REPLY_BYTES} bytes`);
  if (!response.ok) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: keep the text
    }
    throw unavailable(`${where} answered ${response.status}: ${message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw unavailable(`${where} sent a reply that is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw unavailable(`${where} sent a reply that is not an OpenAI ${path} reply`);
  return parsed.data;
}

export async function remoteGenerate(target: RemoteTarget, params: GenerateParams, signal?: AbortSignal): Promise<string> {
  if (params.schema || params.response_format || params.regex || params.choices) {
    throw invalidParams("Remote models do not support schema, regex or choices");
  }
  const reply = await post(
    target,
    "/chat/completions",
    {
      model: target.model,
      messages: [{ role: "user", content: params.prompt }],
      max_tokens: params.max_new_tokens,
      seed: params.seed,
      temperature: params.temperature,
      ...(params.eos_string !== DEFAULT_EOS_STRING ? { stop: [params.eos_string] } : {}),
    },
    chatReply,
    signal,
  );
  return reply.choices[0]!.message.content ?? "";
}

/** One L2-normalised vector per text, like the local model's; other dimensions than ours are refused (SQL's type is vector(1024)). */
export async function remoteEmbed(target: RemoteTarget, params: EmbedParams, signal?: AbortSignal): Promise<number[][]> {
  const texts = typeof params.text_input === "string" ? [params.text_input] : params.text_input;
  const reply = await post(target, "/embeddings", { model: target.model, input: texts, encoding_format: "float" }, embeddingReply, signal);
  const byIndex = [...reply.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
  if (byIndex.length !== texts.length) throw unavailable(`remote provider '${target.provider}' returned ${byIndex.length} embeddings for ${texts.length} texts`);
  return byIndex.map((vector) => {
    if (vector.length !== EMBEDDING_DIMENSION) {
      throw invalidParams(`Remote model '${target.provider}:${target.model}' gives ${vector.length} dimensions; pg_steadytext needs ${EMBEDDING_DIMENSION}`);
    }
    const norm = Math.hypot(...vector);
    return norm > 0 ? vector.map((x) => x / norm) : vector;
  });
}
