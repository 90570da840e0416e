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
 * best effort: while the daemon is away a backend keeps up to
 * ST_HITS_QUEUED_BATCHES batches for it; more, and those still queued 200 ms
 * into the backend's exit, are not counted.
 *
 * The batch lives in a static buffer and is sent without raising errors or
 * allocating, because part of it is sent from a transaction callback.
 *
 * With the library in shared_preload_libraries the batch goes to a ring in
 * shared memory that the daemon empties (st_hits_shmem.c): no socket at all.
 * Otherwise hits travel on their own socket, which (unlike the calls'
 * socket) queues messages while its connection is still coming up: a new
 * session's first hit must not wait at commit for the connection's
 * handshake. At backend exit what is still queued gets a short, bounded
 * linger.
 */
#include "postgres.h"

#include <zmq.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "st_guc.h"
#include "st_client.h"
#include "st_hits.h"
#include "st_hits_shmem.h"

#define ST_KEY_LENGTH ST_HIT_KEY_LENGTH
/* Keys per message: about 17 kB, well under the daemon's request limit */
#define ST_HITS_BATCH 256
/* A JSON string and a comma per key, plus the envelope */
#define ST_HITS_BUFFER (ST_HITS_BATCH * (ST_KEY_LENGTH + 3) + 1024)

static char st_hits_keys[ST_HITS_BATCH][ST_KEY_LENGTH + 1];
static int	st_hits_count = 0;
/* Whether the batch being collected goes to shared memory rather than a socket */
static bool st_hits_in_shmem = false;
static uint64 st_hits_batches = 0;
/* The request's origin member, learned while a transaction was open */
static const char *st_hits_origin = NULL;
static bool st_hits_callback_registered = false;
/* Longest a backend's exit waits for hits still queued */
#define ST_HITS_EXIT_LINGER_MS 200
#define ST_HITS_QUEUED_BATCHES 64

static void *st_hits_context = NULL;
static void *st_hits_socket = NULL;
static char *st_hits_endpoint = NULL;

/* At backend exit: give queued hits a bounded moment to leave, then drop everything */
static void
hits_exit(int code, Datum arg)
{
	if (st_hits_socket != NULL)
	{
		int			linger = ST_HITS_EXIT_LINGER_MS;

		zmq_setsockopt(st_hits_socket, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(st_hits_socket);
		st_hits_socket = NULL;
	}
	if (st_hits_context != NULL)
	{
		/* Bounded by the linger just set */
		zmq_ctx_term(st_hits_context);
		st_hits_context = NULL;
	}
}

/* Discard the daemon's answers to earlier batches */
static void
drain_replies(void)
{
	for (;;)
	{
		zmq_msg_t	msg;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, st_hits_socket, ZMQ_DONTWAIT) < 0)
		{
			zmq_msg_close(&msg);
			return;
		}
		zmq_msg_close(&msg);
	}
}

/* The hits socket, connected (or connecting) to the configured endpoint; may raise errors */
static void
prepare_socket(void)
{
	char	   *endpoint = st_effective_endpoint();
	int			zero = 0;
	/* Batches queued while the daemon is away (about 17 kB each); later ones are dropped */
	int			queued = ST_HITS_QUEUED_BATCHES;
	void	   *sock;

	if (st_hits_socket != NULL && strcmp(st_hits_endpoint, endpoint) == 0)
		return;
	if (st_hits_context == NULL)
	{
		st_hits_context = st_zmq_context();
		on_proc_exit(hits_exit, (Datum) 0);
	}
	if (st_hits_socket != NULL)
	{
		zmq_setsockopt(st_hits_socket, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(st_hits_socket);
		st_hits_socket = NULL;
	}
	sock = zmq_socket(st_hits_context, ZMQ_DEALER);
	if (sock == NULL || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
		zmq_setsockopt(sock, ZMQ_SNDHWM, &queued, sizeof(queued)) != 0)
	{
		int			save_errno = errno;

		if (sock != NULL)
			zmq_close(sock);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not set up the socket that counts cache hits (%s): %s", endpoint, zmq_strerror(save_errno))));
	}
	/* The same daemons, with the same keys, as the calls' socket */
	PG_TRY();
	{
		st_client_connect(sock, endpoint);
	}
	PG_CATCH();
	{
		zmq_close(sock);
		PG_RE_THROW();
	}
	PG_END_TRY();
	st_hits_socket = sock;
	if (st_hits_endpoint != NULL)
		pfree(st_hits_endpoint);
	st_hits_endpoint = MemoryContextStrdup(TopMemoryContext, endpoint);
}

/* The origin member of the hits' requests: the database name as JSON */
static const char *
database_origin(void)
{
	if (st_hits_origin == NULL)
	{
		StringInfoData buf;
		char	   *name = get_database_name(MyDatabaseId);

		initStringInfo(&buf);
		escape_json(&buf, name ? name : "");
		st_hits_origin = MemoryContextStrdup(TopMemoryContext, buf.data);
		pfree(buf.data);
	}
	return st_hits_origin;
}

/* Send what is collected as one cache_touch request, and start over; never raises an error */
static void
flush_hits(void)
{
	static char payload[ST_HITS_BUFFER];
	int			len;
	int			i;

	if (st_hits_count > 0 && st_hits_in_shmem)
	{
		st_hits_shmem_add((const char (*)[ST_KEY_LENGTH + 1]) st_hits_keys, st_hits_count);
		st_hits_count = 0;
		return;
	}
	if (st_hits_count == 0 || st_hits_origin == NULL || st_hits_socket == NULL)
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
	{
		/* Queued even while the connection is still coming up; never blocks */
		drain_replies();
		if (zmq_send(st_hits_socket, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
			zmq_send(st_hits_socket, payload, len, ZMQ_DONTWAIT) < 0)
		{
			/* A half-sent message would swallow the next one: the next hit sets up a new socket */
			zmq_close(st_hits_socket);
			st_hits_socket = NULL;
		}
	}
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
	/* Connecting and naming the database may raise errors: do it here (once a batch), not at transaction end */
	if (st_hits_count == 0)
	{
		st_hits_in_shmem = st_hits_shmem_available();
		if (!st_hits_in_shmem)
		{
			prepare_socket();
			(void) database_origin();
		}
	}
	memcpy(st_hits_keys[st_hits_count++], key, ST_KEY_LENGTH + 1);
	if (st_hits_count == ST_HITS_BATCH)
		flush_hits();
}
