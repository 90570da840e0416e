// Tables that embed themselves, with the real worker: the backfill and later
// changes end in exactly steadytext_embed's vectors; deletes and truncates
// leave nothing behind; the status view tells the truth; the pgvector example
// of examples/ runs through an HNSW index and a filter still fills LIMIT.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { TestStack } from "../harness/test-stack.js";

let stack: TestStack;
let session: pg.Client;

before(async () => {
  stack = await TestStack.start();
  session = await stack.connect();
});
after(() => stack.stop());

const rows = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => (await session.query<R>(sql, params)).rows;

/** Wait until the pipeline of `table` has nothing pending or in progress. */
async function drained(table: string): Promise<void> {
  await stack.waitFor(async () => {
    const [s] = await rows<{ rows_pending: string; rows_processing: string }>(
      "SELECT rows_pending, rows_processing FROM steadytext_auto_embed_status WHERE source = $1::regclass",
      [table],
    );
    return s !== undefined && s.rows_pending === "0" && s.rows_processing === "0";
  }, 120_000);
}

/** Rows whose vector is not exactly steadytext_embed of `text` (computed afresh, not from the cache). */
async function mismatches(table: string, text: string): Promise<number> {
  const [r] = await rows<{ n: string }>(
    `SELECT count(*) AS n FROM ${table} t WHERE t.embedding IS NULL OR t.embedding::text <> steadytext_embed(${text}, false)::text`,
  );
  return Number(r!.n);
}

describe("keeping a table embedded", () => {
  test("the backfill gives every row exactly steadytext_embed of its text", async () => {
    await session.query("CREATE TABLE notes (id serial PRIMARY KEY, body text)");
    await session.query("INSERT INTO notes (body) SELECT 'note number ' || g FROM generate_series(1, 300) g");
    const [{ queued }] = (await rows<{ queued: string }>("SELECT steadytext_auto_embed('notes', 'body') AS queued")) as [{ queued: string }];
    assert.equal(queued, "300");
    await drained("notes");
    assert.equal(await mismatches("notes", "t.body"), 0);
  });

  test("new and changed rows are embedded; an update of another column is not; a text seen before comes from the cache at once", async () => {
    await session.query("ALTER TABLE notes ADD COLUMN tag text");
    await session.query("INSERT INTO notes (body) VALUES ('a brand new note')");
    await session.query("UPDATE notes SET body = 'note number 1, rewritten' WHERE id = 1");
    await drained("notes");
    assert.equal(await mismatches("notes", "t.body"), 0);

    const [before] = await rows<{ e: string; items: string }>("SELECT embedding::text AS e FROM notes WHERE id = 2");
    await session.query("UPDATE notes SET tag = 'important' WHERE id = 2");
    const [afterTag] = await rows<{ e: string; items: string }>(
      "SELECT embedding::text AS e, (SELECT count(*) FROM steadytext_queue WHERE pipeline_id IS NOT NULL) AS items FROM notes WHERE id = 2",
    );
    assert.equal(afterTag!.e, before!.e);
    assert.equal(afterTag!.items, "0");

    // Back to a text already embedded: the vector is there when the UPDATE returns, and nothing is queued.
    await session.query("UPDATE notes SET body = 'note number 1' WHERE id = 1");
    const [back] = await rows<{ same: boolean; items: string }>(
      "SELECT embedding::text = steadytext_embed('note number 1', false)::text AS same, (SELECT count(*) FROM steadytext_queue WHERE pipeline_id IS NOT NULL) AS items FROM notes WHERE id = 1",
    );
    assert.deepEqual(back, { same: true, items: "0" });
  });

  test("deleted and truncated rows leave no queue items behind", async () => {
    await session.query("CREATE TABLE churn (id int PRIMARY KEY, body text)");
    await session.query("SELECT steadytext_auto_embed('churn', 'body', create_index := false)");
    // Queued in the same transaction as the deletes: the worker never sees these rows.
    await session.query("BEGIN");
    await session.query("INSERT INTO churn SELECT g, 'churn ' || g FROM generate_series(1, 50) g");
    await session.query("DELETE FROM churn WHERE id <= 25");
    await session.query("COMMIT");
    await session.query("BEGIN");
    await session.query("INSERT INTO churn SELECT g, 'churn again ' || g FROM generate_series(100, 150) g");
    await session.query("TRUNCATE churn");
    await session.query("COMMIT");
    await drained("churn");
    const [left] = await rows<{ items: string; rows: string }>(
      "SELECT (SELECT count(*) FROM steadytext_queue q JOIN steadytext_auto_embed_pipelines p ON p.id = q.pipeline_id WHERE p.source = 'churn'::regclass) AS items, (SELECT count(*) FROM churn) AS rows",
    );
    assert.deepEqual(left, { items: "0", rows: "0" });
  });

  test("composite keys and a template over several columns", async () => {
    await session.query("CREATE TABLE tickets (tenant text, number int, subject text, body text, PRIMARY KEY (tenant, number))");
    await session.query(
      "INSERT INTO tickets SELECT (ARRAY['acme','globex'])[1 + g % 2], g, 'Subject ' || g, 'Body of ticket ' || g FROM generate_series(1, 40) g",
    );
    await session.query("SELECT steadytext_auto_embed('tickets', NULL, 'vec', template := '{subject}: {body}')");
    await drained("tickets");
    const [r] = await rows<{ n: string }>(
      "SELECT count(*) AS n FROM tickets t WHERE t.vec IS NULL OR t.vec::text <> steadytext_embed(t.subject || ': ' || t.body, false)::text",
    );
    assert.equal(r!.n, "0");
  });

  test("the status view counts rows, and reports a failure with its error", async () => {
    const long = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(" ");
    await session.query("INSERT INTO notes (body) VALUES ($1)", [long]);
    await stack.waitFor(async () => {
      const [s] = await rows<{ rows_failed: string }>("SELECT rows_failed FROM steadytext_auto_embed_status WHERE source = 'notes'::regclass");
      return s?.rows_failed === "1";
    }, 60_000);
    const [s] = await rows<{ rows_total: string; rows_embedded: string; last_error: string; rows_per_second: number }>(
      "SELECT * FROM steadytext_auto_embed_status WHERE source = 'notes'::regclass",
    );
    assert.equal(s!.rows_total, "302");
    assert.equal(s!.rows_embedded, "301");
    assert.match(s!.last_error, /Text is too long/);
    assert.ok(s!.rows_per_second > 0);
  });

  test("a text column cannot be dropped from under a pipeline by accident; dropped with CASCADE, it ends the pipeline and the table keeps working", async () => {
    await session.query("CREATE TABLE fragile (id int PRIMARY KEY, body text, note text)");
    await session.query("SELECT steadytext_auto_embed('fragile', 'body', create_index := false)");
    await assert.rejects(session.query("ALTER TABLE fragile DROP COLUMN body"), /other objects depend on it/);
    const warnings: string[] = [];
    const onNotice = (notice: { message?: string }) => warnings.push(notice.message ?? "");
    session.on("notice", onNotice);
    await session.query("ALTER TABLE fragile DROP COLUMN body CASCADE");
    session.off("notice", onNotice);
    assert.ok(warnings.some((w) => /auto-embedding of .*fragile\.embedding ended/.test(w)), warnings.join("; "));
    const [r] = await rows<{ n: string }>("SELECT count(*) AS n FROM steadytext_auto_embed_pipelines WHERE source = 'fragile'::regclass");
    assert.equal(r!.n, "0");
    await session.query("INSERT INTO fragile (id, note) VALUES (1, 'still fine')");
    await session.query("DELETE FROM fragile");
  });

  test("the synchronous trigger pattern of the README works beside it", async () => {
    await session.query("CREATE TABLE documents (id serial PRIMARY KEY, body text, embedding vector(1024))");
    await session.query(`CREATE FUNCTION embed_body() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.embedding := steadytext_embed(NEW.body); RETURN NEW; END $$`);
    await session.query("CREATE TRIGGER documents_embed BEFORE INSERT OR UPDATE OF body ON documents FOR EACH ROW EXECUTE FUNCTION embed_body()");
    await session.query("INSERT INTO documents (body) VALUES ('embedded in the same transaction')");
    assert.equal(await mismatches("documents", "t.body"), 0);
  });
});

