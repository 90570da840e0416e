// Hostile inputs and a damaged cache, from SQL: each gets its precise
// outcome (an answer or a clear error), and the daemon stays healthy after.

import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { TestStack } from "../harness/test-stack.js";

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
