// The SQL the mirror writer (pg-mirror.ts) runs in each database, as
// builders of {text, values}. Plain SQL that PostgreSQL and pg-mem both
// accept: multi-row VALUES with numbered, explicitly typed parameters rather
// than unnest over arrays, so the unit tests run the very statements
// production runs. Schema names and the vector type come in already quoted.

import { float32Bytes } from "../util/float32.js";
import type { Heartbeat, MirrorEntry } from "./mirror-types.js";

export interface SqlStatement {
  text: string;
  values: unknown[];
}

/** PostgreSQL accepts at most this many parameters in one statement. */
export const MAX_PARAMETERS = 65535;

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The vector type of pgvector installed in `vectorSchema` (quoted), as the cache's embedding column has it. */
export const vectorType = (vectorSchema: string): string => `${vectorSchema}.vector(1024)`;

/** Where pg_steadytext and pgvector are installed: rows of (extname, nspname). */
export const EXTENSION_SCHEMAS_SQL = `SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
       WHERE e.extname IN ('pg_steadytext', 'vector')`;

/**
 * One statement per slice of `rows` that fits the parameter limit. Each row
 * becomes "($1::type1, $2::type2, ...)" with its values appended in order.
 */
function valuesStatements<R>(
  rows: readonly R[],
  types: readonly string[],
  rowValues: (row: R) => unknown[],
  build: (valuesList: string) => string,
): SqlStatement[] {
  const rowsPerStatement = Math.floor(MAX_PARAMETERS / types.length);
  const statements: SqlStatement[] = [];
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (const row of rows.slice(start, start + rowsPerStatement)) {
      const own = rowValues(row);
      tuples.push(`(${own.map((_, i) => `$${values.length + i + 1}::${types[i]}`).join(", ")})`);
      values.push(...own);
    }
    statements.push({ text: build(tuples.join(",\n       ")), values });
  }
  return statements;
}

/** Tell SQL which model file each selector means (upsert into steadytext_models). */
export function publishModelsSql(
  schema: string,
  models: ReadonlyArray<readonly [selector: string, model: { sha256: string; name: string }]>,
): SqlStatement[] {
  return valuesStatements(
    models,
    ["text", "text", "text"],
    ([selector, model]) => [selector, model.sha256, model.name],
    (valuesList) =>
      `INSERT INTO ${schema}.steadytext_models (selector, model_sha256, model_name, updated_at)
       SELECT selector, model_sha256, model_name, now() FROM (VALUES ${valuesList}) AS t(selector, model_sha256, model_name)
       ON CONFLICT (selector) DO UPDATE SET model_sha256 = excluded.model_sha256, model_name = excluded.model_name, updated_at = now()`,
  );
}

/**
 * Insert results into steadytext_cache; a key already there is left as it is.
 * An embedding travels as little-endian float32 bytes, made a real[] by
 * _steadytext_real4_from_f32le and then cast to `embeddingType`: pgvector's
 * vector(1024) in PostgreSQL (see vectorType), text where there is no pgvector.
 */
export function insertEntriesSql(schema: string, embeddingType: string, entries: readonly MirrorEntry[]): SqlStatement[] {
  return valuesStatements(
    entries,
    ["text", "text", "text", "text", "bytea", "double precision", "text", "text", "int", "text", "text", "int"],
    (x) => [
      x.key,
      x.kind,
      x.prompt,
      x.response ?? null,
      // Float32 bytes, not text: formatting 1,024 floats as decimals cost about 0.2 ms a vector (20 kB of text).
      x.embedding ? float32Bytes([x.embedding]) : null,
      x.score ?? null,
      x.modelName,
      x.modelSha256,
      x.seed,
      x.eosString ?? null,
      JSON.stringify(x.params),
      Math.round(x.generationTimeMs),
    ],
    (valuesList) =>
      `INSERT INTO ${schema}.steadytext_cache (cache_key, kind, prompt, response, embedding, score, model_name, model_sha256,
                                             seed, eos_string, generation_params, response_size, generation_time_ms)
       SELECT k, kind, prompt, response, ${schema}._steadytext_real4_from_f32le(embedding)::${embeddingType}, score, model_name, model_sha256, seed, eos, params::jsonb,
              coalesce(octet_length(response), 0) + coalesce(4 * 1024 * (embedding IS NOT NULL)::int, 0), ms
       FROM (VALUES ${valuesList})
            AS t(k, kind, prompt, response, embedding, score, model_name, model_sha256, seed, eos, params, ms)
       ON CONFLICT (cache_key) DO NOTHING`,
  );
}

