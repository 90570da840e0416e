/*
 * st_client.c
 *		The backend's ZeroMQ connection to the SteadyText daemon.
 *
 * One DEALER socket per backend, created on first use (never in the
 * postmaster) and reused: a new socket per call costs about three times as
 * much. Requests carry ids so a reply that arrives after its call gave up is
 * recognised and dropped. Waits poll in short slices and check for
 * interrupts between them, so statement_timeout, pg_cancel_backend and
 * pg_terminate_backend work while a call waits; a call that gives up tells
 * the daemon to stop working on it.
 *
 * The endpoint may be a comma-separated list: the socket connects to each,
 * and ZeroMQ spreads requests over the connected ones (a dead one is
 * skipped, as ZMQ_IMMEDIATE queues nothing for it). A socket monitor reports
 * lost connections: a call whose daemon died is resent once, since every
 * request is deterministic and idempotent, as soon as a daemon is connected
 * (another one, or the same one restarted) within
 * steadytext.reconnect_wait_ms; otherwise it gives up then, not at
 * request_timeout_ms. A stream that has begun is not resent (its rows are
 * already out): it ends as unavailable at once.
 */
#include "postgres.h"

#include <zmq.h>

#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "st_client.h"
#include "st_guc.h"

/* Replies larger than this make libzmq drop the connection instead */
#define ST_MAX_REPLY_BYTES ((int64) 256 * 1024 * 1024)
/* Longest a wait goes without checking for interrupts */
#define ST_POLL_SLICE_MS 50
/* Longest a notification waits for a connection that is still coming up */
#define ST_NOTIFY_WAIT_MS 50
/* A reply has [empty delimiter, payload]; anything with more frames is malformed */
#define ST_MAX_FRAMES 3

static void *st_context = NULL;
static void *st_socket = NULL;
/* PAIR socket receiving st_socket's connection events */
static void *st_monitor = NULL;
static uint64 st_monitor_counter = 0;
/* The last request sent, for one resend after a lost connection (NULL once a stream has begun) */
static char *st_resend_payload = NULL;
static int	st_resend_len = 0;
static char *st_socket_endpoint = NULL;
static uint64 st_request_counter = 0;
static bool st_daemon_unreachable = false;
static char *st_database_json = NULL;
/* The request a call is waiting for, so an exiting backend can cancel it */
static char st_inflight_id[64] = "";

static void close_socket(void);

