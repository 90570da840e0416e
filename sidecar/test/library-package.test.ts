// The package as a consumer gets it: `npm pack`, installed into a temporary
// project, type-checked there with strict NodeNext settings, and run. Only the
// library surface is exported; the internals cannot be imported.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { close, configure, generate } from "../src/index.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..", "..");
const EXPECTED_EXPORTS = [
  "SteadyTextError",
  "activeBackend",
  "close",
  "configure",
  "embed",
  "generate",
  "generateChoice",
  "generateIter",
  "generateJson",
  "generateRegex",
  "preloadModels",
  "rerank",
];

let dir: string;
let project: string;
let tarball: string;

const CONSUMER = `
import { embed, generate, generateChoice, generateIter, generateJson, generateRegex, preloadModels, rerank, close, SteadyTextError, type GenerateOptions, type RankedDocument } from "pg-steadytext";
import * as everything from "pg-steadytext";

const options: GenerateOptions = { maxNewTokens: 12, seed: 42, eosString: "[EOS]" };
const text: string = await generate("Packaged: hello", options);
let streamed = "";
for await (const chunk of generateIter("Packaged: hello", options)) streamed += chunk;
const vector: number[] = await embed("Packaged: hello");
const vectors: number[][] = await embed(["a", "b"]);
const ranked: RankedDocument[] = await rerank("q", ["a", "b"]);
const choice: "yes" | "no" = await generateChoice("Packaged: pick", ["yes", "no"] as const, { maxNewTokens: 8 });
const json: string = await generateJson("Packaged: json", { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] }, { maxNewTokens: 24 });
const regex: string = await generateRegex("Packaged: digits", "[0-9]{3}", { maxNewTokens: 8 });
await preloadModels({ skipReranking: true });
let rejected = "";
try { await generate(""); } catch (error) { if (error instanceof SteadyTextError) rejected = error.code; }
const internal = await import("pg-steadytext/sidecar/dist/engine/engine.js" as string).then(() => "importable", (e: NodeJS.ErrnoException) => e.code ?? "error");
await close();
console.log(JSON.stringify({ exports: Object.keys(everything).sort(), text, streamed, dims: vector.length, count: vectors.length, ranked: ranked.length, choice, json: JSON.parse(json) as unknown, regex, rejected, internal }));
`;

before(async () => {
  assert.ok(existsSync(join(ROOT, "sidecar", "dist", "index.d.ts")), "sidecar/dist is built (npx tsc -p .)");
  dir = await mkdtemp(join(tmpdir(), "steadytext-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(dir, packed!.filename);
  project = join(dir, "consumer");
  const modules = join(project, "node_modules");
  await mkdir(join(modules, "pg-steadytext"), { recursive: true });
  await run("tar", ["-xzf", tarball, "-C", join(modules, "pg-steadytext"), "--strip-components=1"]);
  // The package's dependencies, as npm would have installed them (no registry needed).
  const source = await realpath(join(ROOT, "node_modules"));
  for (const name of await readdir(source)) {
    if (name === "pg-steadytext" || name.startsWith(".")) continue;
    await symlink(join(source, name), join(modules, name));
  }
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  await writeFile(
    join(project, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, outDir: "dist", types: ["node"] }, include: ["main.ts"] }),
  );
  await writeFile(join(project, "main.ts"), CONSUMER);
});
after(() => rm(dir, { recursive: true, force: true }));

test("the packed tarball holds the built library with its types, and neither sources nor tests", async () => {
  const { stdout } = await run("tar", ["-tzf", tarball]);
  const files = stdout.split("\n").filter(Boolean);
  assert.ok(files.includes("package/sidecar/dist/index.js"));
  assert.ok(files.includes("package/sidecar/dist/index.d.ts"));
  assert.ok(files.includes("package/sidecar/bin/st.js"));
  assert.ok(!files.some((f) => f.startsWith("package/sidecar/src/") || f.startsWith("package/test/") || f.startsWith("package/sidecar/test/")));
});

test("a consumer project type-checks against the package, runs it, and sees only the library surface", async () => {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const checked = await run(process.execPath, [tsc, "-p", project], { cwd: project }).catch((error: { stdout: string }) => ({ stdout: error.stdout, failed: true }));
  assert.ok(!("failed" in checked), `tsc failed:\n${checked.stdout}`);

  const env = {
    ...process.env,
    STEADYTEXT_LIBRARY_BACKEND: "local",
    STEADYTEXT_TEST_MODELS: "1",
    STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0",
    STEADYTEXT_CACHE_DIR: join(dir, "consumer-cache"),
    STEADYTEXT_LOG_LEVEL: "silent",
  };
  const { stdout } = await run(process.execPath, [join(project, "dist", "main.js")], { cwd: project, env, timeout: 120_000 });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
  assert.deepEqual(result.exports, EXPECTED_EXPORTS);
  assert.equal(result.dims, 1024);
  assert.equal(result.count, 2);
  assert.equal(result.ranked, 2);
  assert.ok(result.choice === "yes" || result.choice === "no");
  assert.equal(typeof (result.json as { ok: unknown }).ok, "boolean");
  assert.match(String(result.regex), /^[0-9]{3}$/);
  assert.equal(result.rejected, "invalid_params");
  assert.equal(result.internal, "ERR_PACKAGE_PATH_NOT_EXPORTED");
  assert.equal(result.streamed, result.text);

  // The packaged library answers as the library in this checkout does.
  await configure({ backend: "local", env: { ...env, STEADYTEXT_CACHE_DIR: join(dir, "here-cache") } });
  try {
    assert.equal(result.text, await generate("Packaged: hello", { maxNewTokens: 12 }));
  } finally {
    await close();
  }
});
