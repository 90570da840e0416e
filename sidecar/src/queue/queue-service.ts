// The queues this sidecar serves: the database of STEADYTEXT_PG_URL, those
// named in STEADYTEXT_QUEUE_DATABASES, and any database a SQL request comes
// from. Each gets its own DatabaseQueue (listener and worker lanes).

import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import type { Settings } from "../config/settings.js";
import type { Engine } from "../engine/engine.js";
import { unavailable, type QueueStats } from "../protocol/index.js";
import { DatabaseQueue } from "./database-queue.js";

export class QueueService {
  private readonly queues = new Map<string, DatabaseQueue>();
  private readonly connection: pg.ClientConfig;
  private readonly defaultDatabase: string;
  private stopped = false;

  constructor(
    pgUrl: string,
    private readonly settings: Settings,
    private readonly engine: Engine,
  ) {
    this.connection = parseIntoClientConfig(pgUrl);
    this.defaultDatabase = this.connection.database ?? "postgres";
  }

  start(): void {
    for (const database of [this.defaultDatabase, ...this.settings.queue.databases]) this.serve(database);
  }

  /** Serve `database`'s queue from now on (a no-op when it is served already). */
  serve(database: string | undefined): DatabaseQueue | undefined {
    if (this.stopped) return undefined;
    const name = database ?? this.defaultDatabase;
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new DatabaseQueue({
        database: name,
        connection: this.connection,
        engine: this.engine,
        settings: this.settings.queue,
        work: this.settings.queue.worker,
      });
      this.queues.set(name, queue);
      queue.start();
    }
    return queue;
  }

  /** queue_wait: whether the request finished within the timeout. */
  async waitFor(database: string | undefined, requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const queue = this.serve(database);
    if (!queue) throw unavailable("the daemon is stopping");
    try {
      return await queue.waitFor(requestId, timeoutMs, signal);
    } catch (error) {
      throw unavailable(`cannot watch the queue of database ${queue.database}: ${(error as Error).message}`);
    }
  }

  /** Per database served: this worker's lease id and what it did (for status). */
  stats(): Record<string, QueueStats> {
    return Object.fromEntries([...this.queues.values()].map((q) => [q.database, { worker_id: q.workerId, ...q.counts, idle_lanes: q.idleLanes }]));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.queues.values()].map((q) => q.stop()));
  }
}
