/*
 * st_client.c
 *		The backend's ZeroMQ connection to the SteadyText daemon.
 *
 * One DEALER socket per endpoint per backend (a "link"), created on first use
 * (never in the postmaster) and reused: a new socket per call costs about
 * three times as much. Requests carry ids so a reply that arrives after its
 * call gave up is recognised and dropped. Waits poll in short slices and
 * check for interrupts between them, so statement_timeout, pg_cancel_backend
 * and pg_terminate_backend work while a call waits; a call that gives up
 * tells the daemon to stop working on it.
 *
 * steadytext.daemon_endpoint may be a comma-separated list: calls go round
 * the links that can take them, and ZMQ_IMMEDIATE makes a link with no
 * daemon connected refuse them. A socket per endpoint, rather than one socket
 * connected to all, tells the client which daemon holds a request: a
 * stream's ACKs go to the daemon that streams, and a resend never goes into
 * the connection that just died.
 *
 * Each link's socket monitor reports lost connections. A call whose daemon
 * died is sent again, since every request is deterministic and idempotent,
 * as soon as a link can take it (another endpoint, or the same one
 * reconnected) within steadytext.reconnect_wait_ms; otherwise it gives up
 * then, not at request_timeout_ms. libzmq reports a loss a moment before the
 * socket drops the dead connection's pipe, and a message sent in that moment
 * vanishes without a trace; so a link whose loss was reported takes nothing
 * until its monitor also reports the new handshake, which libzmq sends after
 * the old pipe's end. A stream that has begun is not resent (its rows are
 * already out): it ends as unavailable at once.
 */
#include "postgres.h"

#include <zmq.h>

#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "st_cache_lookup.h"
#include "st_client.h"
#include "st_guc.h"

/* Replies larger than this make libzmq drop the connection instead */
#define ST_MAX_REPLY_BYTES ((int64) 256 * 1024 * 1024)
/* Longest a wait goes without checking for interrupts */
#define ST_POLL_SLICE_MS 50
/* A reply has [empty delimiter, payload]; anything with more frames is malformed */
#define ST_MAX_FRAMES 3
/* Endpoints one steadytext.daemon_endpoint may list */
#define ST_MAX_LINKS 16
/* A request lost again and again (a daemon that keeps dying) is not sent forever */
#define ST_MAX_RESENDS 8

/* A socket connected to one daemon endpoint, and what its monitor reported */
typedef struct StLink
{
	void	   *sock;
	void	   *monitor;		/* PAIR receiving sock's connection events, or NULL */
	bool		lost;			/* a loss was reported and no handshake since: send nothing */
	uint64		losses;			/* connection losses reported so far */
} StLink;

static void *st_context = NULL;
static StLink st_links[ST_MAX_LINKS];
static int	st_nlinks = 0;
/* The endpoint list the links were opened for */
static char *st_links_endpoint = NULL;
/* Where the next round of links starts, so calls are spread over the daemons */
static int	st_next_link = 0;
/* The link holding the current request, and its loss count when the request went there */
static int	st_request_link = -1;
static uint64 st_request_losses = 0;
static uint64 st_monitor_counter = 0;
/* The last request sent, for resending after a lost connection (NULL once a stream has begun) */
static char *st_resend_payload = NULL;
static int	st_resend_len = 0;
static uint64 st_request_counter = 0;
static bool st_daemon_unreachable = false;
static char *st_database_json = NULL;
/* The request a call is waiting for, so an exiting backend can cancel it */
static char st_inflight_id[64] = "";

static void close_links(int request_linger_ms);

