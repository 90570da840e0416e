/*
 * st_reply.h
 *		Defensive parsing of the daemon's JSON replies.
 */
#ifndef ST_REPLY_H
#define ST_REPLY_H

#include "common/jsonapi.h"

/* The three top-level members of a reply: {"id", "result", "error"} */
typedef struct StReply
{
	char	   *id;				/* the id as text, NULL if absent or not a string/number */
	char	   *error;			/* NULL when the reply's error is null */
	char	   *result;			/* the result's JSON text (not NUL-terminated) */
	int			result_len;
	JsonTokenType result_type;	/* first token of the result */
	char	   *vector_frame;	/* a binary frame after the JSON (vector_encoding f32le), else NULL */
	int			vector_frame_len;
} StReply;

/* Parse a reply; false (with *problem set) when it is not a well-formed reply */
extern bool st_reply_parse(char *payload, int len, StReply *reply, char **problem);

/* Parse a JSON array of numbers into float4s; false (with *problem) otherwise */
extern bool st_parse_float_array(char *json, int len, float4 **values, int *count, char **problem);

/* Parse a JSON array of arrays of numbers; each inner array becomes a float4 array */
extern bool st_parse_float_arrays(char *json, int len, float4 ***vectors, int **counts, int *nvectors, char **problem);

/* Take the "token" string of a stream chunk's result object */
extern bool st_parse_stream_token(char *json, int len, char **token, char **problem);

#endif							/* ST_REPLY_H */
