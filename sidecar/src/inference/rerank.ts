// Reranking the Qwen3-Reranker way: the model reads an instruction, the
// query and one document, and the score is p(yes) / (p(yes) + p(no)) of its
// next token. This works with any causal reranker GGUF, whether or not its
// conversion added a classification head. Each document is scored from an
// empty context, so a score never depends on the other documents.

import type { Token } from "node-llama-cpp";
import { unavailable } from "../protocol/errors.js";
import type { LoadedModel } from "./model-host.js";

const PREFIX =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
const SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

function singleToken(loaded: LoadedModel, word: string): Token {
  const tokens = loaded.model.tokenize(word);
  if (tokens.length !== 1) throw unavailable(`reranker ${loaded.name} has no single token for '${word}'`);
  return tokens[0]!;
}

/** Token ids of the prompt; the document is cut (from its end) so the whole prompt fits the context. */
function promptTokens(loaded: LoadedModel, task: string, query: string, document: string): Token[] {
  const model = loaded.model;
  // Template parts may hold control tokens; user text is never parsed for them.
  const head = [...model.tokenize(PREFIX, true), ...model.tokenize(`<Instruct>: ${task}\n<Query>: ${query}\n<Document>: `)];
  const tail = model.tokenize(SUFFIX, true);
  let body = model.tokenize(document);
  const room = loaded.contextSize - head.length - tail.length - 1;
  if (room <= 0) throw unavailable(`the query and task do not fit the reranker's context of ${loaded.contextSize} tokens`);
  if (body.length > room) body = body.slice(0, room);
  return [...head, ...body, ...tail];
}

export async function scoreDocuments(
  loaded: LoadedModel,
  query: string,
  documents: readonly string[],
  task: string,
  signal?: AbortSignal,
): Promise<number[]> {
  const yes = singleToken(loaded, "yes");
  const no = singleToken(loaded, "no");
  const pool = loaded.generationSlots();
  return Promise.all(
    documents.map(async (document) => {
      const tokens = promptTokens(loaded, task, query, document);
      const lease = await pool.acquire(signal);
      try {
        signal?.throwIfAborted();
        await lease.resource.clear();
        const input = tokens.map((t, i) =>
          i === tokens.length - 1 ? ([t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const) : t,
        );
        const outputs = await lease.resource.sequence.controlledEvaluate([...input] as Parameters<typeof lease.resource.sequence.controlledEvaluate>[0]);
        const probabilities = outputs[tokens.length - 1]?.next.probabilities;
        if (!probabilities) throw unavailable("the reranker returned no probabilities");
        const pYes = probabilities.get(yes) ?? 0;
        const pNo = probabilities.get(no) ?? 0;
        return pYes + pNo > 0 ? pYes / (pYes + pNo) : 0;
      } finally {
        lease.release();
      }
    }),
  );
}