describe("the pgvector example", () => {
  test("examples/auto-embed-search.sql searches through the HNSW index and a selective filter still returns LIMIT rows", async () => {
    const script = await readFile(resolve(import.meta.dirname, "..", "..", "examples", "auto-embed-search.sql"), "utf8");
    const statements = script
      .split(/;\s*\n/)
      .map((s) => s.replace(/^\s*--.*$/gm, "").trim())
      .filter((s) => s.length > 0);
    const [create, insert, autoEmbed, progress, iterative, search] = statements as [string, string, string, string, string, string];
    await session.query(create);
    await session.query(insert);
    await session.query(autoEmbed);
    await drained("articles");
    const [p] = await rows<{ rows_embedded: string; rows_failed: string }>(progress);
    assert.deepEqual({ embedded: p!.rows_embedded, failed: p!.rows_failed }, { embedded: "600", failed: "0" });

    // Few rows: tell the planner what a big table would make it choose anyway.
    await session.query("SET enable_seqscan = off");
    const plan = (await rows<{ "QUERY PLAN": string }>(`EXPLAIN ${search}`)).map((r) => r["QUERY PLAN"]).join("\n");
    assert.match(plan, /Index Scan using articles_embedding_hnsw_idx/);

    await session.query(iterative);
    const found = await rows<{ id: string }>(search);
    assert.equal(found.length, 10);
    const categories = await rows<{ category: string }>("SELECT DISTINCT category FROM articles WHERE id = ANY ($1)", [found.map((f) => f.id)]);
    assert.deepEqual(categories, [{ category: "databases" }]);
    await session.query("RESET hnsw.iterative_scan");
    await session.query("RESET enable_seqscan");
  });
});