/* Queue a two-frame message without blocking; false if it could not be queued */
static bool
send_frames(void *sock, const char *payload, size_t len)
{
	if (zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return false;
	if (zmq_send(sock, payload, len, ZMQ_DONTWAIT) >= 0)
		return true;
	/* A half-sent multipart message would swallow the next one: start over */
	close_socket();
	return false;
}

/* Ask the daemon to stop working on a request, without palloc (usable at exit) */
static void
send_cancel(const char *id)
{
	char		payload[256];
	int			len;

	if (st_socket == NULL || id[0] == '\0')
		return;
	len = snprintf(payload, sizeof(payload),
				   "{\"id\":\"%s:cancel\",\"method\":\"cancel\",\"params\":{\"request_id\":\"%s\"}}",
				   id, id);
	if (len > 0 && len < (int) sizeof(payload))
		(void) send_frames(st_socket, payload, len);
}

/* Close the socket at backend exit; a call still waiting is cancelled first */
static void
st_client_exit(int code, Datum arg)
{
	/* Give a waiting call's cancel a moment to leave; otherwise drop everything at once */
	if (st_socket != NULL)
		send_cancel(st_inflight_id);
	/* send_cancel closes the socket itself if it could not queue the message */
	if (st_socket != NULL)
	{
		int			linger = st_inflight_id[0] != '\0' ? 200 : 0;

		zmq_setsockopt(st_socket, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(st_socket);
		st_socket = NULL;
		if (st_monitor != NULL)
		{
			int			no_linger = 0;

			zmq_setsockopt(st_monitor, ZMQ_LINGER, &no_linger, sizeof(no_linger));
			zmq_close(st_monitor);
			st_monitor = NULL;
		}
		if (linger > 0)
		{
			/* Bounded by the linger just set */
			zmq_ctx_term(st_context);
			st_context = NULL;
		}
	}
	if (st_context != NULL)
	{
		/* Never zmq_ctx_term here: it can block for a long time */
		zmq_ctx_shutdown(st_context);
		st_context = NULL;
	}
}

/* Set an integer socket option or fail */
static void
set_int_option(void *sock, int option, int value)
{
	if (zmq_setsockopt(sock, option, &value, sizeof(value)) != 0)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not set ZeroMQ socket option %d: %s", option, zmq_strerror(save_errno))));
	}
}

/* Close the current socket at once, dropping whatever it still holds */
static void
close_socket(void)
{
	int			linger = 0;

	if (st_socket == NULL)
		return;
	zmq_setsockopt(st_socket, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_socket_monitor(st_socket, NULL, 0);
	zmq_close(st_socket);
	st_socket = NULL;
	if (st_monitor != NULL)
	{
		zmq_setsockopt(st_monitor, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(st_monitor);
		st_monitor = NULL;
	}
	if (st_socket_endpoint != NULL)
		pfree(st_socket_endpoint);
	st_socket_endpoint = NULL;
}

/* With steadytext.daemon_curve_public_key set, talk CURVE: the daemon's public key and our key pair */
static void
set_curve_keys(void *sock)
{
	FILE	   *file;
	char		secret[64];
	char		public[41];
	size_t		len;

	if (st_daemon_curve_public_key == NULL || st_daemon_curve_public_key[0] == '\0')
		return;
	if (strlen(st_daemon_curve_public_key) != 40)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.daemon_curve_public_key must be a 40-character Z85 key")));
	if (st_curve_client_key_file == NULL || st_curve_client_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.curve_client_key_file must be set when steadytext.daemon_curve_public_key is")));
	file = AllocateFile(st_curve_client_key_file, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read steadytext.curve_client_key_file \"%s\": %m", st_curve_client_key_file)));
	len = fread(secret, 1, sizeof(secret) - 1, file);
	FreeFile(file);
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r' || secret[len - 1] == ' '))
		len--;
	secret[len] = '\0';
	if (len != 40 || zmq_curve_public(public, secret) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.curve_client_key_file does not hold a 40-character Z85 secret key")));
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, st_daemon_curve_public_key, 40) != 0 ||
		zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public, 40) != 0 ||
		zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 40) != 0)
	{
		int			save_errno = errno;

		explicit_bzero(secret, sizeof(secret));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not set CURVE keys: %s", zmq_strerror(save_errno))));
	}
	explicit_bzero(secret, sizeof(secret));
}

/* Connect to each endpoint of a comma-separated list */
static void
connect_endpoints(void *sock, const char *endpoints)
{
	char	   *list = pstrdup(endpoints);
	char	   *save = NULL;
	char	   *one;

	for (one = strtok_r(list, ",", &save); one != NULL; one = strtok_r(NULL, ",", &save))
	{
		while (*one == ' ')
			one++;
		if (*one == '\0')
			continue;
		if (zmq_connect(sock, one) != 0)
		{
			int			save_errno = errno;

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid steadytext daemon endpoint \"%s\": %s", one, zmq_strerror(save_errno))));
		}
	}
	pfree(list);
}

/* CURVE keys when configured, then a connection to each endpoint of the list; may raise errors */
void
st_client_connect(void *sock, const char *endpoints)
{
	set_curve_keys(sock);
	connect_endpoints(sock, endpoints);
}

