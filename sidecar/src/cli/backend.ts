// Which backend a task command uses: the daemon when one answers, otherwise
// the models in this process (--local forces that, --daemon requires one).
// The same two backends the library uses.

import type { Command } from "commander";
import { loadSettings } from "../config/settings.js";
import { DaemonBackend, LocalBackend, type Backend } from "../library/backends.js";
import { withEnvironment, type ConnectionFlags } from "./options.js";

export interface BackendFlags extends ConnectionFlags {
  local?: boolean;
  daemon?: boolean;
  testModels?: boolean;
}

export async function openBackend(flags: BackendFlags): Promise<Backend> {
  const settings = loadSettings(withEnvironment(flags, flags.testModels ? { STEADYTEXT_TEST_MODELS: "1" } : {}));
  if (!flags.local) {
    const daemon = await DaemonBackend.connect(settings, flags.daemon ? 3000 : 300);
    if (daemon) return daemon;
    if (flags.daemon) throw new Error(`no daemon answers on ${settings.endpoint}`);
  }
  return LocalBackend.open(settings);
}

export async function withBackend(flags: BackendFlags, work: (backend: Backend) => Promise<void>): Promise<void> {
  const backend = await openBackend(flags);
  try {
    await work(backend);
  } finally {
    await backend.close();
  }
}

/** The flags every command that computes something takes. */
export function backendOptions(command: Command): Command {
  return command
    .option("--local", "run the model in this process, even if a daemon runs")
    .option("--daemon", "require the daemon")
    .option("--test-models", "use the tiny generated test models (STEADYTEXT_TEST_MODELS=1)")
    .option("--no-cache", "neither read nor write the caches");
}
