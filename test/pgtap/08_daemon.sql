-- Daemon status and control from SQL: real uptime and heartbeat; start and
-- stop only for steadytext_admin, and start never runs a shell.
BEGIN;
SELECT plan(8);

SELECT is((SELECT status FROM steadytext_daemon_status()), 'healthy', 'the daemon answers');
SELECT ok((SELECT uptime_seconds >= 0 FROM steadytext_daemon_status()), 'with its uptime');
SELECT ok((SELECT last_heartbeat > now() - interval '1 minute' FROM steadytext_daemon_status()), 'and a fresh heartbeat');
SELECT is((SELECT endpoint FROM steadytext_daemon_status()), _steadytext_endpoint(), 'on the configured endpoint');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_daemon_health WHERE status = 'healthy'), 'the sidecar writes its heartbeat row');

-- Start runs the configured command without a shell; unset, it is a clear error.
SELECT throws_ok($$SELECT steadytext_daemon_start()$$, '55000', 'steadytext.daemon_command is not set');
SET LOCAL steadytext.daemon_command = 'st daemon start; touch /tmp/pwned';
SELECT throws_like($$SELECT steadytext_daemon_start()$$, '%is not an executable absolute path', 'a command line is not a command');

CREATE ROLE st_nobody NOLOGIN;
SET LOCAL ROLE st_nobody;
SELECT throws_ok($$SELECT steadytext_daemon_stop()$$, '42501', NULL, 'stopping needs steadytext_admin');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
