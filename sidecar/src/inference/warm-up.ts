// Warm-up at daemon start on a GPU: each default model on disk is loaded and
// run once on a tiny input, so the backend compiles its kernels (Vulkan
// shaders took 6.4 s on a fresh machine) before the first real request.
// Nothing it computes is cached or returned.

import type { ResolvedModel } from "../models/resolve.js";
import { DEFAULT_EOS_STRING } from "../protocol/messages.js";
import { logger } from "../util/logger.js";
import { embedTexts } from "./embed.js";
import { generateText } from "./generate.js";
import type { ModelHost } from "./model-host.js";
import { scoreDocuments } from "./rerank.js";

const WARM_UP_TEXT = "warm-up";

/** Run each model once; a model that is missing or fails is logged and skipped (requests will report it). */
export async function warmUp(host: ModelHost, models: readonly ResolvedModel[]): Promise<void> {
  for (const resolved of models) {
    if ((await host.identityIfPresent(resolved)) === undefined) continue;
    const started = performance.now();
    try {
      const loaded = await host.get(resolved);
      switch (resolved.role) {
        case "generation":
          await generateText(loaded, { prompt: WARM_UP_TEXT, maxTokens: 2, temperature: 0, seed: 42, eosString: DEFAULT_EOS_STRING, trim: true });
          break;
        case "embedding":
          await embedTexts(loaded, [WARM_UP_TEXT], "query");
          break;
        case "reranking":
          await scoreDocuments(loaded, WARM_UP_TEXT, [WARM_UP_TEXT], WARM_UP_TEXT);
          break;
      }
      host.markWarmed(resolved);
      logger().info({ model: resolved.name, role: resolved.role, ms: Math.round(performance.now() - started) }, "model warmed up");
    } catch (error) {
      logger().warn({ model: resolved.name, role: resolved.role, error: error instanceof Error ? error.message : String(error) }, "warm-up failed");
    }
  }
}
