-- Configuration: defaults, validated changes, an audit row for each, and
-- daemon host/port that take effect.
BEGIN;
SELECT plan(30);

SELECT is(steadytext_config_get('default_max_tokens'), '512', 'default max tokens');
SELECT is(steadytext_config_get('daemon_port'), '5557', 'default daemon port');
SELECT is(steadytext_config_get('no_such_key'), NULL, 'unknown keys read as NULL');
SELECT is(steadytext_config_get(NULL), NULL, 'NULL key reads as NULL');

SELECT lives_ok($$SELECT steadytext_config_set('default_max_tokens', '64')$$, 'set a known key');
SELECT is(steadytext_config_get('default_max_tokens'), '64', 'and read it back');
SELECT is(steadytext_generate('config default', NULL), steadytext_generate('config default', 64), 'max_tokens NULL follows the configured default');
SELECT ok(EXISTS (SELECT 1 FROM steadytext_audit_log WHERE event_type = 'config_change' AND details->>'key' = 'default_max_tokens' AND details->>'value' = '64'), 'the change is audited');

SELECT throws_ok($$SELECT steadytext_config_set('daemon_host', 'bad host; rm -rf /')$$, 'P0001', 'Invalid host format');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_port', '0')$$, 'P0001', 'Invalid port format');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_port', '65536')$$, 'P0001', 'Invalid port format');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_port', 'abc')$$, 'P0001', 'Invalid port format');
SELECT throws_ok($$SELECT steadytext_config_set('default_max_tokens', '5000')$$, 'P0001', 'default_max_tokens must be between 1 and 4096');
SELECT throws_ok($$SELECT steadytext_config_set('cache_eviction_enabled', 'maybe')$$, 'P0001', 'Invalid boolean for cache_eviction_enabled: maybe');
SELECT throws_ok($$SELECT steadytext_config_set('model_path', '/etc/passwd')$$, 'P0001', 'Invalid file path');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_command', 'st; rm -rf /')$$, 'P0001', 'Invalid command format');
SELECT throws_ok($$SELECT steadytext_config_set('embed_table_name', 'x; DROP TABLE y')$$, 'P0001', 'Invalid table name');

-- users keep their own settings next to ours
SELECT lives_ok($$SELECT steadytext_config_set('my_app.Feature Flag', 'on; whatever')$$, 'any other key may be set');
SELECT is(steadytext_config_get('my_app.Feature Flag'), 'on; whatever', 'and reads back exactly as given');
SELECT is(steadytext_config_get(config_key := 'default_seed'), '42', 'steadytext_config_get takes config_key, as the original');
SELECT lives_ok($$SELECT steadytext_config_set(config_key := 'my_key', config_value := 'v')$$, 'steadytext_config_set takes config_key and config_value');
SELECT lives_ok($$SELECT steadytext_config_set(NULL, 'x')$$, 'STRICT: a NULL key is ignored, not an error');

-- host and port become this database's connection settings
SELECT lives_ok($$SELECT steadytext_config_set('daemon_port', '6123')$$, 'set the port');
SELECT is(current_setting('steadytext.daemon_port'), '6123', 'the session uses it at once');
SELECT ok(EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                  WHERE d.datname = current_database() AND 'steadytext.daemon_port=6123' = ANY (s.setconfig)), 'new sessions will too');

-- A steadytext_admin who is not a superuser cannot point the database at another daemon or command.
CREATE ROLE st_config_admin NOLOGIN IN ROLE steadytext_admin;
SET LOCAL ROLE st_config_admin;
SET LOCAL SESSION AUTHORIZATION st_config_admin;
SELECT throws_ok($$SELECT steadytext_config_set('daemon_port', '6124')$$, '42501', 'permission denied to set daemon_port', 'an admin cannot change the daemon port');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_host', 'evil.example')$$, '42501', 'permission denied to set daemon_host', 'nor the host');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_command', '/tmp/evil')$$, '42501', 'permission denied to set daemon_command', 'nor the command');
SELECT lives_ok($$SELECT steadytext_config_set('default_seed', '7')$$, 'but may change what an admin may');
RESET SESSION AUTHORIZATION;
SELECT is(current_setting('steadytext.daemon_port'), '6123', 'the port stayed');

SELECT * FROM finish();
ROLLBACK;
