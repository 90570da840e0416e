// Pins streamed chunking: chunks depend only on the text (never on how it arrived), break only after ASCII whitespace, and trimming streams text.trim().

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WhitespaceTrimmer } from "../src/inference/whitespace-trimmer.js";
import { chunkWords, WordChunker } from "../src/daemon/word-chunker.js";
import { SeededRandom } from "../src/models/test-models/weights.js";

/** Deterministic random numbers (the test models' generator), so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

const ASCII_WHITESPACE = [" ", "\t", "\n", "\r", "\f", "\v", "\r\n", "  ", " \n "];
/** Unicode spaces that are whitespace to JavaScript but must never end a chunk. */
const UNICODE_SPACES = ["\u00a0", "\u2003", "\u3000", "\u2028", "\ufeff", "\u1680"];
const WORDS = ["a", "word", "Hello,", "x1", "é", "naïve", "中文", "🙂", "👩‍💻", "🇫🇷", "-", "\"q\"", "don't", "\u0301"];

const SEEDS = Array.from({ length: 400 }, (_, i) => 7919 * (i + 1));

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function randomText(random: () => number): string {
  const pieces: string[] = [];
  const count = Math.floor(random() * 16);
  for (let i = 0; i < count; i++) {
    const r = random();
    if (r < 0.45) pieces.push(pick(random, WORDS));
    else if (r < 0.8) pieces.push(pick(random, ASCII_WHITESPACE));
    else pieces.push(pick(random, UNICODE_SPACES));
  }
  return pieces.join("");
}

/** Cut a text at random UTF-16 positions (even inside a surrogate pair or a \r\n): the pieces join back to it. */
function randomSplit(random: () => number, text: string): string[] {
  const cuts = new Set<number>();
  const cutCount = Math.floor(random() * (text.length + 2));
  for (let i = 0; i < cutCount; i++) cuts.add(Math.floor(random() * (text.length + 1)));
  const positions = [0, ...[...cuts].sort((a, b) => a - b), text.length];
  const pieces: string[] = [];
  for (let i = 1; i < positions.length; i++) pieces.push(text.slice(positions[i - 1], positions[i]));
  if (random() < 0.3) pieces.splice(Math.floor(random() * (pieces.length + 1)), 0, ""); // empty pushes happen too
  return pieces;
}

const isAsciiSpace = (c: string | undefined): boolean => c !== undefined && " \t\n\r\f\v".includes(c);

function streamChunks(pieces: readonly string[]): string[] {
  const chunks: string[] = [];
  const chunker = new WordChunker((c) => chunks.push(c));
  for (const piece of pieces) chunker.push(piece);
  chunker.end();
  return chunks;
}

describe("chunkWords", () => {
  test("the chunks concatenate to the text, and none is empty", () => {
    for (const seed of SEEDS) {
      const text = randomText(prng(seed));
      const chunks = chunkWords(text);
      assert.equal(chunks.join(""), text, `seed ${seed}`);
      assert.ok(chunks.every((c) => c !== ""), `seed ${seed}: empty chunk`);
      if (text === "") assert.deepEqual(chunks, []);
    }
  });

  test("a chunk ends only where ASCII whitespace is followed by something else", () => {
    for (const seed of SEEDS) {
      const chunks = chunkWords(randomText(prng(seed)));
      for (let i = 0; i < chunks.length - 1; i++) {
        const chunk = chunks[i]!;
        const next = chunks[i + 1]!;
        assert.ok(isAsciiSpace(chunk.at(-1)), `seed ${seed}: chunk ${JSON.stringify(chunk)} ends without ASCII whitespace`);
        assert.ok(!isAsciiSpace(next[0]), `seed ${seed}: chunk ${JSON.stringify(next)} starts with ASCII whitespace`);
      }
    }
  });

  test("chunks are maximal: no chunk contains a boundary inside it", () => {
    for (const seed of SEEDS) {
      for (const chunk of chunkWords(randomText(prng(seed)))) {
        for (let j = 1; j < chunk.length; j++) {
          assert.ok(
            !(isAsciiSpace(chunk[j - 1]) && !isAsciiSpace(chunk[j])),
            `seed ${seed}: ${JSON.stringify(chunk)} should have been split at ${j}`,
          );
        }
      }
    }
  });

  test("Unicode spaces are never a boundary", () => {
    for (const space of UNICODE_SPACES) {
      assert.deepEqual(chunkWords(`one${space}two three`), [`one${space}two `, "three"], JSON.stringify(space));
      assert.deepEqual(chunkWords(`one ${space}two`), [`one `, `${space}two`], JSON.stringify(space));
    }
  });

  test("leading whitespace is a chunk of its own; trailing whitespace stays with the last word", () => {
    assert.deepEqual(chunkWords("  lead"), ["  ", "lead"]);
    assert.deepEqual(chunkWords("trail \n"), ["trail \n"]);
    assert.deepEqual(chunkWords(" \t "), [" \t "]);
  });
});

