// Fetches a model file from a Hugging Face style hub. Unlike a general
// downloader it gives up quickly: a probe with a short timeout first, a stall
// timeout while streaming, and the sha256 the hub publishes is checked.

import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SingleBar, Presets } from "cli-progress";
import { logger } from "../util/logger.js";

export interface DownloadOptions {
  endpoint: string;
  repo: string;
  filename: string;
  destination: string;
  probeTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Show a progress bar on stderr (the CLI does when stderr is a terminal). */
  progressBar?: boolean;
  signal?: AbortSignal;
}

export class DownloadError extends Error {}

export function downloadUrl(endpoint: string, repo: string, filename: string): string {
  return `${endpoint}/${repo}/resolve/main/${encodeURIComponent(filename)}`;
}

/** The hub's checksum for LFS files: X-Linked-ETag (or ETag) holding a sha256. */
function publishedSha256(headers: Headers): string | undefined {
  for (const name of ["x-linked-etag", "etag"]) {
    const value = headers.get(name)?.replace(/^W\//, "").replace(/"/g, "");
    if (value && /^[0-9a-f]{64}$/i.test(value)) return value.toLowerCase();
  }
  return undefined;
}

/** Download to `destination` atomically; returns the file's sha256. */
export async function downloadModel(options: DownloadOptions): Promise<string> {
  const url = downloadUrl(options.endpoint, options.repo, options.filename);
  const probeTimeoutMs = options.probeTimeoutMs ?? 5000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 30000;
  const log = logger().child({ url });
  if (options.signal?.aborted) {
    const reason = options.signal.reason instanceof Error ? options.signal.reason.message : String(options.signal.reason);
    throw new DownloadError(`download of ${options.repo}/${options.filename} cancelled: ${reason}`);
  }

  const controller = new AbortController();
  const abortFromCaller = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", abortFromCaller, { once: true });
  const probeTimer = setTimeout(() => controller.abort(new DownloadError(`no answer from ${url} within ${probeTimeoutMs} ms`)), probeTimeoutMs);

  let response: Response;
  try {
    response = await fetch(url, { signal: controller.signal, redirect: "follow" });
  } catch (error) {
    const reason = controller.signal.reason instanceof Error ? controller.signal.reason.message : String(error);
    throw new DownloadError(`cannot download ${options.repo}/${options.filename}: ${reason}`);
  } finally {
    clearTimeout(probeTimer);
  }
  if (!response.ok || !response.body) {
    options.signal?.removeEventListener("abort", abortFromCaller);
    throw new DownloadError(`cannot download ${options.repo}/${options.filename}: HTTP ${response.status} from ${url}`);
  }

  const expected = publishedSha256(response.headers);
  const total = Number(response.headers.get("content-length") ?? 0);
  const temporary = `${options.destination}.${process.pid}.download`;
  await mkdir(dirname(options.destination), { recursive: true });

  const hash = createHash("sha256");
  let received = 0;
  let lastLogged = 0;
  const bar = options.progressBar ? new SingleBar({ format: `${options.filename} [{bar}] {percentage}% {value}/{total} bytes` }, Presets.shades_classic) : undefined;
  bar?.start(total || 1, 0);
  let stallTimer = setTimeout(() => controller.abort(new DownloadError(`download stalled for ${stallTimeoutMs} ms`)), stallTimeoutMs);
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>);
  body.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    received += chunk.length;
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => controller.abort(new DownloadError(`download stalled for ${stallTimeoutMs} ms`)), stallTimeoutMs);
    bar?.update(received);
    if (!bar && received - lastLogged >= 64 * 1024 * 1024) {
      lastLogged = received;
      log.info({ received, total }, "downloading model");
    }
  });
  try {
    await pipeline(body, createWriteStream(temporary));
  } catch (error) {
    await rm(temporary, { force: true });
    const reason = controller.signal.reason instanceof Error ? controller.signal.reason.message : String(error);
    throw new DownloadError(`download of ${options.repo}/${options.filename} failed: ${reason}`);
  } finally {
    clearTimeout(stallTimer);
    bar?.stop();
    options.signal?.removeEventListener("abort", abortFromCaller);
  }

  const actual = hash.digest("hex");
  if (total && received !== total) {
    await rm(temporary, { force: true });
    throw new DownloadError(`download of ${options.filename} is truncated: ${received} of ${total} bytes`);
  }
  if (expected && expected !== actual) {
    await rm(temporary, { force: true });
    throw new DownloadError(`checksum mismatch for ${options.filename}: expected ${expected}, got ${actual}`);
  }
  await rename(temporary, options.destination);
  log.info({ sha256: actual, bytes: received, verified: Boolean(expected) }, "model downloaded");
  return actual;
}