/* Watch the socket's connections come and go (a PAIR socket receives the events) */
static void
start_monitor(void *sock)
{
	char		address[64];
	void	   *monitor;

	snprintf(address, sizeof(address), "inproc://steadytext-monitor-%d-" UINT64_FORMAT, MyProcPid, ++st_monitor_counter);
	if (zmq_socket_monitor(sock, address, ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
		return;					/* no monitor: calls still work, they just wait out their timeout */
	monitor = zmq_socket(st_context, ZMQ_PAIR);
	if (monitor == NULL)
		return;
	set_int_option(monitor, ZMQ_LINGER, 0);
	if (zmq_connect(monitor, address) != 0)
	{
		zmq_close(monitor);
		return;
	}
	st_monitor = monitor;
}

/* Read pending connection events: how many connections were lost and made since the last read */
static void
read_monitor(int *lost, int *made)
{
	if (st_monitor == NULL)
		return;
	for (;;)
	{
		zmq_msg_t	msg;
		uint16_t	event = 0;
		int			more;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, st_monitor, ZMQ_DONTWAIT) < 0)
		{
			zmq_msg_close(&msg);
			return;
		}
		if (zmq_msg_size(&msg) >= sizeof(event))
			memcpy(&event, zmq_msg_data(&msg), sizeof(event));
		more = zmq_msg_more(&msg);
		zmq_msg_close(&msg);
		/* The second frame is the endpoint's address */
		while (more)
		{
			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, st_monitor, ZMQ_DONTWAIT) < 0)
				more = 0;
			else
				more = zmq_msg_more(&msg);
			zmq_msg_close(&msg);
		}
		if (event == ZMQ_EVENT_DISCONNECTED && lost)
			(*lost)++;
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && made)
			(*made)++;
	}
}

/* The backend's socket, connected to the configured endpoint(s) */
static void *
get_socket(void)
{
	char	   *endpoint = st_effective_endpoint();
	void	   *sock;
	int64		max_reply = ST_MAX_REPLY_BYTES;

	if (st_socket != NULL && strcmp(st_socket_endpoint, endpoint) == 0)
		return st_socket;

	if (st_context == NULL)
	{
		st_context = zmq_ctx_new();
		if (st_context == NULL)
		{
			int			save_errno = errno;

			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not create a ZeroMQ context: %s", zmq_strerror(save_errno))));
		}
		zmq_ctx_set(st_context, ZMQ_IO_THREADS, 1);
		/* zmq_ctx_term must never wait for unsent messages */
		zmq_ctx_set(st_context, ZMQ_BLOCKY, 0);
		on_proc_exit(st_client_exit, (Datum) 0);
	}
	close_socket();

	sock = zmq_socket(st_context, ZMQ_DEALER);
	if (sock == NULL)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not create a ZeroMQ socket: %s", zmq_strerror(save_errno))));
	}
	PG_TRY();
	{
		set_int_option(sock, ZMQ_LINGER, 0);
		/* Queue nothing for a daemon that is not connected: a call fails fast instead */
		set_int_option(sock, ZMQ_IMMEDIATE, 1);
		set_int_option(sock, ZMQ_SNDHWM, 1000);
		set_int_option(sock, ZMQ_RCVHWM, 1000);
		set_int_option(sock, ZMQ_RECONNECT_IVL, 100);
		if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_reply, sizeof(max_reply)) != 0)
		{
			int			save_errno = errno;

			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not limit ZeroMQ message size: %s", zmq_strerror(save_errno))));
		}
		st_client_connect(sock, endpoint);
		start_monitor(sock);
	}
	PG_CATCH();
	{
		int			linger = 0;

		zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(sock);
		PG_RE_THROW();
	}
	PG_END_TRY();

	st_socket = sock;
	st_socket_endpoint = MemoryContextStrdup(TopMemoryContext, endpoint);
	st_daemon_unreachable = false;
	return st_socket;
}

/* Milliseconds from now until a deadline (negative when past) */
static long
ms_until(TimestampTz deadline)
{
	return (long) ((deadline - GetCurrentTimestamp()) / 1000);
}

/* Wait until the socket can send (a connection is up), checking for interrupts */
static bool
wait_writable(void *sock, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
		long		remaining;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		/* No postmaster, no point waiting: exit as WaitLatch's WL_EXIT_ON_PM_DEATH would */
		if (!PostmasterIsAlive())
			proc_exit(1);
		remaining = Max(ms_until(deadline), 0);
		rc = zmq_poll(&item, 1, Min(remaining, ST_POLL_SLICE_MS));
		if (rc < 0)
		{
			int			save_errno = errno;

			if (save_errno == EINTR)
				continue;		/* a signal: the next CHECK_FOR_INTERRUPTS handles it */
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("zmq_poll failed: %s", zmq_strerror(save_errno))));
		}
		if (rc > 0 && (item.revents & ZMQ_POLLOUT))
			return true;
		if (remaining == 0)
			return false;
	}
}

