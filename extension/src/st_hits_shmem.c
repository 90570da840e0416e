/*
 * st_hits_shmem.c
 *		Cache hits kept in shared memory for the daemon to take, when the
 *		library is in shared_preload_libraries.
 *
 * Sending hits over ZeroMQ costs each new backend a ZeroMQ context, two
 * threads and a connection the first time it serves a hit: most of a new
 * session's first cached call. With the library preloaded, backends instead
 * append their hits to a ring in shared memory (a memcpy under a lock), and
 * the daemon takes them about once a second through
 * _steadytext_take_hits(), over the database connection it already holds.
 * Counting stays best effort: a full ring overwrites its oldest hits until
 * a daemon takes them. A standby cannot be asked by the daemon, so its
 * backends keep the ZeroMQ path.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "st_hits_shmem.h"

PG_FUNCTION_INFO_V1(steadytext_take_hits);

/* Hits the ring holds: about 1.2 MB of shared memory */
#define ST_HITS_RING_SIZE 16384
#define ST_HITS_LOCK_TRANCHE "pg_steadytext hits"

typedef struct StHitsEntry
{
	Oid			database;
	char		key[ST_HIT_KEY_LENGTH + 1];
} StHitsEntry;

typedef struct StHitsRing
{
	LWLock	   *lock;
	uint32		next;			/* where the next hit goes */
	uint32		used;			/* hits held, oldest at (next - used) */
	StHitsEntry entries[ST_HITS_RING_SIZE];
} StHitsRing;

static StHitsRing *st_ring = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

static void
hits_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(StHitsRing));
	RequestNamedLWLockTranche(ST_HITS_LOCK_TRANCHE, 1);
}

static void
hits_shmem_startup(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	st_ring = ShmemInitStruct("pg_steadytext hits", sizeof(StHitsRing), &found);
	if (!found)
	{
		st_ring->lock = &(GetNamedLWLockTranche(ST_HITS_LOCK_TRANCHE))->lock;
		st_ring->next = 0;
		st_ring->used = 0;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
st_hits_shmem_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hits_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hits_shmem_startup;
}

bool
st_hits_shmem_available(void)
{
	return st_ring != NULL && !RecoveryInProgress();
}

void
st_hits_shmem_add(const char (*keys)[ST_HIT_KEY_LENGTH + 1], int nkeys)
{
	int			i;

	if (st_ring == NULL)
		return;
	LWLockAcquire(st_ring->lock, LW_EXCLUSIVE);
	for (i = 0; i < nkeys; i++)
	{
		StHitsEntry *entry = &st_ring->entries[st_ring->next];

		entry->database = MyDatabaseId;
		memcpy(entry->key, keys[i], ST_HIT_KEY_LENGTH + 1);
		st_ring->next = (st_ring->next + 1) % ST_HITS_RING_SIZE;
		/* Full: the oldest hit is overwritten, uncounted */
		if (st_ring->used < ST_HITS_RING_SIZE)
			st_ring->used++;
	}
	LWLockRelease(st_ring->lock);
}

static int
compare_entries(const void *a, const void *b)
{
	const StHitsEntry *x = a;
	const StHitsEntry *y = b;

	if (x->database != y->database)
		return x->database < y->database ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * _steadytext_take_hits() returns table (database text, cache_key text, hits integer)
 *		Every hit the ring holds, from all databases, counted per key; the
 *		ring is empty afterwards. Empty when the library is not preloaded.
 */
Datum
steadytext_take_hits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StHitsEntry *taken = NULL;
	uint32		ntaken = 0;
	uint32		i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC | MAT_SRF_BLESS);
	if (st_ring == NULL)
		PG_RETURN_NULL();

	LWLockAcquire(st_ring->lock, LW_EXCLUSIVE);
	if (st_ring->used > 0)
	{
		uint32		start = (st_ring->next + ST_HITS_RING_SIZE - st_ring->used) % ST_HITS_RING_SIZE;

		/* Allocated under the lock, but only when there is something to take */
		taken = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(StHitsEntry) * st_ring->used, MCXT_ALLOC_NO_OOM);
		if (taken != NULL)
		{
			ntaken = st_ring->used;
			for (i = 0; i < ntaken; i++)
				taken[i] = st_ring->entries[(start + i) % ST_HITS_RING_SIZE];
			st_ring->used = 0;
		}
	}
	LWLockRelease(st_ring->lock);

	qsort(taken, ntaken, sizeof(StHitsEntry), compare_entries);
	for (i = 0; i < ntaken;)
	{
		uint32		run = i + 1;
		char	   *name;

		while (run < ntaken && compare_entries(&taken[i], &taken[run]) == 0)
			run++;
		/* A database dropped since is skipped */
		name = get_database_name(taken[i].database);
		if (name != NULL)
		{
			Datum		values[3] = {CStringGetTextDatum(name), CStringGetTextDatum(taken[i].key), Int32GetDatum((int32) (run - i))};
			bool		nulls[3] = {false, false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		i = run;
	}
	PG_RETURN_NULL();
}
