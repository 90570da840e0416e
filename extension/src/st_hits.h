/*
 * st_hits.h
 *		Cache hit counting for the SQL fast path, batched per transaction.
 */
#ifndef ST_HITS_H
#define ST_HITS_H

/* Count one cache hit on `key` (a sha256 hex cache key); sent later, in a batch */
extern void st_hits_record(const char *key);

#endif							/* ST_HITS_H */
