/*
 * st_cache_lookup.c
 *		The cache fast path in C: compute the key, read steadytext_cache
 *		through its unique index, count the hit.
 *
 * A statement that calls steadytext_generate or steadytext_embed once per
 * row pays this for every row, so it runs no SQL: the key is hashed here
 * (st_cache_key.c) and the row is read with a direct index scan under the
 * caller's snapshot. What the key needs besides the arguments (the model's
 * identity from steadytext_models, default_max_tokens from steadytext_config,
 * the relations' oids) is remembered for as long as the snapshot is the same
 * one, so a statement looks each of them up once and never sees a value its
 * snapshot would not show.
 *
 * Reads by key bypass table privileges on purpose, like the SECURITY DEFINER
 * SQL functions they replace: knowing a key means knowing the inputs, and the
 * answer is deterministic. A miss of the default model goes to the daemon
 * from here too, with the params the SQL implementation sends (a statement
 * that misses on every row pays no PL/pgSQL either). Anything this path does
 * not handle (a model chosen by name, a NULL that needs a configured default,
 * bad input) goes to the SQL implementation, which decides errors and the
 * daemon call exactly as before.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* The backend's local transaction id: a member of vxid from PostgreSQL 17 on */
#if PG_VERSION_NUM >= 170000
#define ST_MY_LXID (MyProc->vxid.lxid)
#else
#define ST_MY_LXID (MyProc->lxid)
#endif

#include "st_cache_key.h"
#include "st_cache_lookup.h"
#include "st_functions.h"
#include "st_hits.h"
#include "st_vectors.h"

PG_FUNCTION_INFO_V1(steadytext_generate_key);
PG_FUNCTION_INFO_V1(steadytext_embed_key);
PG_FUNCTION_INFO_V1(steadytext_rerank_key);
PG_FUNCTION_INFO_V1(steadytext_cached_text);
PG_FUNCTION_INFO_V1(steadytext_cached_embedding);
PG_FUNCTION_INFO_V1(steadytext_generate_fast);
PG_FUNCTION_INFO_V1(steadytext_embed_fast);

#define ST_MAX_SELECTORS 8
#define ST_MAX_SELECTOR_LEN 256
#define ST_MAX_TOKENS_LIMIT 4096
#define ST_EMBEDDING_DIMENSIONS 1024

/* A table and the unique index it is read through */
typedef struct StKeyedTable
{
	Oid			rel;
	Oid			index;
} StKeyedTable;

/* Which snapshot a memo was filled under: a memo is good while the statement reads the same one */
typedef struct StSnapshotStamp
{
	bool		valid;
	LocalTransactionId lxid;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint64		completions;
} StSnapshotStamp;

static bool
stamp_matches(const StSnapshotStamp *stamp, Snapshot snapshot)
{
	return stamp->valid && stamp->lxid == ST_MY_LXID &&
		stamp->xmin == snapshot->xmin && stamp->xmax == snapshot->xmax &&
		stamp->curcid == snapshot->curcid && stamp->completions == snapshot->snapXactCompletionCount;
}

static void
stamp_take(StSnapshotStamp *stamp, Snapshot snapshot)
{
	stamp->lxid = ST_MY_LXID;
	stamp->xmin = snapshot->xmin;
	stamp->xmax = snapshot->xmax;
	stamp->curcid = snapshot->curcid;
	stamp->completions = snapshot->snapXactCompletionCount;
	stamp->valid = true;
}

/* What the fast path looked up, valid while the snapshot stays the same */
typedef struct StMemo
{
	StSnapshotStamp stamp;
	Oid			namespace;

	StKeyedTable cache;
	StKeyedTable models;
	StKeyedTable config;
	AttrNumber	cache_kind;
	AttrNumber	cache_response;
	AttrNumber	cache_embedding;
	AttrNumber	models_sha256;
	AttrNumber	config_value;

	int			nselectors;
	char		selectors[ST_MAX_SELECTORS][ST_MAX_SELECTOR_LEN];
	/* A model's sha256, or "" when steadytext_models has no row for it */
	char		model_sha256[ST_MAX_SELECTORS][ST_CACHE_KEY_LENGTH + 1];

	/* default_max_tokens: 0 = not looked up yet, -1 = not a plain integer (the SQL path decides) */
	int			default_max_tokens;
} StMemo;

