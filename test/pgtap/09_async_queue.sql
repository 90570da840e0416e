-- The async queue from SQL: the original's functions, arguments and
-- messages; what a request looks like queued; check, cancel and timeout.
-- Everything here happens inside one transaction, so the sidecar's worker
-- never sees these items (the end-to-end results are in
-- test/integration/async-queue.test.ts).
BEGIN;
SELECT plan(64);

-- Signatures
CREATE TEMP TABLE api(name text, args text[], returns text);
INSERT INTO api VALUES
  ('steadytext_generate_async', '{text,integer,boolean,integer,text,text,text,text,text,boolean,integer}', 'uuid'),
  ('steadytext_generate_batch_async', '{text[],integer,boolean,integer,text,text,integer}', 'uuid[]'),
  ('steadytext_embed_async', '{text,boolean,integer,text,boolean,integer}', 'uuid'),
  ('steadytext_embed_batch_async', '{text[],boolean,integer,text,boolean,integer}', 'uuid[]'),
  ('steadytext_rerank_async', '{text,text[],text,boolean,integer,integer}', 'uuid'),
  ('steadytext_rerank_batch_async', '{text[],text[],text,boolean,integer,integer}', 'uuid[]'),
  ('steadytext_check_async', '{uuid}', 'setof record'),
  ('steadytext_check_async_batch', '{uuid[]}', 'setof record'),
  ('steadytext_get_async_result', '{uuid,integer}', 'text'),
  ('steadytext_cancel_async', '{uuid}', 'boolean');
SELECT function_returns(name, args, returns) FROM api ORDER BY name;
SELECT has_function('st_' || substr(name, 12), args, format('alias st_%s exists', substr(name, 12))) FROM api
WHERE name <> 'steadytext_generate_async' ORDER BY name;
SELECT is(pg_get_function_arguments('st_generate_async(text,integer)'::regprocedure), 'prompt text, max_tokens integer DEFAULT NULL::integer',
          'st_generate_async has the original''s own signature');
SELECT has_table('steadytext_queue');
SELECT is(pg_get_function_arguments('steadytext_generate_async(text,integer,boolean,integer,text,text,text,text,text,boolean,integer)'::regprocedure),
  'prompt text, max_tokens integer DEFAULT 512, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false, priority integer DEFAULT 5',
  'generate_async: the original''s arguments and defaults, then priority');
SELECT is(pg_get_function_result('steadytext_check_async(uuid)'::regprocedure),
  'TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamp with time zone, completed_at timestamp with time zone, processing_time_ms integer, request_type text)',
  'check_async returns the original''s columns');