/* Discard replies nobody waits for any more (stale, or answers to notifications) */
static void
drain(void *sock)
{
	for (;;)
	{
		zmq_msg_t	msg;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0)
		{
			zmq_msg_close(&msg);
			return;
		}
		zmq_msg_close(&msg);
	}
}

/* The origin member of every request: which database to mirror results into */
static const char *
database_json(void)
{
	if (st_database_json == NULL)
	{
		StringInfoData buf;
		char	   *name = get_database_name(MyDatabaseId);

		initStringInfo(&buf);
		escape_json(&buf, name ? name : "");
		st_database_json = MemoryContextStrdup(TopMemoryContext, buf.data);
		pfree(buf.data);
	}
	return st_database_json;
}

/* The session user as JSON: the daemon applies that user's steadytext_rate_limits */
static void
append_user_json(StringInfo buf)
{
	char	   *name = GetUserNameFromId(GetSessionUserId(), true);

	escape_json(buf, name ? name : "");
}

/* The daemon's admin token from steadytext.daemon_admin_token_file, or NULL */
static char *
read_admin_token(void)
{
	FILE	   *file;
	char		token[513];
	size_t		len;

	if (st_daemon_admin_token_file == NULL || st_daemon_admin_token_file[0] == '\0')
		return NULL;
	file = AllocateFile(st_daemon_admin_token_file, "r");
	if (file == NULL)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not read steadytext.daemon_admin_token_file \"%s\": %m", st_daemon_admin_token_file)));
		return NULL;
	}
	len = fread(token, 1, sizeof(token) - 1, file);
	FreeFile(file);
	while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
		len--;
	token[len] = '\0';
	return len > 0 ? pstrdup(token) : NULL;
}

/* Build a request as UTF-8 JSON */
static char *
build_request(const char *id, const char *method, const char *params_json, int *len)
{
	StringInfoData buf;
	char	   *utf8;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"id\":\"%s\",\"method\":", id);
	escape_json(&buf, method);
	appendStringInfo(&buf, ",\"params\":%s,\"origin\":{\"database\":%s,\"user\":", params_json, database_json());
	append_user_json(&buf);
	appendStringInfoChar(&buf, '}');
	/* The daemon checks admin methods itself; only they carry its token */
	if (strcmp(method, "shutdown") == 0)
	{
		char	   *token = read_admin_token();

		if (token != NULL)
		{
			appendStringInfoString(&buf, ",\"admin_token\":");
			escape_json(&buf, token);
		}
	}
	appendStringInfoChar(&buf, '}');
	utf8 = pg_server_to_any(buf.data, buf.len, PG_UTF8);
	*len = (utf8 == buf.data) ? buf.len : (int) strlen(utf8);
	return utf8;
}

/* Send a request; returns its id, or NULL with *failure set when the daemon is not reachable */
char *
st_client_send(const char *method, const char *params_json, StFailure *failure)
{
	void	   *sock = get_socket();
	char	   *id;
	char	   *payload;
	int			len;
	int			wait_ms;

	drain(sock);
	read_monitor(NULL, NULL);	/* only what happens from now on matters */
	id = psprintf("%d:" UINT64_FORMAT, MyProcPid, ++st_request_counter);
	payload = build_request(id, method, params_json, &len);

	/* Once the daemon proved unreachable, do not wait again until it is back */
	wait_ms = st_daemon_unreachable ? 0 : st_connect_timeout_ms;
	if (!wait_writable(sock, wait_ms))
	{
		st_daemon_unreachable = true;
		failure->reason = psprintf("no connection to the daemon at %s", st_socket_endpoint ? st_socket_endpoint : "?");
		return NULL;
	}
	st_daemon_unreachable = false;
	if (!send_frames(sock, payload, len))
	{
		int			save_errno = errno;

		failure->reason = psprintf("could not send to the daemon: %s", zmq_strerror(save_errno));
		return NULL;
	}
	if (st_resend_payload != NULL)
		pfree(st_resend_payload);
	st_resend_payload = MemoryContextAlloc(TopMemoryContext, len);
	memcpy(st_resend_payload, payload, len);
	st_resend_len = len;
	return id;
}

