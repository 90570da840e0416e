// The identity of a model's results. On the CPU it is the model file's
// sha256, exactly as before GPU support, so existing caches stay valid. On
// a GPU the same file gives other bits, so the identity becomes a sha256
// over the file's sha256, the backend, the device class (the devices' names)
// and the layers offloaded. Cache keys (sidecar and SQL alike) hash this
// identity in the place of the file's sha256, and the daemon publishes it in
// steadytext_models: a CPU answer is never served as a GPU answer, nor the
// other way round, and SQL needs no change to tell them apart.

import { createHash } from "node:crypto";
import type { GpuLayers } from "../config/settings.js";
import type { ComputeDevice } from "../inference/runtime.js";

export const COMPUTE_IDENTITY_VERSION = "steadytext-compute-v1";

function field(name: string, value: string): string {
  return `${name}=${Buffer.byteLength(value, "utf8")}:${value}\n`;
}

/** The device class: the devices' names, or "cpu". */
export function deviceClass(compute: Pick<ComputeDevice, "backend" | "devices">): string {
  return compute.backend === "cpu" ? "cpu" : compute.devices.join(" + ") || "unknown device";
}

/** The identity cache keys use for a model file computed on `compute` with `gpuLayers` offloaded. */
export function resultIdentity(fileSha256: string, compute: Pick<ComputeDevice, "backend" | "devices">, gpuLayers: GpuLayers): string {
  if (compute.backend === "cpu") return fileSha256;
  const material =
    `${COMPUTE_IDENTITY_VERSION}\n` +
    field("model", fileSha256) +
    field("backend", compute.backend) +
    field("device", deviceClass(compute)) +
    field("gpu_layers", String(gpuLayers));
  return createHash("sha256").update(material, "utf8").digest("hex");
}
