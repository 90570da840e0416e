// A throwaway stack for one test file: a PostgreSQL cluster with
// pg_steadytext in database "test", and (optionally) a sidecar on its own port
// with the tiny test models, mirroring into that database.

import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PgCluster } from "../../scripts/lib/pg-cluster.js";
import { freePort, SidecarProcess, type SidecarOptions } from "../../scripts/lib/sidecar-process.js";

export const DATABASE = "test";

export interface TestStackOptions {
  /** Start a sidecar (default true). */
  sidecar?: boolean;
  sidecarEnv?: Record<string, string>;
}

export class TestStack {
  /** The daemon's admin token (STEADYTEXT_ADMIN_TOKEN and steadytext.daemon_admin_token). */
  readonly adminToken = randomBytes(24).toString("hex");
  sidecar: SidecarProcess | undefined;
  private readonly clients: pg.Client[] = [];

  private constructor(
    readonly dir: string,
    readonly cluster: PgCluster,
    readonly daemonPort: number,
  ) {}

  static async start(options: TestStackOptions = {}): Promise<TestStack> {
    const dir = await mkdtemp(join(tmpdir(), "steadytext-test-"));
    await chmod(dir, 0o755);
    const cluster = await PgCluster.create({ dataDir: join(dir, "pg"), socketDir: join(dir, "run"), port: await freePort() });
    await cluster.start();
    await cluster.createDatabase(DATABASE);
    const stack = new TestStack(dir, cluster, await freePort());
    await cluster.query(`ALTER DATABASE ${DATABASE} SET steadytext.daemon_port = ${stack.daemonPort}`);
    // The daemon's admin token, as a superuser configures it: in the server's own settings, readable by nobody else.
    // The daemon's admin token in a file only the server's OS user reads, as a superuser configures it.
    const tokenDir = join(dir, "secrets");
    await mkdir(tokenDir, { mode: 0o700 });
    await writeFile(join(tokenDir, "admin-token"), stack.adminToken, { mode: 0o600 });
    await cluster.chownToServer(tokenDir);
    await cluster.chownToServer(join(tokenDir, "admin-token"));
    await cluster.query(`ALTER DATABASE ${DATABASE} SET steadytext.daemon_admin_token_file = '${join(tokenDir, "admin-token")}'`);
    if (options.sidecar !== false) await stack.startSidecar(options.sidecarEnv);
    return stack;
  }

  sidecarOptions(env: Record<string, string> = {}, port = this.daemonPort): SidecarOptions {
    return {
      port,
      cacheDir: join(this.dir, port === this.daemonPort ? "cache" : `cache-${port}`),
      testModels: true,
      pgUrl: this.cluster.url(DATABASE),
      env: { STEADYTEXT_ADMIN_TOKEN: this.adminToken, ...env },
      stderr: process.env.STEADYTEXT_TEST_DAEMON_LOGS ? "inherit" : "capture",
    };
  }

  async startSidecar(env: Record<string, string> = {}): Promise<SidecarProcess> {
    this.sidecar = await SidecarProcess.start(this.sidecarOptions(env));
    return this.sidecar;
  }

  async stopSidecar(): Promise<void> {
    await this.sidecar?.stop();
    this.sidecar = undefined;
  }

  /** A session on the test database; closed by stop(). */
  async connect(): Promise<pg.Client> {
    const client = await this.cluster.client(DATABASE);
    client.on("error", () => undefined);
    this.clients.push(client);
    return client;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.cluster.query<R>(sql, params, DATABASE);
  }

  /** Wait until the sidecar's mirror has written what it queued (polls the table). */
  async waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    await this.sidecar?.stop();
    await this.cluster.stop("immediate").catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
