/*
 * st_vectors.c
 *		Vectors from the daemon as one binary frame (little-endian float32).
 *
 * A vector request may carry params.vector_encoding = "f32le"; the daemon
 * then answers with the usual JSON reply, whose result is
 * {"encoding": "f32le", "dimensions": [n, ...]}, followed by one frame of
 * sum(n) IEEE float32 values in little-endian order. The values are float32
 * on the daemon's side too, so this carries exactly the bits the JSON numbers
 * carry, without formatting and parsing a thousand decimals per vector.
 * Clients that never ask (SteadyText's own) get JSON as always, and a daemon
 * that does not know the option answers in JSON, which is still understood.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "parser/parse_coerce.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "st_vectors.h"

/* More numbers than any vector the daemon serves has, per vector and per reply */
#define ST_MAX_VECTOR_DIMENSION 65536
#define ST_MAX_VECTOR_VALUES (256 * 1024 * 1024 / 4)

PG_FUNCTION_INFO_V1(steadytext_real4_from_f32le);

bool		st_binary_vectors = true;

void
st_vectors_init(void)
{
	DefineCustomBoolVariable("steadytext.binary_vectors",
							 "Receive vectors from the daemon as binary float32 rather than JSON numbers.",
							 "Both carry the same bits; binary is faster. Off is for daemons or proxies that only pass JSON.",
							 &st_binary_vectors, true, PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

Jsonb *
st_vector_request_params(Jsonb *params)
{
	Datum		option;

	if (!st_binary_vectors || !JB_ROOT_IS_OBJECT(params))
		return params;
	option = DirectFunctionCall1(jsonb_in, CStringGetDatum("{\"vector_encoding\": \"f32le\"}"));
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(params), option));
}

/* The member a request's JSON params end with to ask for a binary frame, or "" */
const char *
st_vector_encoding_member(void)
{
	return st_binary_vectors ? ",\"vector_encoding\":\"f32le\"" : "";
}

/* float4s as a real[] */
ArrayType *
st_float_array(float4 *values, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));
	int			i;

	for (i = 0; i < count; i++)
		elems[i] = Float4GetDatum(values[i]);
	return construct_array(elems, count, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
}

/* pgvector's cast from real[] to vector_type, set up in `context` */
FmgrInfo *
st_vector_cast(Oid vector_type, MemoryContext context)
{
	Oid			funcid;
	FmgrInfo   *cast;

	if (find_coercion_pathway(vector_type, FLOAT4ARRAYOID, COERCION_EXPLICIT, &funcid) != COERCION_PATH_FUNC)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("pgvector's cast from real[] to vector is missing")));
	cast = MemoryContextAlloc(context, sizeof(FmgrInfo));
	fmgr_info_cxt(funcid, cast, context);
	return cast;
}

/* values::vector(typmod), through pgvector's own cast: its checks, its errors */
Datum
st_vector_datum(FmgrInfo *cast, float4 *values, int count, int32 typmod)
{
	return FunctionCall3(cast, PointerGetDatum(st_float_array(values, count)), Int32GetDatum(typmod), BoolGetDatum(true));
}

/* count little-endian IEEE float32s from src into dst */
static void
decode_f32le(const char *src, int count, float4 *dst)
{
	int			i;

	for (i = 0; i < count; i++, src += 4)
	{
		uint32		bits;

		memcpy(&bits, src, 4);
#ifdef WORDS_BIGENDIAN
		bits = pg_bswap32(bits);
#endif
		memcpy(&dst[i], &bits, 4);
	}
}

/*
 * _steadytext_real4_from_f32le(bytes bytea) returns real[] (STRICT)
 *		The mirror's vectors as the float32 bytes they are: writing 1,024
 *		floats as decimals cost the daemon about 0.2 ms a vector (20 kB of
 *		text), and PostgreSQL as much again to parse them.
 */
Datum
steadytext_real4_from_f32le(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	int			len = VARSIZE_ANY_EXHDR(bytes);
	float4	   *values;

	if (len % 4 != 0 || len / 4 > ST_MAX_VECTOR_DIMENSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("float32 bytes must be a multiple of 4 long, at most %d values", ST_MAX_VECTOR_DIMENSION),
				 errdetail("%d bytes were given.", len)));
	values = palloc(sizeof(float4) * Max(len / 4, 1));
	decode_f32le(VARDATA_ANY(bytes), len / 4, values);
	PG_RETURN_ARRAYTYPE_P(st_float_array(values, len / 4));
}

/* A string member of an object, as a C string, or NULL */
static char *
string_member(Jsonb *object, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&object->root, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

bool
st_decode_vector_frame(StReply *reply, float4 ***vectors, int **counts, int *nvectors, char **problem)
{
	Jsonb	   *header;
	JsonbValue *dimensions;
	JsonbValue	dims_container;
	char	   *encoding;
	int			n;
	int			i;
	int64		total = 0;
	const char *frame = reply->vector_frame;

	*problem = NULL;
	if (reply->vector_frame == NULL)
		return false;
	if (reply->result_type != JSON_TOKEN_OBJECT_START)
	{
		*problem = "a vector frame came without its header";
		return true;
	}
	header = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(reply->result, reply->result_len))));
	encoding = string_member(header, "encoding");
	if (encoding == NULL || strcmp(encoding, "f32le") != 0)
	{
		*problem = "the vector frame's encoding is not f32le";
		return true;
	}
	dimensions = getKeyJsonValueFromContainer(&header->root, "dimensions", strlen("dimensions"), &dims_container);
	if (dimensions == NULL || dimensions->type != jbvBinary || !JsonContainerIsArray(dimensions->val.binary.data))
	{
		*problem = "the vector frame's dimensions are not a list";
		return true;
	}
	n = JsonContainerSize(dimensions->val.binary.data);
	*nvectors = n;
	*counts = palloc(sizeof(int) * Max(n, 1));
	*vectors = palloc(sizeof(float4 *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		JsonbValue *d = getIthJsonbValueFromContainer(dimensions->val.binary.data, i);
		int32		count;

		if (d == NULL || d->type != jbvNumeric)
		{
			*problem = "a vector frame's dimension is not a number";
			return true;
		}
		count = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(d->val.numeric)));
		if (count < 0 || count > ST_MAX_VECTOR_DIMENSION)
		{
			*problem = "a vector frame's dimension is out of range";
			return true;
		}
		(*counts)[i] = count;
		total += count;
	}
	if (total > ST_MAX_VECTOR_VALUES || total * 4 != reply->vector_frame_len)
	{
		*problem = psprintf("the vector frame has %d bytes where its header says " INT64_FORMAT,
							reply->vector_frame_len, total * 4);
		return true;
	}
	for (i = 0; i < n; i++)
	{
		float4	   *values = palloc(sizeof(float4) * Max((*counts)[i], 1));

		decode_f32le(frame, (*counts)[i], values);
		frame += 4 * (*counts)[i];
		(*vectors)[i] = values;
	}
	return true;
}
