// The sidecar's own result cache: one SQLite file (better-sqlite3, WAL, safe
// for several sidecar processes), three separate caches with their own
// limits, evicted by frecency: an entry's access count decayed by the time
// since its last access, so both often-used and recently-used answers stay.
// A corrupt or unreadable file is moved aside and rebuilt, never fatal.
// The request path only reads and inserts: access statistics, hit counters
// and eviction are written by maintain(), once a second, in one
// transaction, so a hit never waits for another process's write lock and an
// insert never counts the table.

import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { CacheLimits } from "../config/settings.js";
import { logger } from "../util/logger.js";

export type CacheName = "generation" | "embedding" | "reranking";
export const CACHE_NAMES: readonly CacheName[] = ["generation", "embedding", "reranking"];

/** After this long without access, an entry counts half as much as its access count. */
const FRECENCY_HALF_LIFE_MS = 24 * 3600 * 1000;
/** How long a write waits for another process's write lock; the event loop stalls meanwhile, so keep it short. */
const BUSY_TIMEOUT_MS = 250;
/** Eviction reads this many of the coldest entries at a time. */
const EVICTION_PAGE = 256;

export interface CacheStats {
  cache: CacheName;
  entries: number;
  sizeBytes: number;
  capacity: number;
  maxSizeMb: number;
  hits: number;
  misses: number;
}

export interface LocalCacheOptions {
  path: string;
  limits: Record<CacheName, CacheLimits>;
  ttlSeconds?: number | undefined;
  now?: () => number;
}

type Statements = ReturnType<typeof prepare>;

function prepare(db: Database.Database, table: string) {
  return {
    get: db.prepare<[string], { value: Buffer; created_at: number }>(`SELECT value, created_at FROM ${table} WHERE key = ?`),
    touch: db.prepare<[number, number, string]>(`UPDATE ${table} SET frequency = frequency + ?, last_access = max(last_access, ?) WHERE key = ?`),
    put: db.prepare<[string, Buffer, number, number, number]>(
      `INSERT INTO ${table} (key, value, size, frequency, last_access, created_at) VALUES (?, ?, ?, 1, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, size = excluded.size, last_access = excluded.last_access`,
    ),
    remove: db.prepare<[string]>(`DELETE FROM ${table} WHERE key = ?`),
    removeOlder: db.prepare<[string, number]>(`DELETE FROM ${table} WHERE key = ? AND created_at < ?`),
    totals: db.prepare<[], { entries: number; size: number | null }>(`SELECT count(*) AS entries, sum(size) AS size FROM ${table}`),
    coldest: db.prepare<[number, number, number], { key: string; size: number }>(
      `SELECT key, size FROM ${table}
       ORDER BY frequency * 1.0 / (1.0 + (? - last_access) * 1.0 / ?) ASC, last_access ASC LIMIT ?`,
    ),
    clear: db.prepare(`DELETE FROM ${table}`),
    all: db.prepare<[], { key: string; value: Buffer }>(`SELECT key, value FROM ${table} ORDER BY key`),
  };
}

const SCHEMA = CACHE_NAMES.map(
  (name) => `CREATE TABLE IF NOT EXISTS ${name}_cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    frequency INTEGER NOT NULL,
    last_access INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;`,
).join("\n") + `
  CREATE TABLE IF NOT EXISTS counters (
    cache TEXT PRIMARY KEY,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS model_identities (
    selector TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;`;

