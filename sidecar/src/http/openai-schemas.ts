// The request bodies of the OpenAI-compatible HTTP API, as zod schemas.
// OpenAI's parameters that would change the answer in ways we cannot honour
// (n > 1, logprobs, token-array inputs) are refused rather than ignored; the
// ones that only shape sampling are accepted as the protocol's own.

import { z } from "zod";
import { MAX_NEW_TOKENS_LIMIT } from "../protocol/messages.js";

/** OpenAI's own limit on inputs per embeddings request. */
export const MAX_EMBEDDING_INPUTS = 2048;

const modelName = z.string({ error: "model must be a string" }).min(1, "model cannot be empty").max(512).nullish();

const maxTokens = z
  .number({ error: "max_tokens must be a number" })
  .int("max_tokens must be an integer")
  .min(1, "max_tokens must be at least 1")
  .max(MAX_NEW_TOKENS_LIMIT, `max_tokens cannot exceed ${MAX_NEW_TOKENS_LIMIT}`)
  .nullish();

/** What every generation endpoint shares: the knobs that map onto the protocol's generate params. */
const generationFields = {
  model: modelName,
  max_tokens: maxTokens,
  /** OpenAI's newer name for max_tokens on chat. */
  max_completion_tokens: maxTokens,
  seed: z.number({ error: "seed must be a number" }).nullish(),
  temperature: z.number({ error: "temperature must be a number" }).nullish(),
  stop: z
    .union([z.string(), z.array(z.string()).max(1, "only one stop string is supported")], {
      error: "stop must be a string or a list of one string",
    })
    .nullish(),
  n: z.literal(1, { error: "n must be 1: every answer to the same request is the same" }).nullish(),
  stream: z.boolean({ error: "stream must be a boolean" }).nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  logprobs: z.union([z.literal(false), z.null()], { error: "logprobs are not supported" }).optional(),
  user: z.string().max(256).nullish(),
  // Ours (the protocol's own names), for structured output without a response_format.
  eos_string: z.string().nullish(),
  regex: z.string().nullish(),
  choices: z.array(z.string()).nullish(),
  size: z.string().nullish(),
  /** Allows a remote provider:model (whose answers are not deterministic), as in SQL. */
  unsafe_mode: z.boolean({ error: "unsafe_mode must be a boolean" }).nullish(),
};

export const completionBody = z.object({
  ...generationFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1, "prompt must be one string")], {
    error: "prompt must be a string",
  }),
  echo: z.union([z.literal(false), z.null()], { error: "echo is not supported" }).optional(),
  suffix: z.null({ error: "suffix is not supported" }).optional(),
});
export type CompletionBody = z.output<typeof completionBody>;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const messageContent = z.union([z.string(), z.array(textPart, { error: "only text content parts are supported" })], {
  error: "content must be a string or a list of text parts",
});

export const chatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"], { error: "role must be system, developer, user, assistant or tool" }),
  content: messageContent.nullish(),
  name: z.string().max(256).nullish(),
});

export const chatCompletionBody = z.object({
  ...generationFields,
  messages: z.array(chatMessage, { error: "messages must be a list" }).min(1, "messages cannot be empty"),
  response_format: z
    .discriminatedUnion(
      "type",
      [
        z.object({ type: z.literal("text") }),
        z.object({
          type: z.literal("json_schema"),
          json_schema: z.object({ name: z.string().nullish(), schema: z.record(z.string(), z.unknown()), strict: z.boolean().nullish() }),
        }),
      ],
      { error: "response_format must be {type: 'text'} or {type: 'json_schema', json_schema: {schema}}" },
    )
    .nullish(),
});
export type ChatCompletionBody = z.output<typeof chatCompletionBody>;

export const embeddingBody = z.object({
  model: modelName,
  // Checked in steps so each mistake gets its own message (a zod union reports only its own).
  input: z
    .union([z.string(), z.array(z.unknown())], { error: "input must be a string or a list of strings" })
    .superRefine((input, ctx) => {
      if (typeof input === "string") return;
      if (input.length === 0) ctx.addIssue({ code: "custom", message: "input cannot be empty" });
      if (input.length > MAX_EMBEDDING_INPUTS) ctx.addIssue({ code: "custom", message: `input cannot have more than ${MAX_EMBEDDING_INPUTS} items` });
      if (input.some((item) => typeof item !== "string")) {
        ctx.addIssue({ code: "custom", message: "input items must be strings (token arrays are not supported)" });
      }
    })
    .transform((input) => input as string | string[]),
  encoding_format: z.enum(["float", "base64"], { error: "encoding_format must be 'float' or 'base64'" }).nullish(),
  dimensions: z.number().int().nullish(),
  user: z.string().max(256).nullish(),
  // Ours.
  seed: z.number({ error: "seed must be a number" }).nullish(),
  mode: z.string().nullish(),
  unsafe_mode: z.boolean({ error: "unsafe_mode must be a boolean" }).nullish(),
});
export type EmbeddingBody = z.output<typeof embeddingBody>;

/** Cohere's and Jina's rerank request, which most OpenAI-style gateways follow. */
export const rerankBody = z.object({
  model: modelName,
  query: z.string({ error: "query must be a string" }),
  documents: z
    .array(z.union([z.string(), z.object({ text: z.string() })]), { error: "documents must be a list of strings" })
    .min(1, "documents cannot be empty"),
  top_n: z.number({ error: "top_n must be a number" }).int("top_n must be an integer").min(1, "top_n must be at least 1").nullish(),
  return_documents: z.boolean().nullish(),
  // Ours.
  task: z.string().nullish(),
  seed: z.number({ error: "seed must be a number" }).nullish(),
});
export type RerankBody = z.output<typeof rerankBody>;
