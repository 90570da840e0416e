// The `st` command line as SteadyText's users know it: prompts from stdin,
// streaming by default, --raw and --json, the generation flags, embed's
// formats, rerank's options, vector maths, cache export/import and shell
// completion; the answers are SQL's, through the daemon and in-process.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort, ST_CLI } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

interface Outcome {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

let stack: TestStack;
let daemonEnv: NodeJS.ProcessEnv;
let localEnv: NodeJS.ProcessEnv;

/** Run st with optional stdin; stdout is kept as bytes (numpy output is binary). */
function st(env: NodeJS.ProcessEnv, args: string[], stdin?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ST_CLI, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(stdin ?? "");
  });
}

const text = (o: Outcome) => o.stdout.toString("utf8");

async function ok(env: NodeJS.ProcessEnv, args: string[], stdin?: string): Promise<string> {
  const outcome = await st(env, args, stdin);
  assert.equal(outcome.code, 0, `st ${args.join(" ")}: ${outcome.stderr}`);
  return text(outcome);
}

async function sqlGenerate(prompt: string, maxTokens: number): Promise<string> {
  const [row] = await stack.query<{ v: string }>("SELECT steadytext_generate($1, $2, false) AS v", [prompt, maxTokens]);
  return row!.v;
}

before(async () => {
  stack = await TestStack.start();
  const base = { ...process.env, STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0", STEADYTEXT_LOG_LEVEL: "warn" };
  daemonEnv = { ...base, STEADYTEXT_DAEMON_ENDPOINT: stack.sidecar!.endpoint, STEADYTEXT_CACHE_DIR: join(stack.dir, "cli-daemon-cache") };
  localEnv = { ...base, STEADYTEXT_DAEMON_PORT: String(await freePort()), STEADYTEXT_CACHE_DIR: join(stack.dir, "cli-local-cache") };
});
after(() => stack.stop());

describe("generate", () => {
  const prompt = "CLI face: tell me about cats";

  test("a prompt on stdin, streamed by default, prints steadytext_generate's text, through the daemon and in-process", async () => {
    const expected = await sqlGenerate(prompt, 19);
    assert.equal(await ok(daemonEnv, ["generate", "--max-new-tokens", "19", "--daemon"], `${prompt}\n`), `${expected}\n`);
    assert.equal(await ok(localEnv, ["generate", "--max-new-tokens", "19", "--local", "--no-cache"], prompt), `${expected}\n`);
    assert.equal(await ok(localEnv, ["generate", "-", "--max-new-tokens", "19", "--local", "--wait"], prompt), `${expected}\n`);
  });

  test("--raw prints the text alone and --json an object with the text", async () => {
    const expected = await sqlGenerate(prompt, 11);
    assert.equal(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "11", "--raw"]), expected);
    const json = JSON.parse(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "11", "--json"])) as { text: string; backend: string };
    assert.equal(json.text, expected);
    assert.equal(json.backend, "daemon");
  });

  test("--seed, --eos-string, --regex, --choices and --schema (inline or a file) give SQL's answers", async () => {
    const [sql] = await stack.query<{ seeded: string; regex: string; choice: string; json: string }>(
      `SELECT steadytext_generate($1, 15, false, 7, 'th') AS seeded,
              steadytext_generate_regex($1, '[a-c]{4}', 12, false) AS regex,
              steadytext_generate_choice($1, ARRAY['red','green'], 12, false) AS choice,
              steadytext_generate_json($1, '{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}'::jsonb, 32, false) AS json`,
      [prompt],
    );
    assert.equal(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "15", "--seed", "7", "--eos-string", "th", "--raw"]), sql!.seeded);
    assert.equal(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "12", "--regex", "[a-c]{4}", "--raw"]), sql!.regex);
    assert.equal(await ok(localEnv, ["generate", prompt, "--max-new-tokens", "12", "--choices", "red,green", "--raw", "--local"]), sql!.choice);
    const schema = '{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}';
    const file = join(stack.dir, "schema.json");
    await writeFile(file, schema);
    assert.equal(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "32", "--schema", schema, "--raw"]), sql!.json);
    assert.equal(await ok(daemonEnv, ["generate", prompt, "--max-new-tokens", "32", "--schema", file, "--raw"]), sql!.json);
  });
});