/* Queue a two-frame message without blocking; false if it could not be queued */
static bool
send_frames(void *sock, const char *payload, size_t len)
{
	if (zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return false;
	if (zmq_send(sock, payload, len, ZMQ_DONTWAIT) >= 0)
		return true;
	/* A half-sent multipart message would swallow the next one: start over */
	close_links(0);
	return false;
}

/* Ask the daemon holding a request to stop working on it, without palloc (usable at exit) */
static void
send_cancel(const char *id)
{
	char		payload[256];
	int			len;

	if (st_request_link < 0 || id[0] == '\0')
		return;
	len = snprintf(payload, sizeof(payload),
				   "{\"id\":\"%s:cancel\",\"method\":\"cancel\",\"params\":{\"request_id\":\"%s\"}}",
				   id, id);
	if (len > 0 && len < (int) sizeof(payload))
		(void) send_frames(st_links[st_request_link].sock, payload, len);
}

/* Close the links at backend exit; a call still waiting is cancelled first */
static void
st_client_exit(int code, Datum arg)
{
	bool		cancelling = false;

	if (st_inflight_id[0] != '\0' && st_request_link >= 0)
	{
		send_cancel(st_inflight_id);
		/* send_cancel closes the links itself if it could not queue the message */
		cancelling = st_nlinks > 0;
	}
	/* Give a waiting call's cancel a moment to leave; otherwise drop everything at once */
	close_links(cancelling ? 200 : 0);
	if (st_context != NULL)
	{
		if (cancelling)
			zmq_ctx_term(st_context);	/* bounded by the linger just set */
		else
			zmq_ctx_shutdown(st_context);	/* zmq_ctx_term could block for a long time */
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

/* The endpoints of a comma-separated list, blanks trimmed and empty entries skipped (palloc'd) */
static List *
split_endpoints(const char *endpoints)
{
	char	   *list = pstrdup(endpoints);
	char	   *save = NULL;
	char	   *one;
	List	   *result = NIL;

	for (one = strtok_r(list, ",", &save); one != NULL; one = strtok_r(NULL, ",", &save))
	{
		while (*one == ' ')
			one++;
		if (*one != '\0')
			result = lappend(result, one);
	}
	return result;
}

/* Connect a socket to one endpoint, or raise an error naming it */
static void
connect_endpoint(void *sock, const char *endpoint)
{
	if (zmq_connect(sock, endpoint) != 0)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid steadytext daemon endpoint \"%s\": %s", endpoint, zmq_strerror(save_errno))));
	}
}

/* CURVE keys when configured, then a connection to each endpoint of the list; may raise errors */
void
st_client_connect(void *sock, const char *endpoints)
{
	ListCell   *cell;

	set_curve_keys(sock);
	foreach(cell, split_endpoints(endpoints))
		connect_endpoint(sock, lfirst(cell));
}

void *
st_zmq_context(void)
{
	void	   *context = zmq_ctx_new();

	if (context == NULL)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not create a ZeroMQ context: %s", zmq_strerror(save_errno))));
	}
	zmq_ctx_set(context, ZMQ_IO_THREADS, 1);
	/* zmq_ctx_term must never wait for unsent messages */
	zmq_ctx_set(context, ZMQ_BLOCKY, 0);
	return context;
}

/* Milliseconds from now until a deadline (negative when past) */
static long
ms_until(TimestampTz deadline)
{
	return (long) ((deadline - GetCurrentTimestamp()) / 1000);
}


/*
 * Close every link, dropping whatever they still hold; the link holding a
 * request lingers request_linger_ms so its cancel can leave
 */
