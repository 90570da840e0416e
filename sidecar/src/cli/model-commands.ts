// st models list | path | download | delete | preload | test: which files the
// defaults mean, fetching and removing registry models, and the test models.

import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { Option, type Command } from "commander";
import { loadSettings, type ModelRole } from "../config/settings.js";
import { LocalBackend } from "../library/backends.js";
import { downloadModel } from "../models/download.js";
import { MODEL_REGISTRY, SIZE_TO_MODEL } from "../models/registry.js";
import { resolveModel, type ResolvedModel } from "../models/resolve.js";
import { GENERATION_SIZES, type GenerationSize } from "../protocol/index.js";
import { TEST_MODEL_SEED, writeTestModels } from "../models/test-models/index.js";
import { parseInteger } from "./options.js";

export function registerModelCommands(program: Command): void {
  const models = program.command("models").description("model files");
  models
    .command("list")
    .option("--json", "print JSON")
    .description("the model file each role uses by default, and whether it is present")
    .action((flags: { json?: boolean }) => {
      const settings = loadSettings();
      const rows = (["generation", "embedding", "reranking"] as const).map((role) => {
        const resolved = resolveModel(settings, role, {});
        return { role, name: resolved.name, path: resolved.path, present: existsSync(resolved.path), source: resolved.source ?? null };
      });
      if (flags.json) console.log(JSON.stringify(rows));
      else for (const r of rows) console.log(`${r.role.padEnd(11)} ${r.present ? "present" : "missing"}  ${r.path}`);
    });
  models
    .command("test")
    .description("write the tiny deterministic test models")
    .option("--dir <dir>", "where to write them (default: the cache dir's test-models)")
    .option("--seed <seed>", "weights seed", parseInteger(0, 0xffffffff), TEST_MODEL_SEED)
    .option("--json", "print JSON")
    .action(async (flags: { dir?: string; seed: number; json?: boolean }) => {
      const written = await writeTestModels(flags.dir ?? loadSettings().testModelDir, flags.seed);
      if (flags.json) console.log(JSON.stringify(written));
      else for (const m of written) console.log(`${m.sha256}  ${m.path}`);
    });
  models
    .command("path")
    .description("print the directory models are kept in")
    .action(() => console.log(loadSettings().modelDir));

  /** A registry name, a size name, or (nothing) the default models of every role. */
  const chosen = (name: string | undefined): ResolvedModel[] => {
    const settings = { ...loadSettings(), testModels: false, modelPaths: {} };
    if (name === undefined) return (["generation", "embedding", "reranking"] as ModelRole[]).map((role) => resolveModel(settings, role, {}));
    const registryName = (GENERATION_SIZES as readonly string[]).includes(name) ? SIZE_TO_MODEL[name as GenerationSize] : name;
    const entry = MODEL_REGISTRY[registryName];
    if (!entry) throw new Error(`unknown model '${name}'; known: ${[...Object.keys(MODEL_REGISTRY), ...GENERATION_SIZES].join(", ")}`);
    return [resolveModel(settings, entry.role, { model: registryName })];
  };

  models
    .command("download")
    .argument("[name]", "a registry model or size name (default: each role's default model)")
    .description("download models from the hub (STEADYTEXT_HF_ENDPOINT), checking their sha256")
    .action(async (name: string | undefined) => {
      const settings = loadSettings();
      for (const resolved of chosen(name)) {
        if (existsSync(resolved.path)) {
          console.log(`present  ${resolved.path}`);
          continue;
        }
        const source = resolved.source!;
        const sha256 = await downloadModel({ endpoint: settings.hfEndpoint, repo: source.repo, filename: source.filename, destination: resolved.path, progressBar: process.stderr.isTTY === true });
        console.log(`${sha256}  ${resolved.path}`);
      }
    });

  models
    .command("delete")
    .argument("<name>", "a registry model or size name")
    .description("delete a downloaded model file from the model directory")
    .action(async (name: string) => {
      for (const resolved of chosen(name)) {
        if (!existsSync(resolved.path)) {
          console.log(`not present  ${resolved.path}`);
          continue;
        }
        await rm(resolved.path);
        console.log(`deleted  ${resolved.path}`);
      }
    });

  models
    .command("preload")
    .description("load the default models in this process, to check that they load")
    .addOption(new Option("--size <size>", "generation model size").choices(GENERATION_SIZES))
    .option("--skip-embeddings", "do not load the embedding model")
    .option("--skip-reranking", "do not load the reranking model")
    .option("--test-models", "use the tiny generated test models")
    .action(async (flags: { size?: GenerationSize; skipEmbeddings?: boolean; skipReranking?: boolean; testModels?: boolean }) => {
      const backend = await LocalBackend.open(loadSettings({ ...process.env, ...(flags.testModels ? { STEADYTEXT_TEST_MODELS: "1" } : {}) }));
      try {
        await backend.preload({ ...(flags.size ? { size: flags.size } : {}), skipEmbeddings: flags.skipEmbeddings === true, skipReranking: flags.skipReranking === true });
        console.log("models loaded");
      } finally {
        await backend.close();
      }
    });
}