/** Add SQL cache hits to access_count (keys that are not in the table are ignored). */
export function applyHitCountsSql(schema: string, touches: ReadonlyArray<readonly [key: string, hits: number]>): SqlStatement[] {
  return valuesStatements(
    touches,
    ["text", "int"],
    ([key, hits]) => [key, hits],
    (valuesList) =>
      `UPDATE ${schema}.steadytext_cache SET access_count = steadytext_cache.access_count + t.n, last_accessed = now()
       FROM (VALUES ${valuesList}) AS t(k, n) WHERE steadytext_cache.cache_key = t.k`,
  );
}

/**
 * Admit one request of `user` that needs a model, against its row in
 * steadytext_rate_limits: windows of a minute, an hour and a day, each
 * restarting when it has run out; an admitted request counts in all three,
 * a refused one in none. No row (no limits for that user): no result row.
 */
export function admitRequestSql(schema: string, user: string): SqlStatement {
  const window = (count: string, since: string, span: string) =>
    `CASE WHEN ${since} IS NULL OR ${since} <= now() - interval '${span}' THEN 0 ELSE coalesce(${count}, 0) END`;
  const restart = (since: string, span: string) =>
    `CASE WHEN t.${since} IS NULL OR t.${since} <= now() - interval '${span}' THEN now() ELSE t.${since} END`;
  return {
    text: `WITH current AS (
             SELECT user_id,
                    ${window("current_minute_count", "last_reset_minute", "1 minute")} AS m,
                    ${window("current_hour_count", "last_reset_hour", "1 hour")} AS h,
                    ${window("current_day_count", "last_reset_day", "1 day")} AS d,
                    requests_per_minute, requests_per_hour, requests_per_day
             FROM ${schema}.steadytext_rate_limits WHERE user_id = $1 FOR UPDATE
           ), decided AS (
             SELECT *, (requests_per_minute IS NULL OR m < requests_per_minute)
                   AND (requests_per_hour IS NULL OR h < requests_per_hour)
                   AND (requests_per_day IS NULL OR d < requests_per_day) AS allowed
             FROM current
           )
           UPDATE ${schema}.steadytext_rate_limits t
           SET current_minute_count = c.m + c.allowed::int,
               current_hour_count = c.h + c.allowed::int,
               current_day_count = c.d + c.allowed::int,
               last_reset_minute = ${restart("last_reset_minute", "1 minute")},
               last_reset_hour = ${restart("last_reset_hour", "1 hour")},
               last_reset_day = ${restart("last_reset_day", "1 day")},
               last_reset = now()
           FROM decided c WHERE t.user_id = c.user_id
           RETURNING c.allowed, c.m, c.h, c.d, c.requests_per_minute, c.requests_per_hour, c.requests_per_day`,
    values: [user],
  };
}

/** The daemon's row in steadytext_daemon_health, inserted or refreshed. */
export function heartbeatSql(schema: string, h: Heartbeat, now: number = Date.now()): SqlStatement {
  return {
    text: `INSERT INTO ${schema}.steadytext_daemon_health
               (daemon_id, endpoint, last_heartbeat, uptime_seconds, status, version, models_loaded, total_requests)
             VALUES ($1, $2, now(), $3, 'healthy', $4, $5, $6)
             ON CONFLICT (daemon_id) DO UPDATE SET endpoint = excluded.endpoint, last_heartbeat = now(),
               uptime_seconds = excluded.uptime_seconds, status = 'healthy', version = excluded.version,
               models_loaded = excluded.models_loaded, total_requests = excluded.total_requests`,
    values: [h.daemonId, h.endpoint, Math.round((now - h.startedAt.getTime()) / 1000), h.version, h.models, h.totalRequests],
  };
}