-- Input errors: the original's messages
SELECT throws_ok($$SELECT steadytext_generate_async(NULL)$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_async('   ')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_async('hi', 0)$$, 'P0001', 'max_tokens must be between 1 and 4096');
SELECT throws_ok($$SELECT steadytext_generate_async('hi', 4097)$$, 'P0001', 'max_tokens must be between 1 and 4096');
SELECT throws_ok($$SELECT steadytext_generate_async('hi', seed := -1)$$, 'P0001', 'seed must be non-negative');
SELECT throws_ok($$SELECT steadytext_generate_async('hi', priority := 11)$$, 'P0001', 'priority must be between 1 and 10');
SELECT throws_ok($$SELECT steadytext_generate_async('hi', model := 'openai:gpt-4o')$$, 'P0001', 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_ok($$SELECT steadytext_generate_batch_async(ARRAY[]::text[])$$, 'P0001', 'Prompts cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_batch_async(ARRAY(SELECT 'p' || g FROM generate_series(1, 101) g))$$, 'P0001', 'Batch size exceeds maximum limit');
SELECT throws_ok($$SELECT steadytext_embed_async('')$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT steadytext_embed_batch_async(ARRAY['fine', NULL])$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT steadytext_rerank_async(NULL, ARRAY['d'])$$, 'P0001', 'Query cannot be empty');
SELECT throws_ok($$SELECT steadytext_rerank_async('q', ARRAY[]::text[])$$, 'P0001', 'Documents cannot be empty');
SELECT throws_ok($$SELECT steadytext_rerank_async('q', ARRAY['d', NULL])$$, 'P0001', 'Documents cannot contain null elements');
SELECT throws_ok($$SELECT steadytext_rerank_batch_async(ARRAY(SELECT 'q' || g FROM generate_series(1, 101) g), ARRAY['d'])$$, 'P0001', 'Batch size exceeds maximum limit');
SELECT throws_ok($$SELECT * FROM steadytext_check_async(NULL)$$, 'P0001', 'Request ID cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_check_async('00000000-0000-4000-8000-000000000000')$$, 'P0002', NULL, 'an unknown request is P0002');
SELECT throws_ok($$SELECT steadytext_get_async_result('00000000-0000-4000-8000-000000000000')$$, 'P0002', NULL, 'get_async_result of an unknown request is P0002');
SELECT throws_ok($$SELECT steadytext_get_async_result(gen_random_uuid(), 0)$$, 'P0001', 'timeout_seconds must be between 1 and 3600');
SELECT throws_ok($$SELECT steadytext_check_async_batch(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 101)))$$, 'P0001', 'Batch size exceeds maximum limit');
SELECT is((SELECT count(*) FROM steadytext_queue), 0::bigint, 'a batch with a bad element queues nothing');

-- What a request looks like queued: the params the synchronous call would send
SELECT steadytext_generate_async('queued prompt', 24, seed := 7) AS id \gset g_
SELECT is((SELECT params FROM steadytext_queue WHERE request_id = :'g_id'),
          (_steadytext_generation_request('queued prompt', 24, true, 7, '[EOS]', NULL, NULL, NULL, NULL, false, 'none', '')).params,
          'a queued generation carries exactly the synchronous request''s params');
SELECT steadytext_generate_async('default length') AS id \gset d_
SELECT is((SELECT params ->> 'max_new_tokens' FROM steadytext_queue WHERE request_id = :'d_id'), '512',
          'max_tokens defaults to 512 as in the original');
SELECT is((SELECT status FROM steadytext_check_async(:'g_id')), 'pending', 'a new request is pending');
SELECT is((SELECT request_type FROM steadytext_check_async(:'g_id')), 'generate', 'and knows its type');
SELECT is(cardinality(steadytext_generate_batch_async(ARRAY['one', 'two', 'three'], 8)), 3, 'a batch gives one id per prompt');
SELECT is(cardinality(steadytext_embed_batch_async(ARRAY['one', 'two'])), 2, 'embed batch too');
SELECT is(cardinality(steadytext_rerank_batch_async(ARRAY['q1', 'q2'], ARRAY['d1', 'd2'])), 2, 'rerank batch: one id per query');
SELECT steadytext_embed_async('urgent', priority := 9) AS id \gset u_
SELECT is((SELECT priority FROM steadytext_queue WHERE request_id = :'u_id'), 9, 'priority is kept');
SELECT is(ARRAY(SELECT status FROM steadytext_check_async_batch(ARRAY[:'g_id'::uuid, '00000000-0000-4000-8000-000000000000'])),
          ARRAY['pending', 'not_found'], 'check_async_batch answers in the order asked, unknown ids as not_found');

-- Cancel
SELECT ok(steadytext_cancel_async(:'g_id'), 'a pending request can be cancelled');
SELECT is((SELECT status FROM steadytext_check_async(:'g_id')), 'cancelled', 'and is cancelled');
SELECT ok(NOT steadytext_cancel_async(:'g_id'), 'cancelling it again does nothing');
SELECT throws_ok(format('SELECT steadytext_get_async_result(%L)', :'g_id'), 'P0001', 'Request was cancelled');

-- Waiting for a result that never comes (the worker cannot see this uncommitted request)
SELECT steadytext_embed_async('never committed') AS id \gset w_
SELECT throws_ok(format('SELECT steadytext_get_async_result(%L, 1)', :'w_id'), 'P0001', 'Timeout waiting for async result (1 seconds)');

-- Privileges: PUBLIC reaches the queue only through the functions
CREATE ROLE st_queue_user NOLOGIN;
GRANT USAGE ON SCHEMA public TO st_queue_user;
SELECT ok(NOT has_table_privilege('st_queue_user', 'steadytext_queue', 'SELECT'), 'PUBLIC cannot read the queue table');
SELECT ok(NOT has_function_privilege('st_queue_user', '_steadytext_queue_claim(text,integer,integer)', 'EXECUTE'), 'nor claim work');
SELECT ok(NOT has_function_privilege('st_queue_user', '_steadytext_queue_finish(text,bigint[],text[],bytea[],integer)', 'EXECUTE'), 'nor store results');
SELECT ok(has_function_privilege('steadytext_admin', '_steadytext_queue_claim(text,integer,integer)', 'EXECUTE'), 'steadytext_admin (the sidecar) may');
SET LOCAL ROLE st_queue_user;
SELECT lives_ok($$SELECT steadytext_embed_async('from a plain user')$$, 'a plain user queues requests');
RESET ROLE;
SELECT is((SELECT user_id FROM steadytext_queue WHERE prompt = 'from a plain user'), session_user::text, 'recorded with the session''s user');

SELECT * FROM finish();
ROLLBACK;