export class LocalCache {
  private db!: Database.Database;
  private statements!: Record<CacheName, Statements>;
  private identityGet!: Database.Statement<[string], { sha256: string; name: string }>;
  private identityPut!: Database.Statement<[string, string, string, number]>;
  private countersAdd!: Database.Statement<[string, number, number]>;
  private countersGet!: Database.Statement<[string], { hits: number; misses: number }>;
  /** Hits and misses not yet added to the shared counters (written at most once a second). */
  private readonly unsaved = Object.fromEntries(CACHE_NAMES.map((n) => [n, { hits: 0, misses: 0 }])) as Record<
    CacheName,
    { hits: number; misses: number }
  >;
  /** Hits not yet written: per cache, per key, how many and when the last one was. */
  private readonly unsavedTouches = Object.fromEntries(CACHE_NAMES.map((n) => [n, new Map<string, { count: number; at: number }>()])) as Record<
    CacheName,
    Map<string, { count: number; at: number }>
  >;
  /** Expired entries seen by get, to delete unless rewritten since (key: the oldest created_at that is still fresh). */
  private readonly expired = Object.fromEntries(CACHE_NAMES.map((n) => [n, new Map<string, number>()])) as Record<CacheName, Map<string, number>>;
  /** Caches written since the last maintenance, whose limits need checking. */
  private readonly grown = new Set<CacheName>();
  private readonly counterTimer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: LocalCacheOptions) {
    this.now = options.now ?? Date.now;
    this.open();
    this.counterTimer = setInterval(() => this.maintain(), 1000);
    this.counterTimer.unref();
  }

  get path(): string {
    return this.options.path;
  }

  private open(): void {
    mkdirSync(dirname(this.options.path), { recursive: true });
    try {
      this.connect();
    } catch (error) {
      this.moveAside(error);
      this.connect();
    }
  }

  private connect(): void {
    const db = new Database(this.options.path, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      const check = db.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new Error(`quick_check: ${String(check)}`);
      db.exec(SCHEMA);
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.statements = Object.fromEntries(CACHE_NAMES.map((n) => [n, prepare(db, `${n}_cache`)])) as Record<CacheName, Statements>;
    this.identityGet = db.prepare(`SELECT sha256, name FROM model_identities WHERE selector = ?`);
    this.countersAdd = db.prepare(
      `INSERT INTO counters (cache, hits, misses) VALUES (?, ?, ?)
       ON CONFLICT (cache) DO UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses`,
    );
    this.countersGet = db.prepare(`SELECT hits, misses FROM counters WHERE cache = ?`);
    this.identityPut = db.prepare(
      `INSERT INTO model_identities (selector, sha256, name, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (selector) DO UPDATE SET sha256 = excluded.sha256, name = excluded.name, updated_at = excluded.updated_at`,
    );
  }

  /** Move a damaged file (and its WAL) aside so a fresh cache can take its place. */
  private moveAside(error: unknown): void {
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, "-");
    const target = `${this.options.path}.corrupt-${stamp}`;
    for (const suffix of ["", "-wal", "-shm"]) {
      if (existsSync(this.options.path + suffix)) renameSync(this.options.path + suffix, target + suffix);
    }
    logger().warn(
      { path: this.options.path, movedTo: target, error: error instanceof Error ? error.message : String(error) },
      "cache file was unreadable; moved it aside and started an empty cache",
    );
  }

  /** Run a cache operation; a corruption found at run time rebuilds the cache and counts as a miss. */
  private guarded<T>(fallback: T, operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB") || code === "SQLITE_IOERR") {
        try {
          this.db.close();
        } catch {
          // already unusable
        }
        this.moveAside(error);
        this.connect();
      } else {
        logger().warn({ error: error instanceof Error ? error.message : String(error) }, "cache operation failed");
      }
      return fallback;
    }
  }

  get(cache: CacheName, key: string): Buffer | undefined {
    const found = this.guarded(undefined, () => {
      const s = this.statements[cache];
      const row = s.get.get(key);
      if (!row) return undefined;
      const ttl = this.options.ttlSeconds;
      if (ttl !== undefined && this.now() - row.created_at > ttl * 1000) {
        this.expired[cache].set(key, this.now() - ttl * 1000);
        return undefined;
      }
      const touched = this.unsavedTouches[cache].get(key);
      this.unsavedTouches[cache].set(key, { count: (touched?.count ?? 0) + 1, at: this.now() });
      return row.value;
    });
    this.unsaved[cache][found ? "hits" : "misses"]++;
    return found;
  }

  put(cache: CacheName, key: string, value: Buffer): void {
    this.guarded(undefined, () => {
      const now = this.now();
      this.statements[cache].put.run(key, value, value.length, now, now);
      this.grown.add(cache);
    });
  }

  /**
   * Write what the request path left for later: access statistics, hit
   * counters, and eviction of caches over their limits. Runs once a second
   * (and before stats); a lock held by another process leaves it for the
   * next round.
   */
  maintain(): void {
    this.saveCounters();
    this.guarded(undefined, () => {
      const now = this.now();
      this.db.transaction(() => {
        for (const cache of CACHE_NAMES) {
          const s = this.statements[cache];
          for (const [key, { count, at }] of this.unsavedTouches[cache]) s.touch.run(count, at, key);
          for (const [key, freshSince] of this.expired[cache]) s.removeOlder.run(key, freshSince);
          if (this.grown.has(cache)) this.enforceLimits(cache, s, now);
        }
      }).immediate();
      for (const cache of CACHE_NAMES) {
        this.unsavedTouches[cache].clear();
        this.expired[cache].clear();
      }
      this.grown.clear();
    });
  }

  private enforceLimits(cache: CacheName, s: Statements, now: number): void {
    const { capacity, maxSizeMb } = this.options.limits[cache];
    const maxBytes = maxSizeMb * 1024 * 1024;
    const totals = s.totals.get()!;
    let entries = totals.entries;
    let size = totals.size ?? 0;
    if (entries <= capacity && size <= maxBytes) return;
    // Evict a little below the limits so a full cache does not evict on every insert.
    const targetEntries = Math.floor(capacity * 0.9);
    const targetBytes = maxBytes * 0.9;
    // Read only as many of the coldest entries as can go, a page at a time (not the whole table).
    while (entries > targetEntries || size > targetBytes) {
      const wanted = Math.max(entries - targetEntries, 0) || EVICTION_PAGE;
      const victims = s.coldest.all(now, FRECENCY_HALF_LIFE_MS, Math.min(Math.max(wanted, 1), EVICTION_PAGE));
      if (victims.length === 0) return;
      for (const victim of victims) {
        if (entries <= targetEntries && size <= targetBytes) return;
        s.remove.run(victim.key);
        entries--;
        size -= victim.size;
      }
    }
  }

  rememberIdentity(selector: string, sha256: string, name: string): void {
    this.guarded(undefined, () => this.identityPut.run(selector, sha256, name, this.now()));
  }

  lastKnownIdentity(selector: string): { sha256: string; name: string } | undefined {
    return this.guarded(undefined, () => this.identityGet.get(selector));
  }

  private saveCounters(): void {
    this.guarded(undefined, () => {
      for (const cache of CACHE_NAMES) {
        const { hits, misses } = this.unsaved[cache];
        if (hits === 0 && misses === 0) continue;
        this.countersAdd.run(cache, hits, misses);
        this.unsaved[cache] = { hits: 0, misses: 0 };
      }
    });
  }

  /** Entries, sizes and hit counts of every cache (counted across all processes sharing the file). */
  stats(): CacheStats[] {
    this.maintain();
    return CACHE_NAMES.map((cache) => {
      const totals = this.guarded({ entries: 0, size: 0 }, () => this.statements[cache].totals.get()!);
      return {
        cache,
        entries: totals.entries,
        sizeBytes: totals.size ?? 0,
        capacity: this.options.limits[cache].capacity,
        maxSizeMb: this.options.limits[cache].maxSizeMb,
        ...this.guarded({ hits: 0, misses: 0 }, () => this.countersGet.get(cache) ?? { hits: 0, misses: 0 }),
      };
    });
  }

  /** Every entry of one cache, by key (for `st cache export`). */
  entries(cache: CacheName): Array<{ key: string; value: Buffer }> {
    return this.guarded([], () => this.statements[cache].all.all());
  }

  clear(cache?: CacheName): number {
    return this.guarded(0, () =>
      (cache ? [cache] : CACHE_NAMES).reduce((sum, name) => sum + this.statements[name].clear.run().changes, 0),
    );
  }

  close(): void {
    clearInterval(this.counterTimer);
    if (!this.db.open) return;
    this.maintain();
    this.db.close();
  }
}
