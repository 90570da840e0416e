// st generate | embed | rerank, with SteadyText's flags: prompts from stdin,
// streaming to the terminal by default, --raw / --json output.

import { Option, type Command } from "commander";
import { GENERATION_SIZES, MAX_NEW_TOKENS_LIMIT } from "../protocol/index.js";
import { backendOptions, withBackend, type BackendFlags } from "./backend.js";
import { EMBED_FORMATS, formatEmbeddings, type EmbedFormat } from "./embedding-format.js";
import { argumentOrStdin, readLines, schemaFrom } from "./input.js";
import { parseInteger, parseNumber } from "./options.js";

const parseSeed = parseInteger(0, 2147483647);

interface GenerateFlags extends BackendFlags {
  maxNewTokens?: number;
  seed?: number;
  eosString?: string;
  size?: string;
  model?: string;
  modelRepo?: string;
  modelFilename?: string;
  unsafeMode?: boolean;
  temperature?: number;
  schema?: string;
  regex?: string;
  choices?: string;
  wait?: boolean;
  raw?: boolean;
  json?: boolean;
  cache?: boolean;
}

/** Write to stdout and wait until it is handed on (a binary or partial write goes out as it is). */
function write(data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (error) => (error ? reject(error) : resolve())));
}

async function generateCommand(promptArgument: string | undefined, flags: GenerateFlags): Promise<void> {
  const prompt = await argumentOrStdin(promptArgument, "prompt");
  const constraints = [flags.schema, flags.regex, flags.choices].filter((c) => c !== undefined).length;
  if (constraints > 1) throw new Error("give only one of --schema, --regex and --choices");
  const params: Record<string, unknown> = {
    prompt,
    max_new_tokens: flags.maxNewTokens,
    seed: flags.seed,
    eos_string: flags.eosString,
    size: flags.size,
    model: flags.model,
    model_repo: flags.modelRepo,
    model_filename: flags.modelFilename,
    unsafe_mode: flags.unsafeMode,
    temperature: flags.temperature,
    regex: flags.regex,
    choices: flags.choices?.split(",").map((c) => c.trim()),
    schema: flags.schema === undefined ? undefined : await schemaFrom(flags.schema),
    use_cache: flags.cache !== false,
  };
  await withBackend(flags, async (backend) => {
    if (flags.json) {
      const text = await backend.generate(params);
      const deterministic = !(flags.unsafeMode === true && flags.model?.includes(":") === true);
      await write(`${JSON.stringify({ text, prompt, seed: flags.seed ?? 42, max_new_tokens: flags.maxNewTokens ?? null, backend: backend.kind, deterministic })}\n`);
      return;
    }
    const end = flags.raw ? "" : "\n";
    if (flags.wait) {
      await write(`${await backend.generate(params)}${end}`);
      return;
    }
    for await (const chunk of backend.stream(params)) await write(chunk);
    await write(end);
  });
}

export function registerTaskCommands(program: Command): void {
  backendOptions(
    program
      .command("generate")
      .alias("gen")
      .argument("[prompt]", "the prompt (default: stdin; '-' reads stdin)")
      .description("generate text (streamed as it is produced, unless --wait, --json)"),
  )
    .option("--max-new-tokens <n>", "most tokens to generate", parseInteger(1, MAX_NEW_TOKENS_LIMIT))
    .addOption(new Option("--max-tokens <n>", "same as --max-new-tokens").argParser(parseInteger(1, MAX_NEW_TOKENS_LIMIT)).hideHelp())
    .option("--seed <seed>", "seed (default 42)", parseSeed)
    .option("--eos-string <text>", "stop at this text (default [EOS])")
    .addOption(new Option("--size <size>", "model size").choices(GENERATION_SIZES))
    .option("--model <name>", "a model from the registry (st models list)")
    .option("--model-repo <repo>", "a hub repository (with --model-filename)")
    .option("--model-filename <file>", "a .gguf file in --model-repo")
    .option("--unsafe-mode", "allow remote provider:model names")
    .option("--temperature <t>", "sampling temperature (0 = greedy, the default)", parseNumber)
    .option("--schema <json|file>", "JSON schema the output must satisfy, inline or a file")
    .option("--regex <pattern>", "regular expression the output must match")
    .option("--choices <list>", "comma-separated choices, the output is one of them")
    .option("--wait", "print the whole text at the end instead of streaming it")
    .addOption(new Option("--stream", "stream (the default)").hideHelp())
    .option("--raw", "print only the text, without a newline at the end")
    .option("--json", "print a JSON object with the text and the request")
    .action(async (prompt: string | undefined, flags: GenerateFlags) => {
      await generateCommand(prompt, { ...flags, maxNewTokens: flags.maxNewTokens ?? (flags as { maxTokens?: number }).maxTokens });
    });

  backendOptions(program.command("embed").argument("[text...]", "text(s) to embed (default: stdin)").description("embed text (1024 dimensions, unit length)"))
    .option("--seed <seed>", "seed", parseSeed)
    .addOption(new Option("--mode <mode>", "query or passage").choices(["query", "passage"]))
    .option("--model <name>", "an embedding model from the registry")
    .addOption(new Option("--format <format>", "json, numpy (.npy bytes) or hex (float32 little-endian)").choices(EMBED_FORMATS).default("json"))
    .option("--json", "same as --format json")
    .action(async (args: string[], flags: BackendFlags & { seed?: number; mode?: string; model?: string; format: EmbedFormat; cache?: boolean }) => {
      const texts = args.length > 0 ? args : [await argumentOrStdin(undefined, "text")];
      await withBackend(flags, async (backend) => {
        const single = texts.length === 1;
        const result = await backend.embed({ text_input: single ? texts[0] : texts, seed: flags.seed, mode: flags.mode, model: flags.model, use_cache: flags.cache !== false });
        const vectors = single ? [result as number[]] : (result as number[][]);
        if (flags.format === "numpy" && process.stdout.isTTY) throw new Error("--format numpy writes binary: redirect it to a file");
        await write(formatEmbeddings(vectors, single, flags.format));
      });
    });

  backendOptions(
    program
      .command("rerank")
      .argument("<query>", "the query")
      .argument("[documents...]", "documents (or --file)")
      .description("rank documents by relevance to the query, best first"),
  )
    .option("--file <path>", "read documents from a file, one per line ('-' for stdin)")
    .option("--top-k <k>", "only the best k", parseInteger(1, 1_000_000))
    .option("--no-scores", "print the documents only")
    .option("--task <task>", "instruction for the reranker")
    .option("--seed <seed>", "seed", parseSeed)
    .option("--json", "print JSON")
    .action(async (query: string, args: string[], flags: BackendFlags & { file?: string; topK?: number; scores: boolean; task?: string; seed?: number; json?: boolean; cache?: boolean }) => {
      const documents = [...args, ...(flags.file ? await readLines(flags.file) : [])];
      if (documents.length === 0) throw new Error("no documents: give them as arguments or with --file");
      await withBackend(flags, async (backend) => {
        const ranked = (await backend.rerank({ query, documents, task: flags.task, seed: flags.seed, use_cache: flags.cache !== false })).slice(0, flags.topK);
        if (flags.json) await write(`${JSON.stringify(flags.scores ? ranked : ranked.map(([d]) => d))}\n`);
        else await write(ranked.map(([document, score]) => (flags.scores ? `${score.toFixed(6)}\t${document}` : document)).join("\n") + "\n");
      });
    });
}
