-- Security by default: installing grants nothing on users' tables; PUBLIC
-- can run the functions on this allow-list and nothing else; admin
-- functions need steadytext_admin; the cache is read only by key.
BEGIN;
SELECT plan(32);

CREATE ROLE st_plain_user NOLOGIN;
CREATE ROLE st_admin_user NOLOGIN IN ROLE steadytext_admin;

-- Functions PUBLIC may execute, against an allow-list.
SELECT is(
  ARRAY(SELECT p.proname::text FROM pg_proc p
        WHERE p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'pg_steadytext')
          AND p.oid IN (SELECT objid FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext') AND deptype = 'e')
          AND has_function_privilege('st_plain_user', p.oid, 'EXECUTE')
        ORDER BY 1),
  ARRAY(SELECT f FROM unnest(ARRAY[
    '_steadytext_auto_embed_status', '_steadytext_bottom_k', '_steadytext_cache_key', '_steadytext_cached_embedding',
    '_steadytext_cached_scores', '_steadytext_cached_text', '_steadytext_call', '_steadytext_call_stream',
    '_steadytext_call_vector', '_steadytext_call_vectors', '_steadytext_check_prompt', '_steadytext_check_slug',
    '_steadytext_choices_text', '_steadytext_chunks', '_steadytext_embed', '_steadytext_embed_key', '_steadytext_endpoint',
    '_steadytext_entry_bytes', '_steadytext_frecency', '_steadytext_generate', '_steadytext_generate_key',
    '_steadytext_generation_request', '_steadytext_key_field', '_steadytext_max_tokens', '_steadytext_merge_metadata',
    '_steadytext_metadata_context', '_steadytext_model_selector', '_steadytext_record_hits', '_steadytext_rerank_key',
    '_steadytext_seed', '_steadytext_sentences', '_steadytext_template_variables', '_steadytext_text_result', 'st_auto_embed', 'st_auto_embed_drop',
    'st_cache_stats', 'st_cancel_async', 'st_check_async', 'st_check_async_batch', 'st_config_get', 'st_daemon_models',
    'st_daemon_status', 'st_deduplicate_facts', 'st_embed', 'st_embed_async', 'st_embed_batch', 'st_embed_batch_async',
    'st_embed_cached', 'st_extract_facts', 'st_generate', 'st_generate_async', 'st_generate_batch_async', 'st_generate_cached',
    'st_generate_choice', 'st_generate_json', 'st_generate_regex', 'st_generate_stream', 'st_get_async_result', 'st_prompt_get',
    'st_prompt_list', 'st_prompt_render', 'st_prompt_versions', 'st_rerank', 'st_rerank_async', 'st_rerank_batch',
    'st_rerank_batch_async', 'st_rerank_docs_only', 'st_rerank_top_k', 'st_summarize', 'st_summarize_accumulate',
    'st_summarize_combine', 'st_summarize_combine_states', 'st_summarize_final', 'st_summarize_finalize', 'st_summarize_partial',
    'st_summarize_text', 'st_version', 'steadytext_auto_embed', 'steadytext_auto_embed_drop', 'steadytext_cache_stats',
    'steadytext_cancel_async', 'steadytext_check_async', 'steadytext_check_async_batch', 'steadytext_config_get',
    'steadytext_daemon_models', 'steadytext_daemon_status', 'steadytext_deduplicate_facts', 'steadytext_embed',
    'steadytext_embed_async', 'steadytext_embed_batch', 'steadytext_embed_batch_async', 'steadytext_embed_cached',
    'steadytext_extract_facts', 'steadytext_generate', 'steadytext_generate_async', 'steadytext_generate_batch_async',
    'steadytext_generate_cached', 'steadytext_generate_choice', 'steadytext_generate_json', 'steadytext_generate_regex',
    'steadytext_generate_stream', 'steadytext_get_async_result', 'steadytext_prompt_get', 'steadytext_prompt_list',
    'steadytext_prompt_render', 'steadytext_prompt_versions', 'steadytext_rerank', 'steadytext_rerank_async',
    'steadytext_rerank_batch', 'steadytext_rerank_batch_async', 'steadytext_rerank_docs_only', 'steadytext_rerank_top_k',
    'steadytext_summarize', 'steadytext_summarize_accumulate', 'steadytext_summarize_combine',
    'steadytext_summarize_combine_states', 'steadytext_summarize_final', 'steadytext_summarize_finalize',
    'steadytext_summarize_partial', 'steadytext_summarize_text', 'steadytext_version']) AS f ORDER BY 1),
'PUBLIC executes exactly the allow-listed functions');

SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_config_set(text,text)', 'EXECUTE'), 'config_set is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_daemon_stop()', 'EXECUTE'), 'daemon_stop is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_daemon_start()', 'EXECUTE'), 'daemon_start is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_cache_clear()', 'EXECUTE'), 'cache_clear is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'st_cache_clear()', 'EXECUTE'), 'nor its alias');
SELECT ok(has_function_privilege('st_admin_user', 'steadytext_config_set(text,text)', 'EXECUTE'), 'steadytext_admin members may configure');
SELECT ok(has_function_privilege('st_admin_user', 'steadytext_daemon_stop()', 'EXECUTE'), 'and stop the daemon');

-- The prompt registry: admins write it, everyone renders from it.
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_prompt_create(text,text,text,jsonb)', 'EXECUTE'), 'prompt_create is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_prompt_update(text,text,jsonb)', 'EXECUTE'), 'prompt_update is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'steadytext_prompt_delete(text)', 'EXECUTE'), 'prompt_delete is not PUBLIC');
SELECT ok(NOT has_function_privilege('st_plain_user', 'st_prompt_delete(text)', 'EXECUTE'), 'nor its alias');
SELECT ok(has_function_privilege('st_admin_user', 'steadytext_prompt_create(text,text,text,jsonb)', 'EXECUTE'), 'steadytext_admin members may create prompts');
SELECT ok(NOT has_table_privilege('st_plain_user', 'steadytext_rate_limits', 'SELECT'), 'rate limits are private');
SELECT ok(NOT has_table_privilege('st_plain_user', 'steadytext_prompt_versions', 'SELECT'), 'prompt tables are not readable by PUBLIC');
SELECT ok(EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = 'steadytext_prompt_render' AND p.prosecdef
                  AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp']), 'rendering runs as definer with a fixed search_path');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'pg_steadytext')
                      AND p.prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
          'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');
SELECT lives_ok($$SELECT steadytext_prompt_create('privileges-probe', 'Hi {{ who }}')$$, 'an admin registers a prompt');

SELECT ok(NOT has_table_privilege('st_plain_user', 'steadytext_cache', 'SELECT'), 'the cache table is not readable by PUBLIC');
SELECT ok(NOT has_table_privilege('st_plain_user', 'steadytext_cache', 'INSERT'), 'nor writable: nobody can poison it');
SELECT ok(NOT has_table_privilege('st_plain_user', 'steadytext_audit_log', 'SELECT'), 'the audit log is private');

-- A plain user gets cached answers by key without seeing the table.
SELECT isnt(steadytext_generate_cached('privileges probe', 8), NULL, 'cache an answer');
SET LOCAL ROLE st_plain_user;
SELECT isnt(steadytext_generate('privileges probe', 8), NULL, 'a plain user gets the cached answer');
SELECT throws_ok($$SELECT count(*) FROM steadytext_cache$$, '42501', NULL, 'but cannot read the cache');
SELECT is(steadytext_prompt_render('privileges-probe', '{"who": "you"}'), 'Hi you', 'a plain user renders a registered prompt');
SELECT throws_ok($$SELECT _steadytext_call('shutdown', '{}')$$, '42501', 'permission denied to stop the steadytext daemon', 'nor shut the daemon down through the transport');
-- Hit counting takes cache keys and nothing else: no JSON can be smuggled into the message.
SELECT throws_ok($$SELECT _steadytext_record_hits(ARRAY['not a key'])$$, '22023', 'invalid steadytext cache key', 'hit counting rejects what is not a cache key');
SELECT throws_ok($$SELECT _steadytext_record_hits(ARRAY[repeat('a', 63) || '"'])$$, '22023', 'invalid steadytext cache key', 'including a quote that would end the JSON string');
SELECT throws_ok($$SELECT _steadytext_record_hits(ARRAY[repeat('a', 64) || 'a'])$$, '22023', 'invalid steadytext cache key', 'and keys that are too long');
SELECT lives_ok($$SELECT _steadytext_record_hits(NULL), _steadytext_record_hits('{}'), _steadytext_record_hits(ARRAY[NULL]::text[])$$, 'NULL, empty and NULL keys count nothing');
RESET ROLE;

-- Installing the extension grants nothing on a user's own tables.
DROP EXTENSION pg_steadytext;
CREATE TABLE public.users_own_table (id int);
CREATE EXTENSION pg_steadytext;
SELECT ok(NOT has_table_privilege('st_plain_user', 'public.users_own_table', 'SELECT'), 'no grants on users'' tables');
SELECT is((SELECT count(*)::int FROM information_schema.role_table_grants WHERE table_name = 'users_own_table' AND grantee = 'PUBLIC'), 0, 'none to PUBLIC');

SELECT * FROM finish();
ROLLBACK;
