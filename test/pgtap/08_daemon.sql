-- Daemon status and control from SQL: real uptime and heartbeat; start and
-- stop only for steadytext_admin, and start never runs a shell.
BEGIN;
SELECT plan(13);

SELECT is((SELECT status FROM steadytext_daemon_status()), 'healthy', 'the daemon answers');
SELECT ok((SELECT uptime_seconds >= 0 FROM steadytext_daemon_status()), 'with its uptime');
SELECT is((SELECT last_heartbeat FROM steadytext_daemon_status()),
          (SELECT h.last_heartbeat FROM steadytext_daemon_health h JOIN steadytext_daemon_status() s USING (daemon_id)),
          'its heartbeat is the one the daemon wrote, not the time of asking');
SELECT ok((SELECT last_heartbeat < now() FROM steadytext_daemon_status()), 'written before this transaction began');
SELECT is((SELECT endpoint FROM steadytext_daemon_status()), _steadytext_endpoint(), 'on the configured endpoint');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_daemon_health WHERE status = 'healthy'), 'the sidecar writes its heartbeat row');

-- Where each model computes: the CPU unless STEADYTEXT_GPU says otherwise, and on the CPU a
-- result's identity is the model file's sha256, the one SQL computes cache keys with.
SELECT isnt(steadytext_embed('where does this run?', false), NULL, 'an embedding loads the embedding model');
SELECT is((SELECT backend || ' / ' || device || ' / ' || gpu_layers FROM steadytext_daemon_models() WHERE role = 'embedding'),
          'cpu / cpu / 0', 'steadytext_daemon_models() says it runs on the CPU, no layers on a GPU');
SELECT is((SELECT cache_identity FROM steadytext_daemon_models() WHERE role = 'embedding'),
          (SELECT file_sha256 FROM steadytext_daemon_models() WHERE role = 'embedding'),
          'on the CPU its results are cached under the file''s sha256');
SELECT is((SELECT cache_identity FROM steadytext_daemon_models() WHERE role = 'embedding'),
          (SELECT model_sha256 FROM steadytext_models WHERE selector = 'embedding:default'),
          'the identity SQL computes cache keys with');

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
