/*
 * st_guc.h
 *		Configuration parameters of pg_steadytext (steadytext.*).
 */
#ifndef ST_GUC_H
#define ST_GUC_H

typedef enum StOnUnavailable
{
	ST_ON_UNAVAILABLE_NULL,
	ST_ON_UNAVAILABLE_ERROR
} StOnUnavailable;

extern char *st_daemon_endpoint;
extern char *st_daemon_host;
extern int	st_daemon_port;
extern int	st_request_timeout_ms;
extern int	st_connect_timeout_ms;
extern int	st_reconnect_wait_ms;
extern char *st_daemon_admin_token_file;
extern char *st_daemon_curve_public_key;
extern char *st_curve_client_key_file;
extern int	st_on_unavailable;
extern char *st_daemon_command;

extern void st_guc_init(void);
extern void st_guc_reserve_prefix(void);
extern char *st_effective_endpoint(void);

#endif							/* ST_GUC_H */
