// Pins model downloads against a local hub: verified success, resumed downloads, and every failure (checksum, HTTP,
// silence, stall, refused) is a prompt DownloadError that leaves no model file behind (at most a .partial to resume from).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { DownloadError, downloadModel, downloadUrl, type DownloadOptions } from "../src/models/download.js";
import { testModelPath, writeTestModels } from "../src/models/test-models/index.js";

const REPO = "steadytext/test-GGUF";
const FILENAME = "steadytext-test-generation.gguf";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

let root: string;
let modelBytes: Buffer;
let modelSha256: string;
let handler: Handler;
let server: Server;
let endpoint: string;
let destinationDir: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "steadytext-download-"));
  await writeTestModels(join(root, "source"));
  modelBytes = await readFile(testModelPath(join(root, "source"), "generation"));
  modelSha256 = createHash("sha256").update(modelBytes).digest("hex");
  server = createServer((request, response) => handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  destinationDir = join(root, `dest-${++counter}`);
  handler = serveModel();
});

/** A hub that serves the model at /<repo>/resolve/main/<file>, like Hugging Face. */
function serveModel(headers: Record<string, string> = { "x-linked-etag": `"${modelSha256}"` }): Handler {
  return (request, response) => {
    if (request.url !== `/${REPO}/resolve/main/${FILENAME}`) {
      response.writeHead(404).end("not found");
      return;
    }
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(modelBytes.length), ...headers });
    response.end(modelBytes);
  };
}

function options(extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return { endpoint, repo: REPO, filename: FILENAME, destination: join(destinationDir, FILENAME), ...extra };
}

/** Files in the destination dir (none when it was never created). */
async function leftBehind(): Promise<string[]> {
  return readdir(destinationDir).catch(() => []);
}

/** Run a download that must fail; returns the error. */
async function failure(extra: Partial<DownloadOptions> = {}): Promise<{ error: DownloadError }> {
  try {
    await downloadModel(options(extra));
  } catch (error) {
    assert.ok(error instanceof DownloadError, `threw ${String(error)}`);
    return { error };
  }
  assert.fail("the download succeeded");
}

