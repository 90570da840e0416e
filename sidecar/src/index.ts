// pg-steadytext as a TypeScript library: deterministic generation, embeddings
// and reranking, through a running daemon or with in-process models.
//
//   import { generate, embed } from "pg-steadytext";
//   const text = await generate("Write a haiku about indexes", { maxNewTokens: 64 });

export {
  activeBackend,
  close,
  configure,
  embed,
  generate,
  generateChoice,
  generateIter,
  generateJson,
  generateRegex,
  preloadModels,
  rerank,
  SteadyTextError,
  type BackendChoice,
  type LibraryConfig,
} from "./library/api.js";
export type { PreloadOptions } from "./library/backends.js";
export type { EmbedOptions, GenerateOptions, ModelOptions, RankedDocument, RerankOptions } from "./library/options.js";
export type { GenerationSize } from "./protocol/messages.js";
