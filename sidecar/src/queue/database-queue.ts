// One database's queue, as this sidecar serves it: a connection that
// LISTENs (new work wakes the lanes; finished requests wake queue_wait
// callers), and a few lanes that each claim a batch in a short transaction,
// work it with no transaction open, and store the outcome in another. Idle
// lanes wait for a notification, or a timer set to the next retry or lease
// expiry, with a slow safety poll behind both: no busy polling.

import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import pg from "pg";
import type { QueueSettings } from "../config/settings.js";
import type { Engine } from "../engine/engine.js";
import { EXTENSION_SCHEMAS_SQL, quoteIdent } from "../cache/mirror-sql.js";
import { unavailable } from "../protocol/index.js";
import { logger } from "../util/logger.js";
import { claimedItem, DONE_CHANNEL, failedRow, queueStatements, WORK_CHANNEL, type ClaimedItem, type QueueStatements } from "./queue-sql.js";
import { workItems, type Outcome } from "./work-items.js";

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
const FINISH_ATTEMPTS = 5;

/** A wait that ends early when `signal` aborts; its timer never keeps the process alive. */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export interface DatabaseQueueOptions {
  database: string;
  connection: pg.ClientConfig;
  engine: Engine;
  settings: QueueSettings;
  /** Claim and work items (otherwise only listen, for queue_wait). */
  work: boolean;
}

export class DatabaseQueue {
  /** Who holds a lease: readable in steadytext_queue.locked_by. */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly pool: pg.Pool;
  private listener: pg.Client | undefined;
  private statements: QueueStatements | undefined;
  private readonly stopping = new AbortController();
  /** Bumped by every notification of new work, so a lane never sleeps through one that came while it claimed. */
  private wakeups = 0;
  private idleWaiters = new Set<() => void>();
  private readonly doneWaiters = new Map<string, Set<() => void>>();
  private listening: Promise<void> | undefined;
  private lanes: Promise<void>[] = [];
  /** Items this worker claimed, stored as done, and failed for good (for status). */
  readonly counts = { claimed: 0, completed: 0, failed: 0 };
  private failures = 0;
  private readonly log;

  constructor(private readonly options: DatabaseQueueOptions) {
    this.log = logger().child({ database: options.database, component: "queue" });
    this.pool = new pg.Pool({
      ...options.connection,
      database: options.database,
      max: options.settings.concurrency + 1,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
      application_name: "steadytext-queue",
    });
    this.pool.on("error", (error) => this.log.debug({ error: error.message }, "queue connection error"));
    // A connection lost mid-query (the server restarting) fails that query; without a listener it would end the process.
    this.pool.on("connect", (client) => client.on("error", (error) => this.log.debug({ error: error.message }, "queue connection lost")));
  }

  get database(): string {
    return this.options.database;
  }

  get idleLanes(): number {
    return this.idleWaiters.size;
  }

  start(): void {
    void this.ensureListening().catch(() => undefined);
    if (!this.options.work) return;
    for (let lane = 0; lane < this.options.settings.concurrency; lane++) this.lanes.push(this.runLane());
  }

