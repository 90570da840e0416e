// The three tiny test models: which architecture, which sizes, which
// metadata. They have random weights, so their text is noise, but they run
// through exactly the code paths the real models do.

import type { GgufTensor, GgufValue } from "./gguf-writer.js";
import { buildVocabulary, CHATML_TEMPLATE, QWEN3_RERANK_TEMPLATE, type Vocabulary } from "./vocabulary.js";
import { filledTensor, randomTensor, SeededRandom, tensorSeed } from "./weights.js";

export type TestModelKind = "generation" | "embedding" | "reranking";

export interface TestModelShape {
  arch: "llama" | "qwen3";
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  contextLength: number;
  /** llama.cpp pooling type: 1 mean, 4 rank. Absent for plain causal models. */
  poolingType?: number;
}

type Shape = TestModelShape;

export const TEST_MODEL_SHAPES: Readonly<Record<TestModelKind, Shape>> = {
  generation: {
    arch: "llama", embeddingLength: 64, blockCount: 2, feedForwardLength: 128,
    headCount: 4, headCountKv: 4, headDim: 16, contextLength: 2048,
  },
  // 1024 wide so its vectors have pg_steadytext's dimension; mean pooling
  // makes texts that share words land near each other, which keeps demos
  // and similarity tests meaningful.
  embedding: {
    arch: "qwen3", embeddingLength: 1024, blockCount: 1, feedForwardLength: 64,
    headCount: 2, headCountKv: 1, headDim: 32, contextLength: 2048, poolingType: 1,
  },
  reranking: {
    arch: "qwen3", embeddingLength: 64, blockCount: 2, feedForwardLength: 128,
    headCount: 4, headCountKv: 2, headDim: 16, contextLength: 2048, poolingType: 4,
  },
};

export const TEST_MODEL_NAMES: Record<TestModelKind, string> = {
  generation: "steadytext-test-generation",
  embedding: "steadytext-test-embedding",
  reranking: "steadytext-test-reranker",
};

/**
 * Residual dimension 0 carries a large constant for every token, so after the
 * final RMS norm it is always strongly positive. Output rows of tokens that
 * must never be emitted (control bytes, partial UTF-8) weigh it negatively:
 * their logits are far below the rest, for greedy and sampled decoding alike.
 */
const ANCHOR_VALUE = 6;
const SUPPRESSED_WEIGHT = -8;

function metadata(kind: TestModelKind, shape: Shape, vocab: Vocabulary): Array<readonly [string, GgufValue]> {
  const a = shape.arch;
  const entries: Array<readonly [string, GgufValue]> = [
    ["general.architecture", { type: "string", value: a }],
    ["general.name", { type: "string", value: TEST_MODEL_NAMES[kind] }],
    ["general.type", { type: "string", value: "model" }],
    [`${a}.context_length`, { type: "u32", value: shape.contextLength }],
    [`${a}.embedding_length`, { type: "u32", value: shape.embeddingLength }],
    [`${a}.block_count`, { type: "u32", value: shape.blockCount }],
    [`${a}.feed_forward_length`, { type: "u32", value: shape.feedForwardLength }],
    [`${a}.attention.head_count`, { type: "u32", value: shape.headCount }],
    [`${a}.attention.head_count_kv`, { type: "u32", value: shape.headCountKv }],
    [`${a}.attention.key_length`, { type: "u32", value: shape.headDim }],
    [`${a}.attention.value_length`, { type: "u32", value: shape.headDim }],
    [`${a}.attention.layer_norm_rms_epsilon`, { type: "f32", value: 1e-6 }],
    [`${a}.rope.dimension_count`, { type: "u32", value: shape.headDim }],
    [`${a}.rope.freq_base`, { type: "f32", value: 10000 }],
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: "qwen2" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.types }],
    ["tokenizer.ggml.merges", { type: "string[]", value: vocab.merges }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: vocab.eosId }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: vocab.endOfTextId }],
    ["tokenizer.ggml.padding_token_id", { type: "u32", value: vocab.endOfTextId }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
    ["tokenizer.chat_template", { type: "string", value: CHATML_TEMPLATE }],
  ];
  if (shape.poolingType !== undefined) {
    entries.push([`${a}.pooling_type`, { type: "u32", value: shape.poolingType }]);
  }
  if (kind === "reranking") {
    entries.push([`${a}.classifier.output_labels`, { type: "string[]", value: ["yes", "no"] }]);
    entries.push(["tokenizer.chat_template.rerank", { type: "string", value: QWEN3_RERANK_TEMPLATE }]);
  }
  return entries;
}

