-- Bad input is an error with SQLSTATE P0001 and a clear message, whether or
-- not the daemon could answer: NULL, empty, negative, out of range, hostile.
BEGIN;
SELECT plan(49);

-- generation
SELECT throws_ok($$SELECT steadytext_generate(NULL)$$, 'P0001', 'Prompt cannot be null');
SELECT throws_ok($$SELECT steadytext_generate('')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate(E'  \t\n ')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate('hi', seed := -1)$$, 'P0001', 'seed must be non-negative');
SELECT throws_ok($$SELECT steadytext_generate('hi', 0)$$, 'P0001', 'max_tokens must be at least 1');
SELECT throws_ok($$SELECT steadytext_generate('hi', -5)$$, 'P0001', 'max_tokens must be at least 1');
SELECT throws_ok($$SELECT steadytext_generate('hi', 4097)$$, 'P0001', 'max_tokens cannot exceed 4096');
SELECT throws_ok($$SELECT steadytext_generate('hi', 2147483647)$$, 'P0001', 'max_tokens cannot exceed 4096');
SELECT throws_ok($$SELECT steadytext_generate('hi', eos_string := '')$$, 'P0001', 'eos_string cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate('hi', size := 'huge')$$, 'P0001', 'Invalid size ''huge''. Valid options are: mini, small, medium, large');
SELECT lives_ok($$SELECT steadytext_generate('hi', 4, size := s) FROM unnest(ARRAY['mini', 'small', 'medium', 'large']) AS s$$, 'the original''s four sizes are accepted');
SELECT throws_ok($$SELECT steadytext_generate('hi', unsafe_mode := true)$$, 'P0001', 'unsafe_mode=TRUE requires a model parameter');
SELECT throws_ok($$SELECT steadytext_embed('hi', unsafe_mode := true)$$, 'P0001', 'unsafe_mode=TRUE requires a model parameter');
SELECT throws_ok($$SELECT steadytext_generate('hi', model := 'openai:gpt-4o')$$, 'P0001', 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_like($$SELECT steadytext_generate('hi', model := 'nosuch:gpt-4o', unsafe_mode := true)$$, 'Unknown remote provider ''nosuch''; configured: openai%');
SELECT throws_ok($$SELECT steadytext_generate('hi', model_repo := 'a/b')$$, 'P0001', 'model_repo and model_filename must be given together');
SELECT throws_ok($$SELECT steadytext_generate('hi', model := 'no-such-model')$$, 'P0001', 'Unknown generation model ''no-such-model''; known models: gemma-mini-270m, gemma-3n-2b, gemma-3n-4b');
SELECT throws_ok($$SELECT steadytext_generate('hi', model_repo := 'a/b', model_filename := '../../etc/passwd')$$, 'P0001', 'model_filename ''../../etc/passwd'' must be a plain .gguf file name');
SELECT throws_like($$SELECT steadytext_generate(repeat('many words ', 3000), 10)$$, 'Prompt is too long: % tokens plus max_tokens 10 exceed the context window of % tokens');
SELECT throws_ok($$SELECT steadytext_generate_stream('')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_cached(NULL)$$, 'P0001', 'Prompt cannot be null');

-- structured generation
SELECT throws_ok($$SELECT steadytext_generate_json('hi', NULL)$$, 'P0001', 'Schema cannot be null');
SELECT throws_ok($$SELECT steadytext_generate_json('hi', '[1,2]')$$, 'P0001', 'Invalid JSON schema: the schema must be a JSON object');
SELECT throws_ok($$SELECT steadytext_generate_json('hi', '{"type":"string","pattern":"^a"}')$$, 'P0001', 'Invalid JSON schema: keyword ''pattern'' at $ is not supported for constrained generation');
SELECT throws_ok($$SELECT steadytext_generate_json('hi', '{}')$$, 'P0001', 'Invalid JSON schema: $ must say what it allows (type, const, enum, oneOf/anyOf or $ref)');
SELECT throws_ok($$SELECT steadytext_generate_regex('hi', NULL)$$, 'P0001', 'Pattern cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_generate_regex('hi', '')$$, 'P0001', 'Pattern cannot be null or empty');
SELECT throws_like($$SELECT steadytext_generate_regex('hi', '(a)\1')$$, 'Pattern cannot be used as a grammar: backreferences are not supported%');
SELECT throws_like($$SELECT steadytext_generate_regex('hi', '[unclosed')$$, 'Pattern cannot be used as a grammar: not a valid regular expression%');
SELECT throws_ok($$SELECT steadytext_generate_choice('hi', NULL)$$, 'P0001', 'Choices cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_generate_choice('hi', '{}')$$, 'P0001', 'Choices cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_generate_choice('hi', ARRAY['only'])$$, 'P0001', 'Must provide at least 2 choices');
SELECT throws_ok($$SELECT steadytext_generate_choice('hi', ARRAY['a', NULL])$$, 'P0001', 'Choices cannot contain null elements');

-- embeddings
SELECT throws_ok($$SELECT steadytext_embed(NULL)$$, 'P0001', 'Text cannot be null');
SELECT throws_ok($$SELECT steadytext_embed('')$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT steadytext_embed('x', seed := -3)$$, 'P0001', 'seed must be non-negative');
SELECT throws_ok($$SELECT steadytext_embed_cached('')$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_embed_batch(NULL)$$, 'P0001', 'Texts cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_embed_batch('{}')$$, 'P0001', 'Texts array cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_embed_batch(ARRAY['a', NULL, 'c'])$$, 'P0001', 'Text at position 2 cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_embed_batch(ARRAY['a', 'b', ' '])$$, 'P0001', 'Text at position 3 cannot be empty');

-- reranking
SELECT throws_ok($$SELECT * FROM steadytext_rerank(NULL, ARRAY['a'])$$, 'P0001', 'Query cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('', ARRAY['a'])$$, 'P0001', 'Query cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', NULL)$$, 'P0001', 'Documents cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', '{}')$$, 'P0001', 'Documents array cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', ARRAY['a', NULL])$$, 'P0001', 'Documents cannot contain null elements');
SELECT throws_ok($$SELECT * FROM steadytext_rerank_top_k('q', ARRAY['a'], 0)$$, 'P0001', 'top_k must be greater than 0');
SELECT throws_ok($$SELECT * FROM steadytext_rerank_top_k('q', ARRAY['a'], NULL)$$, 'P0001', 'top_k must be greater than 0');
SELECT throws_ok($$SELECT * FROM steadytext_rerank_batch(NULL, ARRAY['a'])$$, 'P0001', 'Queries cannot be null or empty');

SELECT * FROM finish();
ROLLBACK;
