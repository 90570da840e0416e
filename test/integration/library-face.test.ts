// The TypeScript library face: generate, generateIter, the constrained
// generators, embed and rerank give the bytes SQL gives, whether the library
// talks to the daemon or runs the models in this process; "auto" takes the
// daemon when one answers and falls back otherwise; bad input is a clear
// SteadyTextError from both paths.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import * as library from "../../sidecar/src/index.js";
import { freePort } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let daemonEnv: NodeJS.ProcessEnv;
let localEnv: NodeJS.ProcessEnv;

const PROMPT = "Library face: tell me about cats";

async function sqlGenerate(prompt: string, maxTokens: number): Promise<string> {
  const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, $2, false) AS v", [prompt, maxTokens]);
  assert.equal(typeof row!.v, "string");
  return row!.v;
}

/** Run `work` with the library configured for one backend, then close it. */
async function using<T>(backend: library.BackendChoice, env: NodeJS.ProcessEnv, work: () => Promise<T>): Promise<T> {
  await library.configure({ backend, env });
  try {
    return await work();
  } finally {
    await library.close();
  }
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const chunks: string[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return chunks;
}

before(async () => {
  stack = await TestStack.start();
  const base = { ...process.env, STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0", STEADYTEXT_LOG_LEVEL: "warn" };
  daemonEnv = { ...base, STEADYTEXT_DAEMON_ENDPOINT: stack.sidecar!.endpoint, STEADYTEXT_CACHE_DIR: join(stack.dir, "library-daemon-cache") };
  // In-process: its own cache directory, so every answer is computed here.
  localEnv = { ...base, STEADYTEXT_DAEMON_PORT: String(await freePort()), STEADYTEXT_CACHE_DIR: join(stack.dir, "library-local-cache") };
});
after(async () => {
  await library.close();
  await stack.stop();
});

for (const backend of ["daemon", "local"] as const) {
  describe(`through the ${backend === "daemon" ? "daemon" : "in-process models"}`, () => {
    const env = () => (backend === "daemon" ? daemonEnv : localEnv);

    test("it uses the backend that was asked for", async () => {
      assert.equal(await using(backend, env(), () => library.activeBackend()), backend);
    });

    test("generate(P, {maxNewTokens: N}) is exactly steadytext_generate(P, N), and generateIter's chunks join to it", async () => {
      const expected = await sqlGenerate(PROMPT, 21);
      await using(backend, env(), async () => {
        assert.equal(await library.generate(PROMPT, { maxNewTokens: 21 }), expected);
        assert.equal(await library.generate(PROMPT, { maxNewTokens: 21, useCache: false }), expected);
        const chunks = await collect(library.generateIter(PROMPT, { maxNewTokens: 21, useCache: false }));
        assert.ok(chunks.length > 1, "streamed in more than one chunk");
        assert.equal(chunks.join(""), expected);
      });
    });

    test("a different seed or eos string is honoured as in SQL", async () => {
      const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, 15, false, 7, 'th') AS v", [PROMPT]);
      const text = await using(backend, env(), () => library.generate(PROMPT, { maxNewTokens: 15, seed: 7, eosString: "th" }));
      assert.equal(text, row!.v);
    });

    test("generateJson, generateRegex and generateChoice equal their SQL functions", async () => {
      const schema = { type: "object", properties: { ok: { type: "boolean" }, color: { enum: ["red", "green", "blue"] } }, required: ["ok", "color"] };
      const [sql] = await stack.query<{ json: string; regex: string; choice: string }>(
        `SELECT steadytext_generate_json($1, $2::jsonb, 48, false) AS json,
                steadytext_generate_regex($1, '\\d{3}-\\d{4}', 16, false) AS regex,
                steadytext_generate_choice($1, ARRAY['yes','no','maybe'], 16, false) AS choice`,
        [PROMPT, JSON.stringify(schema)],
      );
      await using(backend, env(), async () => {
        const json = await library.generateJson(PROMPT, schema, { maxNewTokens: 48 });
        assert.equal(json, sql!.json);
        assert.equal(typeof (JSON.parse(json) as { ok: unknown }).ok, "boolean");
        const regex = await library.generateRegex(PROMPT, "\\d{3}-\\d{4}", { maxNewTokens: 16 });
        assert.match(regex, /^\d{3}-\d{4}$/);
        assert.equal(regex, sql!.regex);
        const choice: "yes" | "no" | "maybe" = await library.generateChoice(PROMPT, ["yes", "no", "maybe"] as const, { maxNewTokens: 16 });
        assert.equal(choice, sql!.choice);
      });
    });

    test("embed gives steadytext_embed's vector for a text and one vector per text for a list", async () => {
      const texts = ["Library face: hello", "Äpfel", "日本"];
      const rows = await stack.query<{ v: string }>(
        "SELECT steadytext_embed(t, false)::text AS v FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
        [texts],
      );
      const fromSql = rows.map((r) => (JSON.parse(r.v) as number[]).map(Math.fround));
      await using(backend, env(), async () => {
        assert.deepEqual((await library.embed(texts[0]!)).map(Math.fround), fromSql[0]);
        const many = await library.embed(texts);
        assert.equal(many.length, 3);
        many.forEach((vector, i) => assert.deepEqual(vector.map(Math.fround), fromSql[i]));
      });
    });

    test("rerank gives steadytext_rerank's documents and scores, best first", async () => {
      const documents = ["cheap flights to Lisbon", "a soup recipe", "discount airfare"];
      const rows = await stack.query<{ document: string; score: number }>("SELECT document, score FROM steadytext_rerank($1, $2)", ["cheap flights", documents]);
      const ranked = await using(backend, env(), () => library.rerank("cheap flights", documents));
      assert.deepEqual(ranked, rows.map((r) => ({ document: r.document, score: r.score })));
    });

    test("bad input is a SteadyTextError with code invalid_params, and the backend still answers", async () => {
      await using(backend, env(), async () => {
        const bad: Array<() => Promise<unknown>> = [
          () => library.generate(""),
          () => library.generate("x", { maxNewTokens: 0 }),
          () => library.generate("x", { seed: -1 }),
          () => library.generate("x", { model: "openai:gpt-4o" }),
          () => library.generateRegex("x", ""),
          () => library.embed([]),
          () => library.embed("   "),
          () => library.rerank("q", []),
          () => collect(library.generateIter("")),
        ];
        for (const call of bad) {
          await assert.rejects(call, (error: unknown) => error instanceof library.SteadyTextError && error.code === "invalid_params" && error.message.length > 0);
        }
        assert.ok((await library.generate("Library face: still fine", { maxNewTokens: 4 })).length > 0);
      });
    });
  });
}

describe("choosing the backend", () => {
  test("auto uses the daemon when one answers", async () => {
    assert.equal(await using("auto", daemonEnv, () => library.activeBackend()), "daemon");
  });

  test("auto falls back to in-process models when no daemon answers, with the same answer", async () => {
    const expected = await sqlGenerate(PROMPT, 21);
    await using("auto", localEnv, async () => {
      assert.equal(await library.activeBackend(), "local");
      assert.equal(await library.generate(PROMPT, { maxNewTokens: 21 }), expected);
    });
  });

  test("STEADYTEXT_LIBRARY_BACKEND=local keeps the models in-process even with a daemon running", async () => {
    assert.equal(await using("local", daemonEnv, () => library.activeBackend()), "local");
    await library.configure({ env: { ...daemonEnv, STEADYTEXT_LIBRARY_BACKEND: "local" } });
    try {
      assert.equal(await library.activeBackend(), "local");
    } finally {
      await library.close();
    }
  });

  test("backend 'daemon' without a daemon is a clear unavailable error, not a silent fallback", async () => {
    await using("daemon", localEnv, async () => {
      await assert.rejects(library.generate("x"), (error: unknown) => error instanceof library.SteadyTextError && error.code === "unavailable" && /no daemon answers/.test(error.message));
    });
  });

  test("a script that never calls close() still exits once its daemon calls are done", async () => {
    const entry = resolve(import.meta.dirname, "..", "..", "sidecar", "src", "index.ts");
    const script = `const { generate } = await import(${JSON.stringify(entry)}); console.log(await generate("Library face: exit", { maxNewTokens: 4 }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...daemonEnv, STEADYTEXT_LIBRARY_BACKEND: "daemon" },
      timeout: 60_000,
    });
    assert.ok(stdout.trim().length > 0);
  });

  test("preloadModels loads the in-process models, after which a generation needs no load", async () => {
    await using("local", localEnv, async () => {
      await library.preloadModels({ skipReranking: true });
      assert.ok((await library.generate("Library face: preloaded", { maxNewTokens: 4 })).length > 0);
    });
  });
});
