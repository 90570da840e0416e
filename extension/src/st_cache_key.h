/*
 * st_cache_key.h
 *		The cache key in C (the same bytes as sidecar/src/cache/key.ts).
 */
#ifndef ST_CACHE_KEY_H
#define ST_CACHE_KEY_H

#define ST_CACHE_KEY_LENGTH 64

/* One named field of the key material; value is in the database encoding */
typedef struct StKeyField
{
	const char *name;
	const char *value;
	int			len;
} StKeyField;

/* The hex SHA-256 cache key (ST_CACHE_KEY_LENGTH digits and a NUL) into `out` */
extern void st_cache_key(const char *kind, const char *model_sha256,
						 const StKeyField *fields, int nfields, char *out);

/* From _PG_init when the library is preloaded: set up the hash in the postmaster, for every backend */
extern void st_cache_key_warm_up(void);

#endif							/* ST_CACHE_KEY_H */
