-- Generation from SQL: deterministic, cached, structured output valid for
-- its constraint, and streams that concatenate to the generated text.
BEGIN;
SELECT plan(30);

\ir helpers.psql

SELECT isnt(steadytext_generate('pgtap generation', 20), NULL, 'generate returns text');
SELECT is(steadytext_generate('pgtap generation', 20), steadytext_generate('pgtap generation', 20, false), 'same text from the cache and computed');
SELECT is(steadytext_generate('pgtap generation', 20, false), steadytext_generate('pgtap generation', 20, false), 'same text twice');
SELECT is(st_generate('pgtap generation', 20), steadytext_generate('pgtap generation', 20), 'st_generate is the same function');
SELECT ok(length(steadytext_generate('pgtap generation', 20)) > 0, 'the text is not empty');
SELECT is(steadytext_generate('pgtap generation', NULL), steadytext_generate('pgtap generation', 512), 'max_tokens NULL means the configured default (512)');
SELECT ok(steadytext_generate('pgtap eos', 40, eos_string := 'th') NOT LIKE '%th%', 'generation stops before a custom eos_string');
SELECT is(steadytext_generate('pgtap size', 10, size := 'large'), steadytext_generate('pgtap size', 10, size := 'large'), 'size large is deterministic');

-- generate_cached: the row is there as soon as it returns
SELECT isnt(steadytext_generate_cached('pgtap cached row', 12), NULL, 'generate_cached returns text');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_cache WHERE prompt = 'pgtap cached row'), 'and the row is committed already');

-- cache hits are counted by the sidecar, outside this transaction: in
-- batches of 256 keys, the rest when the transaction ends
SELECT ok(pg_temp.eventually($$SELECT EXISTS (SELECT 1 FROM steadytext_cache WHERE prompt = 'pgtap generation' AND response IS NOT NULL)$$), 'the generation was mirrored');
SELECT lives_ok($$SELECT count(steadytext_generate(substr('pgtap generation' || g, 1, 16), 20)) FROM generate_series(1, 256) g$$, '256 hits in one statement');
SELECT ok(pg_temp.eventually($$SELECT access_count > 256 FROM steadytext_cache WHERE prompt = 'pgtap generation' AND generation_params->>'max_tokens' = '20'$$), 'a full batch of hits is counted before the transaction ends');

-- JSON schema
SELECT lives_ok($$SELECT steadytext_generate_json('a person', '{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"ok":{"type":"boolean"},"tier":{"enum":["gold","silver"]}}}')::jsonb$$, 'generate_json casts to jsonb');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(steadytext_generate_json('a person', '{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"ok":{"type":"boolean"},"tier":{"enum":["gold","silver"]}}}')::jsonb) k),
          ARRAY['age', 'name', 'ok', 'tier'], 'the JSON has exactly the schema''s properties');
SELECT ok((steadytext_generate_json('a person', '{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"ok":{"type":"boolean"},"tier":{"enum":["gold","silver"]}}}')::jsonb ->> 'tier') IN ('gold', 'silver'), 'enum values are respected');
SELECT is(jsonb_typeof(steadytext_generate_json('a number', '{"type":"object","properties":{"n":{"type":"integer"}}}')::jsonb -> 'n'), 'number', 'integers are numbers');
SELECT is(jsonb_typeof(steadytext_generate_json('a list', '{"type":"object","properties":{"list":{"type":"array","items":{"type":"boolean"},"maxItems":3}}}')::jsonb -> 'list'), 'array', 'arrays work');
SELECT is(steadytext_generate_json('a person', '{"type":"object","properties":{"ok":{"type":"boolean"}}}'),
          steadytext_generate_json('a person', '{"type":"object","properties":{"ok":{"type":"boolean"}}}', use_cache := false), 'generate_json is deterministic, cached or not');

-- regex and choice
SELECT matches(steadytext_generate_regex('a date', '[0-9]{4}-[0-9]{2}-[0-9]{2}'), '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', 'the result matches the pattern');
SELECT matches(steadytext_generate_regex('a code', '(AB|CD)-\d{3}'), '^(AB|CD)-[0-9]{3}$', 'alternation and escapes');
SELECT is(steadytext_generate_regex('a code', '(AB|CD)-\d{3}'), steadytext_generate_regex('a code', '(AB|CD)-\d{3}', use_cache := false), 'regex generation is deterministic');
SELECT ok(steadytext_generate_choice('a colour', ARRAY['red', 'green', 'blue']) = ANY (ARRAY['red', 'green', 'blue']), 'the result is one of the choices');
SELECT ok(steadytext_generate_choice('sentiment', ARRAY['positive', 'negative', 'neutral ☺']) = ANY (ARRAY['positive', 'negative', 'neutral ☺']), 'non-ASCII choices');
SELECT is(steadytext_generate_choice('a colour', ARRAY['red', 'green', 'blue']), steadytext_generate_choice('a colour', ARRAY['red', 'green', 'blue'], use_cache := false), 'choice is deterministic');

-- streams
SELECT is((SELECT string_agg(c, '') FROM steadytext_generate_stream('pgtap stream', 30, false) c), steadytext_generate('pgtap stream', 30, false), 'a computed stream concatenates to the generated text');
SELECT ok((SELECT count(*) FROM steadytext_generate_stream('pgtap stream', 30, false)) > 1, 'a stream has several rows');
SELECT isnt(steadytext_generate_cached('pgtap stream', 30), NULL, 'cache the stream''s text');
SELECT is(ARRAY(SELECT steadytext_generate_stream('pgtap stream', 30)), ARRAY(SELECT steadytext_generate_stream('pgtap stream', 30, false)), 'a stream from the cache has the same rows as a computed one');
SELECT is(ARRAY(SELECT st_generate_stream('pgtap stream', 30)), ARRAY(SELECT steadytext_generate_stream('pgtap stream', 30)), 'st_generate_stream is the same function');

SELECT * FROM finish();
ROLLBACK;
