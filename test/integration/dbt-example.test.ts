// The dbt example (examples/dbt) on the real stack, through dbt-lite (its
// Jinja compiled, ref/source/config/is_incremental as dbt has them): the
// models run in dependency order and produce what they say; a second run
// computes nothing new (no new result in the sidecar's cache, no row the
// incremental model has not seen, every output byte for byte the same); a
// new ticket is embedded alone on the next run.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { dependencyOrder, loadModels, runProject, type ModelRun } from "../../examples/dbt/dbt-lite.js";
import { ST_CLI } from "../../scripts/lib/sidecar-process.js";
import { TestStack } from "../harness/test-stack.js";

const PROJECT = resolve(import.meta.dirname, "..", "..", "examples", "dbt");
const CATEGORIES = ["billing", "bug", "feature request", "account"];
const run = promisify(execFile);

let stack: TestStack;
let session: pg.Client;

before(async () => {
  stack = await TestStack.start();
  session = await stack.connect();
  await session.query(await readFile(resolve(PROJECT, "seed", "support_tickets.sql"), "utf8"));
});
after(() => stack.stop());

const rows = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => (await session.query<R>(sql)).rows;

/** Results the sidecar has computed and cached, from its own cache file (`st cache stats`). */
async function cachedResults(): Promise<number> {
  const { stdout } = await run(process.execPath, [ST_CLI, "cache", "stats", "--json"], {
    env: { ...process.env, STEADYTEXT_CACHE_DIR: stack.sidecarOptions().cacheDir },
  });
  const stats = JSON.parse(stdout) as { caches: { entries: number }[] };
  return stats.caches.reduce((sum, c) => sum + c.entries, 0);
}

/** Everything the models wrote, as text, in a stable order. */
async function outputs(): Promise<string> {
  const tables = ["ticket_embeddings", "ticket_categories", "ticket_details", "category_summaries", "similar_tickets"];
  const parts: string[] = [];
  for (const table of tables) {
    const data = await rows<{ data: string }>(`SELECT coalesce(json_agg(t ORDER BY t)::text, '') AS data FROM analytics.${table} AS t`);
    parts.push(`${table}: ${data[0]?.data}`);
  }
  return parts.join("\n");
}

describe("the dbt example", () => {
  let first: ModelRun[];
  let firstOutputs: string;
  let firstCached: number;

  test("orders the models so that each runs after the models it refs", () => {
    const order = dependencyOrder(loadModels(PROJECT)).map((m) => m.name);
    assert.equal(order.length, 5);
    assert.ok(order.indexOf("ticket_categories") < order.indexOf("category_summaries"));
    assert.ok(order.indexOf("ticket_embeddings") < order.indexOf("similar_tickets"));
  });

  test("a first run builds every model, embedding every ticket", async () => {
    first = await runProject(session, PROJECT);
    const byName = new Map(first.map((r) => [r.name, r]));
    assert.deepEqual(byName.get("ticket_embeddings"), { name: "ticket_embeddings", materialized: "incremental", action: "created", rows: 8 });
    assert.equal(byName.get("ticket_categories")?.rows, 8);
    assert.equal(byName.get("ticket_details")?.rows, 8);
    assert.equal(byName.get("similar_tickets")?.rows, 8);
    firstOutputs = await outputs();
    firstCached = await cachedResults();
    assert.ok(firstCached > 0, "the run computed results");
  });

  test("classifies every ticket into one of the given categories, and summarizes each category", async () => {
    const categories = await rows<{ category: string }>("SELECT DISTINCT category FROM analytics.ticket_categories");
    for (const { category } of categories) assert.ok(CATEGORIES.includes(category), category);
    const summaries = await rows<{ tickets: string; summary: string | null }>("SELECT tickets, summary FROM analytics.category_summaries");
    assert.equal(summaries.reduce((sum, s) => sum + Number(s.tickets), 0), 8);
    for (const s of summaries) assert.equal(typeof s.summary, "string");
  });

  test("extracts JSON that follows the schema from every ticket", async () => {
    const extracted = await rows<{ details: string }>("SELECT details FROM analytics.ticket_details");
    assert.equal(extracted.length, 8);
    for (const { details } of extracted) {
      const parsed = JSON.parse(details) as { area?: unknown; urgency?: unknown; needs_reply?: unknown };
      assert.ok(["payments", "reports", "dashboard", "login", "imports", "team"].includes(parsed.area as string), details);
      assert.ok(["low", "medium", "high"].includes(parsed.urgency as string), details);
      assert.equal(typeof parsed.needs_reply, "boolean", details);
    }
  });

  test("finds for each ticket its most similar other ticket", async () => {
    const similar = await rows<{ ticket_id: number; similar_ticket_id: number; distance: number }>("SELECT * FROM analytics.similar_tickets");
    assert.equal(similar.length, 8);
    for (const s of similar) {
      assert.notEqual(s.similar_ticket_id, s.ticket_id);
      assert.ok(s.distance >= 0 && s.distance <= 2);
    }
  });

  test("a second run computes nothing new: no row for the incremental model, no new result, the same bytes", async () => {
    const second = await runProject(session, PROJECT);
    assert.deepEqual(second.find((r) => r.name === "ticket_embeddings"), { name: "ticket_embeddings", materialized: "incremental", action: "incremental", rows: 0 });
    assert.equal(await cachedResults(), firstCached);
    assert.equal(await outputs(), firstOutputs);
  });

  test("a new ticket is embedded alone on the next run", async () => {
    await session.query("INSERT INTO support.tickets VALUES (9, 'The mobile app logs me out every five minutes.')");
    const third = await runProject(session, PROJECT);
    assert.equal(third.find((r) => r.name === "ticket_embeddings")?.rows, 1);
    const [count] = await rows<{ n: number }>("SELECT count(*)::int AS n FROM analytics.ticket_embeddings");
    assert.equal(count?.n, 9);
  });
});