function tensors(kind: TestModelKind, shape: Shape, vocab: Vocabulary, seed: number): GgufTensor[] {
  const n = shape.embeddingLength;
  const vocabSize = vocab.tokens.length;
  const qWidth = shape.headCount * shape.headDim;
  const kvWidth = shape.headCountKv * shape.headDim;
  const out: GgufTensor[] = [];
  const add = (name: string, dims: number[], init: (count: number, random: SeededRandom) => Float32Array): void => {
    const count = dims.reduce((x, y) => x * y, 1);
    out.push({ name, dims, data: init(count, new SeededRandom(tensorSeed(seed, name))) });
  };
  const gaussian = (fanIn: number) => (count: number, random: SeededRandom) => randomTensor(random, count, 1 / Math.sqrt(fanIn));
  const ones = (count: number) => filledTensor(count, 1);
  const anchored = kind !== "embedding";

  add("token_embd.weight", [n, vocabSize], (count, random) => {
    const data = randomTensor(random, count, 1);
    if (anchored) for (let t = 0; t < vocabSize; t++) data[t * n] = ANCHOR_VALUE;
    return data;
  });
  for (let layer = 0; layer < shape.blockCount; layer++) {
    const p = `blk.${layer}`;
    add(`${p}.attn_norm.weight`, [n], ones);
    add(`${p}.attn_q.weight`, [n, qWidth], gaussian(n));
    add(`${p}.attn_k.weight`, [n, kvWidth], gaussian(n));
    add(`${p}.attn_v.weight`, [n, kvWidth], gaussian(n));
    add(`${p}.attn_output.weight`, [qWidth, n], gaussian(qWidth * 4));
    if (shape.arch === "qwen3") {
      add(`${p}.attn_q_norm.weight`, [shape.headDim], ones);
      add(`${p}.attn_k_norm.weight`, [shape.headDim], ones);
    }
    add(`${p}.ffn_norm.weight`, [n], ones);
    add(`${p}.ffn_gate.weight`, [n, shape.feedForwardLength], gaussian(n));
    add(`${p}.ffn_up.weight`, [n, shape.feedForwardLength], gaussian(n));
    add(`${p}.ffn_down.weight`, [shape.feedForwardLength, n], gaussian(shape.feedForwardLength * 4));
  }
  add("output_norm.weight", [n], ones);
  if (kind !== "embedding") {
    add("output.weight", [n, vocabSize], (count, random) => {
      const data = randomTensor(random, count, 1);
      for (let t = 0; t < vocabSize; t++) {
        data[t * n] = vocab.emittable[t] ? 0 : SUPPRESSED_WEIGHT;
      }
      return data;
    });
  }
  if (kind === "reranking") {
    // The ranking head: the output rows of "yes" and "no", as llama.cpp's
    // converter extracts them from Qwen3-Reranker's lm_head.
    const output = out.find((t) => t.name === "output.weight")!.data;
    const yes = vocab.tokens.indexOf("yes");
    const no = vocab.tokens.indexOf("no");
    const head = new Float32Array(2 * n);
    head.set(output.subarray(yes * n, (yes + 1) * n), 0);
    head.set(output.subarray(no * n, (no + 1) * n), n);
    out.push({ name: "cls.output.weight", dims: [n, 2], data: head });
  }
  return out;
}

export interface TestModelImage {
  metadata: Array<readonly [string, GgufValue]>;
  tensors: GgufTensor[];
}

/** The model of a kind; another shape (say, a realistic one for benchmarks) keeps the same recipe. */
export function buildTestModel(kind: TestModelKind, seed: number, shape: TestModelShape = TEST_MODEL_SHAPES[kind]): TestModelImage {
  const vocab = buildVocabulary();
  return { metadata: metadata(kind, shape, vocab), tensors: tensors(kind, shape, vocab, seed) };
}
