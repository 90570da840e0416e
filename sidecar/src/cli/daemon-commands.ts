// st daemon start|stop|status|restart

import { readAdminToken } from "../daemon/admin-token.js";
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Option, type Command } from "commander";
import { DaemonClient } from "../client/daemon-client.js";
import { loadSettings, type Settings } from "../config/settings.js";
import { isAlive, runningPid } from "../daemon/pid-file.js";
import { runDaemon } from "../daemon/run.js";
import { GENERATION_SIZES, type StatusResult } from "../protocol/index.js";
import { parsePort, withEnvironment, type ConnectionFlags } from "./options.js";

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

interface StartFlags extends ConnectionFlags {
  foreground?: boolean;
  testModels?: boolean;
  http?: string;
  size?: string;
  force?: boolean;
  /** commander's --no-preload sets this false. */
  preload?: boolean;
  skipEmbeddings?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The variables a start passes on: --test-models and --http become their STEADYTEXT_* settings. */
function startEnvironment(flags: StartFlags): NodeJS.ProcessEnv {
  return withEnvironment(flags, {
    ...(flags.testModels ? { STEADYTEXT_TEST_MODELS: "1" } : {}),
    ...(flags.http !== undefined ? { STEADYTEXT_HTTP_ADDR: flags.http } : {}),
    ...(flags.size !== undefined ? { STEADYTEXT_GENERATION_SIZE: flags.size } : {}),
    ...(flags.preload === false ? { STEADYTEXT_PRELOAD: "0" } : {}),
    ...(flags.skipEmbeddings ? { STEADYTEXT_PRELOAD_SKIP_EMBEDDINGS: "1" } : {}),
  });
}

function settingsFrom(flags: StartFlags): Settings {
  return loadSettings(startEnvironment(flags));
}

async function statusOf(settings: Settings): Promise<{ pid: number | undefined; status: StatusResult | undefined }> {
  const pid = await runningPid(settings.pidFile);
  const client = new DaemonClient(settings.endpoint, 2000);
  try {
    const status = await client.request<StatusResult>("status", {}, { timeoutMs: 2000 }).catch(() => undefined);
    return { pid: pid ?? status?.pid, status };
  } finally {
    await client.close();
  }
}

async function start(flags: StartFlags): Promise<void> {
  const settings = settingsFrom(flags);
  if (flags.force && (await runningPid(settings.pidFile)) !== undefined) await stop(flags);
  const existing = await runningPid(settings.pidFile);
  if (existing !== undefined) {
    console.log(`daemon already running (pid ${existing}) on ${settings.endpoint}`);
    return;
  }
  if (flags.foreground) {
    await runDaemon(settings);
    return;
  }
  mkdirSync(dirname(settings.logFile), { recursive: true });
  const log = openSync(settings.logFile, "a");
  const entry = fileURLToPath(new URL("./st.js", import.meta.url));
  const args = [entry, "daemon", "start", "--foreground", "--log-to-file"];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ["ignore", log, log],
    env: startEnvironment(flags),
  });
  closeSync(log);
  child.unref();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const client = new DaemonClient(settings.endpoint, 1000);
  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    while (Date.now() < deadline) {
      const code = await Promise.race([exited, sleep(200).then(() => "running" as const)]);
      if (code !== "running") throw new Error(`the daemon exited with code ${String(code)} while starting; see ${settings.logFile}`);
      const status = await client.request<StatusResult>("status", {}, { timeoutMs: 500 }).catch(() => undefined);
      if (status?.pid === child.pid) {
        console.log(`daemon started (pid ${child.pid}) on ${settings.endpoint}`);
        return;
      }
      if (status) throw new Error(`another daemon (pid ${status.pid}) already listens on ${settings.endpoint}`);
    }
    throw new Error(`the daemon did not answer within ${START_TIMEOUT_MS / 1000} s; see ${settings.logFile}`);
  } finally {
    await client.close();
  }
}

async function stop(flags: ConnectionFlags): Promise<void> {
  const settings = loadSettings(withEnvironment(flags));
  const pid = await runningPid(settings.pidFile);
  const client = new DaemonClient(settings.endpoint, 2000);
  const asked = await client.request("shutdown", {}, { timeoutMs: 2000, adminToken: readAdminToken(settings) }).then(
    () => true,
    () => false,
  );
  await client.close();
  if (pid === undefined) {
    console.log(asked ? `daemon on ${settings.endpoint} asked to stop` : "daemon is not running");
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    process.kill(pid, "SIGTERM");
    await sleep(2000);
    if (isAlive(pid)) process.kill(pid, "SIGKILL");
  }
  console.log(`daemon stopped (pid ${pid})`);
}

