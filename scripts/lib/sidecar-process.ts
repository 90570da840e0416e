// A sidecar daemon in its own process, for the stack, tests and benchmarks:
// started in the foreground (so its exit is observed), stopped politely.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { DaemonClient } from "../../sidecar/src/client/daemon-client.js";
import type { StatusResult } from "../../sidecar/src/protocol/index.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
export const ST_CLI = resolve(ROOT, "sidecar", "dist", "cli", "st.js");

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolvePort(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort(true)));
  });
}

/**
 * A TCP port nobody listens on right now, chosen at random below the
 * ephemeral range: the kernel hands a just-released ephemeral port to the
 * next asker, so test files running side by side would otherwise collide.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 20_000);
    if (await portIsFree(port)) return port;
  }
}

export interface SidecarOptions {
  port: number;
  cacheDir: string;
  testModels?: boolean;
  pgUrl?: string;
  env?: Record<string, string>;
  /** Where the daemon's stderr goes; "inherit" shows it, "ignore" (default) drops it, "capture" keeps it in `log`. */
  stderr?: "inherit" | "ignore" | "capture";
  /** Where clients connect, when not where the daemon binds (a daemon bound to 0.0.0.0). */
  connectEndpoint?: string;
  /** CURVE keys clients use, for a daemon that requires them. */
  curve?: { serverPublicKey: string; publicKey: string; secretKey: string };
}

const adminTokens = new WeakMap<SidecarOptions, string>();

function adminTokenFor(options: SidecarOptions): string {
  let token = adminTokens.get(options);
  if (!token) adminTokens.set(options, (token = randomBytes(24).toString("hex")));
  return token;
}

export class SidecarProcess {
  /** The admin token this daemon accepts (STEADYTEXT_ADMIN_TOKEN). */
  readonly adminToken: string;
  readonly endpoint: string;
  /** What the daemon wrote to stderr, with `stderr: "capture"`. */
  log = "";
  private exited: Promise<number | null>;

  private constructor(
    readonly options: SidecarOptions,
    readonly child: ChildProcess,
  ) {
    this.endpoint = options.connectEndpoint ?? options.env?.STEADYTEXT_DAEMON_ENDPOINT ?? `tcp://127.0.0.1:${options.port}`;
    this.adminToken = SidecarProcess.environment(options).STEADYTEXT_ADMIN_TOKEN!;
    this.exited = new Promise((r) => child.once("exit", (code) => r(code)));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (this.log += chunk));
  }

  static environment(options: SidecarOptions): NodeJS.ProcessEnv {
    return {
      ...process.env,
      STEADYTEXT_DAEMON_HOST: "127.0.0.1",
      STEADYTEXT_DAEMON_PORT: String(options.port),
      STEADYTEXT_CACHE_DIR: options.cacheDir,
      STEADYTEXT_LOG_LEVEL: process.env.STEADYTEXT_LOG_LEVEL ?? "warn",
      // Test daemons load a model when a test first needs it, not all three at start.
      STEADYTEXT_PRELOAD: "0",
      ...(options.testModels ? { STEADYTEXT_TEST_MODELS: "1", STEADYTEXT_ALLOW_MODEL_DOWNLOADS: "0" } : {}),
      ...(options.pgUrl ? { STEADYTEXT_PG_URL: options.pgUrl } : {}),
      // A fixed token per options object, so the test knows what admin requests must carry.
      STEADYTEXT_ADMIN_TOKEN: adminTokenFor(options),
      ...options.env,
    };
  }

  /** Start a daemon and wait until it answers (it, not some other daemon on the port). */
  static async start(options: SidecarOptions, timeoutMs = 60_000): Promise<SidecarProcess> {
    const child = spawn(process.execPath, [ST_CLI, "daemon", "start", "--foreground"], {
      env: SidecarProcess.environment(options),
      stdio: ["ignore", "ignore", options.stderr === "capture" ? "pipe" : (options.stderr ?? "ignore")],
    });
    const sidecar = new SidecarProcess(options, child);
    const client = new DaemonClient(sidecar.endpoint, 1000, options.curve);
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void sidecar.exited.then((code) => (exitCode = code));
    try {
      while (Date.now() < deadline) {
        if (exitCode !== undefined) throw new Error(`sidecar exited with code ${String(exitCode)} while starting`);
        const status = await client.request<StatusResult>("status", {}, { timeoutMs: 300 }).catch(() => undefined);
        if (status?.pid === child.pid) return sidecar;
        if (status) throw new Error(`another daemon (pid ${status.pid}) already listens on ${sidecar.endpoint}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`sidecar on ${sidecar.endpoint} did not answer within ${timeoutMs} ms`);
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    } finally {
      await client.close();
    }
  }

  client(timeoutMs = 30_000): DaemonClient {
    return new DaemonClient(this.endpoint, timeoutMs, this.options.curve);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it does not stop in time. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Die without cleaning up, as a crash would. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}
