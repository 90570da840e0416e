// Pins the generated test models: same seed → same bytes in every process, known hashes, loadable by llama.cpp.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { getLlama, type Llama } from "node-llama-cpp";
import { TEST_MODEL_KINDS, testModelPath, writeTestModels, type TestModelKind } from "../src/models/test-models/index.js";

const run = promisify(execFile);
const INDEX_MODULE = fileURLToPath(new URL("../src/models/test-models/index.ts", import.meta.url));

/**
 * The sha256 of each default-seed (42) test model. These hashes are the models'
 * identity: they are part of every cache key, so a changed hash means every cache
 * key computed with the test models changes (and every cached answer is orphaned).
 * Change them only on purpose, together with the generator.
 */
const GOLDEN_SHA256: Record<TestModelKind, string> = {
  generation: "b8a571d78899700395908b9a8c39b449f933456fb366b1b61776298f52184786",
  embedding: "94e1052c5602411e2943a50cb4cea87e14c21dbe8d120a84f3ed353c2d636072",
  reranking: "b178325219548fe223a90df65cc109c615b31c3d90569546df27414dffc705b9",
};

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "steadytext-test-models-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("writeTestModels", () => {
  test("two runs into two directories write byte-identical files", async () => {
    const started = performance.now();
    const first = await writeTestModels(join(root, "a"));
    console.log(`generated the three test models in ${(performance.now() - started).toFixed(0)} ms`);
    const second = await writeTestModels(join(root, "b"));
    assert.equal(first.length, 3);
    for (const [i, kind] of TEST_MODEL_KINDS.entries()) {
      const a = await readFile(first[i]!.path);
      const b = await readFile(second[i]!.path);
      assert.equal(first[i]!.kind, kind);
      assert.ok(a.equals(b), `${kind} differs between runs`);
      assert.equal(first[i]!.sha256, sha256(a));
      assert.equal(first[i]!.bytes, a.length);
    }
  });

  test("the default-seed files have the golden sha256", async () => {
    const written = await writeTestModels(join(root, "golden"));
    for (const model of written) {
      assert.equal(sha256(await readFile(model.path)), GOLDEN_SHA256[model.kind], `${model.kind} model changed`);
    }
  });

  test("a separate process generates files with the same sha256", async () => {
    const dir = join(root, "child");
    const script = `const m = await import(${JSON.stringify(INDEX_MODULE)});
      const w = await m.writeTestModels(${JSON.stringify(dir)});
      process.stdout.write(JSON.stringify(w.map((x) => [x.kind, x.sha256])));`;
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000 });
    const fromChild = Object.fromEntries(JSON.parse(stdout) as Array<[string, string]>);
    for (const kind of TEST_MODEL_KINDS) {
      assert.equal(sha256(await readFile(testModelPath(dir, kind))), fromChild[kind]);
      assert.equal(fromChild[kind], GOLDEN_SHA256[kind]);
    }
  });

  test("a different seed gives different files under different names", async () => {
    const dir = join(root, "seeds");
    const base = await writeTestModels(dir);
    const other = await writeTestModels(dir, 7);
    for (const [i, kind] of TEST_MODEL_KINDS.entries()) {
      assert.notEqual(other[i]!.path, base[i]!.path);
      assert.equal(other[i]!.path, testModelPath(dir, kind, 7));
      assert.notEqual(other[i]!.sha256, base[i]!.sha256, `${kind} ignores the seed`);
      assert.notEqual(sha256(await readFile(other[i]!.path)), sha256(await readFile(base[i]!.path)));
    }
  });

  test("a file that is already right is left untouched", async () => {
    const dir = join(root, "untouched");
    await writeTestModels(dir);
    const before = await Promise.all(TEST_MODEL_KINDS.map((k) => stat(testModelPath(dir, k))));
    await new Promise((r) => setTimeout(r, 50));
    await writeTestModels(dir);
    const afterwards = await Promise.all(TEST_MODEL_KINDS.map((k) => stat(testModelPath(dir, k))));
    for (const [i, kind] of TEST_MODEL_KINDS.entries()) {
      assert.equal(afterwards[i]!.mtimeMs, before[i]!.mtimeMs, `${kind} was rewritten`);
      assert.equal(afterwards[i]!.ino, before[i]!.ino, `${kind} was replaced`);
    }
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith(".tmp")), []);
  });

  test("a damaged file is replaced with the right bytes", async () => {
    const dir = join(root, "damaged");
    const [generation] = await writeTestModels(dir);
    await writeFile(generation!.path, "not a model");
    const [again] = await writeTestModels(dir);
    assert.equal(sha256(await readFile(again!.path)), GOLDEN_SHA256.generation);
  });
});

describe("the test models load in node-llama-cpp", () => {
  let llama: Llama;
  let dir: string;
  before(async () => {
    dir = join(root, "load");
    await writeTestModels(dir);
    llama = await getLlama({ gpu: false, build: "never" });
  });
  after(async () => {
    await llama?.dispose();
  });

  for (const kind of TEST_MODEL_KINDS) {
    test(`the ${kind} model loads`, async () => {
      const model = await llama.loadModel({ modelPath: testModelPath(dir, kind) });
      try {
        assert.ok(model.size > 0);
        assert.ok(model.tokenize("hello world").length > 0, "tokenizer produced no tokens");
        if (kind === "embedding") assert.equal(model.embeddingVectorSize, 1024);
      } finally {
        await model.dispose();
      }
    });
  }
});
