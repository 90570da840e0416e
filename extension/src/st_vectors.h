/*
 * st_vectors.h
 *		Vectors from the daemon as one binary frame (little-endian float32).
 */
#ifndef ST_VECTORS_H
#define ST_VECTORS_H

#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "st_reply.h"

/* steadytext.binary_vectors: ask for vectors as a binary frame instead of JSON numbers */
extern bool st_binary_vectors;

/* Define the module's settings (from _PG_init) */
extern void st_vectors_init(void);

/* The params of a vector request, asking for the binary frame when the setting says so */
extern Jsonb *st_vector_request_params(Jsonb *params);

/* The same for params written as JSON text: the member to end them with, or "" */
extern const char *st_vector_encoding_member(void);

extern ArrayType *st_float_array(float4 *values, int count);

/* pgvector's cast from real[] (found once per call site), and a vector made with it */
extern FmgrInfo *st_vector_cast(Oid vector_type, MemoryContext context);
extern Datum st_vector_datum(FmgrInfo *cast, float4 *values, int count, int32 typmod);

/*
 * When the reply came with a vector frame, decode it (checking its length
 * against the result's dimensions) and return true; *problem is set when the
 * frame and its header do not fit together. False when the reply is JSON.
 */
extern bool st_decode_vector_frame(StReply *reply, float4 ***vectors, int **counts, int *nvectors, char **problem);

#endif							/* ST_VECTORS_H */
