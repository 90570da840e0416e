// Text generation: the prompt as one user turn in the model's chat format,
// greedy decoding (pure argmax, no repeat penalty) unless a temperature is
// asked for, in which case sampling is seeded. Each request starts from an
// empty context, so its output never depends on what ran before it.

import type { ChatHistoryItem, LlamaGrammar } from "node-llama-cpp";
import { DEFAULT_EOS_STRING } from "../protocol/messages.js";
import { invalidParams } from "../protocol/errors.js";
import type { LoadedModel } from "./model-host.js";
import { WhitespaceTrimmer } from "./whitespace-trimmer.js";

export interface TextGenerationRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  seed: number;
  eosString: string;
  grammar?: LlamaGrammar | undefined;
  /** Strip whitespace at both ends (SteadyText does for free text); exact output for grammars that fix it. */
  trim: boolean;
  signal?: AbortSignal | undefined;
  /** Receives the output as it is produced; the chunks concatenate to the returned text. */
  onText?: ((chunk: string) => void) | undefined;
}

/** SteadyText's sampling when a temperature is given (top-k 40, top-p 0.95, min-p 0.05). */
function sampling(temperature: number, seed: number) {
  return temperature > 0 ? { temperature, seed, topK: 40, topP: 0.95, minP: 0.05 } : { temperature: 0 };
}

export function promptTokenCount(loaded: LoadedModel, prompt: string): number {
  const { contextText } = loaded.chatWrapper.generateContextState({
    chatHistory: [
      { type: "user", text: prompt },
      { type: "model", response: [] },
    ],
  });
  return contextText.tokenize(loaded.model.tokenizer).length;
}

/** Room for what a token count from bytes cannot see: a leading-space token, boundary merges across the template. */
const TEMPLATE_SLACK_TOKENS = 32;
const emptyPromptTokens = new WeakMap<LoadedModel, number>();

/** Throws invalid_params when prompt plus output cannot fit the model's context window. */
export function checkPromptFits(loaded: LoadedModel, prompt: string, maxTokens: number): void {
  // The exact count renders the chat template, a good part of a short generation's own overhead. No token
  // is shorter than a byte, so a prompt whose bytes plus the template's tokens (counted once per model) fit
  // with room to spare needs no count at all.
  let templateTokens = emptyPromptTokens.get(loaded);
  if (templateTokens === undefined) {
    templateTokens = promptTokenCount(loaded, "");
    emptyPromptTokens.set(loaded, templateTokens);
  }
  if (Buffer.byteLength(prompt) + templateTokens + TEMPLATE_SLACK_TOKENS + maxTokens <= loaded.contextSize) return;
  const promptTokens = promptTokenCount(loaded, prompt);
  if (promptTokens + maxTokens > loaded.contextSize) {
    throw invalidParams(
      `Prompt is too long: ${promptTokens} tokens plus max_tokens ${maxTokens} exceed the context window of ${loaded.contextSize} tokens`,
    );
  }
}

export async function generateText(loaded: LoadedModel, request: TextGenerationRequest): Promise<string> {
  checkPromptFits(loaded, request.prompt, request.maxTokens);
  const history: ChatHistoryItem[] = [{ type: "user", text: request.prompt }];
  const onText = request.onText;
  const emit = onText && (request.trim ? WhitespaceTrimmer.feeding(onText) : onText);
  const lease = await loaded.generationSlots().acquire(request.signal);
  try {
    await lease.resource.clear();
    const result = await lease.resource.chat.generateResponse(history, {
      maxTokens: request.maxTokens,
      ...sampling(request.temperature, request.seed),
      repeatPenalty: false,
      ...(request.grammar ? { grammar: request.grammar } : {}),
      ...(request.eosString !== DEFAULT_EOS_STRING ? { customStopTriggers: [request.eosString] } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      ...(emit ? { onTextChunk: emit } : {}),
    });
    return request.trim ? result.response.trim() : result.response;
  } finally {
    lease.release();
  }
}