describe("embed and rerank", () => {
  test("embed prints steadytext_embed's vector as JSON, numpy (.npy) or hex", async () => {
    const [row] = await stack.query<{ v: string }>("SELECT steadytext_embed('CLI face: embed me', false)::text AS v");
    const expected = (JSON.parse(row!.v) as number[]).map(Math.fround);
    assert.deepEqual((JSON.parse(await ok(daemonEnv, ["embed", "CLI face: embed me"])) as number[]).map(Math.fround), expected);
    assert.deepEqual((JSON.parse(await ok(localEnv, ["embed", "--local"], "CLI face: embed me\n")) as number[]).map(Math.fround), expected);

    const hex = (await ok(daemonEnv, ["embed", "CLI face: embed me", "--format", "hex"])).trim();
    const hexBytes = Buffer.from(hex, "hex");
    assert.deepEqual(Array.from(new Float32Array(hexBytes.buffer, hexBytes.byteOffset, 1024)), expected);

    const npy = (await st(daemonEnv, ["embed", "CLI face: embed me", "other", "--format", "numpy"])).stdout;
    assert.equal(npy.subarray(0, 6).toString("latin1"), "\x93NUMPY");
    const headerLength = npy.readUInt16LE(8);
    assert.equal((10 + headerLength) % 64, 0, "the header is padded to 64 bytes");
    assert.match(npy.subarray(10, 10 + headerLength).toString("latin1"), /'descr': '<f4', 'fortran_order': False, 'shape': \(2, 1024\)/);
    const body = npy.subarray(10 + headerLength);
    assert.equal(body.length, 2 * 1024 * 4);
    assert.deepEqual(Array.from(new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + 4096))), expected);
  });

  test("rerank takes documents from --file, keeps --top-k, and --no-scores prints documents only", async () => {
    const documents = ["cheap flights to Lisbon", "a soup recipe", "discount airfare"];
    const rows = await stack.query<{ document: string; score: number }>("SELECT document, score FROM steadytext_rerank($1, $2)", ["cheap flights", documents]);
    const file = join(stack.dir, "documents.txt");
    await writeFile(file, `${documents.join("\n")}\n`);
    const json = JSON.parse(await ok(daemonEnv, ["rerank", "cheap flights", "--file", file, "--json"])) as Array<[string, number]>;
    assert.deepEqual(json, rows.map((r) => [r.document, r.score]));
    assert.equal(await ok(daemonEnv, ["rerank", "cheap flights", ...documents, "--top-k", "2", "--no-scores"]), `${rows[0]!.document}\n${rows[1]!.document}\n`);
    assert.equal(await ok(localEnv, ["rerank", "cheap flights", "--file", "-", "--top-k", "1", "--no-scores", "--local"], documents.join("\n")), `${rows[0]!.document}\n`);
  });

  test("vector similarity, distance, search, average and arithmetic are computed from SQL's embeddings", async () => {
    const rows = await stack.query<{ sim: number; dist: number }>(
      "SELECT 1 - (steadytext_embed('cat', false) <=> steadytext_embed('dog', false)) AS sim, steadytext_embed('cat', false) <-> steadytext_embed('dog', false) AS dist",
    );
    const similarity = (JSON.parse(await ok(daemonEnv, ["vector", "similarity", "cat", "dog", "--json"])) as { similarity: number }).similarity;
    assert.ok(Math.abs(similarity - rows[0]!.sim) < 1e-5, `${similarity} vs ${rows[0]!.sim}`);
    const distance = (JSON.parse(await ok(daemonEnv, ["vector", "distance", "cat", "dog", "--json"])) as { distance: number }).distance;
    assert.ok(Math.abs(distance - rows[0]!.dist) < 1e-5);
    const search = JSON.parse(await ok(daemonEnv, ["vector", "search", "cat", "dog", "car", "cat", "--top-k", "2", "--json"])) as Array<{ text: string; similarity: number }>;
    assert.equal(search.length, 2);
    assert.equal(search[0]!.text, "cat", "a text is most similar to itself");
    const average = JSON.parse(await ok(daemonEnv, ["vector", "average", "cat", "dog"])) as number[];
    assert.equal(average.length, 1024);
    assert.ok(Math.abs(Math.hypot(...average) - 1) < 1e-6);
    const arithmetic = JSON.parse(await ok(daemonEnv, ["vector", "arithmetic", "king", "--add", "woman", "--subtract", "man"])) as number[];
    assert.equal(arithmetic.length, 1024);
    assert.ok(Math.abs(Math.hypot(...arithmetic) - 1) < 1e-6);
  });
});

