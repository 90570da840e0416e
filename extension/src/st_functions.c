/*
 * st_functions.c
 *		SQL-callable entry points: the transport primitives the extension's
 *		SQL functions are built on.
 *
 * Each call sends one request and returns the daemon's result. What happens
 * when there is no answer is decided in one place (call_daemon): SQL NULL,
 * or an error when steadytext.on_unavailable = 'error'. An error the daemon
 * reports for the input is raised with SQLSTATE P0001, like the original
 * pg_steadytext's input checks; no daemon is 58000 (a system error outside
 * PostgreSQL), a failing daemon or model 38000.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "st_client.h"
#include "st_functions.h"
#include "st_guc.h"
#include "st_hits.h"
#include "st_reply.h"
#include "st_vectors.h"

#define ST_STREAM_END "##STREAM_END##"

PG_FUNCTION_INFO_V1(steadytext_call);
PG_FUNCTION_INFO_V1(steadytext_call_vector);
PG_FUNCTION_INFO_V1(steadytext_call_vectors);
PG_FUNCTION_INFO_V1(steadytext_call_stream);
PG_FUNCTION_INFO_V1(steadytext_record_hits);
PG_FUNCTION_INFO_V1(steadytext_endpoint);

/* No answer: NULL, or an error if the session asked for one */
static bool
unavailable(const char *reason, bool transport)
{
	if (st_on_unavailable == ST_ON_UNAVAILABLE_ERROR)
		ereport(ERROR,
				/* Not class 08: pools read that as a broken database connection */
				(errcode(transport ? ERRCODE_SYSTEM_ERROR : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("steadytext is unavailable: %s", reason),
				 errhint("With steadytext.on_unavailable = 'null' such calls return NULL instead.")));
	ereport(DEBUG1, (errmsg_internal("steadytext is unavailable, returning NULL: %s", reason)));
	return false;
}

/* Raise the error the daemon reported, or return false for "unavailable" */
static bool
daemon_error(const char *error)
{
	const char *colon = strstr(error, ": ");
	const char *message = colon ? colon + 2 : error;
	size_t		code_len = colon ? (size_t) (colon - error) : 0;

#define CODE_IS(name) (code_len == strlen(name) && strncmp(error, name, code_len) == 0)
	if (CODE_IS("unavailable"))
		return unavailable(message, false);
	if (CODE_IS("invalid_params"))
		ereport(ERROR, (errcode(ERRCODE_RAISE_EXCEPTION), errmsg("%s", message)));
	if (CODE_IS("rate_limited"))
		ereport(ERROR,
				(errcode(ERRCODE_RAISE_EXCEPTION),
				 errmsg("%s", message),
				 errhint("Limits per user are in steadytext_rate_limits; answers already cached are never limited.")));
	if (CODE_IS("forbidden"))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the steadytext daemon refused: %s", message),
				 errhint("A superuser sets steadytext.daemon_admin_token to the daemon's STEADYTEXT_ADMIN_TOKEN.")));
	if (CODE_IS("cancelled"))
		ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("steadytext request cancelled: %s", message)));
	if (CODE_IS("invalid_request") || CODE_IS("unknown_method"))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("the steadytext daemon rejected the request: %s", message),
				 errhint("The extension and the daemon may be of different versions.")));
	/* XX000 would claim a PostgreSQL bug; this one is in the daemon */
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("the steadytext daemon failed: %s", message)));
#undef CODE_IS
	return false;
}

/* Superusers and members of steadytext_admin */
static bool
is_steadytext_admin(void)
{
	Oid			admin = get_role_oid("steadytext_admin", true);

	return superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
}

/* A method name as the protocol defines them: lower-case letters and underscores */
static char *
method_name(text *method)
{
	char	   *name = text_to_cstring(method);
	const char *c;

	if (name[0] == '\0' || strlen(name) > 32)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid steadytext method name")));
	for (c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid steadytext method name \"%s\"", name)));
	if (strcmp(name, "shutdown") == 0 && !is_steadytext_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to stop the steadytext daemon"),
				 errhint("Only members of steadytext_admin may.")));
	return name;
}

