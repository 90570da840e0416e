-- Per-user limits in steadytext_rate_limits are enforced on calls that reach
-- a model; answers already cached are never limited. The daemon counts in
-- its own transactions, so this file commits (and cleans up after itself).
SELECT plan(10);

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

-- The daemon writes the user into its statement as a quoted literal: hostile names must match exactly.
CREATE ROLE "rate o'brien \ $1 ""x""";
INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('rate o''brien \ $1 "x"', 0);
SET SESSION AUTHORIZATION "rate o'brien \ $1 ""x""";
DO $$
BEGIN
    PERFORM steadytext_generate('rate limited quoted', 4, use_cache := false);
    PERFORM set_config('steadytext_test.refusal', 'admitted', false);
EXCEPTION WHEN raise_exception THEN
    PERFORM set_config('steadytext_test.refusal', SQLERRM, false);
END
$$;
RESET SESSION AUTHORIZATION;
SELECT is(current_setting('steadytext_test.refusal'), 'Rate limit exceeded for user "rate o''brien \ $1 "x"": 0 requests per minute',
  'a user name with quotes, a backslash and $1 finds its own row');
DELETE FROM steadytext_rate_limits WHERE user_id = 'rate o''brien \ $1 "x"';
DROP ROLE "rate o'brien \ $1 ""x""";

SELECT * FROM finish();
