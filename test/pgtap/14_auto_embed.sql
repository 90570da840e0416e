-- Auto-embedding from SQL: what steadytext_auto_embed sets up, which
-- changes queue a row and which do not, deletes and truncates, composite
-- keys, templates, the write-once rule, and the errors. Inside one
-- transaction the sidecar's worker sees none of this; the worker's side is
-- played here by calling its functions (claim, finish) directly.
BEGIN;
SELECT plan(50);

\ir helpers.psql

SELECT function_returns('steadytext_auto_embed', ARRAY['regclass','name','name','text','boolean','boolean','integer','integer','integer','text','integer'], 'bigint');
SELECT function_returns('steadytext_auto_embed_drop', ARRAY['regclass','name','boolean'], 'boolean');
SELECT has_function('st_auto_embed', ARRAY['regclass','name','name','text','boolean','boolean','integer','integer','integer','text','integer'], 'alias st_auto_embed exists');
SELECT has_view('steadytext_auto_embed_status');

CREATE TABLE pgtap_docs (id integer PRIMARY KEY, title text, body text);
INSERT INTO pgtap_docs VALUES (1, 't1', 'first body'), (2, 't2', 'second body'), (3, 't3', NULL), (4, 't4', '   ');

-- Errors
CREATE TABLE pgtap_nokey (body text);
SELECT throws_like($$SELECT steadytext_auto_embed('pgtap_nokey', 'body')$$, 'table %pgtap_nokey has no primary key', 'a table without a primary key is refused');
SELECT throws_like($$SELECT steadytext_auto_embed('pgtap_docs', 'nope')$$, 'column nope of table %pgtap_docs does not exist', 'a missing text column is named');
SELECT throws_like($$SELECT steadytext_auto_embed('pgtap_docs', NULL, template := '{title} {missing}')$$, 'column missing of table %pgtap_docs does not exist', 'a missing template column is named');
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', NULL)$$, 'P0001', 'text_column or template is required');
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', 'body', 'body')$$, 'P0001', 'vector_column must not be a text or key column');
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', 'body', batch_size := 0)$$, 'P0001', 'batch_size must be between 1 and 1000');
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', 'body', 'title', template := 'no placeholders')$$, 'P0001', 'template must name at least one column as {column}');
CREATE TABLE pgtap_wrongtype (id integer PRIMARY KEY, body text, embedding vector(3));
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_wrongtype', 'body')$$, '42804', NULL, 'a vector column of another dimension is refused');
CREATE ROLE st_stranger NOLOGIN;
GRANT USAGE ON SCHEMA public TO st_stranger;
SET LOCAL SESSION AUTHORIZATION st_stranger;
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', 'body')$$, '42501', NULL, 'only the table''s owner sets it up (checked as the session user)');
RESET SESSION AUTHORIZATION;

-- Set-up and backfill
SELECT is(steadytext_auto_embed('pgtap_docs', 'body'), 2::bigint, 'the backfill queues the rows that have text (not NULL, not blank)');
SELECT col_type_is('pgtap_docs', 'embedding', 'vector(1024)');
SELECT has_trigger('pgtap_docs', 'steadytext_auto_embed_embedding', 'an insert trigger');
SELECT has_trigger('pgtap_docs', 'steadytext_auto_embed_embedding_update', 'an update trigger');
SELECT has_index('pgtap_docs', 'pgtap_docs_embedding_hnsw_idx', 'an HNSW index on the vector column');
SELECT throws_ok($$SELECT steadytext_auto_embed('pgtap_docs', 'body')$$, '42710', NULL, 'a second set-up of the same column is refused');

CREATE FUNCTION pg_temp.items(source regclass) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM steadytext_queue q JOIN steadytext_auto_embed_pipelines p ON p.id = q.pipeline_id WHERE p.source = $1
$$;

-- Which changes queue a row
INSERT INTO pgtap_docs (id, title, body) VALUES (5, 't5', 'fifth body');
SELECT is(pg_temp.items('pgtap_docs'), 3::bigint, 'an insert queues the row');
UPDATE pgtap_docs SET title = 'renamed' WHERE id = 5;
SELECT is(pg_temp.items('pgtap_docs'), 3::bigint, 'an update of another column does not');
UPDATE pgtap_docs SET body = 'fifth body, edited' WHERE id = 5;
UPDATE pgtap_docs SET body = 'fifth body, edited again' WHERE id = 5;
SELECT is(pg_temp.items('pgtap_docs'), 3::bigint, 'a row changed twice before the worker comes is queued once');
DELETE FROM pgtap_docs WHERE id = 5;
SELECT is(pg_temp.items('pgtap_docs'), 2::bigint, 'a delete takes the row''s queue item with it');

-- The worker's side, played by hand: claim, then store
SELECT is(ARRAY(SELECT prompt FROM _steadytext_queue_claim('pgtap-worker', 10, 60) ORDER BY id), ARRAY['first body', 'second body'],
          'a claim hands out the rows'' current text');
SELECT is((SELECT count(*) FROM steadytext_queue WHERE locked_by = 'pgtap-worker' AND status = 'processing'), 2::bigint, 'leased to the worker');
UPDATE pgtap_docs SET body = 'second body, changed while the worker computed' WHERE id = 2;
SELECT is(_steadytext_queue_finish('pgtap-worker',
            ARRAY(SELECT id FROM steadytext_queue WHERE locked_by = 'pgtap-worker' ORDER BY id),
            ARRAY['first body', 'second body'],
            ARRAY[decode(repeat('0000003d', 1024), 'hex'), decode(repeat('0000003d', 1024), 'hex')], 5),  -- 0.03125 as float32 bytes
          1, 'storing writes only the row that still has the text that was embedded');