static void
close_links(int request_linger_ms)
{
	int			no_linger = 0;

	for (int i = 0; i < st_nlinks; i++)
	{
		StLink	   *link = &st_links[i];
		int			linger = (i == st_request_link) ? request_linger_ms : 0;

		zmq_setsockopt(link->sock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_socket_monitor(link->sock, NULL, 0);
		zmq_close(link->sock);
		if (link->monitor != NULL)
		{
			zmq_setsockopt(link->monitor, ZMQ_LINGER, &no_linger, sizeof(no_linger));
			zmq_close(link->monitor);
		}
	}
	memset(st_links, 0, sizeof(st_links));
	st_nlinks = 0;
	st_next_link = 0;
	st_request_link = -1;
	if (st_links_endpoint != NULL)
		pfree(st_links_endpoint);
	st_links_endpoint = NULL;
}

/* Watch a link's connections come and go (a PAIR socket receives the events) */
static void
start_monitor(StLink *link)
{
	char		address[64];
	void	   *monitor;
	int			no_linger = 0;

	snprintf(address, sizeof(address), "inproc://steadytext-monitor-%d-" UINT64_FORMAT, MyProcPid, ++st_monitor_counter);
	if (zmq_socket_monitor(link->sock, address, ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
		return;					/* no monitor: calls still work, they just wait out their timeout */
	monitor = zmq_socket(st_context, ZMQ_PAIR);
	if (monitor == NULL)
		return;
	zmq_setsockopt(monitor, ZMQ_LINGER, &no_linger, sizeof(no_linger));
	if (zmq_connect(monitor, address) != 0)
	{
		zmq_close(monitor);
		return;
	}
	link->monitor = monitor;
}

/* Take in a link's pending connection events */
static void
read_events(StLink *link)
{
	if (link->monitor == NULL)
		return;
	for (;;)
	{
		zmq_msg_t	msg;
		uint16_t	event = 0;
		int			more;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, link->monitor, ZMQ_DONTWAIT) < 0)
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
			if (zmq_msg_recv(&msg, link->monitor, ZMQ_DONTWAIT) < 0)
				more = 0;
			else
				more = zmq_msg_more(&msg);
			zmq_msg_close(&msg);
		}
		if (event == ZMQ_EVENT_DISCONNECTED)
		{
			link->lost = true;
			link->losses++;
		}
		else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			link->lost = false;
	}
}

static void
read_all_events(void)
{
	for (int i = 0; i < st_nlinks; i++)
		read_events(&st_links[i]);
}

/* Open a link to one endpoint; may raise errors */
static void
open_link(const char *endpoint)
{
	StLink	   *link = &st_links[st_nlinks];
	int64		max_reply = ST_MAX_REPLY_BYTES;
	void	   *sock = zmq_socket(st_context, ZMQ_DEALER);

	if (sock == NULL)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not create a ZeroMQ socket: %s", zmq_strerror(save_errno))));
	}
	memset(link, 0, sizeof(*link));
	link->sock = sock;
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
		set_curve_keys(sock);
		/* Before connecting, so that no handshake goes unreported */
		start_monitor(link);
		connect_endpoint(sock, endpoint);
	}
	PG_CATCH();
	{
		int			linger = 0;

		zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_socket_monitor(sock, NULL, 0);
		zmq_close(sock);
		if (link->monitor != NULL)
			zmq_close(link->monitor);
		memset(link, 0, sizeof(*link));
		PG_RE_THROW();
	}
	PG_END_TRY();
	st_nlinks++;
}