/* A stream has begun: its request must not be sent again */
static void
forget_resend(void)
{
	if (st_resend_payload != NULL)
		pfree(st_resend_payload);
	st_resend_payload = NULL;
	st_resend_len = 0;
}

/*
 * Receive one whole message: [empty delimiter, JSON] or, for vectors asked
 * for as f32le, [empty delimiter, JSON, vector frame]. Returns the JSON
 * (palloc'd, NUL-terminated) and sets *frame to the vector frame or NULL.
 */
static char *
receive_message(void *sock, int *len, char **frame, int *frame_len, const char **problem)
{
	char	   *volatile parts[ST_MAX_FRAMES] = {NULL};
	volatile int sizes[ST_MAX_FRAMES] = {0};
	volatile int frames = 0;
	zmq_msg_t	msg;
	int			more;
	int			first;

	*problem = NULL;
	do
	{
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0)
		{
			zmq_msg_close(&msg);
			*problem = "it ended early";
			return NULL;
		}
		more = zmq_msg_more(&msg);
		if (frames < ST_MAX_FRAMES)
		{
			PG_TRY();
			{
				size_t		size = zmq_msg_size(&msg);
				char	   *part = palloc(size + 1);

				memcpy(part, zmq_msg_data(&msg), size);
				part[size] = '\0';
				parts[frames] = part;
				sizes[frames] = (int) size;
			}
			PG_FINALLY();
			{
				zmq_msg_close(&msg);
			}
			PG_END_TRY();
		}
		else
			zmq_msg_close(&msg);
		frames++;
	} while (more);

	if (frames > ST_MAX_FRAMES)
	{
		*problem = "it has too many frames";
		return NULL;
	}
	first = (frames > 1 && sizes[0] == 0) ? 1 : 0;
	if (frames - first > 2)
	{
		*problem = "it has too many frames";
		return NULL;
	}
	*len = sizes[first];
	*frame = (frames - first == 2) ? parts[first + 1] : NULL;
	*frame_len = (frames - first == 2) ? sizes[first + 1] : 0;
	return parts[first];
}

/* Reject a reply that is not UTF-8, and convert it to the database encoding */
static char *
to_server_encoding(char *payload, int *len)
{
	char	   *converted;

	if (!pg_verify_mbstr(PG_UTF8, payload, *len, true))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed reply from the steadytext daemon"),
				 errdetail("The reply is not valid UTF-8.")));
	converted = pg_any_to_server(payload, *len, PG_UTF8);
	if (converted != payload)
		*len = (int) strlen(converted);
	return converted;
}