  /** The LISTEN connection, (re)established on demand; rejects while the database cannot be reached. */
  ensureListening(): Promise<void> {
    if (this.stopping.signal.aborted) return Promise.reject(unavailable("the queue worker is stopping"));
    this.listening ??= this.listen().catch((error: unknown) => {
      this.listening = undefined;
      throw error;
    });
    return this.listening;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ ...this.options.connection, database: this.options.database, application_name: "steadytext-queue-listener" });
    client.on("error", (error) => this.log.debug({ error: error.message }, "listener error"));
    await client.connect();
    try {
      const schemas = await client.query<{ extname: string; nspname: string }>(EXTENSION_SCHEMAS_SQL);
      const ours = schemas.rows.find((r) => r.extname === "pg_steadytext");
      if (!ours) throw unavailable(`pg_steadytext is not installed in database ${this.options.database}`);
      this.statements = queueStatements(quoteIdent(ours.nspname));
      client.on("notification", (message) => this.onNotification(message.channel, message.payload ?? ""));
      await client.query(`LISTEN ${WORK_CHANNEL}`);
      await client.query(`LISTEN ${DONE_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    client.on("end", () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.listening = undefined;
      if (!this.stopping.signal.aborted) void this.reconnect();
    });
    this.listener = client;
    this.failures = 0;
    // Whatever was notified while we were not listening: lanes and waiters look now.
    this.wakeLanes();
    this.wakeWaiters();
  }

  private async reconnect(): Promise<void> {
    for (let delay = RECONNECT_MIN_MS; !this.stopping.signal.aborted; delay = Math.min(delay * 2, RECONNECT_MAX_MS)) {
      try {
        await this.ensureListening();
        this.log.info("listening again");
        return;
      } catch (error) {
        this.noteFailure(error, "cannot listen for queue notifications");
        await sleep(delay, this.stopping.signal);
      }
    }
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === WORK_CHANNEL) {
      this.wakeLanes();
      return;
    }
    const waiters = this.doneWaiters.get(payload);
    if (waiters) for (const wake of waiters) wake();
  }

  private wakeLanes(): void {
    this.wakeups++;
    const waiters = this.idleWaiters;
    this.idleWaiters = new Set();
    for (const wake of waiters) wake();
  }

  /** Every queue_wait caller looks again (after a reconnect, a notification may have been missed). */
  private wakeWaiters(): void {
    for (const set of this.doneWaiters.values()) for (const wake of set) wake();
  }

  /** Log the first failure of a streak and every 50th, not each retry. */
  private noteFailure(error: unknown, what: string): void {
    this.failures++;
    if (this.failures === 1 || this.failures % 50 === 0) {
      this.log.warn({ failures: this.failures, error: error instanceof Error ? error.message : String(error) }, what);
    }
  }

  private async query<R extends pg.QueryResultRow>(text: (s: QueueStatements) => string, values: unknown[]): Promise<R[]> {
    await this.ensureListening();
    return (await this.pool.query<R>(text(this.statements!), values)).rows;
  }

  private async runLane(): Promise<void> {
    const signal = this.stopping.signal;
    let backoff = RECONNECT_MIN_MS;
    while (!signal.aborted) {
      const seen = this.wakeups;
      let items: ClaimedItem[];
      try {
        const rows = await this.query((s) => s.claim, [this.workerId, this.options.settings.batchSize, this.options.settings.leaseSeconds]);
        items = rows.map((row) => claimedItem.parse(row));
        this.counts.claimed += items.length;
        backoff = RECONNECT_MIN_MS;
        this.failures = 0;
      } catch (error) {
        this.noteFailure(error, "cannot claim queue items; will retry");
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
        continue;
      }
      if (items.length === 0) {
        if (seen === this.wakeups) await this.idle();
        continue;
      }
      await this.work(items);
    }
  }

  /** Sleep until a notification, the next retry or lease expiry, or the safety poll. */
  private async idle(): Promise<void> {
    let waitMs = this.options.settings.safetyPollSeconds * 1000;
    try {
      const [row] = await this.query<{ at: Date | null }>((s) => s.nextWake, []);
      if (row?.at) waitMs = Math.max(10, Math.min(waitMs, row.at.getTime() - Date.now() + 10));
    } catch {
      waitMs = RECONNECT_MAX_MS;
    }
    if (this.stopping.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      timer.unref();
      this.idleWaiters.add(done);
    });
  }

  private async work(items: ClaimedItem[]): Promise<void> {
    const ids = items.map((i) => i.id);
    const leaseMs = this.options.settings.leaseSeconds * 1000;
    const renewal = setInterval(() => {
      void this.query((s) => s.renew, [this.workerId, ids, this.options.settings.leaseSeconds]).catch((error: unknown) =>
        this.noteFailure(error, "cannot renew leases"),
      );
    }, Math.max(1000, leaseMs / 3));
    try {
      const started = performance.now();
      const outcomes = await workItems(this.options.engine, items, { database: this.options.database, signal: this.stopping.signal });
      if (!this.stopping.signal.aborted) {
        await this.store(outcomes, Math.round(performance.now() - started));
        return;
      }
      // Stopping: keep what was finished; give the rest back without counting an attempt.
      const finished = outcomes.filter((o) => o.ok);
      await this.store(finished, Math.round(performance.now() - started));
      const unfinished = outcomes.filter((o) => !o.ok).map((o) => o.id);
      if (unfinished.length > 0) await this.query((s) => s.release, [this.workerId, unfinished]).catch(() => undefined);
    } finally {
      clearInterval(renewal);
    }
  }

  /** Write outcomes, retrying while the database is away; if it stays away, the leases expire and the work is redone. */
  private async store(outcomes: readonly Outcome[], elapsedMs: number): Promise<void> {
    const done = outcomes.filter((o) => o.ok);
    const failed = outcomes.filter((o) => !o.ok);
    for (let attempt = 1; ; attempt++) {
      try {
        if (done.length > 0) {
          await this.query((s) => s.finish, [
            this.workerId,
            done.map((o) => o.id),
            done.map((o) => o.result),
            done.map((o) => o.embedding),
            elapsedMs,
          ]);
          this.counts.completed += done.length;
        }
        if (failed.length > 0) {
          const rows = await this.query((s) => s.fail, [
            this.workerId,
            failed.map((o) => o.id),
            failed.map((o) => o.error),
            failed.map((o) => o.permanent),
          ]);
          for (const row of rows.map((r) => failedRow.parse(r)).filter((r) => r.final)) {
            this.counts.failed++;
            this.log.warn({ id: row.id, error: failed.find((o) => o.id === row.id)?.error }, "queue item failed for good");
          }
        }
        return;
      } catch (error) {
        this.noteFailure(error, "cannot store queue results; will retry");
        if (attempt >= FINISH_ATTEMPTS || (this.stopping.signal.aborted && attempt >= 2)) return;
        await sleep(Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 4 ** attempt));
      }
    }
  }

  /**
   * Resolve once request `requestId` has finished (true), or after
   * `timeoutMs` (false). The waiter is registered before the status is
   * read, so a completion in between is not missed.
   */
  async waitFor(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    await this.ensureListening();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const notified = this.nextDone(requestId);
      try {
        const [row] = await this.query<{ finished: boolean }>((s) => s.finished, [requestId]);
        if (row?.finished) return true;
        const remaining = deadline - Date.now();
        if (remaining <= 0 || signal?.aborted) return false;
        const woke = await Promise.race([notified.promise.then(() => true), sleep(remaining, signal).then(() => false)]);
        if (!woke) return false;
      } finally {
        notified.cancel();
      }
    }
  }

  /** A one-shot wake-up for the next notification about `requestId`. */
  private nextDone(requestId: string): { promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    const set = this.doneWaiters.get(requestId) ?? new Set<() => void>();
    this.doneWaiters.set(requestId, set);
    set.add(wake);
    return {
      promise,
      cancel: () => {
        set.delete(wake);
        if (set.size === 0 && this.doneWaiters.get(requestId) === set) this.doneWaiters.delete(requestId);
      },
    };
  }

  /** Stop claiming, abort running work and give its leases back. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeLanes();
    this.wakeWaiters();
    await Promise.all(this.lanes);
    await this.listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
