// st vector: similarity, distance, search, average and arithmetic over the
// texts' embeddings (SteadyText's `st vector`). The maths is done here on the
// vectors the daemon or the in-process model gives.

import { Option, type Command } from "commander";
import { backendOptions, withBackend, type BackendFlags } from "./backend.js";
import { readLines } from "./input.js";
import { parseInteger } from "./options.js";

const METRICS = ["euclidean", "cosine", "manhattan"] as const;
type Metric = (typeof METRICS)[number];

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const norm = (a: readonly number[]) => Math.sqrt(dot(a, a));
export const cosine = (a: readonly number[], b: readonly number[]) => dot(a, b) / (norm(a) * norm(b) || 1);

export function distance(a: readonly number[], b: readonly number[], metric: Metric): number {
  switch (metric) {
    case "euclidean":
      return Math.sqrt(a.reduce((sum, x, i) => sum + (x - b[i]!) ** 2, 0));
    case "manhattan":
      return a.reduce((sum, x, i) => sum + Math.abs(x - b[i]!), 0);
    case "cosine":
      return 1 - cosine(a, b);
  }
}

/** The L2-normalised sum of weighted vectors (a zero result stays zero). */
export function normalisedSum(terms: ReadonlyArray<{ vector: readonly number[]; weight: number }>): number[] {
  const sum = new Array<number>(terms[0]?.vector.length ?? 0).fill(0);
  for (const { vector, weight } of terms) vector.forEach((x, i) => (sum[i]! += weight * x));
  const length = norm(sum);
  return length > 0 ? sum.map((x) => x / length) : sum;
}

async function embedAll(flags: BackendFlags & { cache?: boolean }, texts: string[], work: (vectors: number[][]) => Promise<void> | void): Promise<void> {
  await withBackend(flags, async (backend) => {
    const vectors = (await backend.embed({ text_input: texts, use_cache: flags.cache !== false })) as number[][];
    await work(vectors);
  });
}

const print = (value: unknown, json: boolean | undefined) => console.log(json ? JSON.stringify(value) : typeof value === "number" ? value.toFixed(6) : String(value));

export function registerVectorCommands(program: Command): void {
  const vector = program.command("vector").description("similarity, distance, search and arithmetic over embeddings");

  backendOptions(vector.command("similarity").argument("<text1>").argument("<text2>").description("cosine similarity of two texts' embeddings"))
    .option("--json", "print JSON")
    .action(async (a: string, b: string, flags: BackendFlags & { json?: boolean; cache?: boolean }) => {
      await embedAll(flags, [a, b], ([x, y]) => print(flags.json ? { similarity: cosine(x!, y!) } : cosine(x!, y!), flags.json));
    });

  backendOptions(vector.command("distance").argument("<text1>").argument("<text2>").description("distance between two texts' embeddings"))
    .addOption(new Option("--metric <metric>", "distance metric").choices(METRICS).default("euclidean"))
    .option("--json", "print JSON")
    .action(async (a: string, b: string, flags: BackendFlags & { metric: Metric; json?: boolean; cache?: boolean }) => {
      await embedAll(flags, [a, b], ([x, y]) => {
        const d = distance(x!, y!, flags.metric);
        print(flags.json ? { metric: flags.metric, distance: d } : d, flags.json);
      });
    });

  backendOptions(
    vector
      .command("search")
      .argument("<query>")
      .argument("[candidates...]", "candidate texts (or --file)")
      .description("the candidates most similar to the query, best first"),
  )
    .option("--file <path>", "candidates from a file, one per line ('-' for stdin)")
    .option("--top-k <k>", "how many to show", parseInteger(1, 1_000_000), 3)
    .option("--json", "print JSON")
    .action(async (query: string, args: string[], flags: BackendFlags & { file?: string; topK: number; json?: boolean; cache?: boolean }) => {
      const candidates = [...args, ...(flags.file ? await readLines(flags.file) : [])];
      if (candidates.length === 0) throw new Error("no candidates: give them as arguments or with --file");
      await embedAll(flags, [query, ...candidates], ([q, ...vectors]) => {
        const ranked = candidates
          .map((text, index) => ({ text, similarity: cosine(q!, vectors[index]!), index }))
          .sort((a, b) => b.similarity - a.similarity || a.index - b.index)
          .slice(0, flags.topK)
          .map(({ text, similarity }) => ({ text, similarity }));
        if (flags.json) console.log(JSON.stringify(ranked));
        else for (const r of ranked) console.log(`${r.similarity.toFixed(6)}\t${r.text}`);
      });
    });

  backendOptions(vector.command("average").argument("<texts...>").description("the normalised mean of the texts' embeddings (JSON)"))
    .action(async (texts: string[], flags: BackendFlags & { cache?: boolean }) => {
      await embedAll(flags, texts, (vectors) => console.log(JSON.stringify(normalisedSum(vectors.map((v) => ({ vector: v, weight: 1 }))))));
    });

  backendOptions(
    vector
      .command("arithmetic")
      .argument("<base>", "the starting text")
      .description("base + --add texts - --subtract texts, normalised (JSON); e.g. king --subtract man --add woman"),
  )
    .option("--add <text>", "a text to add (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--subtract <text>", "a text to subtract (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (base: string, flags: BackendFlags & { add: string[]; subtract: string[]; cache?: boolean }) => {
      const weights = [1, ...flags.add.map(() => 1), ...flags.subtract.map(() => -1)];
      await embedAll(flags, [base, ...flags.add, ...flags.subtract], (vectors) =>
        console.log(JSON.stringify(normalisedSum(vectors.map((v, i) => ({ vector: v, weight: weights[i]! }))))),
      );
    });
}
