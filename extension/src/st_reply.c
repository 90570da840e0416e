/*
 * st_reply.c
 *		Defensive parsing of the daemon's JSON replies.
 *
 * Replies are parsed with PostgreSQL's own JSON parser, which reports
 * syntax errors as return codes rather than by throwing. A malformed,
 * truncated or oddly typed reply is reported to the caller as a problem
 * string; nothing here trusts the daemon to send what it should.
 */
#include "postgres.h"

#include <math.h>

#include "mb/pg_wchar.h"

#include "st_reply.h"

/*
 * The parser's callbacks return an error code from PostgreSQL 16 on (before,
 * nothing), and from 17 on the lexer context is made by the caller's choice
 * of storage (NULL: palloc'd) and its token pointers are const.
 */
#if PG_VERSION_NUM >= 160000
#define ST_JSON_ACTION JsonParseErrorType
#define ST_JSON_DONE return JSON_SUCCESS
#else
#define ST_JSON_ACTION void
#define ST_JSON_DONE return
#endif

/* A lexer over len bytes of json */
static JsonLexContext *
st_json_lexer(char *json, int len, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), need_escapes);
#else
	return makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), need_escapes);
#endif
}

/*
 * Walks a JSON object keeping track of its top-level members: a reply's id,
 * error and result span (when `reply` is set), and one more string member
 * by name (`wanted`, e.g. a stream chunk's "token").
 */
typedef struct ReplyState
{
	JsonLexContext *lex;
	StReply    *reply;
	const char *wanted;
	char	   *wanted_value;
	int			depth;
	bool		top_is_object;
	const char *field;			/* the top-level member being parsed */
	const char *problem;
} ReplyState;

/* Track nesting depth of objects */
static ST_JSON_ACTION
reply_object_start(void *state)
{
	ReplyState *s = state;

	if (s->depth == 0)
		s->top_is_object = true;
	s->depth++;
	ST_JSON_DONE;
}

/* Track nesting depth of objects */
static ST_JSON_ACTION
reply_object_end(void *state)
{
	((ReplyState *) state)->depth--;
	ST_JSON_DONE;
}

/* Track nesting depth of arrays */
static ST_JSON_ACTION
reply_array_start(void *state)
{
	((ReplyState *) state)->depth++;
	ST_JSON_DONE;
}

/* Track nesting depth of arrays */
static ST_JSON_ACTION
reply_array_end(void *state)
{
	((ReplyState *) state)->depth--;
	ST_JSON_DONE;
}

/* Remember where a top-level member's value starts */
static ST_JSON_ACTION
reply_field_start(void *state, char *fname, bool isnull)
{
	ReplyState *s = state;

	if (s->depth != 1)
		ST_JSON_DONE;
	s->field = fname;
	if (s->reply != NULL && strcmp(fname, "result") == 0)
	{
		s->reply->result = (char *) s->lex->token_start;
		s->reply->result_type = s->lex->token_type;
	}
	ST_JSON_DONE;
}

/* Remember where the result's value ends */
static ST_JSON_ACTION
reply_field_end(void *state, char *fname, bool isnull)
{
	ReplyState *s = state;

	if (s->depth != 1)
		ST_JSON_DONE;
	if (s->reply != NULL && strcmp(fname, "result") == 0)
		s->reply->result_len = (int) (s->lex->prev_token_terminator - s->reply->result);
	s->field = NULL;
	ST_JSON_DONE;
}

/* Take the id and error scalars of the top-level object */
static ST_JSON_ACTION
reply_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ReplyState *s = state;

	if (s->depth != 1 || s->field == NULL)
		ST_JSON_DONE;
	if (s->wanted != NULL && strcmp(s->field, s->wanted) == 0)
	{
		if (tokentype == JSON_TOKEN_STRING)
			s->wanted_value = token;
		else
			s->problem = psprintf("its %s is not a string", s->wanted);
	}
	if (s->reply == NULL)
		ST_JSON_DONE;
	if (strcmp(s->field, "id") == 0)
	{
		if (tokentype == JSON_TOKEN_STRING || tokentype == JSON_TOKEN_NUMBER)
			s->reply->id = token;
	}
	else if (strcmp(s->field, "error") == 0)
	{
		if (tokentype == JSON_TOKEN_STRING)
			s->reply->error = token;
		else if (tokentype != JSON_TOKEN_NULL)
			s->problem = "its error member is neither a string nor null";
	}
	ST_JSON_DONE;
}

/* Walk a JSON object's top-level members into `state`; false (with *problem) if it is not a JSON object */
static bool
walk_object(char *json, int len, ReplyState *state, char **problem)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType rc;

	memset(&sem, 0, sizeof(sem));
	lex = st_json_lexer(json, len, true);
	state->lex = lex;
	sem.semstate = state;
	sem.object_start = reply_object_start;
	sem.object_end = reply_object_end;
	sem.array_start = reply_array_start;
	sem.array_end = reply_array_end;
	sem.object_field_start = reply_field_start;
	sem.object_field_end = reply_field_end;
	sem.scalar = reply_scalar;

	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		*problem = psprintf("it is not valid JSON: %s", json_errdetail(rc, lex));
	else if (!state->top_is_object)
		*problem = "it is not a JSON object";
	else if (state->problem != NULL)
		*problem = (char *) state->problem;
	else
		return true;
	return false;
}

