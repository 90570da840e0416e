/*
 * st_cache_lookup.h
 *		What the cache fast path also answers for the transport.
 */
#ifndef ST_CACHE_LOOKUP_H
#define ST_CACHE_LOOKUP_H

/*
 * Whether steadytext_rate_limits has a row for the session user (true when
 * that cannot be known), so the daemon checks limits only where they exist
 */
extern bool st_session_user_rate_limited(void);

#endif							/* ST_CACHE_LOOKUP_H */
