// The last step of every embedding: cut to 1,024 dimensions, divide by the L2
// norm, round to float32. Vectors already in caches were made this way, so any
// faster version must give the very same bits.

import assert from "node:assert/strict";
import { test } from "node:test";
import { normalise } from "../src/inference/embed.js";
import { EMBEDDING_DIMENSION } from "../src/protocol/messages.js";

/** The definition, written plainly: squares summed first to last, then each value over the norm. */
function reference(vector: readonly number[]): number[] {
  const head = vector.slice(0, EMBEDDING_DIMENSION);
  const norm = Math.sqrt(head.reduce((sum, x) => sum + x * x, 0));
  return head.map((x) => Math.fround(x / norm));
}

/** Float32 values as llama.cpp gives them, frozen as node-llama-cpp hands them out; seeded, so every run sees the same. */
function modelOutput(length: number, seed: number): readonly number[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  return Object.freeze(Array.from({ length }, () => Math.fround(next() * 10 ** Math.floor(next() * 8 - 4))));
}

test("normalise gives the plain definition's float32 values bit for bit, for model outputs shorter and longer than 1,024", () => {
  for (const [length, seed] of [[EMBEDDING_DIMENSION, 1], [2048, 2], [4096, 3], [EMBEDDING_DIMENSION, 4], [EMBEDDING_DIMENSION + 1, 5]] as const) {
    const vector = modelOutput(length, seed);
    const expected = reference(vector);
    const actual = normalise(vector);
    assert.equal(actual.length, EMBEDDING_DIMENSION);
    actual.forEach((x, i) => assert.ok(Object.is(x, expected[i]), `length ${length}, value ${i}: ${x} vs ${expected[i]}`));
    assert.ok(Object.isFrozen(vector), "the model's array is left as it was");
  }
});

test("normalise refuses a zero or non-finite vector rather than making up values", () => {
  assert.throws(() => normalise(new Array(EMBEDDING_DIMENSION).fill(0)), /zero or non-finite/);
  assert.throws(() => normalise([1, Number.NaN, ...new Array(EMBEDDING_DIMENSION - 2).fill(0)]), /zero or non-finite/);
  assert.throws(() => normalise([Number.POSITIVE_INFINITY, ...new Array(EMBEDDING_DIMENSION - 1).fill(0)]), /zero or non-finite/);
});