/* jsonb params as JSON text */
static char *
params_text(Jsonb *params)
{
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("steadytext params must be a JSON object")));
	return JsonbToCString(NULL, &params->root, VARSIZE(params));
}

/* Send a request and wait for its answer; false means "no answer" (already reported) */
static bool
call_daemon(const char *method, const char *params, StReply *reply, char **id_out)
{
	StFailure	failure = {NULL};
	char	   *id = st_client_send(method, params, &failure);

	if (id == NULL)
		return unavailable(failure.reason, true);
	if (!st_client_wait(id, reply, &failure))
		return unavailable(failure.reason, true);
	if (reply->error != NULL)
		return daemon_error(reply->error);
	if (id_out)
		*id_out = id;
	return true;
}

/* A malformed result: never a crash, never a made-up value */
static void
bad_result(const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("malformed result from the steadytext daemon"),
			 errdetail("The result was rejected because %s.", problem)));
}

/*
 * Set up a materialized set-returning call whose rows match the declared
 * result type: InitMaterializedSRF from PostgreSQL 15 on, by hand before.
 */
static void
st_init_materialized_srf(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC | MAT_SRF_BLESS);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old_context;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize) || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));
	old_context = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = BlessTupleDesc(CreateTupleDescCopy(rsinfo->expectedDesc));
	rsinfo->setResult = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	MemoryContextSwitchTo(old_context);
#endif
}

/* What jsonb_typeof calls a result that starts with this token */
static const char *
json_type_name(JsonTokenType type)
{
	switch (type)
	{
		case JSON_TOKEN_OBJECT_START:
			return "object";
		case JSON_TOKEN_ARRAY_START:
			return "array";
		case JSON_TOKEN_NUMBER:
			return "number";
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			return "boolean";
		default:
			return "value";
	}
}

/*
 * One request whose result is text, as _steadytext_text_result reads
 * _steadytext_call's: false when there is no answer (or a JSON null), an
 * error when the result is not a string.
 */
bool
st_request_text(const char *method, const char *params, text **result)
{
	StReply		reply;
	Jsonb	   *value;
	JsonbValue	scalar;

	if (!call_daemon(method, params, &reply, NULL) || reply.result_type == JSON_TOKEN_NULL)
		return false;
	if (reply.result_type != JSON_TOKEN_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed reply from the steadytext daemon"),
				 errdetail("%s returned a JSON %s, not text.", method, json_type_name(reply.result_type))));
	/* jsonb_in, as _steadytext_call: the same unescaping, the same errors (a \u0000 is one) */
	value = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(reply.result, reply.result_len))));
	if (!JsonbExtractScalar(&value->root, &scalar) || scalar.type != jbvString)
		bad_result("its text is not a JSON string");
	*result = cstring_to_text_with_len(scalar.val.string.val, scalar.val.string.len);
	return true;
}

/*
 * One request whose result is one vector (a binary frame or a JSON list):
 * false when there is no answer.
 */
bool
st_request_vector(const char *method, const char *params, float4 **values, int *count)
{
	StReply		reply;
	char	   *problem;
	float4	  **framed;
	int		   *framed_counts;
	int			nframed;

	if (!call_daemon(method, params, &reply, NULL))
		return false;
	if (st_decode_vector_frame(&reply, &framed, &framed_counts, &nframed, &problem))
	{
		if (problem == NULL && nframed != 1)
			problem = "a vector frame for one vector holds another number of them";
		if (problem != NULL)
			bad_result(problem);
		*values = framed[0];
		*count = framed_counts[0];
		return true;
	}
	if (reply.result_type == JSON_TOKEN_NULL)
		return false;
	if (!st_parse_float_array(reply.result, reply.result_len, values, count, &problem))
		bad_result(problem);
	return true;
}

/*
 * _steadytext_call(method text, params jsonb) returns jsonb
 *		The result of one request, or NULL when there is none.
 */
Datum
steadytext_call(PG_FUNCTION_ARGS)
{
	StReply		reply;

	if (!call_daemon(method_name(PG_GETARG_TEXT_PP(0)), params_text(PG_GETARG_JSONB_P(1)), &reply, NULL))
		PG_RETURN_NULL();
	if (reply.result_type == JSON_TOKEN_NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(reply.result, reply.result_len))));
}

