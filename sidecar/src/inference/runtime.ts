// The llama.cpp runtime: one per process, prebuilt binary, never built or
// downloaded. STEADYTEXT_GPU chooses the compute backend: `off` (the
// default) is the CPU binary; `auto` takes CUDA or Vulkan when one of their
// prebuilt binaries works here and otherwise the CPU, saying so in the log;
// `vulkan` and `cuda` insist on that backend. GPU kernels do not give the
// CPU's bits, so the backend and device are part of every result's identity
// (see models/compute-identity.ts).

import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import type { GpuSetting } from "../config/settings.js";
import { logger } from "../util/logger.js";

export type ComputeBackend = "cpu" | "vulkan" | "cuda" | "metal";

/** Where this process computes. */
export interface ComputeDevice {
  /** What STEADYTEXT_GPU asked for. */
  setting: GpuSetting;
  backend: ComputeBackend;
  /** The GPU devices the backend uses, by name; empty on the CPU. */
  devices: string[];
  /** Why `auto` runs on the CPU; null otherwise. */
  fallback: string | null;
}

export interface Runtime {
  llama: Llama;
  compute: ComputeDevice;
}

/** Receives the one line that says `auto` fell back to the CPU. */
export type FallbackReporter = (message: string, reason: string) => void;

export class ComputeBackendError extends Error {}

const defaultReporter: FallbackReporter = (message, reason) => logger().warn({ gpu: "auto", reason }, message);

function open(gpu: false | "auto" | "vulkan" | "cuda"): Promise<Llama> {
  return getLlama({
    gpu,
    build: "never",
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trim();
      if (!text) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logger().error({ llama: true }, text);
      else logger().debug({ llama: true }, text);
    },
  });
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The CPU description (what `off` always is), known without opening anything. */
export function cpuCompute(setting: GpuSetting, fallback: string | null = null): ComputeDevice {
  return { setting, backend: "cpu", devices: [], fallback };
}

async function describeGpu(setting: GpuSetting, llama: Llama): Promise<ComputeDevice> {
  if (llama.gpu === false) return cpuCompute(setting);
  const devices = (await llama.getGpuDeviceNames()).slice().sort();
  return { setting, backend: llama.gpu, devices, fallback: null };
}

/** Open a runtime for a setting. Throws ComputeBackendError when an explicit GPU backend cannot run here. */
export async function openRuntime(setting: GpuSetting, report: FallbackReporter = defaultReporter): Promise<Runtime> {
  switch (setting) {
    case "off": {
      const llama = await open(false);
      return { llama, compute: cpuCompute(setting) };
    }
    case "auto": {
      let llama: Llama | undefined;
      let reason: string;
      try {
        llama = await open("auto");
        reason = "node-llama-cpp found no working CUDA or Vulkan binary, driver and device on this machine";
      } catch (error) {
        reason = `opening a GPU backend failed: ${describe(error)}`;
      }
      if (llama && llama.gpu !== false) return { llama, compute: await describeGpu(setting, llama) };
      llama ??= await open(false);
      report("STEADYTEXT_GPU=auto: no GPU backend is usable here, so models compute on the CPU", reason);
      return { llama, compute: cpuCompute(setting, reason) };
    }
    case "vulkan":
    case "cuda": {
      let llama: Llama;
      try {
        llama = await open(setting);
      } catch (error) {
        throw new ComputeBackendError(
          `STEADYTEXT_GPU=${setting}, but node-llama-cpp's prebuilt ${setting} binary does not run on this machine ` +
            `(${describe(error)}: no driver or device?); use STEADYTEXT_GPU=auto to fall back to the CPU, or off`,
        );
      }
      return { llama, compute: await describeGpu(setting, llama) };
    }
  }
}

let shared: { setting: GpuSetting; runtime: Promise<Runtime> } | undefined;

/** The process's runtime, opened on first use. A process computes on one backend: asking for another is an error. */
export function computeRuntime(setting: GpuSetting): Promise<Runtime> {
  if (shared && shared.setting !== setting) {
    return Promise.reject(
      new ComputeBackendError(`this process already computes with STEADYTEXT_GPU=${shared.setting}; it cannot also use ${setting}`),
    );
  }
  if (!shared) {
    const runtime = openRuntime(setting);
    shared = { setting, runtime };
    runtime.catch(() => {
      if (shared?.runtime === runtime) shared = undefined;
    });
  }
  return shared.runtime;
}

export async function llamaRuntime(setting: GpuSetting = "off"): Promise<Llama> {
  return (await computeRuntime(setting)).llama;
}
