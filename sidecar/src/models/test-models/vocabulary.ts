// A byte-level BPE vocabulary in the GPT-2/Qwen style: the 256 byte tokens
// (so any UTF-8 input tokenizes), a few merged words (so "yes"/"no" are single
// tokens for the reranker, and outputs contain whole non-ASCII characters),
// and the ChatML control tokens.

export const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_CONTROL = 3;

/** GPT-2's reversible byte → printable-unicode mapping (bytes_to_unicode). */
function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return table;
}

const BYTE_CHARS = byteToUnicode();

/** The BPE surface form of a string: its UTF-8 bytes through the byte mapping. */
function encodeBytes(text: string): string[] {
  return [...Buffer.from(text, "utf8")].map((b) => BYTE_CHARS[b]!);
}

/** Words that become single tokens; a leading space is part of a word, as in GPT-2. */
const MERGED_WORDS = [
  "yes", "no", " yes", " no", " the", " and", " of", " to", " is", " in", "ing", "ed",
  " data", " text", " model", "é", "ü", "ß", "日", "本", "語", "→", "€",
];

export interface Vocabulary {
  tokens: string[];
  types: number[];
  merges: string[];
  /** True for tokens the test models may emit: printable text and the EOS token. */
  emittable: boolean[];
  eosId: number;
  endOfTextId: number;
}

/** Whole, printable UTF-8 text: what a test model may emit, so outputs are always valid text. */
function isPrintableText(bytes: Buffer): boolean {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return !text.includes("\uFFFD") && /^[^\p{Cc}]*$/u.test(text.replace(/\n/g, ""));
}

export function buildVocabulary(): Vocabulary {
  const tokens: string[] = [...BYTE_CHARS];
  const emittable: boolean[] = BYTE_CHARS.map((_, b) => isPrintableText(Buffer.from([b])));
  const merges: string[] = [];
  const known = new Set(tokens);

  for (const word of MERGED_WORDS) {
    const bytes = Buffer.from(word, "utf8");
    const parts = encodeBytes(word);
    let left = parts[0]!;
    for (let i = 1; i < parts.length; i++) {
      const merged = left + parts[i]!;
      if (!known.has(merged)) {
        merges.push(`${left} ${parts[i]!}`);
        tokens.push(merged);
        emittable.push(isPrintableText(bytes.subarray(0, i + 1)));
        known.add(merged);
      }
      left = merged;
    }
  }

  const types = tokens.map(() => TOKEN_TYPE_NORMAL);
  const endOfTextId = tokens.length;
  for (const special of SPECIAL_TOKENS) {
    tokens.push(special);
    types.push(TOKEN_TYPE_CONTROL);
    emittable.push(special === "<|im_end|>");
  }
  return { tokens, types, merges, emittable, eosId: tokens.indexOf("<|im_end|>"), endOfTextId };
}

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Qwen3-Reranker's prompt, as llama.cpp's converter writes it for ranking contexts. */
export const QWEN3_RERANK_TEMPLATE =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n' +
  "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n" +
  "<|im_start|>assistant\n<think>\n\n</think>\n\n";