describe("downloadModel", () => {
  test("the URL is <endpoint>/<repo>/resolve/main/<file>, file name encoded", () => {
    assert.equal(downloadUrl("http://h", "o/n", "a b.gguf"), "http://h/o/n/resolve/main/a%20b.gguf");
  });

  test("a verified download writes the file and returns its sha256", async () => {
    const sha = await downloadModel(options());
    assert.equal(sha, modelSha256);
    assert.ok((await readFile(join(destinationDir, FILENAME))).equals(modelBytes));
    assert.deepEqual(await leftBehind(), [FILENAME], "a temporary file was left behind");
  });

  test("a weak or plain ETag holding a sha256 is checked too", async () => {
    handler = serveModel({ etag: `W/"${modelSha256.toUpperCase()}"` });
    assert.equal(await downloadModel(options()), modelSha256);
    handler = serveModel({ etag: `"${"0".repeat(64)}"` });
    destinationDir = join(root, `dest-${++counter}`);
    assert.match((await failure()).error.message, /checksum/);
  });

  test("redirects (the hub sends LFS files to a CDN) are followed", async () => {
    const serve = serveModel();
    handler = (request, response) => {
      if (request.url?.startsWith("/cdn/")) {
        request.url = request.url.slice(4);
        serve(request, response);
      } else response.writeHead(302, { location: `/cdn${request.url}` }).end();
    };
    assert.equal(await downloadModel(options()), modelSha256);
  });

  test("a wrong checksum is a DownloadError and leaves no file, temporary or final", async () => {
    handler = serveModel({ "x-linked-etag": `"${"f".repeat(64)}"` });
    const { error } = await failure();
    assert.match(error.message, /checksum/);
    assert.ok(error.message.includes(modelSha256), "the message should give the actual hash");
    assert.deepEqual(await leftBehind(), []);
  });

  test("HTTP 404 is a DownloadError naming the status", async () => {
    const { error } = await failure({ filename: "missing.gguf" });
    assert.match(error.message, /HTTP 404/);
    assert.deepEqual(await leftBehind(), []);
  });

  test("HTTP 500 is a DownloadError", async () => {
    handler = (_request, response) => response.writeHead(500).end("boom");
    assert.match((await failure()).error.message, /HTTP 500/);
  });

  test("a server that accepts but never answers fails within the probe timeout", async () => {
    handler = () => undefined; // never respond
    const { error } = await failure({ probeTimeoutMs: 300 });
    assert.match(error.message, /no answer .* within 300 ms/);
    assert.deepEqual(await leftBehind(), []);
  });

  test("a server that stalls mid-body fails after the stall timeout, leaving only a .partial to resume from", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-length": String(modelBytes.length), "x-linked-etag": modelSha256 });
      response.write(modelBytes.subarray(0, 64 * 1024)); // then silence
    };
    const { error } = await failure({ stallTimeoutMs: 300 });
    assert.match(error.message, /stalled for 300 ms/);
    assert.deepEqual(await leftBehind(), [`${FILENAME}.partial`]);
  });

  test("a body cut short (connection closed early) is a DownloadError, leaving only a .partial to resume from", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-length": String(modelBytes.length), "x-linked-etag": modelSha256 });
      response.write(modelBytes.subarray(0, 1000), () => response.socket?.destroy());
    };
    await failure({ stallTimeoutMs: 5000 });
    assert.deepEqual(await leftBehind(), [`${FILENAME}.partial`]);
  });

  test("a download cut short resumes where it stopped: the next attempt asks only for the rest", async () => {
    // What an interrupted attempt leaves: the first bytes in <file>.partial.
    await mkdir(destinationDir, { recursive: true });
    await writeFile(join(destinationDir, `${FILENAME}.partial`), modelBytes.subarray(0, 40_000));
    const ranges: Array<string | undefined> = [];
    let bodyBytes = 0;
    handler = (request, response) => {
      ranges.push(request.headers.range);
      const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? "")?.[1] ?? 0);
      response.writeHead(from > 0 ? 206 : 200, {
        "content-length": String(modelBytes.length - from),
        ...(from > 0 ? { "content-range": `bytes ${from}-${modelBytes.length - 1}/${modelBytes.length}` } : {}),
        "x-linked-etag": modelSha256,
      });
      bodyBytes += modelBytes.length - from;
      response.end(modelBytes.subarray(from));
    };
    assert.equal(await downloadModel(options()), modelSha256);
    assert.ok((await readFile(join(destinationDir, FILENAME))).equals(modelBytes));
    assert.deepEqual(await leftBehind(), [FILENAME]);
    assert.deepEqual(ranges, ["bytes=40000-"]);
    assert.equal(bodyBytes, modelBytes.length - 40_000);
  });

  test("a partial file that does not belong to the published file is discarded by the checksum, not kept", async () => {
    await mkdir(destinationDir, { recursive: true });
    await writeFile(join(destinationDir, `${FILENAME}.partial`), Buffer.alloc(40_000, 7));
    handler = (request, response) => {
      const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? "")?.[1] ?? 0);
      response.writeHead(206, {
        "content-length": String(modelBytes.length - from),
        "content-range": `bytes ${from}-${modelBytes.length - 1}/${modelBytes.length}`,
        "x-linked-etag": modelSha256,
      });
      response.end(modelBytes.subarray(from));
    };
    assert.match((await failure()).error.message, /checksum mismatch/);
    assert.deepEqual(await leftBehind(), []);
    handler = serveModel();
    assert.equal(await downloadModel(options()), modelSha256);
  });

  test("a hub that ignores Range sends the whole file again, and the result is still exact", async () => {
    let requests = 0;
    handler = (_request, response) => {
      response.writeHead(200, { "content-length": String(modelBytes.length), "x-linked-etag": modelSha256 });
      if (++requests === 1) response.write(modelBytes.subarray(0, 5000), () => response.socket?.destroy());
      else response.end(modelBytes);
    };
    await failure({ stallTimeoutMs: 5000 });
    assert.equal(await downloadModel(options()), modelSha256);
    assert.ok((await readFile(join(destinationDir, FILENAME))).equals(modelBytes));
  });

  // A probe timeout far beyond the test's own: failing at all shows it did not wait for one.
  test("a closed port fails at once, not at the probe timeout", { timeout: 60_000 }, async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { error } = await failure({ endpoint: `http://127.0.0.1:${port}`, probeTimeoutMs: 3_600_000 });
    assert.match(error.message, /cannot download/);
  });

  // A stall timeout far beyond the test's own: ending at all shows the signal ended it.
  test("the caller's abort signal ends a stalled download", { timeout: 60_000 }, async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-length": String(modelBytes.length) });
      response.write(modelBytes.subarray(0, 1024));
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("caller gave up")), 200);
    const { error } = await failure({ signal: controller.signal, stallTimeoutMs: 3_600_000 });
    assert.match(error.message, /caller gave up/);
    assert.deepEqual(await leftBehind(), [`${FILENAME}.partial`]);
  });

  test(
    "an already-aborted signal fails without downloading",
    async () => {
      let requests = 0;
      const serve = serveModel();
      handler = (request, response) => {
        requests++;
        serve(request, response);
      };
      await failure({ signal: AbortSignal.abort(new Error("cancelled before start")) });
      assert.equal(requests, 0);
      assert.deepEqual(await leftBehind(), []);
    },
  );

  test("without a published checksum the download is accepted and hashed locally", async () => {
    handler = serveModel({});
    assert.equal(await downloadModel(options()), modelSha256);
  });
});
