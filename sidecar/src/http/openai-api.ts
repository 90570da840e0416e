// What each OpenAI-compatible endpoint answers, in terms of the engine: the
// body is mapped onto the protocol's params (and checked by the protocol's
// own schemas), so an HTTP request and the same SQL or ZeroMQ request share
// one cache key and give the same bytes.

import { randomUUID } from "node:crypto";
import type { ModelRole, Settings } from "../config/settings.js";
import type { Engine } from "../engine/engine.js";
import { WordChunker } from "../daemon/word-chunker.js";
import { MODEL_REGISTRY } from "../models/registry.js";
import { resolveModel } from "../models/resolve.js";
import { embedParams, GENERATION_SIZES, generateParams, parseParams, rerankParams } from "../protocol/index.js";
import { isRemoteRequest } from "../remote/remote-provider.js";
import { HttpError } from "./openai-errors.js";
import type { ChatCompletionBody, CompletionBody, EmbeddingBody, RerankBody } from "./openai-schemas.js";

export interface ModelCard {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  /** Ours: what the model does (generation, embedding or reranking). */
  role: ModelRole;
}

/** Where a streamed answer goes: one server-sent event per call. */
export type EventSink = (data: unknown) => void;

type ModelParams = { model?: string; size?: string };

const now = () => Math.floor(Date.now() / 1000);

/** The prompt a chat becomes: a lone user message is its text (so it equals steadytext_generate of that text). */
export function chatPrompt(messages: ChatCompletionBody["messages"]): string {
  const text = (content: ChatCompletionBody["messages"][number]["content"]) =>
    typeof content === "string" ? content : (content ?? []).map((part) => part.text).join("");
  if (messages.length === 1 && messages[0]!.role === "user") return text(messages[0]!.content);
  const turns = messages.map((m) => `${m.role[0]!.toUpperCase()}${m.role.slice(1)}: ${text(m.content)}`);
  return `${turns.join("\n\n")}\n\nAssistant:`;
}

export class OpenAiApi {
  private readonly started = now();

  constructor(
    private readonly settings: Settings,
    private readonly engine: Engine,
  ) {}

  /** The registry's models and each role's default (by file name); "default" is accepted too but not listed. */
  models(): ModelCard[] {
    const cards = new Map<string, ModelCard>();
    const add = (id: string, role: ModelRole) => cards.set(id, { id, object: "model", created: this.started, owned_by: "steadytext", role });
    for (const resolved of this.engine.resolveDefaults()) add(resolved.name, resolved.role);
    for (const [name, entry] of Object.entries(MODEL_REGISTRY)) if (!cards.has(name)) add(name, entry.role);
    for (const size of GENERATION_SIZES) if (!cards.has(size)) add(size, "generation");
    return [...cards.values()];
  }

  /** The protocol params that select the model a request names, or a 404 for a name /v1/models does not list. */
  private modelParams(role: ModelRole, model: string | null | undefined): ModelParams {
    if (model === undefined || model === null || model === "default") return {};
    // provider:model names are remote models; the protocol decides whether they are allowed.
    if (model.includes(":")) return { model };
    if (resolveModel(this.settings, role, {}).name === model) return {};
    const entry = MODEL_REGISTRY[model];
    if (entry?.role === role) return { model };
    if (role === "generation" && (GENERATION_SIZES as readonly string[]).includes(model)) return { size: model };
    const known = this.models().filter((m) => m.role === role).map((m) => m.id);
    throw new HttpError(404, `The model '${model}' does not exist or cannot do ${role}; models: default, ${known.join(", ")}`, "invalid_request_error", "model_not_found", "model");
  }

  private generationParams(body: CompletionBody | ChatCompletionBody, prompt: string, schema?: Record<string, unknown>) {
    const stop = Array.isArray(body.stop) ? body.stop[0] : body.stop;
    return parseParams(generateParams, {
      prompt,
      max_new_tokens: body.max_completion_tokens ?? body.max_tokens,
      seed: body.seed,
      temperature: body.temperature,
      eos_string: body.eos_string ?? stop,
      regex: body.regex,
      choices: body.choices,
      schema,
      ...this.modelParams("generation", body.model),
      ...(body.size ? { size: body.size } : {}),
      unsafe_mode: body.unsafe_mode,
    });
  }