function computeLine(compute: NonNullable<StatusResult["compute"]>): string {
  const devices = compute.devices.length > 0 ? ` (${compute.devices.join(" + ")})` : "";
  const fallback = compute.fallback ? `, no GPU: ${compute.fallback}` : "";
  return `${compute.backend}${devices}, STEADYTEXT_GPU=${compute.setting}${fallback}`;
}

async function status(flags: ConnectionFlags & { json?: boolean }): Promise<void> {
  const settings = loadSettings(withEnvironment(flags));
  const { pid, status: s } = await statusOf(settings);
  const running = pid !== undefined || s !== undefined;
  const report = {
    running,
    pid: pid ?? null,
    responsive: s !== undefined,
    endpoint: settings.endpoint,
    host: settings.host,
    port: settings.port,
    uptime_seconds: s?.uptime_seconds ?? null,
    version: s?.version ?? null,
    compute: s?.compute ?? null,
    models: s?.models ?? [],
  };
  if (flags.json) {
    console.log(JSON.stringify(report));
    return;
  }
  if (!running) {
    console.log(`daemon is not running (${settings.endpoint})`);
    process.exitCode = 3;
    return;
  }
  console.log(`daemon running (pid ${report.pid ?? "?"}) on ${settings.endpoint}, ${s ? `up ${s.uptime_seconds} s` : "not responding"}`);
  if (report.compute) console.log(`  compute: ${computeLine(report.compute)}`);
  for (const m of report.models) {
    const where = m.loaded && m.backend ? ` on ${m.backend} (${m.device ?? "?"}${m.backend === "cpu" ? "" : `, ${m.gpu_layers ?? "?"} layers`})` : "";
    console.log(`  ${m.role}: ${m.name} ${m.loaded ? `loaded${where}` : `not loaded (${m.error ?? ""})`}`);
  }
}

export function registerDaemonCommands(program: Command): void {
  const daemon = program.command("daemon").description("run the SteadyText daemon");
  const connection = (command: Command) =>
    command
      .option("--host <host>", "listen/connect host (STEADYTEXT_DAEMON_HOST)")
      .option("--port <port>", "listen/connect port (STEADYTEXT_DAEMON_PORT)", parsePort)
      .option("--endpoint <endpoint>", "full ZeroMQ endpoint, tcp://… or ipc://… (STEADYTEXT_DAEMON_ENDPOINT)");

  connection(daemon.command("start").description("start the daemon (in the background unless --foreground)"))
    .option("--foreground", "run in this process")
    .option("--test-models", "use the tiny generated test models (STEADYTEXT_TEST_MODELS=1)")
    .option("--http <[host:]port>", "also serve the OpenAI-compatible HTTP API, on loopback unless a host is named (STEADYTEXT_HTTP_ADDR)")
    .addOption(new Option("--size <size>", "default generation model size (STEADYTEXT_GENERATION_SIZE)").choices(GENERATION_SIZES))
    .option("--force", "stop a daemon that already runs here, then start")
    .option("--no-preload", "do not load the default models at start (STEADYTEXT_PRELOAD=0)")
    .option("--skip-embeddings", "preload all default models but the embedding model (STEADYTEXT_PRELOAD_SKIP_EMBEDDINGS=1)")
    .addOption(new Option("--log-to-file", "log to the daemon's log file (used for background starts)").hideHelp())
    .action(async (flags: StartFlags & { logToFile?: boolean }) => {
      if (flags.foreground && flags.logToFile) {
        const settings = settingsFrom(flags);
        if ((await runningPid(settings.pidFile)) !== undefined) return;
        await runDaemon(settings, { logToFile: true });
        return;
      }
      await start(flags);
    });
  connection(daemon.command("stop").description("stop the daemon")).action(stop);
  connection(daemon.command("status").description("show whether the daemon runs"))
    .option("--json", "print JSON")
    .action(status);
  connection(daemon.command("restart").description("stop, then start the daemon"))
    .option("--test-models", "use the tiny generated test models")
    .option("--http <[host:]port>", "also serve the OpenAI-compatible HTTP API (STEADYTEXT_HTTP_ADDR)")
    .addOption(new Option("--size <size>", "default generation model size (STEADYTEXT_GENERATION_SIZE)").choices(GENERATION_SIZES))
    .action(async (flags: StartFlags) => {
      await stop(flags);
      await start(flags);
    });
}
