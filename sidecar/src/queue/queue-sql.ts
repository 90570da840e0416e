// What the queue worker says to a database: calls of the worker's functions
// in the install script (claim, finish, fail, renew, release), the LISTEN
// channels, and the shape of a claimed row, checked with zod because it
// crosses a process boundary.

import { z } from "zod";

/** New work was queued (a statement trigger on steadytext_queue). */
export const WORK_CHANNEL = "steadytext_queue";
/** A request finished, failed or was cancelled; the payload is its request_id. */
export const DONE_CHANNEL = "steadytext_queue_done";

export interface QueueStatements {
  claim: string;
  finish: string;
  fail: string;
  renew: string;
  release: string;
  nextWake: string;
  finished: string;
}

/** The statements for pg_steadytext installed in `schema` (already quoted). */
export function queueStatements(schema: string): QueueStatements {
  return {
    claim: `SELECT * FROM ${schema}._steadytext_queue_claim($1, $2, $3)`,
    finish: `SELECT ${schema}._steadytext_queue_finish($1, $2::bigint[], $3::text[], $4::bytea[], $5) AS done`,
    fail: `SELECT * FROM ${schema}._steadytext_queue_fail($1, $2::bigint[], $3::text[], $4::boolean[])`,
    renew: `SELECT ${schema}._steadytext_queue_renew($1, $2::bigint[], $3) AS renewed`,
    release: `SELECT ${schema}._steadytext_queue_release($1, $2::bigint[]) AS released`,
    nextWake: `SELECT ${schema}._steadytext_queue_next_wake() AS at`,
    finished: `SELECT ${schema}._steadytext_queue_finished($1::uuid) AS finished`,
  };
}

export const claimedItem = z.object({
  // bigint comes from pg as a string; it goes back the same way.
  id: z.string().regex(/^\d+$/),
  request_id: z.string(),
  request_type: z.enum(["generate", "embed", "rerank", "auto_embed"]),
  prompt: z.string().nullable(),
  params: z.unknown(),
  pipeline_id: z.number().int().nullable(),
  seed: z.number().int().nullable(),
  model: z.string().nullable(),
  retry_count: z.number().int(),
});
export type ClaimedItem = z.output<typeof claimedItem>;

export const failedRow = z.object({ id: z.string(), final: z.boolean() });
