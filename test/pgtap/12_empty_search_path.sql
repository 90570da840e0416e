-- Callers from triggers, pg_cron jobs, dbt runs and continuous aggregates run
-- with other search_paths: every function works when called, schema-
-- qualified, with an empty search_path, wherever the extension is installed.
-- (run.ts --schema=NAME runs the whole suite with the extension in NAME.)
BEGIN;
SELECT plan(28);

-- Runs a query (with @. standing for the extension's schema) under search_path = '' and returns its first value as text.
CREATE FUNCTION pg_temp.empty_path(query text) RETURNS text LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    v_schema text := (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_steadytext');
    v_result text;
BEGIN
    EXECUTE pg_catalog.replace(query, '@.', v_schema || '.') INTO v_result;
    RETURN v_result;
END
$$;

SELECT is(pg_temp.empty_path($$SELECT pg_catalog.current_setting('search_path')$$), '""', 'the helper really runs with an empty search_path');

-- Generation, embeddings, reranking (daemon calls and cache reads).
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate('empty path', 8)$$), NULL, 'steadytext_generate');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate_cached('empty path cached', 8)$$), NULL, 'steadytext_generate_cached');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate('empty path cached', 8)$$), NULL, 'a cache hit');
SELECT isnt(pg_temp.empty_path($$SELECT pg_catalog.string_agg(t, '') FROM @.steadytext_generate_stream('empty path', 8) AS t$$), NULL, 'steadytext_generate_stream');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate_choice('pick', ARRAY['yes', 'no'])$$), NULL, 'steadytext_generate_choice');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate_json('a flag', '{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}')$$), NULL, 'steadytext_generate_json');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_generate_regex('a digit', '[0-9]')$$), NULL, 'steadytext_generate_regex');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_embed('empty path')::text$$), NULL, 'steadytext_embed');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_embed_cached('empty path cached')::text$$), NULL, 'steadytext_embed_cached');
SELECT is(pg_temp.empty_path($$SELECT pg_catalog.count(embedding)::text FROM @.steadytext_embed_batch(ARRAY['a', 'b'])$$), '2', 'steadytext_embed_batch');
SELECT is(pg_temp.empty_path($$SELECT pg_catalog.count(score)::text FROM @.steadytext_rerank('q', ARRAY['a', 'b'])$$), '2', 'steadytext_rerank');
SELECT is(pg_temp.empty_path($$SELECT pg_catalog.count(*)::text FROM @.st_rerank_top_k('q', ARRAY['a', 'b', 'c'], 2)$$), '2', 'st_rerank_top_k');
SELECT is(pg_temp.empty_path($$SELECT pg_catalog.count(*)::text FROM @.steadytext_rerank_batch(ARRAY['q', 'r'], ARRAY['a'])$$), '2', 'steadytext_rerank_batch');

-- Summaries, facts, prompts.
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_summarize(v, '{"k": 1}') FROM (VALUES ('One row here.'), ('Another row.')) AS t(v)$$), NULL, 'steadytext_summarize');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_summarize_final(p) FROM (SELECT @.steadytext_summarize_partial(v, '{}') AS p FROM (VALUES ('One row here.')) AS t(v)) AS s$$), NULL, 'steadytext_summarize_partial/_final');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_summarize_text('A text to summarise.')$$), NULL, 'steadytext_summarize_text');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_extract_facts('Water is wet. Fire is hot.')::text$$), NULL, 'steadytext_extract_facts');
SELECT is(pg_temp.empty_path($$SELECT @.steadytext_deduplicate_facts('["x y", "x y"]')::text$$), '["x y"]', 'steadytext_deduplicate_facts');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_prompt_create('empty-path', 'Hi {{ who | default("all") }}')::text$$), NULL, 'steadytext_prompt_create');
SELECT is(pg_temp.empty_path($$SELECT @.steadytext_prompt_render('empty-path', '{}')$$), 'Hi all', 'steadytext_prompt_render');
SELECT isnt(pg_temp.empty_path($$SELECT @.steadytext_prompt_update('empty-path', 'Hello {{ who }}')::text$$), NULL, 'steadytext_prompt_update');

-- Configuration, cache, daemon.
SELECT lives_ok($$SELECT pg_temp.empty_path($q$SELECT @.steadytext_config_set('my_empty_path_key', 'v')::text$q$)$$, 'steadytext_config_set');
SELECT is(pg_temp.empty_path($$SELECT @.steadytext_config_get('my_empty_path_key')$$), 'v', 'steadytext_config_get');
SELECT isnt(pg_temp.empty_path($$SELECT total_entries::text FROM @.steadytext_cache_stats()$$), NULL, 'steadytext_cache_stats');
SELECT is(pg_temp.empty_path($$SELECT status FROM @.steadytext_daemon_status()$$), 'healthy', 'steadytext_daemon_status');

-- A trigger that embeds on insert, its function pinned to an empty search_path.
DO $do$
DECLARE
    s text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_steadytext');
BEGIN
    EXECUTE format('CREATE TABLE pg_temp.docs (body text, embedding %s.vector(1024), facts jsonb)', s);
    EXECUTE format($f$CREATE FUNCTION pg_temp.docs_embed() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $b$
        BEGIN
            NEW.embedding := %1$s.steadytext_embed(NEW.body);
            NEW.facts := %1$s.steadytext_extract_facts(NEW.body, 2);
            RETURN NEW;
        END $b$$f$, s);
END
$do$;
CREATE TRIGGER docs_embed BEFORE INSERT ON pg_temp.docs FOR EACH ROW EXECUTE FUNCTION pg_temp.docs_embed();
INSERT INTO pg_temp.docs (body) VALUES ('A row a trigger embeds.');
SELECT ok((SELECT embedding IS NOT NULL AND facts ? 'facts' FROM pg_temp.docs), 'a trigger with an empty search_path embeds and extracts facts');

-- The functions name pgvector's type through their own schema: installing elsewhere says so.
-- The daemon may still be writing the results above into the extension's tables. DROP locks them one at a time,
-- so a daemon transaction holding one and waiting for another deadlocked with it (seen once, in the PostgreSQL 17
-- image): take every table at once or none, until the daemon's transactions have let go.
DO $lock$
DECLARE
    v_tables text := (SELECT pg_catalog.string_agg(c.oid::regclass::text, ', ')
                      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                        AND d.deptype = 'e' AND c.relkind IN ('r', 'p')
                        AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_steadytext'));
BEGIN
    FOR attempt IN 1..2000 LOOP
        BEGIN
            EXECUTE 'LOCK TABLE ' || v_tables || ' IN ACCESS EXCLUSIVE MODE NOWAIT';
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_catalog.pg_sleep(0.005);
        END;
    END LOOP;
    RAISE EXCEPTION 'pg_steadytext''s tables stayed locked by other sessions';
END
$lock$;
DROP EXTENSION pg_steadytext CASCADE;
CREATE SCHEMA not_the_vector_schema;
SELECT throws_ok($$CREATE EXTENSION pg_steadytext SCHEMA not_the_vector_schema$$, 'P0001', NULL,
  'installing pg_steadytext away from pgvector''s schema is refused with a hint');

SELECT * FROM finish();
ROLLBACK;
