/*
 * st_hits.c
 *		Cache hit counting for the SQL fast path, batched per transaction.
 *
 * A hit served from steadytext_cache must not write in the caller's
 * transaction (it may be read-only, or on a standby), so the daemon counts
 * it. Sending one message per hit cost as much as the lookup itself and a
 * message per row to the daemon; instead the keys are collected here and
 * sent as one cache_touch request when the batch fills or the transaction
 * ends, committed or not (the answers were served either way). Counting is
 * best effort: with the daemon down, hits are served but not counted.
 *
 * The batch lives in a static buffer and is sent without raising errors or
 * allocating, because part of it is sent from a transaction callback.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"

#include "st_client.h"
#include "st_hits.h"

#define ST_KEY_LENGTH 64
/* Keys per message: about 17 kB, well under the daemon's request limit */
#define ST_HITS_BATCH 256
/* A JSON string and a comma per key, plus the envelope */
#define ST_HITS_BUFFER (ST_HITS_BATCH * (ST_KEY_LENGTH + 3) + 1024)

static char st_hits_keys[ST_HITS_BATCH][ST_KEY_LENGTH + 1];
static int	st_hits_count = 0;
static uint64 st_hits_batches = 0;
/* The request's origin member, learned while a transaction was open */
static const char *st_hits_origin = NULL;
static bool st_hits_callback_registered = false;

/* Send what is collected as one cache_touch request, and start over; never raises an error */
static void
flush_hits(void)
{
	static char payload[ST_HITS_BUFFER];
	int			len;
	int			i;

	if (st_hits_count == 0 || st_hits_origin == NULL)
	{
		st_hits_count = 0;
		return;
	}
	len = snprintf(payload, sizeof(payload),
				   "{\"id\":\"%d:hits:" UINT64_FORMAT "\",\"method\":\"cache_touch\",\"params\":{\"keys\":[",
				   MyProcPid, ++st_hits_batches);
	for (i = 0; i < st_hits_count && len > 0 && len < (int) sizeof(payload); i++)
		len += snprintf(payload + len, sizeof(payload) - len, "%s\"%s\"", i > 0 ? "," : "", st_hits_keys[i]);
	if (len > 0 && len < (int) sizeof(payload))
		len += snprintf(payload + len, sizeof(payload) - len, "]},\"origin\":{\"database\":%s}}", st_hits_origin);
	st_hits_count = 0;
	if (len > 0 && len < (int) sizeof(payload))
		(void) st_client_send_quietly(payload, len);
}

static void
hits_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			flush_hits();
			break;
		default:
			break;
	}
}

static bool
is_cache_key(const char *key)
{
	int			i;

	for (i = 0; i < ST_KEY_LENGTH; i++)
		if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
			return false;
	return key[ST_KEY_LENGTH] == '\0';
}

void
st_hits_record(const char *key)
{
	if (!is_cache_key(key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid steadytext cache key"),
				 errdetail("A cache key is 64 lower-case hexadecimal digits.")));
	if (!st_hits_callback_registered)
	{
		RegisterXactCallback(hits_xact_callback, NULL);
		st_hits_callback_registered = true;
	}
	/* Connecting and naming the database may raise errors: do it here, not at transaction end */
	st_hits_origin = st_client_prepare();
	memcpy(st_hits_keys[st_hits_count++], key, ST_KEY_LENGTH + 1);
	if (st_hits_count == ST_HITS_BATCH)
		flush_hits();
}