/* The backend's links, one per endpoint of the configured list */
static void
open_links(void)
{
	char	   *endpoint = st_effective_endpoint();
	List	   *endpoints;

	if (st_nlinks > 0 && strcmp(st_links_endpoint, endpoint) == 0)
		return;

	if (st_context == NULL)
	{
		st_context = st_zmq_context();
		on_proc_exit(st_client_exit, (Datum) 0);
	}
	close_links(0);

	endpoints = split_endpoints(endpoint);
	if (endpoints == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.daemon_endpoint names no endpoint")));
	if (list_length(endpoints) > ST_MAX_LINKS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.daemon_endpoint lists more than %d endpoints", ST_MAX_LINKS)));
	PG_TRY();
	{
		ListCell   *cell;

		foreach(cell, endpoints)
			open_link(lfirst(cell));
	}
	PG_CATCH();
	{
		close_links(0);
		PG_RE_THROW();
	}
	PG_END_TRY();

	st_links_endpoint = MemoryContextStrdup(TopMemoryContext, endpoint);
	st_daemon_unreachable = false;
}

/* A link that can take a message now, starting the round after the last one used; -1 if none */
static int
writable_link(void)
{
	zmq_pollitem_t items[ST_MAX_LINKS];

	for (int i = 0; i < st_nlinks; i++)
	{
		items[i].socket = st_links[i].sock;
		items[i].fd = 0;
		items[i].events = ZMQ_POLLOUT;
		items[i].revents = 0;
	}
	if (zmq_poll(items, st_nlinks, 0) <= 0)
		return -1;
	for (int k = 0; k < st_nlinks; k++)
	{
		int			i = (st_next_link + k) % st_nlinks;

		if (!st_links[i].lost && (items[i].revents & ZMQ_POLLOUT))
			return i;
	}
	return -1;
}

/*
 * Poll items for every link: its socket (for replies, and with `sending` for
 * room to send, unless its loss is unanswered) and its monitor. item_link[k]
 * names the link of item k, or -1 for a monitor.
 */
static int
link_poll_items(zmq_pollitem_t *items, int *item_link, bool sending)
{
	int			n = 0;

	for (int i = 0; i < st_nlinks; i++)
	{
		StLink	   *link = &st_links[i];

		items[n].socket = link->sock;
		items[n].fd = 0;
		items[n].events = ZMQ_POLLIN | ((sending && !link->lost) ? ZMQ_POLLOUT : 0);
		items[n].revents = 0;
		item_link[n++] = i;
		if (link->monitor != NULL)
		{
			items[n].socket = link->monitor;
			items[n].fd = 0;
			items[n].events = ZMQ_POLLIN;
			items[n].revents = 0;
			item_link[n++] = -1;
		}
	}
	return n;
}

/* zmq_poll, checking for interrupts and postmaster death first; false when a signal cut it short */
static bool
poll_links(zmq_pollitem_t *items, int n, long timeout_ms)
{
	CHECK_FOR_INTERRUPTS();
	/* No postmaster, no point waiting: exit as WaitLatch's WL_EXIT_ON_PM_DEATH would */
	if (!PostmasterIsAlive())
		proc_exit(1);
	if (zmq_poll(items, n, timeout_ms) < 0)
	{
		int			save_errno = errno;

		if (save_errno == EINTR)
			return false;		/* a signal: the next CHECK_FOR_INTERRUPTS handles it */
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("zmq_poll failed: %s", zmq_strerror(save_errno))));
	}
	return true;
}

/* Discard replies nobody waits for any more (stale, or answers to notifications) */
static void
drain_links(void)
{
	for (int i = 0; i < st_nlinks; i++)
	{
		for (;;)
		{
			zmq_msg_t	msg;

			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, st_links[i].sock, ZMQ_DONTWAIT) < 0)
			{
				zmq_msg_close(&msg);
				break;
			}
			zmq_msg_close(&msg);
		}
	}
}

