#!/usr/bin/env node
// The `st` command line: daemon control, generate/embed/rerank, caches, models.

import { Command, CommanderError } from "commander";
import { SettingsError } from "../config/settings.js";
import { DaemonError } from "../client/daemon-client.js";
import { ProtocolError } from "../protocol/index.js";
import { DAEMON_VERSION } from "../daemon/server.js";
import { registerCacheCommands } from "./cache-commands.js";
import { registerDaemonCommands } from "./daemon-commands.js";
import { registerModelCommands } from "./model-commands.js";
import { registerKeyCommands } from "./key-commands.js";
import { registerTaskCommands } from "./task-commands.js";
import { registerVectorCommands } from "./vector-commands.js";
import { registerCompletionCommand } from "./completion-command.js";

const program = new Command("st")
  .description("SteadyText: deterministic text generation, embeddings and reranking")
  .version(DAEMON_VERSION)
  .showHelpAfterError()
  .exitOverride();

registerDaemonCommands(program);
registerTaskCommands(program);
registerCacheCommands(program);
registerModelCommands(program);
registerKeyCommands(program);
registerVectorCommands(program);
registerCompletionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else {
    const known = error instanceof SettingsError || error instanceof DaemonError || error instanceof ProtocolError;
    console.error(`st: ${error instanceof Error ? error.message : String(error)}`);
    if (!known && process.env.STEADYTEXT_DEBUG && error instanceof Error) console.error(error.stack);
    process.exitCode = known ? 2 : 1;
  }
}
