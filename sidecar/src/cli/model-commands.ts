// st models list | test: which files the defaults mean, and the test models.

import { existsSync } from "node:fs";
import type { Command } from "commander";
import { loadSettings } from "../config/settings.js";
import { resolveModel } from "../models/resolve.js";
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
}
