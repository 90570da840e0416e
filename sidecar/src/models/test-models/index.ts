// Writes the tiny test models. Same seed, same bytes, on every machine.

import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { endianness } from "node:os";
import { join } from "node:path";
import { buildTestModel, TEST_MODEL_NAMES, type TestModelKind } from "./architectures.js";
import { encodeGguf } from "./gguf-writer.js";

export { TEST_MODEL_NAMES, type TestModelKind } from "./architectures.js";

export const TEST_MODEL_SEED = 42;
export const TEST_MODEL_KINDS: readonly TestModelKind[] = ["generation", "embedding", "reranking"];

export interface WrittenTestModel {
  kind: TestModelKind;
  path: string;
  sha256: string;
  bytes: number;
}

export function testModelPath(dir: string, kind: TestModelKind, seed = TEST_MODEL_SEED): string {
  const suffix = seed === TEST_MODEL_SEED ? "" : `-seed${seed}`;
  return join(dir, `${TEST_MODEL_NAMES[kind]}${suffix}.gguf`);
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** Write (or confirm) the three test models in `dir`; a file already right is left untouched. */
export async function writeTestModels(dir: string, seed = TEST_MODEL_SEED): Promise<WrittenTestModel[]> {
  if (endianness() !== "LE") throw new Error("test models are written on little-endian hosts only");
  await mkdir(dir, { recursive: true });
  const written: WrittenTestModel[] = [];
  for (const kind of TEST_MODEL_KINDS) {
    const { metadata, tensors } = buildTestModel(kind, seed);
    const image = encodeGguf(metadata, tensors);
    const path = testModelPath(dir, kind, seed);
    const existing = await readIfExists(path);
    if (!existing || !existing.equals(image)) {
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, image);
      await rename(temporary, path);
    }
    written.push({ kind, path, sha256: createHash("sha256").update(image).digest("hex"), bytes: image.length });
  }
  return written;
}
