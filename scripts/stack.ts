// npm run stack -- up [--test-models] [--no-demo] | down | status
//
// The dev stack: a PostgreSQL cluster under .steadytext/ with pg_steadytext
// (and pgvector) installed in the database "steadytext", and the sidecar
// daemon mirroring into it. Connection settings go to .steadytext/stack.env.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Command } from "commander";
import { loadSettings } from "../sidecar/src/config/settings.js";
import { resolveModel } from "../sidecar/src/models/resolve.js";
import { PgCluster } from "./lib/pg-cluster.js";
import { ST_CLI } from "./lib/sidecar-process.js";
import { runDemo } from "./demo.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const STATE = join(ROOT, ".steadytext");
const DATABASE = "steadytext";
const PG_PORT = Number(process.env.STEADYTEXT_STACK_PGPORT ?? 54329);
const DAEMON_PORT = Number(process.env.STEADYTEXT_DAEMON_PORT ?? 5557);

/** The cluster lives in .steadytext/ unless the postgres user cannot reach the checkout (e.g. under /root). */
async function clusterDirs(): Promise<{ dataDir: string; socketDir: string }> {
  let base = STATE;
  if (process.getuid?.() === 0) {
    try {
      await run("runuser", ["-u", "postgres", "--", "test", "-x", ROOT]);
    } catch {
      base = join("/var/tmp", `steadytext-stack-${Buffer.from(ROOT).toString("hex").slice(-16)}`);
      console.log(`The postgres user cannot enter ${ROOT}; the cluster lives in ${base} instead.`);
    }
  }
  return { dataDir: join(base, "pg"), socketDir: join(base, "run") };
}

async function cluster(): Promise<PgCluster> {
  return PgCluster.create({ ...(await clusterDirs()), port: PG_PORT, durable: true });
}

function daemonEnvironment(pgUrl: string, testModels: boolean): NodeJS.ProcessEnv {
  return {
    ...process.env,
    STEADYTEXT_DAEMON_HOST: "127.0.0.1",
    STEADYTEXT_DAEMON_PORT: String(DAEMON_PORT),
    STEADYTEXT_PG_URL: pgUrl,
    ...(testModels ? { STEADYTEXT_TEST_MODELS: "1" } : {}),
  };
}

async function st(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run(process.execPath, [ST_CLI, ...args], { env });
  return stdout.trim();
}

/** Real models when they are on disk or downloadable; otherwise say so and use the test models. */
async function chooseTestModels(requested: boolean): Promise<boolean> {
  if (requested) return true;
  const settings = loadSettings();
  const missing = (["generation", "embedding", "reranking"] as const)
    .map((role) => resolveModel(settings, role, {}))
    .filter((model) => !existsSync(model.path));
  if (missing.length === 0) return false;
  if (settings.allowModelDownloads) {
    try {
      const response = await fetch(settings.hfEndpoint, { method: "HEAD", signal: AbortSignal.timeout(4000) });
      if (response.status < 500) {
        console.log(`Models missing locally will be downloaded from ${settings.hfEndpoint} on first use: ${missing.map((m) => m.name).join(", ")}`);
        return false;
      }
    } catch {
      // unreachable: fall through
    }
  }
  console.log(
    `No network access to ${settings.hfEndpoint} (or downloads are off) and these models are not in ${settings.modelDir}: ` +
      `${missing.map((m) => m.name).join(", ")}.\nUsing the tiny test models instead: their output is deterministic noise, not language.`,
  );
  return true;
}

async function up(flags: { testModels?: boolean; demo: boolean }): Promise<void> {
  const pgCluster = await cluster();
  await pgCluster.start();
  await pgCluster.createDatabase(DATABASE);
  await pgCluster.query("ALTER EXTENSION pg_steadytext UPDATE", [], DATABASE);
  console.log(`PostgreSQL on port ${PG_PORT} (socket ${pgCluster.socketDir}), database ${DATABASE} with pg_steadytext and vector`);

  const testModels = await chooseTestModels(flags.testModels === true);
  const env = daemonEnvironment(pgCluster.url(DATABASE), testModels);
  const status = JSON.parse(await st(["daemon", "status", "--json"], env)) as { running: boolean; models: unknown[] };
  if (status.running) {
    // Restart so the daemon runs with this stack's settings (models, mirror).
    await st(["daemon", "stop"], env);
  }
  console.log(await st(["daemon", "start", ...(testModels ? ["--test-models"] : [])], env));
  await pgCluster.query(`ALTER DATABASE ${DATABASE} SET steadytext.daemon_port = ${DAEMON_PORT}`);

  const stackEnv = [
    `PGHOST=${pgCluster.socketDir}`,
    `PGPORT=${PG_PORT}`,
    "PGUSER=postgres",
    `PGDATABASE=${DATABASE}`,
    "STEADYTEXT_DAEMON_HOST=127.0.0.1",
    `STEADYTEXT_DAEMON_PORT=${DAEMON_PORT}`,
    `STEADYTEXT_PG_URL='${pgCluster.url(DATABASE)}'`,
    ...(testModels ? ["STEADYTEXT_TEST_MODELS=1"] : []),
  ];
  await writeFile(join(STATE, "stack.env"), stackEnv.map((line) => `export ${line}`).join("\n") + "\n");
  console.log(`Connection settings: ${join(STATE, "stack.env")}  (source it, then psql)`);
  if (flags.demo) await runDemo(pgCluster, DATABASE);
}

async function down(): Promise<void> {
  const pgCluster = await cluster();
  const env = daemonEnvironment(pgCluster.url(DATABASE), false);
  console.log(await st(["daemon", "stop"], env));
  await pgCluster.stop();
  console.log("PostgreSQL stopped");
}

async function status(): Promise<void> {
  const pgCluster = await cluster();
  console.log(`PostgreSQL on port ${PG_PORT}: ${(await pgCluster.isRunning()) ? "running" : "stopped"}`);
  const env = daemonEnvironment(pgCluster.url(DATABASE), false);
  try {
    console.log(await st(["daemon", "status"], env));
  } catch (error) {
    console.log((error as { stdout?: string }).stdout?.trim() ?? "daemon status unknown");
  }
}

const program = new Command("stack").description("the pg_steadytext dev stack");
program
  .command("up")
  .description("start PostgreSQL (with pg_steadytext) and the sidecar, then run a short demo")
  .option("--test-models", "use the tiny generated test models")
  .option("--no-demo", "skip the demo")
  .action(up);
program.command("down").description("stop the sidecar and PostgreSQL").action(down);
program.command("status").description("show what runs").action(status);
await program.parseAsync(process.argv);
