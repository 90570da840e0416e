/*
 * st_hits_shmem.h
 *		Cache hits kept in shared memory for the daemon to take (preloaded
 *		library only).
 */
#ifndef ST_HITS_SHMEM_H
#define ST_HITS_SHMEM_H

#define ST_HIT_KEY_LENGTH 64

/* From _PG_init: ask for the ring's shared memory when the library is preloaded */
extern void st_hits_shmem_init(void);

/* Whether hits go to the ring: the library was preloaded and this is not a standby */
extern bool st_hits_shmem_available(void);

/* Append hits of the current database; never raises an error */
extern void st_hits_shmem_add(const char (*keys)[ST_HIT_KEY_LENGTH + 1], int nkeys);

#endif							/* ST_HITS_SHMEM_H */
