// st generate | embed | rerank: through the daemon when one answers,
// otherwise in this process (--local forces that, --daemon requires one).

import type { Command } from "commander";
import { DaemonClient } from "../client/daemon-client.js";
import { loadSettings } from "../config/settings.js";
import { Engine } from "../engine/engine.js";
import { chunkWords } from "../daemon/word-chunker.js";
import { embedParams, generateParams, parseParams, rerankParams, MAX_NEW_TOKENS_LIMIT } from "../protocol/index.js";
import { parseInteger, parseNumber, withEnvironment, type ConnectionFlags } from "./options.js";

interface Backend {
  generate(params: Record<string, unknown>): Promise<string>;
  stream(params: Record<string, unknown>): AsyncGenerator<string>;
  embed(params: Record<string, unknown>): Promise<unknown>;
  rerank(params: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

interface BackendFlags extends ConnectionFlags {
  local?: boolean;
  daemon?: boolean;
  testModels?: boolean;
}

async function openBackend(flags: BackendFlags): Promise<Backend> {
  const settings = loadSettings(withEnvironment(flags, flags.testModels ? { STEADYTEXT_TEST_MODELS: "1" } : {}));
  if (!flags.local) {
    const client = new DaemonClient(settings.endpoint, 600_000);
    if (await client.ping(flags.daemon ? 3000 : 300)) {
      return {
        generate: (p) => client.request<string>("generate", p),
        stream: (p) => client.stream(p),
        // The protocol's embed averages a list (SteadyText's behaviour); one vector per text is embed_batch.
        embed: (p) => client.request(Array.isArray(p.text_input) ? "embed_batch" : "embed", p),
        rerank: (p) => client.request("rerank", p),
        close: () => client.close(),
      };
    }
    await client.close();
    if (flags.daemon) throw new Error(`no daemon answers on ${settings.endpoint}`);
  }
  if (settings.testModels) {
    const { writeTestModels } = await import("../models/test-models/index.js");
    await writeTestModels(settings.testModelDir);
  }
  const engine = new Engine(settings);
  return {
    generate: (p) => engine.generate(parseParams(generateParams, p)),
    async *stream(p) {
      // In-process there is nothing to wait for: the same chunks the daemon streams.
      yield* chunkWords(await engine.generate(parseParams(generateParams, p)));
    },
    embed: (p) => engine.embed(parseParams(embedParams, p)),
    rerank: async (p) => {
      const params = parseParams(rerankParams, p);
      const ranked = await engine.rerank(params);
      return params.return_scores ? ranked : ranked.map(([d]) => d);
    },
    close: () => engine.close(),
  };
}

async function withBackend(flags: BackendFlags, work: (backend: Backend) => Promise<void>): Promise<void> {
  const backend = await openBackend(flags);
  try {
    await work(backend);
  } finally {
    await backend.close();
  }
}

function backendOptions(command: Command): Command {
  return command
    .option("--local", "run the model in this process, even if a daemon runs")
    .option("--daemon", "require the daemon")
    .option("--test-models", "use the tiny generated test models (STEADYTEXT_TEST_MODELS=1)")
    .option("--no-cache", "neither read nor write the caches")
    .option("--json", "print JSON")
    .option("--seed <seed>", "seed", parseInteger(0, 2147483647));
}

export function registerTaskCommands(program: Command): void {
  backendOptions(program.command("generate").argument("<prompt>", "the prompt").description("generate text"))
    .option("--max-tokens <n>", "most tokens to generate", parseInteger(1, MAX_NEW_TOKENS_LIMIT))
    .option("--eos-string <text>", "stop at this text")
    .option("--size <size>", "small or large")
    .option("--model <name>", "a model from the registry")
    .option("--temperature <t>", "sampling temperature (0 = greedy)", parseNumber)
    .option("--schema <json>", "JSON schema the output must satisfy")
    .option("--regex <pattern>", "regular expression the output must match")
    .option("--choices <list>", "comma-separated choices, the output is one of them")
    .option("--stream", "print chunks as they come")
    .action(async (prompt: string, flags: BackendFlags & Record<string, unknown>) => {
      const params: Record<string, unknown> = {
        prompt,
        max_new_tokens: flags.maxTokens,
        seed: flags.seed,
        eos_string: flags.eosString,
        size: flags.size,
        model: flags.model,
        temperature: flags.temperature,
        regex: flags.regex,
        choices: typeof flags.choices === "string" ? flags.choices.split(",") : undefined,
        use_cache: flags.cache !== false,
      };
      if (typeof flags.schema === "string") {
        try {
          params.schema = JSON.parse(flags.schema) as unknown;
        } catch {
          throw new Error("--schema is not valid JSON");
        }
      }
      await withBackend(flags, async (backend) => {
        if (flags.stream) {
          for await (const chunk of backend.stream(params)) process.stdout.write(chunk);
          process.stdout.write("\n");
          return;
        }
        const text = await backend.generate(params);
        console.log(flags.json ? JSON.stringify({ text }) : text);
      });
    });

  backendOptions(program.command("embed").argument("<text...>", "text(s) to embed").description("embed text (1024-dim, unit length)"))
    .option("--mode <mode>", "query or passage")
    .action(async (texts: string[], flags: BackendFlags & Record<string, unknown>) => {
      await withBackend(flags, async (backend) => {
        const result = await backend.embed({
          text_input: texts.length === 1 ? texts[0] : texts,
          seed: flags.seed,
          mode: flags.mode,
          use_cache: flags.cache !== false,
        });
        console.log(JSON.stringify(result));
      });
    });

  backendOptions(program.command("rerank").argument("<query>", "the query").argument("<documents...>", "documents").description("rank documents by relevance"))
    .option("--task <task>", "instruction for the reranker")
    .action(async (query: string, documents: string[], flags: BackendFlags & Record<string, unknown>) => {
      await withBackend(flags, async (backend) => {
        const ranked = (await backend.rerank({ query, documents, task: flags.task, seed: flags.seed, use_cache: flags.cache !== false })) as Array<[string, number]>;
        if (flags.json) console.log(JSON.stringify(ranked));
        else for (const [document, score] of ranked) console.log(`${score.toFixed(6)}\t${document}`);
      });
    });
}
