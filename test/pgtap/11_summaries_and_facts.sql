-- Summaries and facts: the original's signatures and result shapes; the same
-- rows give the same summary whatever the plan (serial, parallel,
-- partial/final, any row order); facts deduplicated by embedding similarity.
BEGIN;
SELECT plan(42);

-- Signatures (argument names and defaults as the original's).
SELECT is(pg_get_function_arguments('steadytext_summarize_text(text,jsonb,text,boolean)'::regprocedure),
  'input_text text, metadata jsonb DEFAULT ''{}''::jsonb, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false',
  'steadytext_summarize_text arguments');
SELECT is(pg_get_function_arguments('steadytext_extract_facts(text,integer)'::regprocedure),
  'input_text text, max_facts integer DEFAULT 10', 'steadytext_extract_facts arguments');
SELECT is(pg_get_function_arguments('steadytext_deduplicate_facts(jsonb,double precision)'::regprocedure),
  'facts_array jsonb, similarity_threshold double precision DEFAULT 0.85', 'steadytext_deduplicate_facts arguments');
SELECT is(pg_get_function_arguments('st_deduplicate_facts(jsonb,double precision)'::regprocedure),
  'facts jsonb, similarity_threshold double precision DEFAULT 0.8', 'st_deduplicate_facts has the original''s own signature');
SELECT is(pg_get_function_arguments('steadytext_summarize_accumulate(jsonb,text,jsonb)'::regprocedure),
  'state jsonb, value text, metadata jsonb DEFAULT ''{}''::jsonb', 'steadytext_summarize_accumulate arguments');
SELECT is(
  ARRAY(SELECT p.oid::regprocedure::text || ' ' || (a.aggcombinefn <> 0)::text || ' ' || p.proparallel::text
        FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
        WHERE p.proname IN ('steadytext_summarize', 'steadytext_summarize_partial', 'steadytext_summarize_final', 'st_summarize')
        ORDER BY 1),
  ARRAY['st_summarize(text,jsonb) true s', 'steadytext_summarize(text,jsonb) true s',
        'steadytext_summarize_final(jsonb) true s', 'steadytext_summarize_partial(text,jsonb) true s'],
  'the aggregates exist, combine (parallel) and are parallel safe');

-- Bad input, with the original's messages.
SELECT throws_ok($$SELECT steadytext_extract_facts('a text', 0)$$, 'P0001', 'max_facts must be between 1 and 50', 'max_facts below 1');
SELECT throws_ok($$SELECT steadytext_extract_facts('a text', 51)$$, 'P0001', 'max_facts must be between 1 and 50', 'max_facts above 50');
SELECT throws_ok($$SELECT steadytext_extract_facts('a text', NULL)$$, 'P0001', 'max_facts must be between 1 and 50', 'max_facts NULL');
SELECT throws_ok($$SELECT steadytext_deduplicate_facts('["a", "b"]', 1.5)$$, 'P0001', 'similarity_threshold must be between 0.0 and 1.0', 'a threshold above 1');
SELECT throws_ok($$SELECT steadytext_deduplicate_facts('["a", "b"]', NULL)$$, 'P0001', 'similarity_threshold must be between 0.0 and 1.0', 'a NULL threshold');
SELECT throws_ok($$SELECT steadytext_deduplicate_facts('"a"', 0.5)$$, 'P0001', NULL, 'facts that are not an array');
SELECT is(steadytext_extract_facts(NULL), '{"facts": []}'::jsonb, 'no text, no facts');
SELECT is(steadytext_extract_facts('   '), '{"facts": []}'::jsonb, 'blank text, no facts');
SELECT is(steadytext_deduplicate_facts(NULL), '[]'::jsonb, 'NULL facts deduplicate to []');
SELECT is(steadytext_summarize_text(''), 'No text to summarize', 'empty text: the original''s answer');

-- Facts from the model.
SELECT is(jsonb_typeof(steadytext_extract_facts('Pumps move water. Valves stop it. Fans move air.', 2) -> 'facts'), 'array', 'facts come as {"facts": [...]}');
SELECT cmp_ok(jsonb_array_length(steadytext_extract_facts('Pumps move water. Valves stop it. Fans move air.', 2) -> 'facts'), '<=', 2, 'at most max_facts of them');
SELECT is(steadytext_extract_facts('Pumps move water. Valves stop it.', 3), steadytext_extract_facts('Pumps move water. Valves stop it.', 3), 'the same text gives the same facts');

SELECT lives_ok($$SELECT steadytext_extract_facts(repeat('A long text goes on. ', 50000), 3)$$, 'a huge text is no error (the model reads its beginning)');
SELECT lives_ok($$SELECT steadytext_summarize_text(repeat('A long text goes on. ', 50000))$$, 'nor for a summary');

-- Deduplication by embedding similarity.
SELECT is(steadytext_deduplicate_facts('["The pump failed.", "The pump failed.", "Sales rose in May."]', 0.99),
          '["The pump failed.", "Sales rose in May."]'::jsonb, 'a repeated fact is dropped, different ones kept');
SELECT is(steadytext_deduplicate_facts('[{"text": "The pump failed.", "n": 1}, {"text": "The pump failed.", "n": 2}, 7]', 0.99),
          '[{"text": "The pump failed.", "n": 1}, 7]'::jsonb, 'objects compare by their text; the first is kept; other values stay');
SELECT is(steadytext_deduplicate_facts('["The pump failed.", "Sales rose in May."]', 1.0),
          '["The pump failed.", "Sales rose in May."]'::jsonb, 'at threshold 1.0 only identical embeddings could merge');
SELECT is(steadytext_deduplicate_facts('{"facts": ["Sales rose.", "Sales rose."]}'),
          '{"facts": ["Sales rose."]}'::jsonb, 'steadytext_extract_facts'' shape is accepted and kept');
SELECT is(st_deduplicate_facts('["Sales rose.", "Sales rose."]'), '["Sales rose."]'::jsonb, 'the alias deduplicates too');

-- The aggregate: one summary for the same rows, whatever the plan.
CREATE TABLE summary_rows AS
SELECT i, (ARRAY['red', 'green', 'blue', 'amber'])[1 + i % 4] AS bucket,
       CASE WHEN i % 50 = 0 THEN NULL
            ELSE 'Reading ' || i || ': the ' || (ARRAY['pump', 'valve', 'fan'])[1 + i % 3] || ' was checked. Pressure was '
                 || (i * 7 % 50) || ' bar! Status ok' END AS body
FROM generate_series(1, 600) AS i;
ANALYZE summary_rows;

SELECT steadytext_summarize(body, '{"source": "meters"}') AS serial FROM summary_rows \gset
SELECT isnt(:'serial'::text, NULL, 'the model writes a summary');
SELECT is((SELECT steadytext_summarize(body, '{"source": "meters"}') FROM summary_rows), :'serial'::text, 'the same rows give the same summary');
SELECT is((SELECT steadytext_summarize(body, '{"source": "meters"}' ORDER BY body DESC) FROM summary_rows), :'serial'::text, 'in any order');
SELECT is((SELECT steadytext_summarize(body, '{"source": "meters"}' ORDER BY md5(i::text)) FROM summary_rows), :'serial'::text, 'in a shuffled order too');
SELECT is((SELECT steadytext_summarize_final(p) FROM (SELECT steadytext_summarize_partial(body, '{"source": "meters"}') AS p
                                                      FROM summary_rows GROUP BY bucket) AS buckets), :'serial'::text,
          'partial states per bucket, combined by steadytext_summarize_final, give the same summary');
SELECT is((SELECT steadytext_summarize_final(p ORDER BY bucket DESC) FROM (SELECT bucket, steadytext_summarize_partial(body, '{"source": "meters"}') AS p
                                                      FROM summary_rows GROUP BY bucket) AS buckets), :'serial'::text,
          'whatever order the stored states are combined in');
SELECT is((SELECT steadytext_summarize_partial(body, '{"source": "meters"}' ORDER BY body DESC) FROM summary_rows),
          (SELECT steadytext_summarize_partial(body, '{"source": "meters"}' ORDER BY body) FROM summary_rows),
          'the partial state itself does not depend on row order');

CREATE FUNCTION pg_temp.plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT matches(pg_temp.plan_of($$SELECT steadytext_summarize(body, '{"source": "meters"}') FROM summary_rows$$),
               'Partial Aggregate', 'the planner runs the aggregate in parallel, with its combine function');
SELECT is((SELECT steadytext_summarize(body, '{"source": "meters"}') FROM summary_rows), :'serial'::text, 'and the parallel plan gives the same summary');
RESET max_parallel_workers_per_gather;

SELECT is((SELECT (steadytext_summarize_partial(body, '{}') -> 'stats')::text FROM summary_rows),
          (SELECT jsonb_build_object('row_count', count(body), 'max_length', max(length(body)), 'min_length', min(length(body)),
                                     'total_chars', sum(length(body)))::text FROM summary_rows),
          'the state counts the non-NULL rows and their lengths');
SELECT is((SELECT steadytext_summarize(body, '{}') FROM summary_rows WHERE false), 'No data to summarize', 'no rows: the original''s answer');
SELECT is((SELECT steadytext_summarize(NULL::text, '{}') FROM summary_rows), 'No data to summarize', 'only NULL rows: the same');
SELECT is((SELECT steadytext_summarize_partial(v, m) -> 'metadata' FROM (VALUES ('a text', '{"k": 2}'::jsonb), ('b text', '{"k": 1, "j": 0}')) AS t(v, m)),
          '{"j": 0, "k": 1}'::jsonb, 'metadata of all rows is merged, the least value winning, so row order does not matter');

SELECT isnt(steadytext_summarize_text('The pump failed twice this week. Maintenance replaced the seal.', '{"site": "north"}'), NULL,
            'steadytext_summarize_text asks the model');

-- Without the daemon: facts are the text's sentences (the original's way); deduplication compares text.
SET LOCAL steadytext.connect_timeout_ms = 200;
SET LOCAL steadytext.daemon_port = 9;
SELECT is(steadytext_extract_facts('Offline, the valve leaked. It was fixed by noon! Short.', 5),
          '{"facts": ["Offline, the valve leaked.", "It was fixed by noon!", "Short."]}'::jsonb,
          'without the daemon, facts are the text''s sentences');
SELECT is(steadytext_deduplicate_facts('["Offline fact one", " offline FACT one", "Offline fact two"]', 0.5),
          '["Offline fact one", "Offline fact two"]'::jsonb, 'and deduplication matches text, ignoring case and surrounding space');
RESET steadytext.daemon_port;
RESET steadytext.connect_timeout_ms;

SELECT * FROM finish();
ROLLBACK;
