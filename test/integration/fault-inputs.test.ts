// Hostile inputs and a damaged or full cache: each gets its precise outcome
// (an answer or a clear error), and the daemon stays healthy after.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, afterEach, before, test } from "node:test";
import Database from "better-sqlite3";
import { freePort, SidecarProcess } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

const run = promisify(execFile);

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});
after(() => stack.stop());
afterEach(async () => {
  const [status] = await stack.query<{ status: string }>("SELECT status FROM steadytext_daemon_status()");
  assert.equal(status!.status, "healthy", "the daemon is healthy afterwards");
});

async function outcome(sql: string, params: unknown[] = []): Promise<{ value?: unknown; code?: string; message?: string }> {
  try {
    const rows = await stack.query<{ v: unknown }>(sql, params);
    return { value: rows[0]!.v };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { code: e.code, message: e.message };
  }
}

test("a prompt of several megabytes is refused with a clear error, not a hang or a crash", async () => {
  const result = await outcome("SELECT steadytext_generate(repeat('megabytes of words ', 250000), 8) AS v");
  console.log(`[fault figures] 4.75 MB prompt: ${JSON.stringify(result).slice(0, 200)}`);
  assert.equal(result.code, "P0001");
  assert.match(result.message!, /^Prompt is too long: \d+ tokens plus max_tokens 8 exceed the context window/);
});

test("a JSON schema nested 500 deep is refused with a clear error", async () => {
  let schema: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < 500; i++) schema = { type: "object", properties: { n: schema }, required: ["n"] };
  const result = await outcome("SELECT steadytext_generate_json('nest', $1::jsonb, 16) AS v", [JSON.stringify(schema)]);
  console.log(`[fault figures] schema nested 500 deep: ${JSON.stringify(result).slice(0, 200)}`);
  assert.equal(result.code, "P0001");
  assert.match(result.message!, /^Invalid JSON schema: /);
});

test("a regex built to explode is answered or refused, never a hang", async () => {
  const cases: Array<[string, RegExp]> = [
    ["(a*)*b", /^Pattern cannot be used as a grammar: /], // an empty loop: refused
    ["((a|aa)+)+c", /^(a|aa)+c$/], // catastrophic for backtracking matchers: a grammar has none
    ["(x+x+)+y", /^x{2,}y$/],
    ["[a-z]{1,1000}{1,1000}", /^Pattern cannot be used as a grammar: not a valid regular expression/],
  ];
  for (const [pattern, expected] of cases) {
    const result = await outcome("SELECT steadytext_generate_regex('explode', $1, 8) AS v", [pattern]);
    console.log(`[fault figures] regex ${pattern}: ${JSON.stringify(result).slice(0, 160)}`);
    if (typeof result.value === "string") assert.match(result.value, expected);
    else {
      assert.equal(result.code, "P0001");
      assert.match(result.message!, expected);
    }
  }
});

test("the sidecar's SQLite cache file deleted under it: answers go on, identical", async () => {
  const text = (await stack.query<{ v: string }>("SELECT steadytext_generate('before the cache file vanished', 8, false) AS v"))[0]!.v;
  const caches = join(stack.dir, "cache", "caches");
  for (const suffix of ["", "-wal", "-shm"]) await rm(join(caches, `steadytext-cache.sqlite3${suffix}`), { force: true });
  const again = (await stack.query<{ v: string }>("SELECT steadytext_generate('before the cache file vanished', 8) AS v"))[0]!.v;
  assert.equal(again, text);
  const embedded = await stack.query<{ n: number }>("SELECT vector_dims(steadytext_embed('after the cache file vanished')) AS n");
  assert.equal(embedded[0]!.n, 1024);
});

test("the SQLite cache on a full disk: answers go on, identical; the cache writes again once there is room", { timeout: 180_000 }, async (t) => {
  const disk = join(stack.dir, "full-disk");
  await mkdir(disk, { recursive: true });
  try {
    await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]);
  } catch (error) {
    t.skip(`a small disk to fill needs mount(8) as root: ${(error as Error).message.split("\n")[0]}`);
    return;
  }
  const port = await freePort();
  // The models stay on the real disk; only the cache lives on the small one.
  const options = stack.sidecarOptions({ STEADYTEXT_MODEL_DIR: join(stack.dir, "cache", "models") }, port);
  const sidecar = await SidecarProcess.start({ ...options, cacheDir: disk });
  const client = sidecar.client(60_000);
  try {
    const ask = (prompt: string) => client.request<string>("generate", { prompt, max_new_tokens: 8 });
    const cachedPrompts = () => {
      const db = new Database(join(disk, "caches", "steadytext-cache.sqlite3"), { readonly: true });
      try {
        return (db.prepare("SELECT count(*) AS n FROM generation_cache").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    assert.equal(await ask("asked before the disk filled"), await referenceText("asked before the disk filled"));
    const before = cachedPrompts();
    await fillDisk(join(disk, "filler"));
    const prompts = Array.from({ length: 5 }, (_, i) => `asked with the disk full ${i}`);
    for (const prompt of prompts) assert.equal(await ask(prompt), await referenceText(prompt), prompt);
    assert.equal(cachedPrompts(), before, "nothing could be written");
    assert.match(sidecar.log, /database or disk is full/);
    assert.equal(await client.request("ping"), "pong");

    await rm(join(disk, "filler"));
    assert.equal(await ask("asked with room again"), await referenceText("asked with room again"));
    assert.ok(cachedPrompts() > before, "the cache writes again");
  } finally {
    await client.close();
    await sidecar.stop();
    await run("umount", [disk]).catch(() => undefined);
  }
});

/** The main sidecar's answer, uncached: what any daemon computes for the prompt. */
async function referenceText(prompt: string): Promise<string> {
  const client = stack.sidecar!.client(60_000);
  try {
    return await client.request<string>("generate", { prompt, max_new_tokens: 8, use_cache: false });
  } finally {
    await client.close();
  }
}

/** Write zeros until the file system says it is full. */
async function fillDisk(path: string): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024);
  const file = await open(path, "w");
  try {
    for (;;) await file.write(chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOSPC") throw error;
  } finally {
    await file.close().catch(() => undefined);
  }
}
