// Mirrors results into each database's steadytext_cache table through the
// sidecar's own connections (pg), batched and off the request's critical
// path: a slow or absent database never delays an answer. Failed writes stay
// queued and are retried with backoff for as long as the daemon runs.
// It also publishes which model file each selector means (steadytext_models),
// counts SQL cache hits (access_count), and writes a heartbeat.

import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import type { CacheKind } from "./key.js";
import { logger } from "../util/logger.js";

export interface MirrorEntry {
  key: string;
  kind: CacheKind;
  prompt: string;
  response?: string | undefined;
  embedding?: readonly number[] | undefined;
  score?: number | undefined;
  modelName: string;
  modelSha256: string;
  seed: number;
  eosString?: string | undefined;
  params: Record<string, unknown>;
  generationTimeMs: number;
}

export interface Heartbeat {
  daemonId: string;
  endpoint: string;
  version: string;
  startedAt: Date;
  models: string[];
  totalRequests: number;
}

interface Pending {
  entry: MirrorEntry;
  waiters: Array<{ resolve(): void; reject(error: Error): void }>;
}

interface DatabaseQueue {
  pool: pg.Pool;
  entries: Map<string, Pending>;
  touches: Map<string, number>;
  models: Map<string, { sha256: string; name: string }>;
  /** Where pg_steadytext and pgvector live in that database; null when pg_steadytext is not installed. */
  schemas: { ours: string; vector: string } | null | undefined;
  failures: number;
  retryAt: number;
  flushing: Promise<void> | undefined;
}

const FLUSH_INTERVAL_MS = 50;
const MAX_QUEUED_ENTRIES = 100_000;
const HEARTBEAT_INTERVAL_MS = 10_000;

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

const containsNul = (entry: MirrorEntry): boolean =>
  [entry.prompt, entry.response ?? "", entry.eosString ?? ""].some((t) => t.includes("\u0000")) ||
  JSON.stringify(entry.params).includes("\\u0000");

export class PgMirror {
  private readonly databases = new Map<string, DatabaseQueue>();
  private readonly base: pg.ClientConfig;
  private readonly defaultDatabase: string;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(url: string, private readonly heartbeat?: () => Heartbeat) {
    this.base = parseIntoClientConfig(url);
    this.defaultDatabase = this.base.database ?? "postgres";
    this.timer = setInterval(() => void this.flushAll(), FLUSH_INTERVAL_MS);
    this.timer.unref();
    if (heartbeat) {
      this.heartbeatTimer = setInterval(() => void this.beat(), HEARTBEAT_INTERVAL_MS);
      this.heartbeatTimer.unref();
    }
  }

  private queue(database: string | undefined): DatabaseQueue {
    const name = database ?? this.defaultDatabase;
    let queue = this.databases.get(name);
    if (!queue) {
      const pool = new pg.Pool({ ...this.base, database: name, max: 2, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000, application_name: "steadytext-sidecar" });
      pool.on("error", (error) => logger().warn({ database: name, error: error.message }, "mirror connection error"));
      queue = { pool, entries: new Map(), touches: new Map(), models: new Map(), schemas: undefined, failures: 0, retryAt: 0, flushing: undefined };
      this.databases.set(name, queue);
    }
    return queue;
  }

