// The llama.cpp runtime: one per process, CPU only (GPU kernels would not give
// the same bits as the CPU ones), prebuilt binary, never built or downloaded.

import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { logger } from "../util/logger.js";

let runtime: Promise<Llama> | undefined;

export function llamaRuntime(): Promise<Llama> {
  runtime ??= getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trim();
      if (!text) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logger().error({ llama: true }, text);
      else logger().debug({ llama: true }, text);
    },
  }).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}
