// Embeddings: the text with SteadyText's mode prefix ("Query: " or
// "Passage: "), pooled as the model's GGUF says, cut to 1024 dimensions
// (Matryoshka models keep their meaning in the leading ones) and
// L2-normalised. Values are rounded to float32 so they survive a trip
// through JSON and into a pgvector column bit for bit.

import { EMBEDDING_DIMENSION } from "../protocol/messages.js";
import { invalidParams, unavailable } from "../protocol/errors.js";
import type { LoadedModel } from "./model-host.js";

export type EmbeddingMode = "query" | "passage";

export function prefixed(text: string, mode: EmbeddingMode): string {
  return `${mode === "query" ? "Query" : "Passage"}: ${text}`;
}

export function normalise(vector: readonly number[]): number[] {
  const head = vector.slice(0, EMBEDDING_DIMENSION);
  let sumOfSquares = 0;
  for (const x of head) sumOfSquares += x * x;
  const norm = Math.sqrt(sumOfSquares);
  if (!Number.isFinite(norm) || norm === 0) throw unavailable("the embedding model produced a zero or non-finite vector");
  return head.map((x) => Math.fround(x / norm));
}

/** Embed several texts with one context lease; each result equals what a single call gives. */
export async function embedTexts(
  loaded: LoadedModel,
  texts: readonly string[],
  mode: EmbeddingMode,
  signal?: AbortSignal,
): Promise<number[][]> {
  if (loaded.model.embeddingVectorSize < EMBEDDING_DIMENSION) {
    throw unavailable(
      `embedding model ${loaded.name} produces ${loaded.model.embeddingVectorSize} dimensions; pg_steadytext needs ${EMBEDDING_DIMENSION}`,
    );
  }
  // Tokenized once, here: getEmbeddingFor given the tokens does not tokenize again (the same tokens it would make).
  const inputs = texts.map((text, index) => {
    const tokens = loaded.model.tokenize(prefixed(text, mode));
    if (tokens.length >= loaded.contextSize) {
      const where = texts.length > 1 ? ` (element ${index + 1})` : "";
      throw invalidParams(`Text is too long${where}: ${tokens.length} tokens, the embedding model accepts fewer than ${loaded.contextSize}`);
    }
    return tokens;
  });
  const lease = await loaded.embeddingContexts().acquire(signal);
  try {
    const vectors: number[][] = [];
    for (const input of inputs) {
      signal?.throwIfAborted();
      const embedding = await lease.resource.getEmbeddingFor(input);
      vectors.push(normalise(embedding.vector));
    }
    return vectors;
  } finally {
    lease.release();
  }
}