SELECT ok((SELECT embedding IS NOT NULL FROM pgtap_docs WHERE id = 1), 'that row has its vector');
SELECT ok((SELECT embedding IS NULL FROM pgtap_docs WHERE id = 2), 'the changed row waits for its new text');
SELECT is(pg_temp.items('pgtap_docs'), 1::bigint, 'stored items leave the queue; the changed row is queued again');
SELECT is(_steadytext_queue_finish('pgtap-worker', ARRAY(SELECT id FROM steadytext_queue ORDER BY id LIMIT 1), ARRAY['x'],
                                   ARRAY[decode(repeat('0000003f', 1024), 'hex')], 5),
          0, 'a result for an item this worker did not claim is ignored');
SELECT is((SELECT rows_embedded FROM steadytext_auto_embed_pipelines WHERE source = 'pgtap_docs'::regclass), 1::bigint, 'the pipeline counts what it wrote');
UPDATE pgtap_docs SET title = 'touch' WHERE id = 1;
SELECT ok((SELECT embedding IS NOT NULL FROM pgtap_docs WHERE id = 1), 'an update of another column keeps the vector');
UPDATE pgtap_docs SET embedding = NULL WHERE id = 1;
SELECT is(pg_temp.items('pgtap_docs'), 2::bigint, 'clearing the vector asks for it again');

-- Text whose embedding is cached gets its vector at once, no queue
SELECT isnt(steadytext_embed('pgtap cached text'), NULL, 'an embedding computed once');
SELECT ok(pg_temp.eventually($$SELECT EXISTS (SELECT 1 FROM steadytext_cache WHERE prompt = 'pgtap cached text' AND kind = 'embed')$$), 'is in the cache');
INSERT INTO pgtap_docs (id, body) VALUES (6, 'pgtap cached text');
SELECT ok((SELECT embedding = steadytext_embed('pgtap cached text') FROM pgtap_docs WHERE id = 6), 'a row with cached text is embedded in its own statement');
SELECT is(pg_temp.items('pgtap_docs'), 2::bigint, 'without a queue item');

-- Status, truncate
SELECT is((SELECT (rows_total, rows_embedded, rows_pending) FROM steadytext_auto_embed_status WHERE source = 'pgtap_docs'::regclass)::text,
          '(5,1,2)', 'the status view counts rows, vectors and pending items');
TRUNCATE pgtap_docs;
SELECT is(pg_temp.items('pgtap_docs'), 0::bigint, 'a truncate empties the pipeline''s queue');

-- Composite keys and templates
CREATE TABLE pgtap_tickets (tenant text, number integer, subject text, body text, PRIMARY KEY (tenant, number));
INSERT INTO pgtap_tickets VALUES ('acme', 1, 'Login', 'cannot log in'), ('acme', 2, 'Billing', NULL), ('globex', 1, NULL, 'refund please');
SELECT is(steadytext_auto_embed('pgtap_tickets', NULL, 'vec', template := 'Subject: {subject}
{body}', create_index := false), 3::bigint, 'a template over two columns');
SELECT is(ARRAY(SELECT source_key::text FROM steadytext_queue q JOIN steadytext_auto_embed_pipelines p ON p.id = q.pipeline_id
                WHERE p.source = 'pgtap_tickets'::regclass ORDER BY 1),
          ARRAY['["acme", 1]', '["acme", 2]', '["globex", 1]'], 'composite keys are kept whole');
SELECT is(ARRAY(SELECT prompt FROM _steadytext_queue_claim('pgtap-worker-2', 10, 60) ORDER BY id),
          ARRAY[E'Subject: Login\ncannot log in', E'Subject: Billing\n', E'Subject: \nrefund please'], 'the template renders each row; NULL columns as empty');
DELETE FROM pgtap_tickets WHERE tenant = 'acme' AND number = 2;
SELECT is(pg_temp.items('pgtap_tickets'), 2::bigint, 'a delete by composite key takes its item');

-- Drop
SELECT ok(steadytext_auto_embed_drop('pgtap_tickets', 'vec'), 'drop removes the pipeline');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgtap_tickets'::regclass AND NOT tgisinternal), 0::bigint, 'and its triggers');
SELECT is(pg_temp.items('pgtap_tickets'), 0::bigint, 'and its queue items');
SELECT has_column('pgtap_tickets', 'vec', 'the column stays unless asked');
DROP TABLE pgtap_docs;
SELECT is((SELECT count(*) FROM steadytext_auto_embed_pipelines), 0::bigint, 'a dropped table takes its pipeline with it');

-- Dropping the extension: not by accident, and with CASCADE no broken trigger is left behind
CREATE TABLE pgtap_survivor (id int PRIMARY KEY, body text);
SELECT steadytext_auto_embed('pgtap_survivor', 'body', create_index := false);
SELECT throws_ok($$DROP EXTENSION pg_steadytext$$, '2BP01', NULL, 'the extension cannot be dropped from under a pipeline by accident');
DROP EXTENSION pg_steadytext CASCADE;
SELECT lives_ok($$INSERT INTO pgtap_survivor VALUES (1, 'after the extension')$$, 'with CASCADE, the table keeps working without it');

SELECT * FROM finish();
ROLLBACK;