  /** Generate, streaming word chunks to `sink` when given; resolves to the whole text. */
  private async run(params: ReturnType<OpenAiApi["generationParams"]>, signal: AbortSignal, sink?: (chunk: string) => void): Promise<string> {
    if (!sink) return this.engine.generate(params, { signal });
    const chunker = new WordChunker(sink);
    const text = await this.engine.generate(params, { signal }, (piece) => chunker.push(piece));
    chunker.end();
    return text;
  }

  async completion(body: CompletionBody, signal: AbortSignal, events?: EventSink): Promise<unknown> {
    const prompt = Array.isArray(body.prompt) ? body.prompt[0]! : body.prompt;
    const params = this.generationParams(body, prompt);
    const id = `cmpl-${randomUUID()}`;
    const created = now();
    const model = body.model ?? "default";
    const deterministic = !isRemoteRequest(params);
    const frame = (text: string, finish: "stop" | null) => ({
      id,
      object: "text_completion",
      created,
      model,
      deterministic,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    });
    if (events) {
      await this.run(params, signal, (chunk) => events(frame(chunk, null)));
      events(frame("", "stop"));
      return undefined;
    }
    return frame(await this.run(params, signal), "stop");
  }

  async chatCompletion(body: ChatCompletionBody, signal: AbortSignal, events?: EventSink): Promise<unknown> {
    const schema = body.response_format?.type === "json_schema" ? body.response_format.json_schema.schema : undefined;
    const params = this.generationParams(body, chatPrompt(body.messages), schema);
    const id = `chatcmpl-${randomUUID()}`;
    const created = now();
    const model = body.model ?? "default";
    const deterministic = !isRemoteRequest(params);
    if (events) {
      const chunk = (delta: Record<string, string>, finish: "stop" | null) => ({
        id,
        object: "chat.completion.chunk",
        created,
        model,
        deterministic,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      });
      events(chunk({ role: "assistant", content: "" }, null));
      await this.run(params, signal, (text) => events(chunk({ content: text }, null)));
      events(chunk({}, "stop"));
      return undefined;
    }
    const text = await this.run(params, signal);
    return {
      id,
      object: "chat.completion",
      created,
      model,
      deterministic,
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
    };
  }

  async embeddings(body: EmbeddingBody, signal: AbortSignal): Promise<unknown> {
    if (body.dimensions !== undefined && body.dimensions !== null && body.dimensions !== 1024) {
      throw new HttpError(400, "dimensions must be 1024 (the embedding model's size)", "invalid_request_error", null, "dimensions");
    }
    const texts = typeof body.input === "string" ? [body.input] : body.input;
    const params = parseParams(embedParams, { text_input: texts, seed: body.seed, mode: body.mode, unsafe_mode: body.unsafe_mode, ...this.modelParams("embedding", body.model) });
    const vectors = (await this.engine.embed(params, { signal })) as number[][];
    const encode = (vector: number[]) =>
      body.encoding_format === "base64" ? Buffer.from(Float32Array.from(vector).buffer).toString("base64") : vector;
    return {
      object: "list",
      data: vectors.map((vector, index) => ({ object: "embedding", index, embedding: encode(vector) })),
      model: body.model ?? "default",
      /** Ours: false for a remote provider's answer, which is neither reproducible nor cached. */
      deterministic: !isRemoteRequest(params),
    };
  }

  async rerank(body: RerankBody, signal: AbortSignal): Promise<unknown> {
    this.modelParams("reranking", body.model);
    const documents = body.documents.map((d) => (typeof d === "string" ? d : d.text));
    const params = parseParams(rerankParams, { query: body.query, documents, task: body.task, seed: body.seed });
    const ranked = await this.engine.rerank(params, { signal });
    // Identical documents share a score; give each its own input index, in input order.
    const unused = new Map<string, number[]>();
    documents.forEach((d, i) => unused.set(d, [...(unused.get(d) ?? []), i]));
    const results = ranked.slice(0, body.top_n ?? ranked.length).map(([document, score]) => ({
      index: unused.get(document)!.shift()!,
      relevance_score: score,
      ...(body.return_documents === false ? {} : { document: { text: document } }),
    }));
    return { object: "list", model: body.model ?? "default", results };
  }
}