describe("WordChunker streaming", () => {
  test("any split of the text streams exactly chunkWords(text)", () => {
    for (const seed of SEEDS) {
      const random = prng(seed);
      const text = randomText(random);
      const expected = chunkWords(text);
      for (let round = 0; round < 5; round++) {
        const pieces = randomSplit(random, text);
        assert.deepEqual(streamChunks(pieces), expected, `seed ${seed}, pieces ${JSON.stringify(pieces)}`);
      }
    }
  });

  test("one character at a time gives the same chunks as the whole text", () => {
    for (const seed of SEEDS.slice(0, 100)) {
      const text = randomText(prng(seed));
      assert.deepEqual(streamChunks(text.split("")), chunkWords(text), `seed ${seed}`);
    }
  });

  test("a chunk is emitted as soon as it is complete, not later", () => {
    for (const seed of SEEDS.slice(0, 150)) {
      const random = prng(seed);
      const text = randomText(random);
      const emitted: string[] = [];
      const chunker = new WordChunker((c) => emitted.push(c));
      let received = "";
      for (const piece of randomSplit(random, text)) {
        chunker.push(piece);
        received += piece;
        // Everything but the last chunk of what arrived so far is final.
        assert.deepEqual(emitted, chunkWords(received).slice(0, -1), `seed ${seed} after ${JSON.stringify(received)}`);
      }
    }
  });

  test("end() with nothing pending emits nothing, and the chunker is reusable after it", () => {
    const chunks: string[] = [];
    const chunker = new WordChunker((c) => chunks.push(c));
    chunker.end();
    assert.deepEqual(chunks, []);
    chunker.push("a b");
    chunker.end();
    chunker.push("c");
    chunker.end();
    assert.deepEqual(chunks, ["a ", "b", "c"]);
  });
});

describe("WhitespaceTrimmer", () => {
  function trimmed(pieces: readonly string[]): string[] {
    const out: string[] = [];
    const trimmer = new WhitespaceTrimmer((c) => out.push(c));
    for (const piece of pieces) trimmer.push(piece);
    return out;
  }

  test("any split of the text streams chunks that concatenate to text.trim()", () => {
    for (const seed of SEEDS) {
      const random = prng(seed);
      const text = randomText(random);
      for (let round = 0; round < 5; round++) {
        const pieces = randomSplit(random, text);
        const out = trimmed(pieces);
        assert.equal(out.join(""), text.trim(), `seed ${seed}, pieces ${JSON.stringify(pieces)}`);
        assert.ok(out.every((c) => c !== ""), `seed ${seed}: emitted an empty chunk`);
      }
    }
  });

  test("after every piece, what was emitted is the received text without whitespace at either end", () => {
    for (const seed of SEEDS.slice(0, 150)) {
      const random = prng(seed);
      const text = randomText(random);
      const out: string[] = [];
      const trimmer = new WhitespaceTrimmer((c) => out.push(c));
      let received = "";
      for (const piece of randomSplit(random, text)) {
        trimmer.push(piece);
        received += piece;
        assert.equal(out.join(""), received.trim(), `seed ${seed} after ${JSON.stringify(received)}`);
      }
    }
  });

  test("whitespace in the middle, Unicode spaces included, is kept", () => {
    assert.deepEqual(trimmed(["\u00a0 a", " \u3000", "b \n"]).join(""), "a \u3000b");
  });

  test("a chunker fed through the trimmer streams the chunks of the trimmed text", () => {
    for (const seed of SEEDS.slice(0, 150)) {
      const random = prng(seed);
      const text = randomText(random);
      const chunks: string[] = [];
      const chunker = new WordChunker((c) => chunks.push(c));
      const feed = WhitespaceTrimmer.feeding((c) => chunker.push(c));
      for (const piece of randomSplit(random, text)) feed(piece);
      chunker.end();
      assert.deepEqual(chunks, chunkWords(text.trim()), `seed ${seed}`);
    }
  });
});