static StMemo st_memo;

/* The snapshot reads use: the query's, or the transaction's outside one */
static Snapshot
read_snapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

/* A relation of the extension's schema, or an error naming it */
static Oid
extension_relation(const char *name, Oid namespace)
{
	Oid			relid = get_relname_relid(name, namespace);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("pg_steadytext's relation \"%s\" is missing", name),
				 errhint("Reinstall the extension.")));
	return relid;
}

static AttrNumber
extension_column(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("pg_steadytext's column \"%s\" is missing", name),
				 errhint("Reinstall the extension.")));
	return attnum;
}

/* What a call site keeps between calls (fn_extra): its function's schema, its SQL fallback, pgvector's cast */
typedef struct StCallSite
{
	Oid			namespace;
	FmgrInfo   *fallback;
	FmgrInfo   *to_vector;
} StCallSite;

static StCallSite *
call_site(FunctionCallInfo fcinfo)
{
	StCallSite *site = (StCallSite *) fcinfo->flinfo->fn_extra;

	if (site == NULL)
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(StCallSite));
		site->namespace = get_func_namespace(fcinfo->flinfo->fn_oid);
		fcinfo->flinfo->fn_extra = site;
	}
	return site;
}

/* The memo for this snapshot in the extension's schema `namespace` */
static StMemo *
memo_in(Oid namespace, Snapshot snapshot)
{
	if (stamp_matches(&st_memo.stamp, snapshot) && st_memo.namespace == namespace)
		return &st_memo;

	st_memo.stamp.valid = false;
	st_memo.cache.rel = extension_relation("steadytext_cache", namespace);
	st_memo.cache.index = extension_relation("idx_steadytext_cache_key", namespace);
	st_memo.models.rel = extension_relation("steadytext_models", namespace);
	st_memo.models.index = extension_relation("steadytext_models_pkey", namespace);
	st_memo.cache_kind = extension_column(st_memo.cache.rel, "kind");
	st_memo.cache_response = extension_column(st_memo.cache.rel, "response");
	st_memo.cache_embedding = extension_column(st_memo.cache.rel, "embedding");
	st_memo.models_sha256 = extension_column(st_memo.models.rel, "model_sha256");
	st_memo.config.rel = InvalidOid;
	st_memo.nselectors = 0;
	st_memo.default_max_tokens = 0;
	st_memo.namespace = namespace;
	stamp_take(&st_memo.stamp, snapshot);
	return &st_memo;
}

/* The memo for this snapshot in the schema of the calling function */
static StMemo *
memo_for(FunctionCallInfo fcinfo, Snapshot snapshot)
{
	return memo_in(call_site(fcinfo)->namespace, snapshot);
}

/* steadytext_config in the memo, looked up on first need (only some calls read it) */
static void
memo_config(StMemo *memo)
{
	if (OidIsValid(memo->config.rel))
		return;
	memo->config.rel = extension_relation("steadytext_config", memo->namespace);
	memo->config.index = extension_relation("steadytext_config_pkey", memo->namespace);
	memo->config_value = extension_column(memo->config.rel, "value");
}

/*
 * Read the row whose unique text key is `key` and copy the wanted columns
 * (detoasted) into the current memory context. False when there is none.
 */
