-- A table that embeds itself, searched with pgvector through an HNSW index.
-- Run it with psql against a database with pg_steadytext and a running
-- sidecar (npm run stack -- up). test/integration/auto-embed.test.ts runs
-- these same statements.

-- 1. A table of articles, and a category to filter on.
CREATE TABLE articles (
    id bigserial PRIMARY KEY,
    category text NOT NULL,
    title text NOT NULL,
    body text NOT NULL
);
INSERT INTO articles (category, title, body)
SELECT (ARRAY['databases', 'cooking', 'travel', 'gardening', 'music', 'sports', 'finance', 'health', 'movies', 'science'])[1 + g % 10],
       'Article ' || g,
       'Notes number ' || g || ' about ' || (ARRAY['indexes', 'recipes', 'trains', 'roses', 'guitars', 'tennis', 'bonds', 'sleep', 'actors', 'atoms'])[1 + g % 10]
FROM generate_series(1, 600) AS g;

-- 2. Embed "title: body" of every row, now and whenever a row changes. This
--    adds the column articles.embedding vector(1024), the triggers and an
--    HNSW index (cosine), and queues the existing rows; the sidecar's worker
--    fills them in. It returns the number of rows queued.
SELECT steadytext_auto_embed('articles', NULL, template := '{title}: {body}');

-- 3. Progress: rows embedded, pending, failed, last error, rows per second.
SELECT rows_total, rows_embedded, rows_pending, rows_failed, last_error, rows_per_second
FROM steadytext_auto_embed_status WHERE source = 'articles'::regclass;

-- 4. Nearest neighbours of a question, through the index. A filter is applied
--    after the index scan, so a selective one can leave fewer than LIMIT rows;
--    pgvector 0.8's iterative scan keeps scanning until there are enough.
SET hnsw.iterative_scan = relaxed_order;
SELECT id, title
FROM articles
WHERE category = 'databases'
ORDER BY embedding <=> steadytext_embed('how do indexes work')
LIMIT 10;
