// Mirrors results into each database's steadytext_cache table through the
// sidecar's own connections (pg), batched and off the request's critical
// path: a slow or absent database never delays an answer. Failed writes stay
// queued and are retried with backoff for as long as the daemon runs.
// It also publishes which model file each selector means (steadytext_models),
// counts SQL cache hits (access_count), and writes a heartbeat.

import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import {
  admitRequestSql,
  applyHitCountsSql,
  EXTENSION_SCHEMAS_SQL,
  heartbeatSql,
  insertEntriesSql,
  publishModelsSql,
  quoteIdent,
  vectorType,
} from "./mirror-sql.js";
import { logger } from "../util/logger.js";
import type { Heartbeat, MirrorEntry } from "./mirror-types.js";

export type { Heartbeat, MirrorEntry } from "./mirror-types.js";

interface AdmitRow {
  allowed: boolean;
  m: number;
  h: number;
  d: number;
  requests_per_minute: number | null;
  requests_per_hour: number | null;
  requests_per_day: number | null;
}

interface Pending {
  entry: MirrorEntry;
  waiters: Array<{ resolve(): void; reject(error: Error): void }>;
}

interface DatabaseQueue {
  pool: pg.Pool;
  entries: Map<string, Pending>;
  touches: Map<string, number>;
  /** When hit counts were last written (they go out at most once per TOUCH_INTERVAL_MS). */
  touchedAt: number;
  models: Map<string, { sha256: string; name: string }>;
  /** What was last published per selector, and when: republished only on change or after a while. */
  published: Map<string, { sha256: string; at: number }>;
  /** Where pg_steadytext and pgvector live in that database; null when pg_steadytext is not installed. */
  schemas: { ours: string; vector: string } | null | undefined;
  failures: number;
  retryAt: number;
  flushing: Promise<void> | undefined;
  /** A rate-limit check that outlived its deadline and still runs: later checks are skipped until it ends. */
  stuckCheck: Promise<unknown> | undefined;
}

