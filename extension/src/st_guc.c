/*
 * st_guc.c
 *		Configuration parameters of pg_steadytext (steadytext.*).
 *
 * Where the daemon is can only be changed by a superuser (or by
 * ALTER DATABASE/ROLE ... SET, which a superuser grants), so an ordinary
 * user cannot point the backend at some other service. Timeouts and what
 * to do when the daemon is unavailable are each session's choice.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "st_guc.h"

char	   *st_daemon_endpoint = NULL;
char	   *st_daemon_host = NULL;
int			st_daemon_port = 5557;
int			st_request_timeout_ms = 30000;
int			st_connect_timeout_ms = 1000;
int			st_reconnect_wait_ms = 5000;
int			st_on_unavailable = ST_ON_UNAVAILABLE_NULL;
char	   *st_daemon_command = NULL;
char	   *st_daemon_admin_token_file = NULL;
char	   *st_daemon_curve_public_key = NULL;
char	   *st_curve_client_key_file = NULL;

static const struct config_enum_entry on_unavailable_options[] = {
	{"null", ST_ON_UNAVAILABLE_NULL, false},
	{"error", ST_ON_UNAVAILABLE_ERROR, false},
	{NULL, 0, false}
};

/* Check that a host name contains only characters a ZeroMQ endpoint allows */
static bool
check_daemon_host(char **newval, void **extra, GucSource source)
{
	const char *c;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("steadytext.daemon_host must not be empty.");
		return false;
	}
	for (c = *newval; *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_' ||
			  *c == ':' || *c == '[' || *c == ']'))
		{
			GUC_check_errdetail("steadytext.daemon_host may contain only letters, digits, '.', '-', '_', ':' and brackets.");
			return false;
		}
	}
	return true;
}

/* Check that an endpoint is empty, or a comma-separated list of tcp:// and ipc:// endpoints */
static bool
check_daemon_endpoint(char **newval, void **extra, GucSource source)
{
	const char *one;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	for (one = *newval; one != NULL; one = strchr(one, ','), one = one ? one + 1 : NULL)
	{
		while (*one == ' ')
			one++;
		if (strncmp(one, "tcp://", 6) != 0 && strncmp(one, "ipc://", 6) != 0)
		{
			GUC_check_errdetail("steadytext.daemon_endpoint must be a comma-separated list of tcp:// or ipc:// endpoints.");
			return false;
		}
	}
	return true;
}

/* Define the steadytext.* parameters */
void
st_guc_init(void)
{
	DefineCustomStringVariable("steadytext.daemon_endpoint",
							   "ZeroMQ endpoint of the SteadyText daemon (overrides host and port).",
							   "For example tcp://127.0.0.1:5557 or ipc:///run/steadytext.sock. Empty means tcp://daemon_host:daemon_port.",
							   &st_daemon_endpoint, "", PGC_SUSET, 0,
							   check_daemon_endpoint, NULL, NULL);
	DefineCustomStringVariable("steadytext.daemon_host",
							   "Host of the SteadyText daemon.",
							   NULL, &st_daemon_host, "127.0.0.1", PGC_SUSET, 0,
							   check_daemon_host, NULL, NULL);
	DefineCustomIntVariable("steadytext.daemon_port",
							"TCP port of the SteadyText daemon.",
							NULL, &st_daemon_port, 5557, 1, 65535, PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("steadytext.request_timeout_ms",
							"How long a call waits for the daemon's answer.",
							NULL, &st_request_timeout_ms, 30000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("steadytext.connect_timeout_ms",
							"How long a call waits for a connection to the daemon.",
							"After a failed connection, calls do not wait again until the daemon is back.",
							&st_connect_timeout_ms, 1000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("steadytext.reconnect_wait_ms",
							"How long a call whose daemon connection was lost waits for a daemon to resend it to.",
							"The request is sent again to the first daemon that can take it (the same one restarted, or another endpoint of the list).",
							&st_reconnect_wait_ms, 5000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomEnumVariable("steadytext.on_unavailable",
							 "What a call returns when the daemon or model is unavailable.",
							 "null returns SQL NULL; error raises an error.",
							 &st_on_unavailable, ST_ON_UNAVAILABLE_NULL, on_unavailable_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("steadytext.daemon_command",
							   "Absolute path of the st command steadytext_daemon_start() runs.",
							   "It runs as \"<command> daemon start --endpoint <endpoint>\", without a shell.",
							   &st_daemon_command, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	/*
	 * A path, not the secret itself: a setting from the configuration file is
	 * readable by anyone in a session that has not loaded this library yet.
	 */
	DefineCustomStringVariable("steadytext.daemon_admin_token_file",
							   "File holding the daemon's admin token, which steadytext_daemon_stop() sends.",
							   "Readable by the server's OS user only. Without it the daemon refuses to stop on request from SQL.",
							   &st_daemon_admin_token_file, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("steadytext.daemon_curve_public_key",
							   "The daemon's CURVE public key (Z85, server.pub of st keys generate); set, connections use CURVE.",
							   NULL, &st_daemon_curve_public_key, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("steadytext.curve_client_key_file",
							   "File holding this server's CURVE secret key (client.key of st keys generate).",
							   "Readable by the server's OS user only.",
							   &st_curve_client_key_file, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);
}

/*
 * After every module has defined its settings: a steadytext.* name set before
 * the library loaded and defined by none of them is a typo (warned, removed).
 * Called earlier, it dropped the session's value of a setting defined later.
 */
void
st_guc_reserve_prefix(void)
{
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("steadytext");
#else
	EmitWarningsOnPlaceholders("steadytext");
#endif
}

/* The endpoint to connect to, palloc'd */
char *
st_effective_endpoint(void)
{
	if (st_daemon_endpoint != NULL && st_daemon_endpoint[0] != '\0')
		return pstrdup(st_daemon_endpoint);
	return psprintf("tcp://%s:%d", st_daemon_host, st_daemon_port);
}