/* Wait for the reply to request `id`; false with *failure set on timeout */
bool
st_client_wait(const char *id, StReply *reply, StFailure *failure)
{
	void	   *sock = st_socket;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), st_request_timeout_ms);
	/* When the connection was lost: wait this long for a daemon to resend to */
	TimestampTz volatile reconnect_deadline = 0;
	volatile bool resent = false;
	volatile bool lost_for_good = false;
	bool		answered = false;

	if (sock == NULL)
		elog(ERROR, "steadytext: no request was sent");
	strlcpy(st_inflight_id, id, sizeof(st_inflight_id));
	PG_TRY();
	{
		for (;;)
		{
			zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0}, {st_monitor, 0, ZMQ_POLLIN, 0}};
			zmq_pollitem_t *item = &items[0];
			long		remaining;
			int			rc;
			char	   *payload;
			int			len = 0;
			const char *problem;
			char	   *parse_problem;
			int			lost = 0;
			int			made = 0;
			char	   *vector_frame;
			int			vector_frame_len;

			CHECK_FOR_INTERRUPTS();
			if (!PostmasterIsAlive())
				proc_exit(1);
			read_monitor(&lost, &made);
			if (lost > 0 && !resent && reconnect_deadline == 0)
			{
				if (st_resend_payload == NULL)
				{
					/* A stream that has begun cannot be resent: give up now */
					lost_for_good = true;
					break;
				}
				reconnect_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), st_reconnect_wait_ms);
			}
			if (reconnect_deadline != 0 && !resent)
			{
				zmq_pollitem_t out = {sock, 0, ZMQ_POLLOUT, 0};

				/* Writable means a daemon is connected (ZMQ_IMMEDIATE): send the request again, once */
				if (zmq_poll(&out, 1, 0) > 0 && (out.revents & ZMQ_POLLOUT) &&
					send_frames(sock, st_resend_payload, st_resend_len))
				{
					resent = true;
					reconnect_deadline = 0;
					ereport(DEBUG1, (errmsg_internal("steadytext: the connection was lost; request %s sent again", id)));
				}
				else if (st_socket == NULL || ms_until(reconnect_deadline) <= 0)
				{
					lost_for_good = true;
					break;
				}
			}
			remaining = ms_until(deadline);
			if (remaining <= 0)
				break;
			rc = zmq_poll(items, st_monitor != NULL ? 2 : 1, Min(remaining, ST_POLL_SLICE_MS));
			if (rc < 0)
			{
				int			save_errno = errno;

				if (save_errno == EINTR)
					continue;	/* the next CHECK_FOR_INTERRUPTS handles the signal */
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("zmq_poll failed: %s", zmq_strerror(save_errno))));
			}
			if (rc == 0 || !(item->revents & ZMQ_POLLIN))
				continue;

			payload = receive_message(sock, &len, &vector_frame, &vector_frame_len, &problem);
			if (payload == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("malformed reply from the steadytext daemon"),
						 errdetail("The reply was rejected because %s.", problem)));
			payload = to_server_encoding(payload, &len);
			if (!st_reply_parse(payload, len, reply, &parse_problem))
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("malformed reply from the steadytext daemon"),
						 errdetail("The reply was rejected because %s.", parse_problem)));
			if (reply->id == NULL || strcmp(reply->id, id) != 0)
				continue;		/* an answer to an earlier call that gave up */
			reply->vector_frame = vector_frame;
			reply->vector_frame_len = vector_frame_len;
			answered = true;
			break;
		}
	}
	PG_CATCH();
	{
		send_cancel(id);
		st_inflight_id[0] = '\0';
		PG_RE_THROW();
	}
	PG_END_TRY();
	st_inflight_id[0] = '\0';

	if (!answered)
	{
		send_cancel(id);
		if (lost_for_good)
			failure->reason = psprintf("the connection to the daemon was lost and no daemon answered within %d ms", st_reconnect_wait_ms);
		else
			failure->reason = psprintf("no reply from the daemon within %d ms", st_request_timeout_ms);
	}
	return answered;
}

/* Send the stream acknowledgement that asks for the next chunk */
void
st_client_ack(void)
{
	forget_resend();
	if (st_socket == NULL || !send_frames(st_socket, "ACK", 3))
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not acknowledge a stream chunk: %s", zmq_strerror(save_errno))));
	}
}

/* Ask the daemon to stop working on request `id` (best effort, never blocks) */
void
st_client_cancel(const char *id)
{
	send_cancel(id);
}

/* Connect (if not yet) and learn the database name, so a later st_client_send_quietly needs neither */
const char *
st_client_prepare(void)
{
	(void) get_socket();
	return database_json();
}

/*
 * Send a finished request nobody waits for, on the socket st_client_prepare
 * set up. Never raises an error and never checks for interrupts, so it is
 * safe at transaction end. A connection still coming up is waited for
 * briefly; a daemon that is not connected loses the message.
 */
bool
st_client_send_quietly(const char *payload, size_t len)
{
	zmq_pollitem_t item = {st_socket, 0, ZMQ_POLLOUT, 0};

	if (st_socket == NULL)
		return false;
	drain(st_socket);
	if (zmq_poll(&item, 1, st_daemon_unreachable ? 0 : Min(st_connect_timeout_ms, ST_NOTIFY_WAIT_MS)) <= 0 ||
		!(item.revents & ZMQ_POLLOUT))
		return false;
	return send_frames(st_socket, payload, len);
}
