// A PostgreSQL cluster of our own: initdb, start, stop, on a private port and
// socket directory. initdb refuses to run as root, so as root every cluster
// command runs as the postgres user.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, chmod, chown, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..", "..");

function pgBinDir(): string {
  const recorded = join(ROOT, ".steadytext", "pg_config");
  const pgConfig = existsSync(recorded) ? readFileSync(recorded, "utf8").trim() : "pg_config";
  return resolve(pgConfig, "..");
}

interface PostgresUser {
  uid: number;
  gid: number;
}

async function postgresUser(): Promise<PostgresUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout } = await run("id", ["-u", "postgres"]);
  const { stdout: gid } = await run("id", ["-g", "postgres"]);
  return { uid: Number(stdout.trim()), gid: Number(gid.trim()) };
}

export interface ClusterOptions {
  /** Data directory; created (and initdb'd) when missing. */
  dataDir: string;
  /** Socket directory. */
  socketDir: string;
  port: number;
  /** Also listen on 127.0.0.1 (the socket is always there). */
  tcp?: boolean;
  /** Throwaway clusters skip fsync; a dev stack keeps its data. */
  durable?: boolean;
}

export class PgCluster {
  private constructor(
    readonly options: ClusterOptions,
    private readonly owner: PostgresUser | undefined,
  ) {}

  get port(): number {
    return this.options.port;
  }
  get socketDir(): string {
    return this.options.socketDir;
  }

  /** Run a PostgreSQL program as the cluster's owner. */
  private async exec(program: string, args: string[]): Promise<string> {
    const binary = join(pgBinDir(), program);
    const [command, argv] = this.owner ? ["runuser", ["-u", "postgres", "--", binary, ...args]] : [binary, args];
    const { stdout } = await run(command, argv, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  /** Create the cluster if it does not exist yet (idempotent). */
  static async create(options: ClusterOptions): Promise<PgCluster> {
    const owner = await postgresUser();
    const cluster = new PgCluster(options, owner);
    for (const dir of [options.dataDir, options.socketDir]) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o700);
      if (owner) await chown(dir, owner.uid, owner.gid);
    }
    if (!existsSync(join(options.dataDir, "PG_VERSION"))) {
      await cluster.exec("initdb", ["-D", options.dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
      const settings = [
        `port = ${options.port}`,
        `listen_addresses = '${options.tcp ? "127.0.0.1" : ""}'`,
        `unix_socket_directories = '${options.socketDir}'`,
        "max_connections = 100",
        ...(options.durable ? [] : ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]),
      ];
      await appendFile(join(options.dataDir, "postgresql.conf"), `\n# pg_steadytext\n${settings.join("\n")}\n`);
    }
    return cluster;
  }

  async isRunning(): Promise<boolean> {
    try {
      await this.exec("pg_ctl", ["-D", this.options.dataDir, "status"]);
      return true;
    } catch {
      return false;
    }
  }

  async start(): Promise<void> {
    if (await this.isRunning()) return;
    await this.exec("pg_ctl", ["-D", this.options.dataDir, "-l", join(this.options.dataDir, "server.log"), "-w", "-t", "60", "start"]);
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!(await this.isRunning())) return;
    await this.exec("pg_ctl", ["-D", this.options.dataDir, "-m", mode, "-w", "stop"]);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** A hot standby of this cluster (pg_basebackup), streaming from it. */
  async createStandby(options: Omit<ClusterOptions, "tcp" | "durable">): Promise<PgCluster> {
    const standby = new PgCluster({ ...options }, this.owner);
    for (const dir of [options.dataDir, options.socketDir]) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o700);
      if (this.owner) await chown(dir, this.owner.uid, this.owner.gid);
    }
    await this.exec("pg_basebackup", ["-D", options.dataDir, "-h", this.options.socketDir, "-p", String(this.options.port), "-U", "postgres", "-R", "--no-sync", "--checkpoint=fast"]);
    await appendFile(
      join(options.dataDir, "postgresql.conf"),
      `
# standby
port = ${options.port}
unix_socket_directories = '${options.socketDir}'
hot_standby = on
`,
    );
    return standby;
  }

  connectionConfig(database = "postgres"): pg.ClientConfig {
    return { host: this.options.socketDir, port: this.options.port, user: "postgres", database };
  }

  /** A URL the sidecar's mirror (pg-connection-string) understands. */
  url(database = "postgres"): string {
    return `postgresql://postgres@/${encodeURIComponent(database)}?host=${encodeURIComponent(this.options.socketDir)}&port=${this.options.port}`;
  }

  async client(database = "postgres"): Promise<pg.Client> {
    const client = new pg.Client(this.connectionConfig(database));
    await client.connect();
    return client;
  }

  /** Run SQL on a short-lived connection. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], database = "postgres"): Promise<R[]> {
    const client = await this.client(database);
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** Create a database with pg_steadytext installed (if it does not exist yet). */
  async createDatabase(name: string): Promise<void> {
    const exists = await this.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.length === 0) await this.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    await this.query("CREATE EXTENSION IF NOT EXISTS pg_steadytext CASCADE", [], name);
  }

  /** Give a directory to the OS user the server runs as (for what the server itself starts). */
  async chownToServer(path: string): Promise<void> {
    if (this.owner) await chown(path, this.owner.uid, this.owner.gid);
  }
}
