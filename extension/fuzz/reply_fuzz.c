/*
 * reply_fuzz.c
 *		Fuzzing harness for the backend's reply parser (st_reply.c), built
 *		outside PostgreSQL with AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Each input goes through every entry point the backend calls on bytes from
 * the daemon: st_reply_parse, then the result parsers (float array, array of
 * float arrays, stream token), as st_client.c and st_functions.c do. With
 * clang's libFuzzer the file is a fuzz target (LLVMFuzzerTestOneInput);
 * without it, ST_STANDALONE builds a deterministic randomized driver that
 * mutates a corpus of real replies (bit flips, truncation, splicing,
 * insertion of JSON tokens, deep nesting, invalid UTF-8, random bytes) for a
 * fixed number of iterations. Any sanitizer report aborts the run.
 */
#include "postgres.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb/pg_wchar.h"
#include "st_reply.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Backend functions st_reply.c calls that libpgcommon's frontend build lacks:
 * the database encoding (the backend converts replies to it first; UTF-8
 * here) and the JSON error text (PostgreSQL's code, not ours: any string).
 */
int			GetDatabaseEncoding(void);
char	   *json_errdetail(JsonParseErrorType error, JsonLexContext *lex);

/* palloc is malloc here and the parser relies on memory contexts to free: leaks are by design */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

char *
json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
	return pstrdup("the JSON is malformed");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The backend hands the parser an exactly sized, NUL-terminated palloc'd copy */
	char	   *payload = malloc(size + 1);
	StReply		reply;
	char	   *problem = NULL;

	memcpy(payload, data, size);
	payload[size] = '\0';
	memset(&reply, 0, sizeof(reply));
	if (st_reply_parse(payload, (int) size, &reply, &problem) && reply.result != NULL)
	{
		float4	   *values;
		float4	  **vectors;
		int		   *counts;
		int			count;
		int			nvectors;
		char	   *token;
		/* The result span is not NUL-terminated: copy it as the backend does */
		char	   *result = malloc(reply.result_len + 1);

		memcpy(result, reply.result, reply.result_len);
		result[reply.result_len] = '\0';
		(void) st_parse_float_array(result, reply.result_len, &values, &count, &problem);
		(void) st_parse_float_arrays(result, reply.result_len, &vectors, &counts, &nvectors, &problem);
		(void) st_parse_stream_token(result, reply.result_len, &token, &problem);
		free(result);
	}
	free(payload);
	return 0;
}

#ifdef ST_STANDALONE

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
next_random(void)
{
	/* xorshift64*: deterministic, so a failing iteration reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static const char *const corpus[] = {
	"{\"id\":\"1:1\",\"result\":\"pong\",\"error\":null}",
	"{\"id\":\"1:2\",\"result\":[0.5,-1.25e-3,3,0,1e38],\"error\":null}",
	"{\"id\":\"1:3\",\"result\":[[0.1,0.2],[0.3,-0.4],[]],\"error\":null}",
	"{\"id\":\"1:4\",\"result\":{\"token\":\"hello \"},\"error\":null}",
	"{\"id\":\"1:5\",\"result\":null,\"error\":\"invalid_params: prompt cannot be empty\"}",
	"{\"id\":7,\"result\":[[\"doc\",0.5],[\"other\",0.25]],\"error\":null}",
	"{\"id\":\"1:6\",\"result\":{\"token\":\"##STREAM_END##\"},\"error\":null}",
	"{\"id\":\"1:7\",\"result\":{\"a\":{\"b\":[1,{\"c\":\"\\u00e9\\ud83d\\ude00\"}]}},\"error\":null}",
};

static const char *const tokens[] = {
	"{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "null", "true", "false", "-", "1e999", "NaN",
	"\"id\"", "\"result\"", "\"error\"", "\"token\"", "0.0", "-0", "1e-400", "\xff", "\xc3", "\xed\xa0\x80", "\x00",
};

/* One mutated input into buf (capacity cap); returns its length */
static size_t
mutate(uint8_t *buf, size_t cap)
{
	size_t		len;
	int			rounds;
	int			r;

	switch (next_random() % 8)
	{
		case 0:					/* random bytes */
			len = next_random() % 256;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t) next_random();
			return len;
		case 1:					/* deep nesting */
			{
				size_t		depth = 1 + next_random() % (cap / 2 - 64);
				const char *head = "{\"id\":\"1:1\",\"result\":";

				len = strlen(head);
				memcpy(buf, head, len);
				for (size_t i = 0; i < depth && len < cap - 32; i++)
					buf[len++] = (next_random() & 1) ? '[' : '{';
				if (next_random() & 1)
					for (size_t i = 0; i < depth && len < cap - 32; i++)
						buf[len++] = ']';
				return len;
			}
		default:
			break;
	}
	{
		const char *seed = corpus[next_random() % (sizeof(corpus) / sizeof(corpus[0]))];

		len = strlen(seed);
		memcpy(buf, seed, len);
	}
	rounds = 1 + (int) (next_random() % 6);
	for (r = 0; r < rounds; r++)
	{
		size_t		pos = len ? next_random() % (len + 1) : 0;

		switch (next_random() % 6)
		{
			case 0:				/* flip a bit */
				if (len)
					buf[pos % len] ^= (uint8_t) (1u << (next_random() % 8));
				break;
			case 1:				/* truncate */
				len = pos;
				break;
			case 2:				/* delete a span */
				{
					size_t		n = next_random() % 8;

					if (pos + n <= len)
					{
						memmove(buf + pos, buf + pos + n, len - pos - n);
						len -= n;
					}
				}
				break;
			case 3:				/* insert a JSON token or an invalid byte sequence */
				{
					const char *t = tokens[next_random() % (sizeof(tokens) / sizeof(tokens[0]))];
					size_t		n = strlen(t) ? strlen(t) : 1;

					if (len + n < cap)
					{
						memmove(buf + pos + n, buf + pos, len - pos);
						memcpy(buf + pos, t, n);
						len += n;
					}
				}
				break;
			case 4:				/* duplicate a span (splicing) */
				{
					size_t		n = 1 + next_random() % 32;

					if (pos + n <= len && len + n < cap)
					{
						memmove(buf + pos + n, buf + pos, len - pos);
						len += n;
					}
				}
				break;
			default:			/* overwrite a byte */
				if (len)
					buf[pos % len] = (uint8_t) next_random();
				break;
		}
	}
	return len;
}

int
main(int argc, char **argv)
{
	long		iterations = argc > 1 ? atol(argv[1]) : 100000;
	size_t		cap = 1 << 16;
	uint8_t    *buf = malloc(cap);
	long		i;

	if (argc > 2)
		rng_state = strtoull(argv[2], NULL, 10) | 1;
	for (i = 0; i < iterations; i++)
	{
		size_t		len = mutate(buf, cap);

		LLVMFuzzerTestOneInput(buf, len);
	}
	for (i = 0; i < (long) (sizeof(corpus) / sizeof(corpus[0])); i++)
		LLVMFuzzerTestOneInput((const uint8_t *) corpus[i], strlen(corpus[i]));
	printf("reply parser: %ld random inputs and %d corpus replies, 0 sanitizer reports\n",
		   iterations, (int) (sizeof(corpus) / sizeof(corpus[0])));
	free(buf);
	return 0;
}
#endif							/* ST_STANDALONE */
