/*
 * pg_steadytext_warm.c
 *		A module for session_preload_libraries: every new session of a
 *		database where pg_steadytext is installed does its first call's
 *		catalog work while connecting (st_warm.c).
 *
 *		session_preload_libraries = 'pg_steadytext_warm'
 *
 * pg_steadytext itself cannot be that module when it is also in
 * shared_preload_libraries: a library the postmaster loaded is not
 * initialised again in a backend, so it would never see the session start.
 * This one calls into it, loading it first if no one preloaded it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	void		(*warm_session) (void);

	if (process_shared_preload_libraries_in_progress)
	{
		ereport(WARNING,
				(errmsg("pg_steadytext_warm does nothing in shared_preload_libraries"),
				 errhint("List it in session_preload_libraries.")));
		return;
	}
	warm_session = (void (*) (void)) load_external_function("$libdir/pg_steadytext", "st_warm_session", true, NULL);
	warm_session();
}