const FLUSH_INTERVAL_MS = 50;
/** How often hits kept in shared memory by preloaded backends are taken (and how long to wait after a refusal). */
const TAKE_HITS_INTERVAL_MS = 1000;
const TAKE_HITS_REFUSED_RETRY_MS = 60_000;
/** Longest a model request waits for its rate-limit check before going ahead unchecked. */
const RATE_LIMIT_CHECK_MS = 1000;
// Every write of a hit count is a new row version with new index entries (access_count and
// last_accessed are indexed), and the SQL fast path then reads past the dead ones: a statement
// serving thousands of hits should cost one update per row, not one per 50 ms.
const TOUCH_INTERVAL_MS = 1000;
const MAX_QUEUED_ENTRIES = 100_000;
const HEARTBEAT_INTERVAL_MS = 10_000;
const REPUBLISH_AFTER_MS = 60_000;

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
  /** When hits were last taken from shared memory (or when to try again after a refusal). */
  private hitsDueAt = 0;
  private takingHits: Promise<void> | undefined;

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
      // A connection lost mid-transaction fails that flush (retried); without a listener it would end the process.
      pool.on("connect", (client) => client.on("error", (error) => logger().debug({ database: name, error: error.message }, "mirror connection lost")));
      queue = { pool, entries: new Map(), touches: new Map(), touchedAt: 0, models: new Map(), published: new Map(), schemas: undefined, failures: 0, retryAt: 0, flushing: undefined, stuckCheck: undefined };
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
  touch(database: string | undefined, keys: readonly string[], times = 1): void {
    const queue = this.queue(database);
    for (const key of keys) queue.touches.set(key, (queue.touches.get(key) ?? 0) + times);
  }

  /**
   * Take the hits that backends of a preloaded pg_steadytext keep in shared
   * memory (one call returns every database's), from the first database
   * with the extension, and count them like hits sent over the socket.
   */
  private async takeHits(): Promise<void> {
    const queues = [this.queue(undefined), ...this.databases.values()];
    for (const queue of new Set(queues)) {
      let client: pg.PoolClient | undefined;
      try {
        client = await queue.pool.connect();
        const schemas = await this.schemasOf(queue, client);
        if (!schemas) continue;
        const { rows } = await client.query<{ database: string; cache_key: string; hits: number }>(
          `SELECT database, cache_key, hits FROM ${schemas.ours}._steadytext_take_hits()`,
        );
        for (const row of rows) this.touch(row.database, [row.cache_key], row.hits);
        return;
      } catch (error) {
        const sqlstate = (error as { code?: string }).code ?? "";
        // An older extension without the function, or a role that may not take them: ask again much later.
        if (sqlstate === "42883" || sqlstate === "42501") {
          this.hitsDueAt = Date.now() + TAKE_HITS_REFUSED_RETRY_MS;
          logger().warn({ error: (error as Error).message }, "cannot take the hits preloaded backends keep; grant steadytext_admin to the daemon's role");
        }
        return;
      } finally {
        client?.release();
      }
    }
  }

  /** Tell SQL which model file a selector means, so it can compute cache keys without the daemon. */
  publishModel(database: string | undefined, selector: string, sha256: string, name: string): void {
    const queue = this.queue(database);
    const last = queue.published.get(selector);
    // Republishing now and then repairs a table that was emptied (say, the extension re-created).
    if (last && last.sha256 === sha256 && Date.now() - last.at < REPUBLISH_AFTER_MS) return;
    queue.published.set(selector, { sha256, at: Date.now() });
    queue.models.set(selector, { sha256, name });
  }

  private async flushAll(): Promise<void> {
    if (!this.takingHits && Date.now() >= this.hitsDueAt) {
      this.hitsDueAt = Date.now() + TAKE_HITS_INTERVAL_MS;
      this.takingHits = this.takeHits().finally(() => (this.takingHits = undefined));
    }
    await Promise.all([...this.databases.values()].map((q) => this.flush(q)));
  }

  private flush(queue: DatabaseQueue): Promise<void> {
    if (queue.flushing) return queue.flushing;
    if (queue.entries.size === 0 && !this.touchesDue(queue) && queue.models.size === 0) return Promise.resolve();
    if (Date.now() < queue.retryAt) return Promise.resolve();
    queue.flushing = this.flushOnce(queue).finally(() => {
      queue.flushing = undefined;
    });
    return queue.flushing;
  }

  private touchesDue(queue: DatabaseQueue): boolean {
    return queue.touches.size > 0 && Date.now() - queue.touchedAt >= TOUCH_INTERVAL_MS;
  }

  private async schemasOf(queue: DatabaseQueue, client: pg.PoolClient): Promise<{ ours: string; vector: string } | null> {
    if (queue.schemas !== undefined) return queue.schemas;
    const result = await client.query<{ extname: string; nspname: string }>(EXTENSION_SCHEMAS_SQL);
    const find = (name: string) => result.rows.find((r) => r.extname === name)?.nspname;
    const ours = find("pg_steadytext");
    const vector = find("vector");
    queue.schemas = ours && vector ? { ours: quoteIdent(ours), vector: quoteIdent(vector) } : null;
    return queue.schemas;
  }

  private async flushOnce(queue: DatabaseQueue): Promise<void> {
    const entries = [...queue.entries.values()].slice(0, 500);
    const touches = this.touchesDue(queue) ? [...queue.touches.entries()] : [];
    const models = [...queue.models.entries()];
    if (touches.length > 0) {
      queue.touches.clear();
      queue.touchedAt = Date.now();
    }
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
      for (const statement of publishModelsSql(s, models)) await client.query(statement);
      for (const statement of insertEntriesSql(s, vectorType(schemas.vector), entries.map((p) => p.entry))) {
        await client.query(statement);
      }
      for (const statement of applyHitCountsSql(s, touches)) await client.query(statement);
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

  /**
   * Apply a user's steadytext_rate_limits to a request that needs a model:
   * the reason it is refused, or undefined when it may go ahead (also when
   * the user has no limits, or the database cannot be asked: limits never
   * make the daemon unavailable).
   */
  async admit(database: string | undefined, user: string): Promise<string | undefined> {
    const queue = this.queue(database);
    // A slow or stuck database must not slow every model request: after RATE_LIMIT_CHECK_MS the request
    // goes ahead, and until that check ends the next ones are not checked at all.
    if (queue.stuckCheck) return undefined;
    const check = this.checkRateLimit(queue, database, user);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), RATE_LIMIT_CHECK_MS)));
    try {
      const outcome = await Promise.race([check, deadline]);
      if (outcome !== "late") return outcome;
      logger().warn({ database, user, waitedMs: RATE_LIMIT_CHECK_MS }, "rate limits could not be checked in time; requests go ahead until the database answers");
      queue.stuckCheck = check.finally(() => (queue.stuckCheck = undefined));
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkRateLimit(queue: DatabaseQueue, database: string | undefined, user: string): Promise<string | undefined> {
    let client: pg.PoolClient | undefined;
    try {
      client = await queue.pool.connect();
      const schemas = await this.schemasOf(queue, client);
      if (!schemas) return undefined;
      // One round trip rather than four (this is on every model request's path): the statements go as
      // one simple-protocol message, so the user travels as a quoted literal instead of a parameter.
      // An administrator editing the row in an open transaction must not hold requests for long.
      const admit = admitRequestSql(schemas.ours, user);
      const literal = client.escapeLiteral(user);
      const script = `BEGIN; SET LOCAL lock_timeout = '2s'; ${admit.text.replace(/\$1\b/g, () => literal)}; COMMIT`;
      const results = (await client.query(script)) as unknown as Array<pg.QueryResult<AdmitRow>>;
      const row = results[2]?.rows[0];
      if (!row || row.allowed) return undefined;
      const over: Array<[number, number | null, string]> = [
        [row.m, row.requests_per_minute, "minute"],
        [row.h, row.requests_per_hour, "hour"],
        [row.d, row.requests_per_day, "day"],
      ];
      const [, limit, per] = over.find(([count, max]) => max !== null && count >= max) ?? over[0]!;
      return `Rate limit exceeded for user "${user}": ${limit} requests per ${per}`;
    } catch (error) {
      await client?.query("ROLLBACK").catch(() => undefined);
      queue.schemas = undefined;
      logger().warn({ database, user, error: error instanceof Error ? error.message : String(error) }, "rate limits could not be checked; the request goes ahead");
      return undefined;
    } finally {
      client?.release();
    }
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
          await client.query(heartbeatSql(schemas.ours, h));
        } catch (error) {
          queue.schemas = undefined;
          logger().debug({ error: error instanceof Error ? error.message : String(error) }, "heartbeat failed");
        } finally {
          client?.release();
        }
      }),
    );
  }

  /** Per database: entries still waiting to be written, and failed attempts in a row. */
  backlog(): Record<string, { queued: number; failures: number }> {
    return Object.fromEntries([...this.databases.entries()].map(([name, q]) => [name, { queued: q.entries.size, failures: q.failures }]));
  }

  /** Write what is queued (best effort, bounded by `timeoutMs`), then close the pools. */
  async close(timeoutMs = 3000): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.heartbeatTimer);
    const deadline = Date.now() + timeoutMs;
    for (const queue of this.databases.values()) {
      queue.retryAt = 0;
      queue.touchedAt = 0; // hit counts still waiting for their interval go out now
      while ((queue.entries.size > 0 || queue.touches.size > 0) && Date.now() < deadline) {
        await this.flush(queue);
        if (queue.failures > 0) await new Promise((r) => setTimeout(r, 200));
      }
    }
    await Promise.all([...this.databases.values()].map((q) => q.pool.end().catch(() => undefined)));
  }
}
