-- Per-user limits in steadytext_rate_limits are enforced on calls that reach
-- a model; answers already cached are never limited. The daemon counts in
-- its own transactions, so this file commits (and cleans up after itself).
SELECT plan(9);

SELECT isnt(steadytext_generate_cached('rate limited, cached first', 8), NULL, 'an answer committed to the cache, to serve later');
INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour, requests_per_day)
VALUES (session_user, 2, 100, 1000);

SELECT isnt(steadytext_generate('rate limited 1', 4, use_cache := false), NULL, 'the first call of the minute reaches the model');
SELECT isnt(steadytext_embed('rate limited 2', use_cache := false)::text, NULL, 'so does the second (any kind of call counts)');
SELECT throws_ok($$SELECT steadytext_generate('rate limited 3', 4, use_cache := false)$$, 'P0001',
  'Rate limit exceeded for user "' || session_user || '": 2 requests per minute', 'the third is refused with the limit it broke');
SELECT is(steadytext_generate('rate limited, cached first', 8), steadytext_generate_cached('rate limited, cached first', 8),
  'a cached answer is still served: cache hits are never limited');
SELECT is((SELECT (current_minute_count, current_hour_count, current_day_count)::text FROM steadytext_rate_limits WHERE user_id = session_user),
  '(2,2,2)', 'the admitted calls were counted in every window, the refused one in none');

-- A window that has run out starts again.
UPDATE steadytext_rate_limits SET last_reset_minute = now() - interval '61 seconds' WHERE user_id = session_user;
SELECT isnt(steadytext_generate('rate limited 4', 4, use_cache := false), NULL, 'once its minute is over the user may call again');
SELECT is((SELECT (current_minute_count, current_hour_count)::text FROM steadytext_rate_limits WHERE user_id = session_user),
  '(1,3)', 'the minute window restarted, the hour window did not');

DELETE FROM steadytext_rate_limits WHERE user_id = session_user;
SELECT isnt(steadytext_generate('rate limited 5', 4, use_cache := false), NULL, 'a user without a row is not limited');

SELECT * FROM finish();
