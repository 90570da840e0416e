// Fetches a model file from a Hugging Face style hub. Unlike a general
// downloader it gives up quickly: a probe with a short timeout first, a stall
// timeout while streaming, and the sha256 the hub publishes is checked. An
// interrupted download leaves `<file>.partial`, and the next attempt asks
// for the rest with an HTTP Range request (a hub that ignores it sends the
// whole file again).

import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
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

  const partial = `${options.destination}.partial`;
  await mkdir(dirname(options.destination), { recursive: true });
  let offset = await stat(partial).then((s) => s.size, () => 0);
  const ask = async (from: number): Promise<Response> => {
    try {
      return await fetch(url, { signal: controller.signal, redirect: "follow", headers: from > 0 ? { range: `bytes=${from}-` } : {} });
    } catch (error) {
      const reason = controller.signal.reason instanceof Error ? controller.signal.reason.message : String(error);
      throw new DownloadError(`cannot download ${options.repo}/${options.filename}: ${reason}`);
    }
  };

  let response: Response;
  let total: number;
  try {
    response = await ask(offset);
    const resumed = response.status === 206 ? /^bytes (\d+)-\d+\/(\d+)$/.exec(response.headers.get("content-range") ?? "") : null;
    if (offset > 0 && !(resumed && Number(resumed[1]) === offset)) {
      // Not the rest of our partial file (a full 200, an unsatisfiable range, another range): start over.
      if (response.status !== 200) {
        await response.body?.cancel();
        response = await ask(0);
      }
      offset = 0;
    }
    total = resumed && offset > 0 ? Number(resumed[2]) : Number(response.headers.get("content-length") ?? 0);
  } finally {
    clearTimeout(probeTimer);
  }
  if (!response.ok || !response.body) {
    options.signal?.removeEventListener("abort", abortFromCaller);
    throw new DownloadError(`cannot download ${options.repo}/${options.filename}: HTTP ${response.status} from ${url}`);
  }
  if (offset > 0) log.info({ offset, total }, "resuming a model download");

  const expected = publishedSha256(response.headers);

  const hash = createHash("sha256");
  if (offset > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  let received = offset;
  let lastLogged = 0;
  const bar = options.progressBar ? new SingleBar({ format: `${options.filename} [{bar}] {percentage}% {value}/{total} bytes` }, Presets.shades_classic) : undefined;
  bar?.start(total || 1, offset);
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
    await pipeline(body, createWriteStream(partial, { flags: offset > 0 ? "a" : "w" }));
  } catch (error) {
    // The bytes so far stay in the .partial file: the next attempt asks only for the rest.
    const reason = controller.signal.reason instanceof Error ? controller.signal.reason.message : String(error);
    throw new DownloadError(`download of ${options.repo}/${options.filename} failed: ${reason}`);
  } finally {
    clearTimeout(stallTimer);
    bar?.stop();
    options.signal?.removeEventListener("abort", abortFromCaller);
  }

  const actual = hash.digest("hex");
  if (total && received !== total) {
    throw new DownloadError(`download of ${options.filename} is truncated: ${received} of ${total} bytes`);
  }
  if (expected && expected !== actual) {
    await rm(partial, { force: true });
    throw new DownloadError(`checksum mismatch for ${options.filename}: expected ${expected}, got ${actual}`);
  }
  await rename(partial, options.destination);
  log.info({ sha256: actual, bytes: received, verified: Boolean(expected) }, "model downloaded");
  return actual;
}
