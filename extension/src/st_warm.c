/*
 * st_warm.c
 *		Connection warm-up: the catalog work of a session's first call, done
 *		while the connection is being set up.
 *
 * A new backend knows nothing about pg_steadytext's functions and tables:
 * its first cached call looks them up and builds their cache entries, which
 * makes it 3-4 times slower than the second (PostgreSQL charges the same for
 * the first read of any table). With pg_steadytext_warm in
 * session_preload_libraries, that work happens before the connection is
 * handed to the client, where a pool that opens connections ahead of need
 * does not wait for it. Nothing here calls the daemon, waits for a lock or
 * can refuse a connection: whatever goes wrong is logged and left to the
 * first call, as without the warm-up.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "replication/walsender.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/catcache.h"
#include "utils/syscache.h"

#include "st_cache_key.h"
#include "st_cache_lookup.h"

/* The functions statements call once per row: their lookups, call handlers and result output functions */
static const char *const st_warm_functions[] = {"steadytext_generate", "steadytext_embed"};

/*
 * Look each overload of the hot functions up as the parser does (the catalog
 * cache's list by name) and set up its call and its result's output function.
 * How many overloads there were.
 */
static int
warm_functions(Oid namespace)
{
	int			warmed = 0;

	for (size_t i = 0; i < lengthof(st_warm_functions); i++)
	{
		CatCList   *overloads = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(st_warm_functions[i]));

		for (int j = 0; j < overloads->n_members; j++)
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&overloads->members[j]->tuple);
			FmgrInfo	call;
			FmgrInfo	output;
			Oid			typoutput;
			bool		isvarlena;

			if (proc->pronamespace != namespace)
				continue;
			fmgr_info(proc->oid, &call);
			getTypeOutputInfo(proc->prorettype, &typoutput, &isvarlena);
			fmgr_info(typoutput, &output);
			warmed++;
		}
		ReleaseSysCacheList(overloads);
	}
	return warmed;
}

/*
 * The warm-up itself. PostgreSQL loads session_preload_libraries inside the
 * connection's start-up transaction, where an error would end the connection
 * (there is no query loop to catch it yet): the work runs in a
 * subtransaction, and an error rolls back only that and is logged.
 */
static void
warm_in_subtransaction(void)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	instr_time	started;
	instr_time	elapsed;

	INSTR_TIME_SET_CURRENT(started);
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		Oid			namespace;

		st_cache_key_warm_up();
		PushActiveSnapshot(GetTransactionSnapshot());
		namespace = st_extension_namespace();
		if (OidIsValid(namespace))
		{
			StringInfoData skipped;
			int			tables;
			int			functions;

			initStringInfo(&skipped);
			tables = st_cache_lookup_warm(namespace, &skipped);
			functions = warm_functions(namespace);
			/* A statement's first unqualified name computes the session's search path */
			list_free(fetch_search_path(false));
			INSTR_TIME_SET_CURRENT(elapsed);
			INSTR_TIME_SUBTRACT(elapsed, started);
			ereport(DEBUG1,
					(errmsg_internal("pg_steadytext: session warmed up in %.3f ms: %d tables read, %d functions resolved",
									 INSTR_TIME_GET_MILLISEC(elapsed), tables, functions),
					 skipped.len > 0 ? errdetail_internal("Locked by another session, left for the first call: %s.", skipped.data) : 0));
		}
		PopActiveSnapshot();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(LOG,
				(errmsg("pg_steadytext: the session warm-up failed; the first call will do its work: %s", error->message)));
		FreeErrorData(error);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;
}

/*
 * Called by pg_steadytext_warm's _PG_init at session start. Only a regular
 * backend connected to a database warms up: not a walsender, nor a
 * background or parallel worker (which load the session's libraries too).
 */
PGDLLEXPORT void st_warm_session(void);

void
st_warm_session(void)
{
	if (!IsUnderPostmaster || MyBackendType != B_BACKEND || am_walsender || IsBinaryUpgrade ||
		!OidIsValid(MyDatabaseId) || !IsTransactionState())
		return;
	warm_in_subtransaction();
}