describe("cache, models and completion", () => {
  test("cache export then import into an empty cache restores every entry", async () => {
    await ok(localEnv, ["generate", "CLI face: for the export", "--max-new-tokens", "5", "--local"]);
    const file = join(stack.dir, "cache-export.jsonl");
    assert.match(await ok(localEnv, ["cache", "export", file]), /exported (\d+) entries/);
    const before = JSON.parse(await ok(localEnv, ["cache", "stats", "--json"])) as { caches: Array<{ entries: number }> };
    const fresh = { ...localEnv, STEADYTEXT_CACHE_DIR: join(stack.dir, "cli-import-cache") };
    assert.match(await ok(fresh, ["cache", "import", file]), /imported \d+ entries/);
    const after = JSON.parse(await ok(fresh, ["cache", "stats", "--json"])) as { caches: Array<{ entries: number }> };
    assert.deepEqual(after.caches.map((c) => c.entries), before.caches.map((c) => c.entries));
    assert.ok(after.caches[0]!.entries > 0);
    const refused = await st(localEnv, ["cache", "export", file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /exists; not overwriting/);
  });

  test("models path prints the model directory, and completion scripts list the commands", async () => {
    assert.equal((await ok(localEnv, ["models", "path"])).trim(), join(localEnv.STEADYTEXT_CACHE_DIR!, "models"));
    const bash = await ok(localEnv, ["completion", "bash"]);
    assert.match(bash, /complete -o default -F _st_complete st/);
    assert.match(bash, /"vector"\) opts="similarity distance search average arithmetic/);
    assert.match(bash, /"generate"\) opts="[^"]*--max-new-tokens/);
    assert.match(await ok(localEnv, ["completion", "fish"]), /complete -c st -f -n '__fish_use_subcommand' -a generate/);
  });
});

// Exit codes: 1 for a usage or file error, 2 for a request the daemon or model rejected.
describe("bad input: a message on stderr and an exit code scripts can rely on", { concurrency: 3 }, () => {
  const cases: Array<[string, string[], string | undefined, number, RegExp]> = [
    ["no prompt and nothing on stdin", ["generate", "--local"], "", 2, /prompt cannot be empty|no prompt/],
    ["a whitespace prompt on stdin", ["generate", "--local"], "  \n", 2, /prompt cannot be empty|no prompt/],
    ["two constraints", ["generate", "x", "--regex", "a", "--choices", "a,b", "--local"], undefined, 1, /only one of/],
    ["a schema that is neither JSON nor a file", ["generate", "x", "--schema", "/no/such/schema.json", "--local"], undefined, 1, /neither JSON nor a readable file/],
    ["a schema that is a JSON list", ["generate", "x", "--schema", "[1]", "--local"], undefined, 1, /neither JSON|must be a JSON object/],
    ["an unknown size", ["generate", "x", "--size", "huge"], undefined, 1, /Allowed choices are mini, small, medium, large/],
    ["a remote model without unsafe mode", ["generate", "x", "--model", "openai:gpt-4o", "--local"], undefined, 2, /unsafe_mode/],
    ["an unknown embed format", ["embed", "x", "--format", "yaml"], undefined, 1, /Allowed choices are json, numpy, hex/],
    ["rerank without documents", ["rerank", "q", "--local"], undefined, 1, /no documents/],
    ["rerank with an unreadable file", ["rerank", "q", "--file", "/no/such/file", "--local"], undefined, 1, /cannot read \/no\/such\/file: ENOENT/],
    ["top-k 0", ["rerank", "q", "a", "--top-k", "0"], undefined, 1, /must be between 1/],
    ["a bad distance metric", ["vector", "distance", "a", "b", "--metric", "hamming"], undefined, 1, /Allowed choices/],
    ["an unknown shell", ["completion", "powershell"], undefined, 1, /Allowed choices are bash, zsh, fish/],
    ["importing a file that is not an export", ["cache", "import", "/etc/hostname"], undefined, 1, /:1: not JSON/],
    ["deleting an unknown model", ["models", "delete", "../../etc/passwd"], undefined, 1, /unknown model/],
  ];
  for (const [name, args, stdin, code, message] of cases) {
    test(name, async () => {
      const outcome = await st(localEnv, args, stdin);
      assert.equal(outcome.code, code, outcome.stderr);
      assert.match(outcome.stderr, message);
      assert.equal(text(outcome), "");
    });
  }
});