/* Parse a reply; false (with *problem set) when it is not a well-formed reply */
bool
st_reply_parse(char *payload, int len, StReply *reply, char **problem)
{
	ReplyState	state;

	memset(reply, 0, sizeof(*reply));
	memset(&state, 0, sizeof(state));
	state.reply = reply;
	if (!walk_object(payload, len, &state, problem))
		return false;
	if (reply->result == NULL)
	{
		*problem = "it has no result member";
		return false;
	}
	return true;
}

typedef struct FloatState
{
	int			depth;
	int			max_depth;		/* 1 for a flat array, 2 for an array of arrays */
	float4	   *values;
	int			count;
	int			capacity;
	float4	  **vectors;
	int		   *counts;
	int			nvectors;
	int			vectors_capacity;
	const char *problem;
} FloatState;

/* Open an array, starting a new vector at the innermost level */
static ST_JSON_ACTION
float_array_start(void *state)
{
	FloatState *s = state;

	s->depth++;
	if (s->depth > s->max_depth)
		s->problem = "it nests arrays more deeply than expected";
	else if (s->depth == s->max_depth)
	{
		s->count = 0;
		s->capacity = 1024;
		s->values = palloc(sizeof(float4) * s->capacity);
	}
	ST_JSON_DONE;
}

/* Close an array, keeping a finished inner vector */
static ST_JSON_ACTION
float_array_end(void *state)
{
	FloatState *s = state;

	if (s->depth == 2 && s->max_depth == 2 && s->problem == NULL)
	{
		if (s->nvectors == s->vectors_capacity)
		{
			s->vectors_capacity *= 2;
			s->vectors = repalloc(s->vectors, sizeof(float4 *) * s->vectors_capacity);
			s->counts = repalloc(s->counts, sizeof(int) * s->vectors_capacity);
		}
		s->vectors[s->nvectors] = s->values;
		s->counts[s->nvectors] = s->count;
		s->nvectors++;
	}
	s->depth--;
	ST_JSON_DONE;
}

/* Objects never belong in a vector */
static ST_JSON_ACTION
float_object_start(void *state)
{
	((FloatState *) state)->problem = "it contains an object where numbers were expected";
	ST_JSON_DONE;
}

/* Append one number to the current vector */
static ST_JSON_ACTION
float_scalar(void *state, char *token, JsonTokenType tokentype)
{
	FloatState *s = state;
	char	   *end;
	float4		value;

	if (s->problem != NULL)
		ST_JSON_DONE;
	if (tokentype != JSON_TOKEN_NUMBER || s->depth != s->max_depth)
	{
		s->problem = "it contains something other than numbers";
		ST_JSON_DONE;
	}
	errno = 0;
	value = strtof(token, &end);
	if (*end != '\0' || errno == ERANGE || isinf(value) || isnan(value))
	{
		s->problem = "it contains a number outside the range of real";
		ST_JSON_DONE;
	}
	if (s->count == s->capacity)
	{
		s->capacity *= 2;
		s->values = repalloc(s->values, sizeof(float4) * s->capacity);
	}
	s->values[s->count++] = value;
	ST_JSON_DONE;
}

/* Shared driver for the flat and nested float parsers */
static bool
parse_floats(char *json, int len, FloatState *state, char **problem)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType rc;

	if (len <= 0 || json[0] != '[')
	{
		*problem = "it is not a JSON array";
		return false;
	}
	memset(&sem, 0, sizeof(sem));
	sem.semstate = state;
	sem.array_start = float_array_start;
	sem.array_end = float_array_end;
	sem.object_start = float_object_start;
	sem.scalar = float_scalar;
	lex = st_json_lexer(json, len, false);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		*problem = psprintf("it is not valid JSON: %s", json_errdetail(rc, lex));
		return false;
	}
	if (state->problem != NULL)
	{
		*problem = (char *) state->problem;
		return false;
	}
	return true;
}

/* Parse a JSON array of numbers into float4s; false (with *problem) otherwise */
bool
st_parse_float_array(char *json, int len, float4 **values, int *count, char **problem)
{
	FloatState	state;

	memset(&state, 0, sizeof(state));
	state.max_depth = 1;
	if (!parse_floats(json, len, &state, problem))
		return false;
	*values = state.values;
	*count = state.count;
	return true;
}

/* Parse a JSON array of arrays of numbers; each inner array becomes a float4 array */
bool
st_parse_float_arrays(char *json, int len, float4 ***vectors, int **counts, int *nvectors, char **problem)
{
	FloatState	state;

	memset(&state, 0, sizeof(state));
	state.max_depth = 2;
	state.vectors_capacity = 16;
	state.vectors = palloc(sizeof(float4 *) * state.vectors_capacity);
	state.counts = palloc(sizeof(int) * state.vectors_capacity);
	if (!parse_floats(json, len, &state, problem))
		return false;
	*vectors = state.vectors;
	*counts = state.counts;
	*nvectors = state.nvectors;
	return true;
}

/* Take the "token" string of a stream chunk's result object */
bool
st_parse_stream_token(char *json, int len, char **token, char **problem)
{
	ReplyState	state;

	memset(&state, 0, sizeof(state));
	state.wanted = "token";
	if (!walk_object(json, len, &state, problem))
		return false;
	if (state.wanted_value == NULL)
	{
		*problem = "its result has no token";
		return false;
	}
	*token = state.wanted_value;
	return true;
}
