/*
 * st_cache_lookup.h
 *		What the cache fast path also answers for the transport.
 */
#ifndef ST_CACHE_LOOKUP_H
#define ST_CACHE_LOOKUP_H

#include "lib/stringinfo.h"

/*
 * Whether steadytext_rate_limits has a row for the session user (true when
 * that cannot be known), so the daemon checks limits only where they exist
 */
extern bool st_session_user_rate_limited(void);

/* The schema pg_steadytext is installed in, or InvalidOid */
extern Oid	st_extension_namespace(void);

/*
 * Build, at connection start, the catalog entries a first cached call needs;
 * how many tables were read, those left because of another session's lock
 * named in `skipped`. Needs a transaction and an active snapshot.
 */
extern int	st_cache_lookup_warm(Oid namespace, StringInfo skipped);

#endif							/* ST_CACHE_LOOKUP_H */
