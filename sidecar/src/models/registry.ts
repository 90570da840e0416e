// The models SteadyText knows by name, and which ones are the defaults.

import type { ModelRole } from "../config/settings.js";
import type { GenerationSize } from "../protocol/messages.js";

export interface RegistryEntry {
  role: ModelRole;
  repo: string;
  filename: string;
}

export const MODEL_REGISTRY: Readonly<Record<string, RegistryEntry>> = {
  "gemma-mini-270m": { role: "generation", repo: "ggml-org/gemma-3-270m-it-qat-GGUF", filename: "gemma-3-270m-it-qat-Q4_0.gguf" },
  "gemma-3n-2b": { role: "generation", repo: "ggml-org/gemma-3n-E2B-it-GGUF", filename: "gemma-3n-E2B-it-Q8_0.gguf" },
  "gemma-3n-4b": { role: "generation", repo: "ggml-org/gemma-3n-E4B-it-GGUF", filename: "gemma-3n-E4B-it-Q8_0.gguf" },
  "qwen3-embedding": {
    role: "embedding",
    repo: "Qwen/Qwen3-Embedding-0.6B-GGUF",
    filename: "Qwen3-Embedding-0.6B-Q8_0.gguf",
  },
  "qwen3-reranker-4b": {
    role: "reranking",
    repo: "QuantFactory/Qwen3-Reranker-4B-GGUF",
    filename: "Qwen3-Reranker-4B.Q8_0.gguf",
  },
};

/** As in SteadyText: mini is its CI model; medium (which it never mapped) is the larger Gemma. */
export const SIZE_TO_MODEL: Readonly<Record<GenerationSize, string>> = {
  mini: "gemma-mini-270m",
  small: "gemma-3n-2b",
  medium: "gemma-3n-4b",
  large: "gemma-3n-4b",
};

export const DEFAULT_MODEL: Readonly<Record<ModelRole, string>> = {
  generation: SIZE_TO_MODEL.small,
  embedding: "qwen3-embedding",
  reranking: "qwen3-reranker-4b",
};
