-- Every function of the pg_steadytext API exists with the original's
-- signature and return type, and has its st_* alias.
BEGIN;
SELECT plan(141);

SELECT has_extension('pg_steadytext');
SELECT has_extension('vector');
SELECT matches(steadytext_version(), '^\d{4}\.\d{1,2}\.\d{1,2}$', 'steadytext_version() is date-based');

-- name, argument types, return type
CREATE TEMP TABLE api(name text, args text[], returns text);
INSERT INTO api VALUES
  ('steadytext_generate', '{text,integer,boolean,integer,text,text,text,text,text,boolean}', 'text'),
  ('steadytext_generate_stream', '{text,integer,boolean,integer,text,text,text,text,text,boolean}', 'setof text'),
  ('steadytext_generate_json', '{text,jsonb,integer,boolean,integer,boolean,text}', 'text'),
  ('steadytext_generate_regex', '{text,text,integer,boolean,integer,boolean,text}', 'text'),
  ('steadytext_generate_choice', '{text,text[],integer,boolean,integer,boolean,text}', 'text'),
  ('steadytext_generate_cached', '{text,integer,integer}', 'text'),
  ('steadytext_embed', '{text,boolean,integer,text,boolean}', 'vector'),
  ('steadytext_embed_cached', '{text,integer,text,boolean}', 'vector'),
  ('steadytext_embed_batch', '{text[],boolean,integer,text,boolean}', 'setof record'),
  ('steadytext_rerank', '{text,text[],text,boolean,integer}', 'setof record'),
  ('steadytext_rerank_docs_only', '{text,text[],text,integer}', 'setof text'),
  ('steadytext_rerank_top_k', '{text,text[],integer,text,boolean,integer}', 'setof record'),
  ('steadytext_rerank_batch', '{text[],text[],text,boolean,integer}', 'setof record'),
  ('steadytext_version', '{}', 'text'),
  ('steadytext_config_get', '{text}', 'text'),
  ('steadytext_config_set', '{text,text}', 'void'),
  ('steadytext_daemon_status', '{}', 'setof record'),
  ('steadytext_daemon_start', '{}', 'boolean'),
  ('steadytext_daemon_stop', '{}', 'boolean'),
  ('steadytext_cache_stats', '{}', 'setof record'),
  ('steadytext_cache_clear', '{}', 'bigint'),
  ('steadytext_cache_evict_by_age', '{integer,double precision,integer,integer}', 'setof record'),
  ('steadytext_cache_evict_by_frecency', '{integer,double precision,integer,integer,integer}', 'setof record'),
  ('steadytext_cache_preview_eviction', '{integer}', 'setof record'),
  ('steadytext_cache_analyze_usage', '{}', 'setof record'),
  ('steadytext_cache_scheduled_eviction', '{}', 'void'),
  ('steadytext_summarize_text', '{text,jsonb,text,boolean}', 'text'),
  ('steadytext_extract_facts', '{text,integer}', 'jsonb'),
  ('steadytext_deduplicate_facts', '{jsonb,"double precision"}', 'jsonb'),
  ('steadytext_summarize_accumulate', '{jsonb,text,jsonb}', 'jsonb'),
  ('steadytext_summarize_combine', '{jsonb,jsonb}', 'jsonb'),
  ('steadytext_summarize_combine_states', '{jsonb,jsonb}', 'jsonb'),
  ('steadytext_summarize_finalize', '{jsonb}', 'text'),
  ('steadytext_prompt_create', '{text,text,text,jsonb}', 'uuid'),
  ('steadytext_prompt_update', '{text,text,jsonb}', 'uuid'),
  ('steadytext_prompt_get', '{text,integer}', 'setof record'),
  ('steadytext_prompt_render', '{text,jsonb,integer,boolean}', 'text'),
  ('steadytext_prompt_list', '{}', 'setof record'),
  ('steadytext_prompt_versions', '{text}', 'setof record'),
  ('steadytext_prompt_delete', '{text}', 'boolean');

SELECT has_function(name, args) FROM api ORDER BY name;
SELECT function_returns(name, args, returns) FROM api ORDER BY name;
-- The original's st_generate_json/_regex/_choice have no model argument.
SELECT has_function('st_' || substr(name, 12),
                    CASE WHEN name IN ('steadytext_generate_json', 'steadytext_generate_regex', 'steadytext_generate_choice') THEN args[1:6] ELSE args END,
                    format('alias st_%s exists', substr(name, 12)))
FROM api ORDER BY name;

-- Aliases whose signature in the original differs from the steadytext_* one.
SELECT is(pg_get_function_arguments('st_generate_json(text,jsonb,integer,boolean,integer,boolean)'::regprocedure),
  'prompt text, schema jsonb, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false',
  'st_generate_json has the original''s signature (no model)');
SELECT is(pg_get_function_arguments('st_rerank_top_k(text,text[],integer,text,boolean,integer)'::regprocedure),
  'query text, documents text[], k integer DEFAULT 5, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42',
  'st_rerank_top_k takes k, default 5');
SELECT is(pg_get_function_arguments('st_config_get(text)'::regprocedure), 'key text', 'st_config_get(key), as the original''s alias');
SELECT is(pg_get_function_arguments('st_config_set(text,text)'::regprocedure), 'key text, value text', 'st_config_set(key, value), as the original''s alias');

-- The original's index names and rate limit table.
SELECT has_index('steadytext_cache', 'idx_steadytext_cache_key', 'cache_key', 'index idx_steadytext_cache_key');
SELECT has_index('steadytext_cache', 'idx_steadytext_cache_last_accessed', 'last_accessed', 'index idx_steadytext_cache_last_accessed');
SELECT has_index('steadytext_cache', 'idx_steadytext_cache_access_count', 'access_count', 'index idx_steadytext_cache_access_count');
SELECT columns_are('steadytext_rate_limits', ARRAY['user_id', 'requests_per_minute', 'requests_per_hour', 'requests_per_day',
  'current_minute_count', 'current_hour_count', 'current_day_count', 'last_reset', 'last_reset_minute', 'last_reset_hour',
  'last_reset_day', 'created_at'], 'steadytext_rate_limits has the original''s columns');
SELECT col_is_pk('steadytext_rate_limits', 'user_id', 'one row of limits per user');

SELECT has_view('steadytext_cache_with_frecency');
SELECT has_table('steadytext_cache');
SELECT has_table('steadytext_config');
SELECT col_is_unique('steadytext_cache', 'cache_key');
SELECT col_type_is('steadytext_cache', 'embedding', 'vector(1024)');
SELECT has_role('steadytext_admin');

-- Argument names and defaults are part of the API (named notation, omitted arguments).
SELECT is(pg_get_function_arguments('steadytext_generate(text,integer,boolean,integer,text,text,text,text,text,boolean)'::regprocedure),
  'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false',
  'steadytext_generate keeps the original argument names and defaults');
SELECT is(pg_get_function_arguments('steadytext_embed(text,boolean,integer,text,boolean)'::regprocedure),
  'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false',
  'steadytext_embed keeps the original argument names and defaults');
SELECT is(pg_get_function_result('steadytext_rerank(text,text[],text,boolean,integer)'::regprocedure),
  'TABLE(document text, score double precision)', 'steadytext_rerank returns (document, score)');

SELECT * FROM finish();
ROLLBACK;
