// The st command line: daemon lifecycle with a PID file, the task commands,
// and clear usage errors for bad flags and hostile arguments.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { freePort, ST_CLI } from "../../scripts/lib/sidecar-process.js";

const run = promisify(execFile);
let dir: string;
let env: NodeJS.ProcessEnv;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function st(...args: string[]): Promise<Outcome> {
  return stWith({}, ...args);
}

async function stWith(overrides: Record<string, string>, ...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ST_CLI, ...args], { env: { ...env, ...overrides }, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "steadytext-cli-"));
  env = {
    ...process.env,
    STEADYTEXT_CACHE_DIR: dir,
    STEADYTEXT_DAEMON_PORT: String(await freePort()),
    STEADYTEXT_TEST_MODELS: "1",
    STEADYTEXT_LOG_LEVEL: "warn",
  };
});

after(async () => {
  await st("daemon", "stop");
  await rm(dir, { recursive: true, force: true });
});

describe("daemon lifecycle", () => {
  test("start in the background, status, start again (a no-op), stop", async () => {
    const started = await st("daemon", "start");
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /daemon started \(pid \d+\)/);
    const pidFile = join(dir, "run", `daemon-127.0.0.1_${env.STEADYTEXT_DAEMON_PORT}.pid`);
    assert.ok(existsSync(pidFile));

    const status = JSON.parse((await st("daemon", "status", "--json")).stdout) as { running: boolean; responsive: boolean; pid: number };
    assert.equal(status.running, true);
    assert.equal(status.responsive, true);

    const again = await st("daemon", "start");
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already running \(pid \d+\)/);

    const stopped = await st("daemon", "stop");
    assert.equal(stopped.code, 0);
    assert.match(stopped.stdout, /daemon stopped/);
    assert.ok(!existsSync(pidFile));
    const after = JSON.parse((await st("daemon", "status", "--json")).stdout) as { running: boolean };
    assert.equal(after.running, false);
    assert.equal((await st("daemon", "status")).code, 3);
  });

  test("stopping a daemon that is not running is not an error", async () => {
    const result = await st("daemon", "stop");
    assert.equal(result.code, 0);
    assert.match(result.stdout, /not running/);
  });
});

describe("tasks", () => {
  test("generate gives the same text through the daemon and in-process", async () => {
    const local = await st("generate", "cli prompt", "--max-tokens", "12", "--local");
    assert.equal(local.code, 0, local.stderr);
    await st("daemon", "start");
    try {
      const viaDaemon = await st("generate", "cli prompt", "--max-tokens", "12", "--daemon", "--no-cache");
      assert.equal(viaDaemon.stdout, local.stdout);
      const streamed = await st("generate", "cli prompt", "--max-tokens", "12", "--daemon", "--stream");
      assert.equal(streamed.stdout, local.stdout);
      const embedded = JSON.parse((await st("embed", "some text", "--daemon")).stdout) as number[];
      assert.equal(embedded.length, 1024);
      const ranked = JSON.parse((await st("rerank", "cats", "a cat", "stocks", "--json", "--daemon")).stdout) as Array<[string, number]>;
      assert.equal(ranked.length, 2);
      const choice = (await st("generate", "pick", "--choices", "red,green", "--daemon")).stdout.trim();
      assert.ok(["red", "green"].includes(choice));
    } finally {
      await st("daemon", "stop");
    }
  });

  test("cache stats, path and clear", async () => {
    const stats = JSON.parse((await st("cache", "stats", "--json")).stdout) as { caches: Array<{ cache: string; entries: number }> };
    assert.deepEqual(stats.caches.map((c) => c.cache), ["generation", "embedding", "reranking"]);
    assert.ok(stats.caches.some((c) => c.entries > 0));
    assert.equal((await st("cache", "path")).stdout.trim(), join(dir, "caches", "steadytext-cache.sqlite3"));
    assert.match((await st("cache", "clear")).stdout, /removed \d+ entries/);
    const cleared = JSON.parse((await st("cache", "stats", "--json")).stdout) as { caches: Array<{ entries: number }> };
    assert.ok(cleared.caches.every((c) => c.entries === 0));
  });
});

describe("bad input is a clear error", { concurrency: 4 }, () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["an empty prompt", ["generate", "", "--local"], /prompt cannot be empty/],
    ["max-tokens 0", ["generate", "x", "--max-tokens", "0"], /must be between 1 and 4096/],
    ["max-tokens not a number", ["generate", "x", "--max-tokens", "many"], /'many' is not a whole number/],
    ["a negative seed", ["generate", "x", "--seed", "-1"], /must be between 0 and 2147483647/],
    ["a schema that is not JSON", ["generate", "x", "--schema", "{nope", "--local"], /--schema is not valid JSON/],
    ["a port out of range", ["daemon", "status", "--port", "70000"], /must be between 1 and 65535/],
    ["an unknown cache", ["cache", "clear", "everything"], /unknown cache 'everything'/],
    ["an unknown command", ["format-disk"], /unknown command/],
    ["a bad environment variable", ["daemon", "status"], /STEADYTEXT_DAEMON_PORT/],
    ["a prompt too long for the model", ["generate", "word ".repeat(5000), "--local"], /Prompt is too long/],
    ["--daemon with no daemon", ["generate", "x", "--daemon"], /no daemon answers/],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const overrides: Record<string, string> = name === "a bad environment variable" ? { STEADYTEXT_DAEMON_PORT: "not-a-port" } : {};
      const result = await stWith(overrides, ...args);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, message);
    });
  }
});
