// Turns claimed queue items into results through the engine, exactly as the
// synchronous calls would: the same params, the same code, the same cache.
// Embeddings that share settings go to the model as one batch; when a batch
// fails, its items are tried one by one so that one bad row fails alone.

import type { Engine, RequestContext } from "../engine/engine.js";
import { embedParams, generateParams, parseParams, ProtocolError, rerankParams } from "../protocol/index.js";
import { float32Bytes } from "../util/float32.js";
import type { ClaimedItem } from "./queue-sql.js";

/**
 * What an item came to: a result (text and/or a vector literal), or an error
 * to record; `permanent` when retrying cannot help (invalid input gives the
 * same error every time), so the item fails at once.
 */
export type Outcome =
  | { id: string; ok: true; result: string | null; embedding: Buffer | null }
  | { id: string; ok: false; error: string; permanent: boolean };

function failure(id: string, error: unknown): Outcome {
  if (error instanceof ProtocolError) return { id, ok: false, error: error.toWire(), permanent: error.code === "invalid_params" };
  return { id, ok: false, error: error instanceof Error ? error.message : String(error), permanent: false };
}

interface EmbedJob {
  item: ClaimedItem;
  text: string;
  seed: number;
  model: string | null | undefined;
  mode: "query" | "passage";
  useCache: boolean;
}

function embedJob(item: ClaimedItem): EmbedJob | undefined {
  if (item.request_type === "auto_embed") {
    // The row's current text; none (the row is gone, or its text blank) means nothing to embed.
    if (item.prompt === null || item.prompt.trim() === "") return undefined;
    return { item, text: item.prompt, seed: item.seed ?? 42, model: item.model, mode: "query", useCache: true };
  }
  const params = parseParams(embedParams, item.params);
  if (typeof params.text_input !== "string") throw new ProtocolError("invalid_params", "text_input must be one text");
  return { item, text: params.text_input, seed: params.seed, model: params.model, mode: params.mode ?? "query", useCache: params.use_cache };
}

async function embedGroup(engine: Engine, jobs: readonly EmbedJob[], ctx: RequestContext): Promise<Outcome[]> {
  const [first] = jobs;
  if (!first) return [];
  const vectors = (await engine.embed(
    {
      text_input: jobs.map((j) => j.text),
      seed: first.seed,
      model: first.model,
      mode: first.mode,
      use_cache: first.useCache,
      unsafe_mode: undefined,
      sync_mirror: undefined,
    },
    ctx,
  )) as number[][];
  // An auto-embed result carries the text it embedded: the row is written only if it still has that text.
  return jobs.map((job, i) => ({
    id: job.item.id,
    ok: true,
    result: job.item.request_type === "auto_embed" ? job.text : null,
    embedding: float32Bytes([vectors[i]!]), // bytes, not decimals: see _steadytext_real4_from_f32le
  }));
}

async function embedAll(engine: Engine, items: readonly ClaimedItem[], ctx: RequestContext): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const groups = new Map<string, EmbedJob[]>();
  for (const item of items) {
    try {
      const job = embedJob(item);
      if (!job) {
        outcomes.push({ id: item.id, ok: true, result: null, embedding: null });
        continue;
      }
      const key = JSON.stringify([job.seed, job.model ?? null, job.mode, job.useCache]);
      groups.set(key, [...(groups.get(key) ?? []), job]);
    } catch (error) {
      outcomes.push(failure(item.id, error));
    }
  }
  for (const jobs of groups.values()) {
    try {
      outcomes.push(...(await embedGroup(engine, jobs, ctx)));
    } catch (error) {
      if (jobs.length === 1 || ctx.signal?.aborted) {
        outcomes.push(...jobs.map((j) => failure(j.item.id, error)));
        continue;
      }
      for (const job of jobs) {
        try {
          outcomes.push(...(await embedGroup(engine, [job], ctx)));
        } catch (single) {
          outcomes.push(failure(job.item.id, single));
        }
      }
    }
  }
  return outcomes;
}

async function workOne(engine: Engine, item: ClaimedItem, ctx: RequestContext): Promise<Outcome> {
  try {
    if (item.request_type === "generate") {
      const text = await engine.generate(parseParams(generateParams, item.params), ctx);
      return { id: item.id, ok: true, result: text, embedding: null };
    }
    const params = parseParams(rerankParams, item.params);
    const ranked = await engine.rerank(params, ctx);
    const result = params.return_scores ? ranked : ranked.map(([document]) => document);
    return { id: item.id, ok: true, result: JSON.stringify(result), embedding: null };
  } catch (error) {
    return failure(item.id, error);
  }
}

/** Work a claimed batch; every item gets exactly one outcome. */
export async function workItems(engine: Engine, items: readonly ClaimedItem[], ctx: RequestContext): Promise<Outcome[]> {
  const embeds = items.filter((i) => i.request_type === "embed" || i.request_type === "auto_embed");
  const others = items.filter((i) => i.request_type === "generate" || i.request_type === "rerank");
  const [embedded, worked] = await Promise.all([embedAll(engine, embeds, ctx), Promise.all(others.map((i) => workOne(engine, i, ctx)))]);
  return [...embedded, ...worked];
}
