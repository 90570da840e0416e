/*
 * st_functions.h
 *		One daemon request from C, answered as the SQL-callable primitives
 *		answer it (NULL or an error when there is no answer, per
 *		steadytext.on_unavailable).
 */
#ifndef ST_FUNCTIONS_H
#define ST_FUNCTIONS_H

extern bool st_request_text(const char *method, const char *params, text **result);
extern bool st_request_vector(const char *method, const char *params, float4 **values, int *count);

#endif							/* ST_FUNCTIONS_H */
