-- Embeddings and reranking from SQL: unit vectors, batches equal to single
-- calls, rankings best first with deterministic ties, cached and not.
BEGIN;
SELECT plan(29);

\ir helpers.psql

-- embeddings
SELECT is(vector_dims(steadytext_embed('pgtap embedding')), 1024, 'vector(1024)');
SELECT ok(abs(vector_norm(steadytext_embed('pgtap embedding')) - 1) < 1e-6, 'unit length');
SELECT is(steadytext_embed('pgtap embedding')::text, steadytext_embed('pgtap embedding', false)::text, 'cached equals computed, bit for bit');
SELECT isnt(steadytext_embed('pgtap embedding')::text, steadytext_embed('another text')::text, 'different texts differ');
SELECT is(st_embed('pgtap embedding')::text, steadytext_embed('pgtap embedding')::text, 'st_embed is the same function');
SELECT ok(steadytext_embed('cats and kittens') <=> steadytext_embed('kittens and cats') < steadytext_embed('cats and kittens') <=> steadytext_embed('bond market yields'),
          'texts sharing words are nearer (the test model pools over tokens)');
SELECT is((SELECT count(*)::int FROM steadytext_embed_batch(ARRAY['one', 'two', 'three', 'two'])), 4, 'a batch returns one row per text');
SELECT is((SELECT array_agg(idx ORDER BY idx) FROM steadytext_embed_batch(ARRAY['one', 'two', 'three'])), ARRAY[1, 2, 3], 'idx counts from 1');
SELECT ok(NOT EXISTS (
    SELECT 1 FROM steadytext_embed_batch(ARRAY['batch a', 'batch b', 'naïve 日本', 'batch a'], false) b
    WHERE b.embedding::text IS DISTINCT FROM steadytext_embed((ARRAY['batch a', 'batch b', 'naïve 日本', 'batch a'])[b.idx], false)::text),
  'each batch vector equals the single-call vector, bit for bit');
SELECT ok(NOT EXISTS (
    SELECT 1 FROM steadytext_embed_batch(ARRAY['batch a', 'mixed new text', 'batch b']) b
    WHERE b.embedding::text IS DISTINCT FROM steadytext_embed((ARRAY['batch a', 'mixed new text', 'batch b'])[b.idx], false)::text),
  'a batch mixing cached and new texts is still right');
SELECT isnt(steadytext_embed_cached('pgtap embed cached'), NULL, 'embed_cached returns a vector');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_cache WHERE prompt = 'pgtap embed cached' AND embedding IS NOT NULL), 'and its row is committed');

-- reranking
SELECT is((SELECT count(*)::int FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])), 4, 'one row per document');
SELECT ok((SELECT bool_and(score BETWEEN 0 AND 1) FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])), 'scores are probabilities');
SELECT ok((SELECT bool_and(ordered) FROM (
             SELECT score <= lag(score) OVER (ORDER BY ordinality) OR lag(score) OVER (ORDER BY ordinality) IS NULL AS ordered
             FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr']) WITH ORDINALITY) t),
          'best first');
SELECT is(ARRAY(SELECT document FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])),
          ARRAY(SELECT document FROM steadytext_rerank_docs_only('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])),
          'docs_only gives the same order');
SELECT is(ARRAY(SELECT row(document, score)::text FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])),
          ARRAY(SELECT row(document, score)::text FROM steadytext_rerank('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'])),
          'deterministic');
SELECT is((SELECT (count(*) FILTER (WHERE score IS NOT NULL))::int FROM steadytext_rerank('cats', ARRAY['same', 'same', 'same'])), 3, 'equal documents are each scored');
-- Distinct documents with equal scores (cached rows with one score), so the order shows.
INSERT INTO steadytext_cache (cache_key, kind, prompt, response, score)
SELECT _steadytext_rerank_key('reranking:default', 'tie query', d,
                              'Given a web search query, retrieve relevant passages that answer the query', 42),
       'rerank', 'tie query', d, 0.5
FROM unnest(ARRAY['tie c', 'tie a', 'tie b']) AS d;
SELECT is(ARRAY(SELECT document FROM steadytext_rerank('tie query', ARRAY['tie c', 'tie a', 'tie b'])), ARRAY['tie c', 'tie a', 'tie b'], 'ties keep the input order');
SELECT is(ARRAY(SELECT document FROM steadytext_rerank('tie query', ARRAY['tie b', 'tie c', 'tie a'])), ARRAY['tie b', 'tie c', 'tie a'], 'whatever that order is');
SELECT is((SELECT count(*)::int FROM steadytext_rerank_top_k('cats', ARRAY['a cat', 'the market', 'dogs', 'cats purr'], 2)), 2, 'top_k limits the rows');
SELECT is((SELECT (count(*) FILTER (WHERE score IS NULL))::int FROM steadytext_rerank('cats', ARRAY['a', 'b'], return_scores := false)), 2, 'return_scores false gives NULL scores');
SELECT is((SELECT array_agg(DISTINCT query_index ORDER BY query_index) FROM steadytext_rerank_batch(ARRAY['cats', 'markets'], ARRAY['a cat', 'the market'])), ARRAY[0, 1], 'batch query_index counts from 0, as the original');
SELECT ok(pg_temp.eventually($$SELECT count(*) = 4 FROM steadytext_cache WHERE kind = 'rerank' AND prompt = 'cats' AND response = ANY (ARRAY['a cat', 'the market', 'dogs', 'cats purr'])$$),
          'each (query, document) score is cached');
SELECT is(ARRAY(SELECT document || ' ' || score FROM steadytext_rerank('cats', ARRAY['cats purr', 'a cat', 'brand new document'])),
          ARRAY(SELECT (p ->> 0) || ' ' || (p ->> 1)::float8
                FROM jsonb_array_elements(_steadytext_call('rerank', '{"query": "cats", "documents": ["cats purr", "a cat", "brand new document"], "use_cache": false}')) p),
          'cached and new documents combine into the ranking the daemon computes afresh');

-- The daemon writes vectors into steadytext_cache as little-endian float32 bytes.
SELECT is(_steadytext_real4_from_f32le('\x0000803f000000c0ffff7f7f01000000'::bytea),
          ARRAY[1, -2, 3.4028235e38, 1e-45]::real[],
          'float32 bytes decode exactly, the largest and the smallest float included');
SELECT throws_ok($$SELECT _steadytext_real4_from_f32le('\x000080'::bytea)$$, '22P03', NULL,
                 'bytes that are not whole float32s are refused');
SELECT isnt(steadytext_embed_cached('written as bytes'), NULL, 'the daemon computes a vector and commits it to the cache');
SELECT is((SELECT embedding FROM steadytext_cache
           WHERE cache_key = _steadytext_embed_key('embedding:default', 'written as bytes', 42, 'query')),
          steadytext_embed('written as bytes', false),
          'the vector it wrote as bytes equals a fresh computation, bit for bit');

SELECT * FROM finish();
ROLLBACK;
