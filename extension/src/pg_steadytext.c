/*
 * pg_steadytext.c
 *		Deterministic text generation, embeddings and reranking for
 *		PostgreSQL: the module's entry point.
 *
 * The C part is deliberately thin: configuration and the ZeroMQ transport
 * to the SteadyText daemon. Argument checks, the cache fast path and the
 * SQL surface live in the extension's SQL script.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "st_cache_key.h"
#include "st_guc.h"
#include "st_hits_shmem.h"
#include "st_vectors.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Module load: define the configuration parameters; preloaded, also the hits'
 * shared memory and what every backend would otherwise set up on its first
 * call (no sockets here: see st_client.c)
 */
void
_PG_init(void)
{
	st_guc_init();
	st_vectors_init();
	st_hits_shmem_init();
	st_guc_reserve_prefix();
	if (process_shared_preload_libraries_in_progress)
		st_cache_key_warm_up();
}
