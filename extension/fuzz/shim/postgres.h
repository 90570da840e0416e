/*
 * postgres.h for the fuzzing harness: st_reply.c compiled as frontend code,
 * against libpgcommon's JSON parser and palloc (fe_memutils), outside any
 * PostgreSQL server.
 */
#include "postgres_fe.h"