/*
 * _steadytext_call_vector(method text, params jsonb) returns real[]
 *		A result that is a list of numbers, parsed without a jsonb detour.
 */
Datum
steadytext_call_vector(PG_FUNCTION_ARGS)
{
	float4	   *values;
	int			count;

	if (!st_request_vector(method_name(PG_GETARG_TEXT_PP(0)), params_text(st_vector_request_params(PG_GETARG_JSONB_P(1))),
						   &values, &count))
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(st_float_array(values, count));
}

/*
 * _steadytext_call_vectors(method text, params jsonb) returns setof real[]
 *		A result that is a list of lists of numbers: one row per inner list.
 */
Datum
steadytext_call_vectors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StReply		reply;
	float4	  **vectors;
	int		   *counts;
	int			nvectors;
	int			i;
	char	   *problem;
	char	   *method = method_name(PG_GETARG_TEXT_PP(0));
	char	   *params = params_text(st_vector_request_params(PG_GETARG_JSONB_P(1)));

	st_init_materialized_srf(fcinfo);
	if (!call_daemon(method, params, &reply, NULL))
		PG_RETURN_NULL();
	if (st_decode_vector_frame(&reply, &vectors, &counts, &nvectors, &problem))
	{
		if (problem != NULL)
			bad_result(problem);
	}
	else if (reply.result_type == JSON_TOKEN_NULL)
		PG_RETURN_NULL();
	else if (!st_parse_float_arrays(reply.result, reply.result_len, &vectors, &counts, &nvectors, &problem))
		bad_result(problem);
	for (i = 0; i < nvectors; i++)
	{
		Datum		value = PointerGetDatum(st_float_array(vectors[i], counts[i]));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	PG_RETURN_NULL();
}

/*
 * _steadytext_call_stream(params jsonb) returns setof text
 *		A generate_iter stream: one row per chunk, each acknowledged so the
 *		daemon sends the next. Giving up midway cancels the generation.
 */
Datum
steadytext_call_stream(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *params = params_text(PG_GETARG_JSONB_P(0));
	StReply		reply;
	char	   *sent_id = NULL;
	char	   *volatile id;

	st_init_materialized_srf(fcinfo);
	if (!call_daemon("generate_iter", params, &reply, &sent_id))
		PG_RETURN_NULL();
	id = sent_id;
	PG_TRY();
	{
		for (;;)
		{
			char	   *token;
			char	   *problem;
			StFailure	failure = {NULL};
			Datum		value;
			bool		isnull = false;

			if (!st_parse_stream_token(reply.result, reply.result_len, &token, &problem))
				bad_result(problem);
			if (strcmp(token, ST_STREAM_END) == 0)
				break;
			value = CStringGetTextDatum(token);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
			st_client_ack();
			if (!st_client_wait(id, &reply, &failure))
			{
				/* A partial stream is not an answer */
				tuplestore_clear(rsinfo->setResult);
				(void) unavailable(failure.reason, true);
				break;
			}
			if (reply.error != NULL)
			{
				tuplestore_clear(rsinfo->setResult);
				(void) daemon_error(reply.error);
				break;
			}
		}
	}
	PG_CATCH();
	{
		st_client_cancel(id);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PG_RETURN_NULL();
}

/*
 * _steadytext_record_hits(keys text[]) returns void
 *		Count cache hits served in SQL; sent to the daemon in batches.
 */
Datum
steadytext_record_hits(PG_FUNCTION_ARGS)
{
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *values;
	bool	   *nulls;
	int			count;
	int			i;

	if (ARR_ELEMTYPE(keys) != TEXTOID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("cache keys must be text")));
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &values, &nulls, &count);
	for (i = 0; i < count; i++)
		if (!nulls[i])
			st_hits_record(TextDatumGetCString(values[i]));
	PG_RETURN_VOID();
}

/*
 * _steadytext_endpoint() returns text
 *		The endpoint calls connect to.
 */
Datum
steadytext_endpoint(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(st_effective_endpoint()));
}
