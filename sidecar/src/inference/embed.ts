// Embeddings: the text with SteadyText's mode prefix ("Query: " or
// "Passage: "), pooled as the model's GGUF says, cut to 1024 dimensions
// (Matryoshka models keep their meaning in the leading ones) and
// L2-normalised. Values are rounded to float32 so they survive a trip
// through JSON and into a pgvector column bit for bit.

import { EMBEDDING_DIMENSION } from "../protocol/messages.js";
import { invalidParams, unavailable } from "../protocol/errors.js";
import type { LlamaEmbeddingContext } from "node-llama-cpp";
import type { Lease } from "../util/resource-pool.js";
import type { LoadedModel } from "./model-host.js";

/** A batch takes another free context for every this many texts (below it, setting one up costs more than it gives). */
const TEXTS_PER_HELPER = 16;

export type EmbeddingMode = "query" | "passage";

export function prefixed(text: string, mode: EmbeddingMode): string {
  return `${mode === "query" ? "Query" : "Passage"}: ${text}`;
}

// Indexed loops, not slice/for-of/map: node-llama-cpp hands out frozen arrays, on which V8 takes its slow
// paths (51 µs per vector against 13 µs, on every embedding). Same sums in the same order, same values.
export function normalise(vector: readonly number[]): number[] {
  const length = Math.min(vector.length, EMBEDDING_DIMENSION);
  let sumOfSquares = 0;
  for (let i = 0; i < length; i++) sumOfSquares += vector[i]! * vector[i]!;
  const norm = Math.sqrt(sumOfSquares);
  if (!Number.isFinite(norm) || norm === 0) throw unavailable("the embedding model produced a zero or non-finite vector");
  const unit = new Array<number>(length);
  for (let i = 0; i < length; i++) unit[i] = Math.fround(vector[i]! / norm);
  return unit;
}

/** Embed several texts, over as many free contexts as help; each result equals what a single call gives. */
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
  const pool = loaded.embeddingContexts();
  const vectors = new Array<number[]>(inputs.length);
  let next = 0;
  let failed = false;
  // Each text is computed alone, from an empty context, in whichever context takes it: the vectors do not
  // depend on how the texts are spread. A helper context gives way as soon as another request waits for one.
  const work = async (lease: Lease<LlamaEmbeddingContext>, helper: boolean): Promise<void> => {
    try {
      while (next < inputs.length && !failed && !(helper && pool.queued > 0)) {
        signal?.throwIfAborted();
        const index = next++;
        vectors[index] = normalise((await lease.resource.getEmbeddingFor(inputs[index]!)).vector);
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      lease.release();
    }
  };
  const workers = [work(await pool.acquire(signal), false)];
  const helpers = Math.min(pool.capacity, Math.ceil(inputs.length / TEXTS_PER_HELPER)) - 1;
  for (let i = 0; i < helpers && next < inputs.length; i++) {
    const lease = await pool.tryAcquire();
    if (!lease) break;
    workers.push(work(lease, true));
  }
  // Every lease is back before this returns, also when one worker failed.
  const outcomes = await Promise.allSettled(workers);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
  if (failure) throw failure.reason;
  return vectors;
}
