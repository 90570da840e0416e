/*
 * st_client.h
 *		The backend's ZeroMQ connection to the SteadyText daemon.
 */
#ifndef ST_CLIENT_H
#define ST_CLIENT_H

#include "st_reply.h"

/* Why a call got no answer: the daemon could not be reached or did not reply in time */
typedef struct StFailure
{
	const char *reason;
} StFailure;

/*
 * Send a request; returns its id (palloc'd), or NULL with *failure set when
 * no connection to the daemon came up within steadytext.connect_timeout_ms.
 */
extern char *st_client_send(const char *method, const char *params_json, StFailure *failure);

/*
 * Wait for the reply to request `id`, dropping stale replies to earlier
 * requests. Returns false with *failure set on timeout. Interrupts
 * (statement_timeout, pg_cancel_backend) are honoured while waiting; the
 * daemon is then told to cancel the request.
 */
extern bool st_client_wait(const char *id, StReply *reply, StFailure *failure);

/* Send the stream acknowledgement that asks for the next chunk */
extern void st_client_ack(void);

/* Ask the daemon to stop working on request `id` (best effort, never blocks) */
extern void st_client_cancel(const char *id);

/*
 * Secure a socket as configured (CURVE keys) and connect it to every
 * endpoint of a comma-separated list; raises an error on bad settings
 */
extern void st_client_connect(void *sock, const char *endpoints);

/*
 * A ZeroMQ context for a backend: one I/O thread, and zmq_ctx_term never
 * waits for unsent messages; raises an error if none can be made
 */
extern void *st_zmq_context(void);

#endif							/* ST_CLIENT_H */