  /** Queue a result; with `wait`, resolves once it is committed (rejects if that write fails). */
  write(database: string | undefined, entry: MirrorEntry, wait = false): Promise<void> {
    if (containsNul(entry)) {
      // Postgres text cannot hold NUL, so no SQL caller can ask for this entry.
      return wait ? Promise.reject(new Error("text containing NUL cannot be stored in Postgres")) : Promise.resolve();
    }
    const queue = this.queue(database);
    let pending = queue.entries.get(entry.key);
    if (!pending) {
      if (queue.entries.size >= MAX_QUEUED_ENTRIES) {
        const oldest = queue.entries.keys().next().value as string;
        queue.entries.get(oldest)?.waiters.forEach((w) => w.reject(new Error("mirror queue overflow")));
        queue.entries.delete(oldest);
        logger().warn({ database }, "mirror queue is full; dropped the oldest entry");
      }
      pending = { entry, waiters: [] };
      queue.entries.set(entry.key, pending);
    }
    if (!wait) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => pending.waiters.push({ resolve, reject }));
    queue.retryAt = 0;
    void this.flush(queue);
    return promise;
  }

  /** Count cache hits that SQL served from the table. */
  touch(database: string | undefined, keys: readonly string[]): void {
    const queue = this.queue(database);
    for (const key of keys) queue.touches.set(key, (queue.touches.get(key) ?? 0) + 1);
  }

  /** Tell SQL which model file a selector means, so it can compute cache keys without the daemon. */
  publishModel(database: string | undefined, selector: string, sha256: string, name: string): void {
    const queue = this.queue(database);
    queue.models.set(selector, { sha256, name });
  }

  private async flushAll(): Promise<void> {
    await Promise.all([...this.databases.values()].map((q) => this.flush(q)));
  }

  private flush(queue: DatabaseQueue): Promise<void> {
    if (queue.flushing) return queue.flushing;
    if (queue.entries.size === 0 && queue.touches.size === 0 && queue.models.size === 0) return Promise.resolve();
    if (Date.now() < queue.retryAt) return Promise.resolve();
    queue.flushing = this.flushOnce(queue).finally(() => {
      queue.flushing = undefined;
    });
    return queue.flushing;
  }

  private async schemasOf(queue: DatabaseQueue, client: pg.PoolClient): Promise<{ ours: string; vector: string } | null> {
    if (queue.schemas !== undefined) return queue.schemas;
    const result = await client.query<{ extname: string; nspname: string }>(
      `SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
       WHERE e.extname IN ('pg_steadytext', 'vector')`,
    );
    const find = (name: string) => result.rows.find((r) => r.extname === name)?.nspname;
    const ours = find("pg_steadytext");
    const vector = find("vector");
    queue.schemas = ours && vector ? { ours: quoteIdent(ours), vector: quoteIdent(vector) } : null;
    return queue.schemas;
  }

  private async flushOnce(queue: DatabaseQueue): Promise<void> {
    const entries = [...queue.entries.values()].slice(0, 500);
    const touches = [...queue.touches.entries()];
    const models = [...queue.models.entries()];
    queue.touches.clear();
    queue.models.clear();
    let client: pg.PoolClient | undefined;
    try {
      client = await queue.pool.connect();
      const schemas = await this.schemasOf(queue, client);
      if (schemas === null) {
        // The extension is not installed there: nothing to mirror into (yet).
        entries.forEach((p) => queue.entries.delete(p.entry.key));
        entries.forEach((p) => p.waiters.forEach((w) => w.reject(new Error("pg_steadytext is not installed in that database"))));
        queue.schemas = undefined;
        return;
      }
      const s = schemas.ours;
      await client.query("BEGIN");
      if (models.length > 0) {
        await client.query(
          `INSERT INTO ${s}.steadytext_models (selector, model_sha256, model_name, updated_at)
           SELECT * , now() FROM unnest($1::text[], $2::text[], $3::text[])
           ON CONFLICT (selector) DO UPDATE SET model_sha256 = excluded.model_sha256, model_name = excluded.model_name, updated_at = now()`,
          [models.map(([k]) => k), models.map(([, v]) => v.sha256), models.map(([, v]) => v.name)],
        );
      }
      if (entries.length > 0) {
        const e = entries.map((p) => p.entry);
        await client.query(
          `INSERT INTO ${s}.steadytext_cache (cache_key, kind, prompt, response, embedding, score, model_name, model_sha256,
                                             seed, eos_string, generation_params, response_size, generation_time_ms)
           SELECT k, kind, prompt, response, embedding::${schemas.vector}.vector(1024), score, model_name, model_sha256, seed, eos, params::jsonb,
                  coalesce(octet_length(response), 0) + coalesce(4 * 1024 * (embedding IS NOT NULL)::int, 0), ms
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[], $8::text[],
                       $9::int[], $10::text[], $11::text[], $12::int[])
                AS t(k, kind, prompt, response, embedding, score, model_name, model_sha256, seed, eos, params, ms)
           ON CONFLICT (cache_key) DO NOTHING`,
          [
            e.map((x) => x.key),
            e.map((x) => x.kind),
            e.map((x) => x.prompt),
            e.map((x) => x.response ?? null),
            e.map((x) => (x.embedding ? `[${x.embedding.join(",")}]` : null)),
            e.map((x) => x.score ?? null),
            e.map((x) => x.modelName),
            e.map((x) => x.modelSha256),
            e.map((x) => x.seed),
            e.map((x) => x.eosString ?? null),
            e.map((x) => JSON.stringify(x.params)),
            e.map((x) => Math.round(x.generationTimeMs)),
          ],
        );
      }
      if (touches.length > 0) {
        await client.query(
          `UPDATE ${s}.steadytext_cache c SET access_count = c.access_count + t.n, last_accessed = now()
           FROM unnest($1::text[], $2::int[]) AS t(k, n) WHERE c.cache_key = t.k`,
          [touches.map(([k]) => k), touches.map(([, n]) => n)],
        );
      }
      await client.query("COMMIT");
      queue.failures = 0;
      for (const p of entries) {
        if (queue.entries.get(p.entry.key) === p) queue.entries.delete(p.entry.key);
        p.waiters.forEach((w) => w.resolve());
      }
    } catch (error) {
      await client?.query("ROLLBACK").catch(() => undefined);
      queue.schemas = undefined;
      const sqlstate = (error as { code?: string }).code ?? "";
      if (sqlstate.startsWith("22") || sqlstate.startsWith("23")) {
        // Data the table rejects would block every later write: drop this batch, loudly.
        for (const p of entries) {
          queue.entries.delete(p.entry.key);
          p.waiters.forEach((w) => w.reject(new Error(`mirror rejected the entry: ${(error as Error).message}`)));
        }
        logger().error({ sqlstate, dropped: entries.length, error: (error as Error).message }, "mirror dropped entries the database rejected");
        return;
      }
      // Put back what was taken; entries never left the queue.
      for (const [k, n] of touches) queue.touches.set(k, (queue.touches.get(k) ?? 0) + n);
      for (const [k, v] of models) if (!queue.models.has(k)) queue.models.set(k, v);
      queue.failures++;
      queue.retryAt = Date.now() + Math.min(5000, 100 * 2 ** Math.min(queue.failures, 6));
      const message = error instanceof Error ? error.message : String(error);
      for (const p of entries) {
        p.waiters.forEach((w) => w.reject(new Error(`mirror write failed: ${message}`)));
        p.waiters = [];
      }
      if (queue.failures === 1 || queue.failures % 50 === 0) {
        logger().warn({ failures: queue.failures, queued: queue.entries.size, error: message }, "mirror write failed; will retry");
      }
    } finally {
      client?.release();
    }
    if (!this.closed && queue.entries.size > 0 && queue.failures === 0) void this.flush(queue);
  }

  /** Write the heartbeat row now (the daemon calls this once it is listening; a timer does the rest). */
  async beat(): Promise<void> {
    if (!this.heartbeat) return;
    const h = this.heartbeat();
    const targets = this.databases.size > 0 ? [...this.databases.values()] : [this.queue(undefined)];
    await Promise.all(
      targets.map(async (queue) => {
        let client: pg.PoolClient | undefined;
        try {
          client = await queue.pool.connect();
          const schemas = await this.schemasOf(queue, client);
          if (!schemas) return;
          await client.query(
            `INSERT INTO ${schemas.ours}.steadytext_daemon_health
               (daemon_id, endpoint, last_heartbeat, uptime_seconds, status, version, models_loaded, total_requests)
             VALUES ($1, $2, now(), $3, 'healthy', $4, $5, $6)
             ON CONFLICT (daemon_id) DO UPDATE SET endpoint = excluded.endpoint, last_heartbeat = now(),
               uptime_seconds = excluded.uptime_seconds, status = 'healthy', version = excluded.version,
               models_loaded = excluded.models_loaded, total_requests = excluded.total_requests`,
            [h.daemonId, h.endpoint, Math.round((Date.now() - h.startedAt.getTime()) / 1000), h.version, h.models, h.totalRequests],
          );
        } catch (error) {
          queue.schemas = undefined;
          logger().debug({ error: error instanceof Error ? error.message : String(error) }, "heartbeat failed");
        } finally {
          client?.release();
        }
      }),
    );
  }

  /** Entries still waiting to be written, per database. */
  backlog(): Record<string, number> {
    return Object.fromEntries([...this.databases.entries()].map(([name, q]) => [name, q.entries.size]));
  }

  /** Write what is queued (best effort, bounded by `timeoutMs`), then close the pools. */
  async close(timeoutMs = 3000): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.heartbeatTimer);
    const deadline = Date.now() + timeoutMs;
    for (const queue of this.databases.values()) {
      queue.retryAt = 0;
      while (queue.entries.size > 0 && Date.now() < deadline) {
        await this.flush(queue);
        if (queue.failures > 0) await new Promise((r) => setTimeout(r, 200));
      }
    }
    await Promise.all([...this.databases.values()].map((q) => q.pool.end().catch(() => undefined)));
  }
}
