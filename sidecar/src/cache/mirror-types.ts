// What the mirror writes: result rows and heartbeats. Its own file so the
// writer (pg-mirror.ts) and its SQL (mirror-sql.ts) both import it without
// importing each other.

import type { CacheKind } from "./key.js";

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