/* Wait until a link can send (a daemon is connected), checking for interrupts; -1 after timeout_ms */
static int
wait_for_link(int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		zmq_pollitem_t items[2 * ST_MAX_LINKS];
		int			item_link[2 * ST_MAX_LINKS];
		long		remaining;
		int			link;

		read_all_events();
		link = writable_link();
		if (link >= 0)
			return link;
		remaining = Max(ms_until(deadline), 0);
		if (remaining == 0)
			return -1;
		(void) poll_links(items, link_poll_items(items, item_link, true), Min(remaining, ST_POLL_SLICE_MS));
		drain_links();
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
	/* Without limits the daemon skips its round trip to steadytext_rate_limits */
	appendStringInfo(&buf, ",\"rate_limited\":%s}", st_session_user_rate_limited() ? "true" : "false");
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


/* Send a request on a link and remember it holds the request; false if it could not be queued */
static bool
send_on_link(int link, const char *payload, size_t len)
{
	uint64		losses = st_links[link].losses;

	if (!send_frames(st_links[link].sock, payload, len))
		return false;
	st_request_link = link;
	/* A loss reported from now on is the loss of this request */
	st_request_losses = losses;
	st_next_link = (link + 1) % st_nlinks;
	return true;
}

/* Send a request; returns its id, or NULL with *failure set when the daemon is not reachable */
char *
st_client_send(const char *method, const char *params_json, StFailure *failure)
{
	char	   *id;
	char	   *payload;
	int			len;
	int			link;

	open_links();
	drain_links();
	id = psprintf("%d:" UINT64_FORMAT, MyProcPid, ++st_request_counter);
	payload = build_request(id, method, params_json, &len);

	/* Once the daemon proved unreachable, do not wait again until it is back */
	link = wait_for_link(st_daemon_unreachable ? 0 : st_connect_timeout_ms);
	if (link < 0)
	{
		st_daemon_unreachable = true;
		failure->reason = psprintf("no connection to the daemon at %s", st_links_endpoint);
		return NULL;
	}
	st_daemon_unreachable = false;
	if (!send_on_link(link, payload, len))
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
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), st_request_timeout_ms);
	/* Set while a lost request waits for a link to send it again */
	TimestampTz volatile reconnect_deadline = 0;
	volatile int resends = 0;
	volatile bool lost_for_good = false;
	bool		answered = false;

	if (st_request_link < 0)
		elog(ERROR, "steadytext: no request was sent");
	strlcpy(st_inflight_id, id, sizeof(st_inflight_id));
	PG_TRY();
	{
		for (;;)
		{
			zmq_pollitem_t items[2 * ST_MAX_LINKS];
			int			item_link[2 * ST_MAX_LINKS];
			int			nitems;
			int			reply_link = -1;
			long		remaining;
			char	   *payload;
			int			len = 0;
			const char *problem;
			char	   *parse_problem;
			char	   *vector_frame;
			int			vector_frame_len;

			/* A failed send closed the links: nothing can answer any more */
			if (st_request_link < 0)
			{
				lost_for_good = true;
				break;
			}
			read_all_events();
			if (reconnect_deadline == 0 && st_links[st_request_link].losses != st_request_losses)
			{
				/* The connection holding the request is gone, and the request with it */
				if (st_resend_payload == NULL || resends == ST_MAX_RESENDS)
				{
					/* A stream that has begun cannot be resent: give up now */
					lost_for_good = true;
					break;
				}
				reconnect_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), st_reconnect_wait_ms);
			}
			if (reconnect_deadline != 0)
			{
				int			link = writable_link();

				if (link >= 0 && send_on_link(link, st_resend_payload, st_resend_len))
				{
					resends++;
					reconnect_deadline = 0;
					ereport(DEBUG1, (errmsg_internal("steadytext: the connection was lost; request %s sent again", id)));
				}
				else if (st_request_link < 0 || ms_until(reconnect_deadline) <= 0)
				{
					lost_for_good = true;
					break;
				}
			}
			remaining = ms_until(deadline);
			if (remaining <= 0)
				break;
			nitems = link_poll_items(items, item_link, reconnect_deadline != 0);
			if (!poll_links(items, nitems, Min(remaining, ST_POLL_SLICE_MS)))
				continue;
			for (int k = 0; k < nitems && reply_link < 0; k++)
				if (item_link[k] >= 0 && (items[k].revents & ZMQ_POLLIN))
					reply_link = item_link[k];
			if (reply_link < 0)
				continue;

			payload = receive_message(st_links[reply_link].sock, &len, &vector_frame, &vector_frame_len, &problem);
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
			/* A stream's next ACK goes to the daemon that answered */
			if (reply_link != st_request_link)
			{
				st_request_link = reply_link;
				st_request_losses = st_links[reply_link].losses;
			}
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

/* Send the stream acknowledgement that asks for the next chunk, to the daemon that streams */
void
st_client_ack(void)
{
	forget_resend();
	if (st_request_link < 0 || !send_frames(st_links[st_request_link].sock, "ACK", 3))
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