static bool
fetch_row(const StKeyedTable *table, const char *key, Snapshot snapshot,
		  int ncolumns, const AttrNumber *columns, Datum *values, bool *nulls)
{
	Relation	rel = table_open(table->rel, AccessShareLock);
	Relation	index = index_open(table->index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData scankey;
	bool		found = false;
	int			i;

	ScanKeyEntryInitialize(&scankey, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(key));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &scankey, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TupleDesc	desc = RelationGetDescr(rel);

		found = true;
		for (i = 0; i < ncolumns; i++)
		{
			Form_pg_attribute attr = TupleDescAttr(desc, columns[i] - 1);
			Datum		value = slot_getattr(slot, columns[i], &nulls[i]);

			if (nulls[i])
				values[i] = (Datum) 0;
			else if (attr->attlen == -1)
				values[i] = PointerGetDatum(PG_DETOAST_DATUM_COPY(value));
			else
				values[i] = datumCopy(value, attr->attbyval, attr->attlen);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/* Whether the session user has a row in steadytext_rate_limits, as of one snapshot */
static struct
{
	StSnapshotStamp stamp;
	Oid			namespace;		/* the extension's schema, looked up once per transaction */
	LocalTransactionId namespace_lxid;
	bool		limited;
} st_limits_memo;

/* The schema pg_steadytext is installed in, or InvalidOid (PostgreSQL 15 exports no get_extension_schema) */
Oid
st_extension_namespace(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			namespace = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("pg_steadytext"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		namespace = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return namespace;
}

/*
 * Whether steadytext_rate_limits has a row for the session user. The daemon
 * checks and counts a request's limits (a round trip to the database) only
 * when this says so. Unknown (no transaction, no extension) counts as yes,
 * so the daemon decides as before.
 */
bool
st_session_user_rate_limited(void)
{
	Snapshot	snapshot;
	StKeyedTable table;
	char	   *user;

	if (!IsTransactionState())
		return true;
	snapshot = read_snapshot();
	if (stamp_matches(&st_limits_memo.stamp, snapshot))
		return st_limits_memo.limited;

	st_limits_memo.stamp.valid = false;
	if (st_limits_memo.namespace_lxid != ST_MY_LXID)
	{
		st_limits_memo.namespace = st_extension_namespace();
		st_limits_memo.namespace_lxid = ST_MY_LXID;
	}
	if (!OidIsValid(st_limits_memo.namespace))
		return true;
	table.rel = get_relname_relid("steadytext_rate_limits", st_limits_memo.namespace);
	table.index = get_relname_relid("steadytext_rate_limits_pkey", st_limits_memo.namespace);
	user = GetUserNameFromId(GetSessionUserId(), true);
	if (!OidIsValid(table.rel) || !OidIsValid(table.index) || user == NULL)
		return true;

	st_limits_memo.limited = fetch_row(&table, user, snapshot, 0, NULL, NULL, NULL);
	stamp_take(&st_limits_memo.stamp, snapshot);
	return st_limits_memo.limited;
}

/* The model identity a selector stands for, or NULL while steadytext_models has none */
static const char *
model_sha256(StMemo *memo, const char *selector, Snapshot snapshot)
{
	int			i;
	AttrNumber	column = memo->models_sha256;
	Datum		value;
	bool		isnull;
	bool		found;
	char	   *sha;

	for (i = 0; i < memo->nselectors; i++)
		if (strcmp(memo->selectors[i], selector) == 0)
			return memo->model_sha256[i][0] ? memo->model_sha256[i] : NULL;

	found = fetch_row(&memo->models, selector, snapshot, 1, &column, &value, &isnull);
	sha = (found && !isnull) ? TextDatumGetCString(value) : NULL;
	if (sha != NULL && strlen(sha) != ST_CACHE_KEY_LENGTH)
		sha = NULL;				/* the table's check constraint forbids this */
	if (memo->nselectors < ST_MAX_SELECTORS && strlen(selector) < ST_MAX_SELECTOR_LEN)
	{
		strlcpy(memo->selectors[memo->nselectors], selector, ST_MAX_SELECTOR_LEN);
		strlcpy(memo->model_sha256[memo->nselectors], sha ? sha : "", ST_CACHE_KEY_LENGTH + 1);
		memo->nselectors++;
	}
	return sha;
}

/*
 * The configured default_max_tokens when it is a plain integer, else -1 (the
 * SQL path then decides, with its own errors); 512 when it is not set.
 */
static int
default_max_tokens(StMemo *memo, Snapshot snapshot)
{
	AttrNumber	column;
	Datum		value;
	bool		isnull;

	if (memo->default_max_tokens != 0)
		return memo->default_max_tokens;
	memo_config(memo);
	column = memo->config_value;
	memo->default_max_tokens = 512;
	if (fetch_row(&memo->config, "default_max_tokens", snapshot, 1, &column, &value, &isnull) && !isnull)
	{
		Jsonb	   *config = DatumGetJsonbP(value);
		JsonbValue	scalar;

		memo->default_max_tokens = -1;
		if (JsonbExtractScalar(&config->root, &scalar) && scalar.type == jbvNumeric)
		{
			char	   *digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(scalar.val.numeric)));
			char	   *end;
			long		number = strtol(digits, &end, 10);

			if (*end == '\0' && end != digits && number >= 1 && number <= ST_MAX_TOKENS_LIMIT)
				memo->default_max_tokens = (int) number;
		}
	}
	return memo->default_max_tokens;
}

/* True when a text is empty or only whitespace (what the SQL checks reject) */
static bool
is_blank(text *t)
{
	const char *c = VARDATA_ANY(t);
	const char *end = c + VARSIZE_ANY_EXHDR(t);

	for (; c < end; c++)
		if (!(*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r' || *c == '\f' || *c == '\v'))
			return false;
	return true;
}

static StKeyField
text_field(const char *name, text *value)
{
	StKeyField	f = {name, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)};

	return f;
}

static StKeyField
string_field(const char *name, const char *value)
{
	StKeyField	f = {name, value, strlen(value)};

	return f;
}

/* The generate key, or false when the model's identity is not known */
static bool
generate_key(StMemo *memo, Snapshot snapshot, const char *selector, text *prompt, int32 max_tokens, int32 seed,
			 text *eos_string, text *constraint_kind, text *constraint_text, char *key)
{
	const char *sha = model_sha256(memo, selector, snapshot);
	StKeyField	fields[7];
	char		max_tokens_text[12];
	char		seed_text[12];

	if (sha == NULL)
		return false;
	fields[0] = text_field("prompt", prompt);
	pg_ltoa(max_tokens, max_tokens_text);
	pg_ltoa(seed, seed_text);
	fields[1] = string_field("max_tokens", max_tokens_text);
	fields[2] = string_field("seed", seed_text);
	fields[3] = text_field("eos_string", eos_string);
	fields[4] = string_field("temperature", "0");
	fields[5] = constraint_kind ? text_field("constraint_kind", constraint_kind) : string_field("constraint_kind", "none");
	fields[6] = constraint_text ? text_field("constraint", constraint_text) : string_field("constraint", "");
	st_cache_key("generate", sha, fields, 7, key);
	return true;
}

static bool
embed_key(StMemo *memo, Snapshot snapshot, const char *selector, text *input, int32 seed, const char *mode, char *key)
{
	const char *sha = model_sha256(memo, selector, snapshot);
	StKeyField	fields[3];
	char		seed_text[12];

	if (sha == NULL)
		return false;
	fields[0] = text_field("text", input);
	pg_ltoa(seed, seed_text);
	fields[1] = string_field("seed", seed_text);
	fields[2] = string_field("mode", mode);
	st_cache_key("embed", sha, fields, 3, key);
	return true;
}

/* A cached column of kind `kind` by key, with the hit counted; false on a miss */
static bool
cached_value(StMemo *memo, Snapshot snapshot, const char *key, const char *kind, AttrNumber column, Datum *result)
{
	AttrNumber	columns[2] = {memo->cache_kind, column};
	Datum		values[2];
	bool		nulls[2];

	if (!fetch_row(&memo->cache, key, snapshot, 2, columns, values, nulls) || nulls[0] || nulls[1])
		return false;
	if (strcmp(TextDatumGetCString(values[0]), kind) != 0)
		return false;
	st_hits_record(key);
	*result = values[1];
	return true;
}

/* The function a fast path falls back to, looked up once per call site */
static FmgrInfo *
fallback(FunctionCallInfo fcinfo, const char *name, int nargs, const Oid *argtypes)
{
	StCallSite *site = call_site(fcinfo);

	if (site->fallback == NULL)
	{
		char	   *schema = get_namespace_name(site->namespace);
		List	   *qualified = list_make2(makeString(schema), makeString(pstrdup(name)));
		Oid			fn = LookupFuncName(qualified, nargs, argtypes, false);
		FmgrInfo   *flinfo = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));

		fmgr_info_cxt(fn, flinfo, fcinfo->flinfo->fn_mcxt);
		site->fallback = flinfo;
	}
	return site->fallback;
}

/*
 * _steadytext_generate_key(selector, prompt, max_tokens, seed, eos_string,
 *		constraint_kind, constraint) returns text (STRICT)
 *		NULL while the selector's model identity is not known.
 */
Datum
steadytext_generate_key(PG_FUNCTION_ARGS)
{
	Snapshot	snapshot = read_snapshot();
	StMemo	   *memo = memo_for(fcinfo, snapshot);
	char		key[ST_CACHE_KEY_LENGTH + 1];

	if (!generate_key(memo, snapshot, text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_TEXT_PP(1),
					  PG_GETARG_INT32(2), PG_GETARG_INT32(3), PG_GETARG_TEXT_PP(4),
					  PG_GETARG_TEXT_PP(5), PG_GETARG_TEXT_PP(6), key))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/* _steadytext_embed_key(selector, text, seed, mode) returns text (STRICT) */
Datum
steadytext_embed_key(PG_FUNCTION_ARGS)
{
	Snapshot	snapshot = read_snapshot();
	StMemo	   *memo = memo_for(fcinfo, snapshot);
	char		key[ST_CACHE_KEY_LENGTH + 1];

	if (!embed_key(memo, snapshot, text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_TEXT_PP(1),
				   PG_GETARG_INT32(2), text_to_cstring(PG_GETARG_TEXT_PP(3)), key))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/* _steadytext_rerank_key(selector, query, document, task, seed) returns text (STRICT) */
Datum
steadytext_rerank_key(PG_FUNCTION_ARGS)
{
	Snapshot	snapshot = read_snapshot();
	StMemo	   *memo = memo_for(fcinfo, snapshot);
	const char *sha = model_sha256(memo, text_to_cstring(PG_GETARG_TEXT_PP(0)), snapshot);
	char		key[ST_CACHE_KEY_LENGTH + 1];
	StKeyField	fields[4];

	if (sha == NULL)
		PG_RETURN_NULL();
	fields[0] = text_field("query", PG_GETARG_TEXT_PP(1));
	fields[1] = text_field("document", PG_GETARG_TEXT_PP(2));
	fields[2] = text_field("task", PG_GETARG_TEXT_PP(3));
	fields[3] = string_field("seed", psprintf("%d", PG_GETARG_INT32(4)));
	st_cache_key("rerank", sha, fields, 4, key);
	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/* _steadytext_cached_text(key) returns text (STRICT): a cached generation, the hit counted */
Datum
steadytext_cached_text(PG_FUNCTION_ARGS)
{
	Snapshot	snapshot = read_snapshot();
	StMemo	   *memo = memo_for(fcinfo, snapshot);
	Datum		result;

	if (!cached_value(memo, snapshot, text_to_cstring(PG_GETARG_TEXT_PP(0)), "generate", memo->cache_response, &result))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* _steadytext_cached_embedding(key) returns vector (STRICT): a cached embedding, the hit counted */
Datum
steadytext_cached_embedding(PG_FUNCTION_ARGS)
{
	Snapshot	snapshot = read_snapshot();
	StMemo	   *memo = memo_for(fcinfo, snapshot);
	Datum		result;

	if (!cached_value(memo, snapshot, text_to_cstring(PG_GETARG_TEXT_PP(0)), "embed", memo->cache_embedding, &result))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* Call the SQL implementation with this call's arguments plus `extra` trailing ones */
static Datum
call_fallback(FunctionCallInfo fcinfo, FmgrInfo *flinfo, int nextra, const Datum *extra, const bool *extra_nulls)
{
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	int			nargs = PG_NARGS();
	int			i;
	Datum		result;

	InitFunctionCallInfoData(*call, flinfo, nargs + nextra, PG_GET_COLLATION(), NULL, NULL);
	for (i = 0; i < nargs; i++)
		call->args[i] = fcinfo->args[i];
	for (i = 0; i < nextra; i++)
	{
		call->args[nargs + i].value = extra[i];
		call->args[nargs + i].isnull = extra_nulls[i];
	}
	result = FunctionCallInvoke(call);
	fcinfo->isnull = call->isnull;
	return result;
}

/*
 * steadytext_generate(prompt, max_tokens, use_cache, seed, eos_string, model,
 *		model_repo, model_filename, size, unsafe_mode) returns text
 *		The default model in C: the cached answer without running any SQL, a
 *		miss sent to the daemon with the params _steadytext_generation_request
 *		builds. Everything else (a model chosen, a NULL that needs a default,
 *		bad input) through _steadytext_generate.
 */
Datum
steadytext_generate_fast(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[14] = {TEXTOID, INT4OID, BOOLOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, BOOLOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID};
	Datum		extra[4] = {CStringGetTextDatum("none"), CStringGetTextDatum(""), (Datum) 0, BoolGetDatum(false)};
	bool		extra_nulls[4] = {false, false, true, false};

	if (!PG_ARGISNULL(0) && !is_blank(PG_GETARG_TEXT_PP(0)) &&
		!PG_ARGISNULL(3) && PG_GETARG_INT32(3) >= 0 &&
		!PG_ARGISNULL(4) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(4)) > 0 &&
		PG_ARGISNULL(5) && PG_ARGISNULL(6) && PG_ARGISNULL(7) &&
		(PG_ARGISNULL(8) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(8)) == 0) &&
		(PG_ARGISNULL(9) || !PG_GETARG_BOOL(9)))
	{
		Snapshot	snapshot = read_snapshot();
		StMemo	   *memo = memo_for(fcinfo, snapshot);
		bool		use_cache = PG_ARGISNULL(2) || PG_GETARG_BOOL(2);
		int32		max_tokens = PG_ARGISNULL(1) ? default_max_tokens(memo, snapshot) : PG_GETARG_INT32(1);
		char		key[ST_CACHE_KEY_LENGTH + 1];
		Datum		result;

		if (max_tokens >= 1 && max_tokens <= ST_MAX_TOKENS_LIMIT)
		{
			StringInfoData params;
			text	   *answer;

			if (use_cache &&
				generate_key(memo, snapshot, "generation:default", PG_GETARG_TEXT_PP(0), max_tokens,
							 PG_GETARG_INT32(3), PG_GETARG_TEXT_PP(4), NULL, NULL, key) &&
				cached_value(memo, snapshot, key, "generate", memo->cache_response, &result))
				PG_RETURN_DATUM(result);

			initStringInfo(&params);
			appendStringInfoString(&params, "{\"prompt\":");
			escape_json(&params, text_to_cstring(PG_GETARG_TEXT_PP(0)));
			appendStringInfo(&params, ",\"max_new_tokens\":%d,\"seed\":%d,\"eos_string\":", max_tokens, PG_GETARG_INT32(3));
			escape_json(&params, text_to_cstring(PG_GETARG_TEXT_PP(4)));
			appendStringInfo(&params, ",\"model\":null,\"model_repo\":null,\"model_filename\":null,\"size\":null"
							 ",\"unsafe_mode\":%s,\"use_cache\":%s,\"sync_mirror\":false}",
							 PG_ARGISNULL(9) ? "null" : "false", use_cache ? "true" : "false");
			if (!st_request_text("generate", params.data, &answer))
				PG_RETURN_NULL();
			PG_RETURN_TEXT_P(answer);
		}
	}
	return call_fallback(fcinfo, fallback(fcinfo, "_steadytext_generate", 14, argtypes), 4, extra, extra_nulls);
}

/*
 * steadytext_embed(text_input, use_cache, seed, model, unsafe_mode) returns vector
 *		The default model in C: the cached embedding without running any
 *		SQL, a miss sent to the daemon with the params _steadytext_embed
 *		builds. Everything else through _steadytext_embed.
 */
Datum
steadytext_embed_fast(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[6] = {TEXTOID, BOOLOID, INT4OID, TEXTOID, BOOLOID, BOOLOID};
	Datum		extra[1] = {BoolGetDatum(false)};
	bool		extra_nulls[1] = {false};

	if (!PG_ARGISNULL(0) && !is_blank(PG_GETARG_TEXT_PP(0)) &&
		!PG_ARGISNULL(2) && PG_GETARG_INT32(2) >= 0 &&
		PG_ARGISNULL(3) && (PG_ARGISNULL(4) || !PG_GETARG_BOOL(4)))
	{
		StCallSite *site = call_site(fcinfo);
		bool		use_cache = PG_ARGISNULL(1) || PG_GETARG_BOOL(1);
		StringInfoData params;
		float4	   *values;
		int			count;

		if (use_cache)
		{
			Snapshot	snapshot = read_snapshot();
			StMemo	   *memo = memo_for(fcinfo, snapshot);
			char		key[ST_CACHE_KEY_LENGTH + 1];
			Datum		result;

			if (embed_key(memo, snapshot, "embedding:default", PG_GETARG_TEXT_PP(0), PG_GETARG_INT32(2), "query", key) &&
				cached_value(memo, snapshot, key, "embed", memo->cache_embedding, &result))
				PG_RETURN_DATUM(result);
		}

		if (site->to_vector == NULL)
			site->to_vector = st_vector_cast(get_func_rettype(fcinfo->flinfo->fn_oid), fcinfo->flinfo->fn_mcxt);
		initStringInfo(&params);
		appendStringInfoString(&params, "{\"text_input\":");
		escape_json(&params, text_to_cstring(PG_GETARG_TEXT_PP(0)));
		appendStringInfo(&params, ",\"seed\":%d,\"model\":null,\"mode\":\"query\",\"unsafe_mode\":%s"
						 ",\"use_cache\":%s,\"sync_mirror\":false%s}",
						 PG_GETARG_INT32(2), PG_ARGISNULL(4) ? "null" : "false", use_cache ? "true" : "false",
						 st_vector_encoding_member());
		if (!st_request_vector("embed", params.data, &values, &count))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(st_vector_datum(site->to_vector, values, count, ST_EMBEDDING_DIMENSIONS));
	}
	return call_fallback(fcinfo, fallback(fcinfo, "_steadytext_embed", 6, argtypes), 1, extra, extra_nulls);
}

/* Read `table` through its index once, unless another session holds a lock that would make us wait */
static bool
read_without_waiting(const StKeyedTable *table, Snapshot snapshot)
{
	if (!ConditionalLockRelationOid(table->rel, AccessShareLock) ||
		!ConditionalLockRelationOid(table->index, AccessShareLock))
		return false;
	(void) fetch_row(table, "", snapshot, 0, NULL, NULL, NULL);
	return true;
}

/*
 * What a session's first cached call would otherwise do on its own (st_warm.c):
 * look the relations and columns up and read each table once through its
 * index, which builds their relcache entries. The tables another session
 * holds a conflicting lock on are named in `skipped` and left to that call.
 */
int
st_cache_lookup_warm(Oid namespace, StringInfo skipped)
{
	Snapshot	snapshot = GetActiveSnapshot();
	StMemo	   *memo = memo_in(namespace, snapshot);
	const StKeyedTable *tables[] = {&memo->cache, &memo->models, &memo->config};
	int			read = 0;

	memo_config(memo);
	for (size_t i = 0; i < lengthof(tables); i++)
	{
		if (read_without_waiting(tables[i], snapshot))
			read++;
		else
			appendStringInfo(skipped, "%s%s", skipped->len > 0 ? ", " : "", get_rel_name(tables[i]->rel));
	}
	return read;
}
