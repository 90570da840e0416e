-- Cache management in SQL: statistics with a real hit rate, eviction by age
-- and by frecency (use counts and recency, not insertion order), previews,
-- usage analysis and the pg_cron entry point.
BEGIN;
SELECT plan(22);

DELETE FROM steadytext_cache;
-- Twelve entries: created 2..13 days ago; entry 1 and 2 are old but used a lot and recently.
INSERT INTO steadytext_cache (cache_key, kind, prompt, response, access_count, created_at, last_accessed)
SELECT 'key-' || i, 'generate', 'prompt ' || i, repeat('x', 100),
       CASE WHEN i <= 2 THEN 50 ELSE 1 END,
       now() - make_interval(days => 14 - i),
       CASE WHEN i <= 2 THEN now() - interval '1 minute' ELSE now() - make_interval(days => 14 - i) END
FROM generate_series(1, 12) i;

SELECT is((SELECT total_entries FROM steadytext_cache_stats()), 12::bigint, 'stats count entries');
SELECT is((SELECT round(cache_hit_rate::numeric, 4) FROM steadytext_cache_stats()), round((98.0 / 110)::numeric, 4), 'hit rate = hits / accesses');
SELECT ok((SELECT total_size_mb > 0 FROM steadytext_cache_stats()), 'size is measured');
SELECT is((SELECT oldest_entry < newest_entry FROM steadytext_cache_stats()), true, 'oldest and newest entries');

-- the view
SELECT ok((SELECT frecency_score FROM steadytext_cache_with_frecency WHERE cache_key = 'key-1')
          > (SELECT frecency_score FROM steadytext_cache_with_frecency WHERE cache_key = 'key-12'),
          'a much-used entry is more frecent than a newer unused one');
SELECT lives_ok($$SELECT frecency_score FROM steadytext_cache_with_frecency WHERE last_accessed < now() - interval '100 years'$$, 'ancient entries do not underflow exp()');
UPDATE steadytext_cache SET last_accessed = now() - interval '5000 days' WHERE cache_key = 'key-12';
SELECT is((SELECT frecency_score FROM steadytext_cache_with_frecency WHERE cache_key = 'key-12') >= 0, true, 'a 5000-day-old entry has a tiny, non-negative score');

-- preview: what frecency eviction would take first
SELECT is((SELECT array_agg(cache_key) FROM steadytext_cache_preview_eviction(3)), ARRAY['key-12', 'key-3', 'key-4'], 'preview lists the least frecent first (the long-unused entry, then the oldest)');
SELECT ok(NOT EXISTS (SELECT 1 FROM steadytext_cache_preview_eviction(10) WHERE cache_key IN ('key-1', 'key-2')), 'much-used entries are not previewed while others remain');

-- evict by frecency: the much-used old entries stay, although they are the oldest
SELECT results_eq($$SELECT evicted_count, remaining_entries FROM steadytext_cache_evict_by_frecency(target_entries => 4, min_age_hours => 0)$$,
                  $$VALUES (8, 4::bigint)$$, 'evicts down to the target');
SELECT is((SELECT array_agg(cache_key ORDER BY cache_key) FROM steadytext_cache), ARRAY['key-1', 'key-10', 'key-11', 'key-2'], 'the frequently used entries survive');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_audit_log WHERE event_type = 'cache_eviction' AND details->>'eviction_type' = 'frecency'), 'eviction is audited');

-- min_age_hours protects young entries
INSERT INTO steadytext_cache (cache_key, kind, prompt, response) VALUES ('young', 'generate', 'young', 'y');
SELECT results_eq($$SELECT evicted_count FROM steadytext_cache_evict_by_frecency(target_entries => 0, min_age_hours => 1)$$, $$VALUES (4)$$, 'only entries older than min_age_hours go');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_cache WHERE cache_key = 'young'), 'the young entry stays');

-- evict by age: oldest first, regardless of use
DELETE FROM steadytext_cache;
INSERT INTO steadytext_cache (cache_key, kind, prompt, response, access_count, created_at)
SELECT 'age-' || i, 'generate', 'p', 'r', CASE WHEN i = 1 THEN 99 ELSE 1 END, now() - make_interval(days => 10 - i)
FROM generate_series(1, 5) i;
SELECT results_eq($$SELECT evicted_count FROM steadytext_cache_evict_by_age(target_entries => 3, min_age_hours => 0)$$, $$VALUES (2)$$, 'evict_by_age evicts to the target');
SELECT is((SELECT array_agg(cache_key ORDER BY cache_key) FROM steadytext_cache), ARRAY['age-3', 'age-4', 'age-5'], 'the oldest went first, used or not');
SELECT throws_ok($$SELECT * FROM steadytext_cache_evict_by_age(batch_size => 0)$$, 'P0001', 'batch_size must be at least 1');

-- usage analysis
SELECT is((SELECT sum(entry_count)::int FROM steadytext_cache_analyze_usage()), 3, 'usage buckets cover every entry');
SELECT is((SELECT round(sum(percentage_of_cache)::numeric) FROM steadytext_cache_analyze_usage()), 100::numeric, 'percentages add up to 100');

-- scheduled eviction (for pg_cron) follows the configuration
UPDATE steadytext_config SET value = '1' WHERE key = 'cache_max_entries';
UPDATE steadytext_cache SET created_at = now() - interval '2 days';
SELECT lives_ok($$SELECT steadytext_cache_scheduled_eviction()$$, 'scheduled eviction runs');
SELECT is((SELECT count(*)::int FROM steadytext_cache), 1, 'and keeps cache_max_entries');

SELECT is(steadytext_cache_clear(), 1::bigint, 'clear returns how many entries it removed');

SELECT * FROM finish();
ROLLBACK;
