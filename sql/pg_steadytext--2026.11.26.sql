/* pg_steadytext install script, version 2026.11.26 */

\echo Use "CREATE EXTENSION pg_steadytext CASCADE" to load this file. \quit

-- The functions name pgvector's type through this schema: install into the
-- schema that holds vector (CREATE EXTENSION pg_steadytext SCHEMA s CASCADE
-- installs both there).
DO $vector_schema$
BEGIN
    IF (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')
       IS DISTINCT FROM '@extschema@'::regnamespace THEN
        RAISE EXCEPTION 'pg_steadytext must be installed in the schema of the vector extension (%)',
            (SELECT e.extnamespace::regnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')
            USING HINT = 'CREATE EXTENSION pg_steadytext SCHEMA <that schema>';
    END IF;
END
$vector_schema$;

-- ---------------------------------------------------------------------------
-- Roles and tables
-- ---------------------------------------------------------------------------

-- Members of steadytext_admin may change configuration, start and stop the
-- daemon and manage the cache; nothing of that is granted to PUBLIC.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'steadytext_admin') THEN
        CREATE ROLE steadytext_admin NOLOGIN;
    END IF;
END
$roles$;

-- Results mirrored by the sidecar. Write-once per key; the SQL functions read
-- it by key before asking the daemon. Only the sidecar (as steadytext_admin
-- or the owner) writes here.
CREATE TABLE @extschema@.steadytext_cache (
    id bigserial PRIMARY KEY,
    cache_key text NOT NULL CONSTRAINT idx_steadytext_cache_key UNIQUE,
    kind text NOT NULL DEFAULT 'generate' CHECK (kind IN ('generate', 'embed', 'rerank')),
    prompt text NOT NULL,
    response text,
    embedding vector(1024),
    score double precision,
    access_count integer NOT NULL DEFAULT 1,
    last_accessed timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    steadytext_cache_hit boolean DEFAULT false,
    model_name text NOT NULL DEFAULT 'unknown',
    model_size text,
    model_sha256 text,
    seed integer DEFAULT 42,
    eos_string text,
    generation_params jsonb,
    response_size integer,
    generation_time_ms integer
);
-- A vector (4 kB) stays in the row rather than in the TOAST table: a cache hit
-- then reads one tuple instead of one plus two TOAST chunks through their index.
ALTER TABLE @extschema@.steadytext_cache ALTER COLUMN embedding SET STORAGE MAIN;
-- The original's index names (idx_steadytext_cache_key is the unique constraint's index).
CREATE INDEX idx_steadytext_cache_last_accessed ON @extschema@.steadytext_cache (last_accessed);
CREATE INDEX idx_steadytext_cache_access_count ON @extschema@.steadytext_cache (access_count);
CREATE INDEX steadytext_cache_created_at_idx ON @extschema@.steadytext_cache (created_at);
COMMENT ON TABLE @extschema@.steadytext_cache IS
    'Results of steadytext functions, keyed by a SHA-256 over every input that changes them (model file included). Written by the sidecar.';

-- Which model file each selector ("generation:default", "generation:size:large",
-- "embedding:default", ...) means, so SQL can compute cache keys without the daemon.
CREATE TABLE @extschema@.steadytext_models (
    selector text PRIMARY KEY,
    model_sha256 text NOT NULL CHECK (model_sha256 ~ '^[0-9a-f]{64}$'),
    model_name text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE @extschema@.steadytext_config (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    description text,
    updated_at timestamptz DEFAULT now(),
    updated_by text DEFAULT current_user
);
INSERT INTO @extschema@.steadytext_config (key, value, description) VALUES
    ('daemon_host', '"127.0.0.1"', 'SteadyText daemon host (applied to steadytext.daemon_host)'),
    ('daemon_port', '5557', 'SteadyText daemon port (applied to steadytext.daemon_port)'),
    ('cache_enabled', 'true', 'Whether use_cache defaults apply (the functions'' use_cache argument decides)'),
    ('cache_eviction_enabled', 'true', 'Whether steadytext_cache_scheduled_eviction() evicts'),
    ('cache_max_entries', '10000', 'Entries the Postgres cache keeps after eviction'),
    ('cache_max_size_mb', '100', 'Size the Postgres cache keeps after eviction'),
    ('default_max_tokens', '512', 'max_tokens when a call passes NULL'),
    ('default_seed', '42', 'seed when a call passes NULL'),
    ('daemon_auto_start', 'false', 'Not used: start the daemon with st daemon start or steadytext_daemon_start()');

CREATE TABLE @extschema@.steadytext_audit_log (
    id bigserial PRIMARY KEY,
    event_id uuid DEFAULT gen_random_uuid(),
    event_type text NOT NULL,
    user_id text DEFAULT current_user,
    request_id uuid,
    details jsonb,
    created_at timestamptz DEFAULT now(),
    ip_address inet DEFAULT inet_client_addr(),
    success boolean DEFAULT true,
    error_message text
);
CREATE INDEX steadytext_audit_log_created_at_idx ON @extschema@.steadytext_audit_log (created_at DESC);

-- The sidecar's heartbeat (every 10 s, through its mirror connection).
CREATE TABLE @extschema@.steadytext_daemon_health (
    daemon_id text PRIMARY KEY DEFAULT 'default',
    endpoint text NOT NULL,
    last_heartbeat timestamptz DEFAULT now(),
    uptime_seconds integer DEFAULT 0,
    status text DEFAULT 'unknown' CHECK (status IN ('healthy', 'unhealthy', 'starting', 'stopping', 'unknown')),
    version text,
    models_loaded text[],
    memory_usage_mb integer,
    active_connections integer DEFAULT 0,
    total_requests bigint DEFAULT 0,
    error_count integer DEFAULT 0,
    avg_response_time_ms integer
);

-- Per-user request limits (the original's table). Enforced by the daemon on
-- requests that reach a model; cache hits are never limited. A user without
-- a row is not limited.
CREATE TABLE @extschema@.steadytext_rate_limits (
    user_id text PRIMARY KEY,
    requests_per_minute integer DEFAULT 60,
    requests_per_hour integer DEFAULT 1000,
    requests_per_day integer DEFAULT 10000,
    current_minute_count integer DEFAULT 0,
    current_hour_count integer DEFAULT 0,
    current_day_count integer DEFAULT 0,
    last_reset timestamptz DEFAULT now(),
    last_reset_minute timestamptz DEFAULT now(),
    last_reset_hour timestamptz DEFAULT now(),
    last_reset_day timestamptz DEFAULT now(),
    created_at timestamptz DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_audit_log', '');

-- ---------------------------------------------------------------------------
-- Transport primitives (C). Only public methods pass; shutdown needs steadytext_admin.
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@._steadytext_call(method text, params jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'steadytext_call'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_call_vector(method text, params jsonb)
RETURNS real[] AS 'MODULE_PATHNAME', 'steadytext_call_vector'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_call_vectors(method text, params jsonb)
RETURNS SETOF real[] AS 'MODULE_PATHNAME', 'steadytext_call_vectors'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- How the daemon writes vectors into steadytext_cache: as their float32 bytes
-- (little-endian), not as 20 kB of decimals each.
CREATE FUNCTION @extschema@._steadytext_real4_from_f32le(bytes bytea)
RETURNS real[] AS 'MODULE_PATHNAME', 'steadytext_real4_from_f32le'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_call_stream(params jsonb)
RETURNS SETOF text AS 'MODULE_PATHNAME', 'steadytext_call_stream'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- A daemon result that must be text: anything else is a malformed reply, never its JSON spelling.
CREATE FUNCTION @extschema@._steadytext_text_result(method text, result jsonb)
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF result IS NOT NULL AND jsonb_typeof(result) <> 'string' THEN
        RAISE EXCEPTION 'malformed reply from the steadytext daemon'
            USING ERRCODE = 'protocol_violation',
                  DETAIL = format('%s returned a JSON %s, not text.', method, jsonb_typeof(result));
    END IF;
    RETURN result #>> '{}';
END
$$;

-- Counts cache hits served in SQL: the daemon gets them in batches, at the
-- latest when the transaction ends, and writes the counts itself.
CREATE FUNCTION @extschema@._steadytext_record_hits(keys text[])
RETURNS void AS 'MODULE_PATHNAME', 'steadytext_record_hits'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- With the library preloaded, backends keep their hits in shared memory and
-- the daemon takes them from here (all databases at once), about once a second.
CREATE FUNCTION @extschema@._steadytext_take_hits(OUT database text, OUT cache_key text, OUT hits integer)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'steadytext_take_hits'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@._steadytext_endpoint()
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_endpoint'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_spawn_daemon()
RETURNS boolean AS 'MODULE_PATHNAME', 'steadytext_spawn_daemon'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- ---------------------------------------------------------------------------
-- Input checks, model selectors, cache keys (the same bytes as sidecar/src/cache/key.ts)
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@._steadytext_check_prompt(prompt text, seed integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF prompt IS NULL THEN
        RAISE EXCEPTION 'Prompt cannot be null';
    END IF;
    IF pg_catalog.btrim(prompt, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Prompt cannot be empty';
    END IF;
    IF seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
END
$$;

-- max_tokens as the daemon will use it: the configured default for NULL, 1..4096.
CREATE FUNCTION @extschema@._steadytext_max_tokens(requested integer)
RETURNS integer LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v integer := requested;
BEGIN
    IF v IS NULL THEN
        SELECT (c.value #>> '{}')::integer INTO v FROM @extschema@.steadytext_config c WHERE c.key = 'default_max_tokens';
        v := coalesce(v, 512);
    END IF;
    IF v < 1 THEN
        RAISE EXCEPTION 'max_tokens must be at least 1';
    END IF;
    IF v > 4096 THEN
        RAISE EXCEPTION 'max_tokens cannot exceed 4096';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION @extschema@._steadytext_seed(requested integer)
RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(requested,
                    (SELECT (c.value #>> '{}')::integer FROM @extschema@.steadytext_config c WHERE c.key = 'default_seed'),
                    42)
$$;

-- The canonical model selector (sidecar/src/models/resolve.ts: selectorFor).
CREATE FUNCTION @extschema@._steadytext_model_selector(
    role text, model text, model_repo text, model_filename text, size text, unsafe_mode boolean)
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    model := nullif(pg_catalog.btrim(model), '');
    model_repo := nullif(pg_catalog.btrim(model_repo), '');
    model_filename := nullif(pg_catalog.btrim(model_filename), '');
    IF (model_repo IS NULL) <> (model_filename IS NULL) THEN
        RAISE EXCEPTION 'model_repo and model_filename must be given together';
    END IF;
    IF coalesce(unsafe_mode, false) AND model IS NULL AND model_repo IS NULL THEN
        RAISE EXCEPTION 'unsafe_mode=TRUE requires a model parameter';
    END IF;
    IF model LIKE '%:%' THEN
        -- A remote provider:model: no cache key (steadytext_models never lists it), so the daemon always answers.
        IF coalesce(unsafe_mode, false) THEN
            RETURN role || ':remote:' || model;
        END IF;
        RAISE EXCEPTION 'Remote models (containing '':'' ) require unsafe_mode=TRUE';
    END IF;
    IF model_repo IS NOT NULL THEN
        RETURN role || ':repo:' || model_repo || '/' || model_filename;
    END IF;
    IF model IS NOT NULL THEN
        RETURN role || ':name:' || model;
    END IF;
    IF nullif(size, '') IS NOT NULL THEN
        IF size NOT IN ('mini', 'small', 'medium', 'large') THEN
            RAISE EXCEPTION 'Invalid size ''%''. Valid options are: mini, small, medium, large', size;
        END IF;
        RETURN role || ':size:' || size;
    END IF;
    RETURN role || ':default';
END
$$;

-- One length-prefixed field of the key material.
CREATE FUNCTION @extschema@._steadytext_key_field(name text, value text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT name || '=' || pg_catalog.octet_length(pg_catalog.convert_to(value, 'UTF8')) || ':' || value || E'\n'
$$;

-- SHA-256 (hex) over the key material; NULL when the model's identity is not known yet.
CREATE FUNCTION @extschema@._steadytext_cache_key(p_kind text, p_selector text, p_fields text)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_sha256 text;
BEGIN
    SELECT m.model_sha256 INTO v_sha256 FROM @extschema@.steadytext_models m WHERE m.selector = p_selector;
    IF v_sha256 IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
               'steadytext-cache-v1' || E'\n'
               || @extschema@._steadytext_key_field('kind', p_kind)
               || @extschema@._steadytext_key_field('model', v_sha256)
               || p_fields, 'UTF8')), 'hex');
END
$$;

-- The keys of the three kinds, in C (st_cache_key.c): the same bytes as
-- _steadytext_cache_key above, which stays as the SQL statement of the key.
CREATE FUNCTION @extschema@._steadytext_generate_key(
    p_selector text, p_prompt text, p_max_tokens integer, p_seed integer, p_eos_string text,
    p_constraint_kind text, p_constraint text)
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_generate_key'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_embed_key(p_selector text, p_text text, p_seed integer, p_mode text)
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_embed_key'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_rerank_key(p_selector text, p_query text, p_document text, p_task text, p_seed integer)
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_rerank_key'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- The key material of a choice list: each choice length-prefixed, in order.
CREATE FUNCTION @extschema@._steadytext_choices_text(choices text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(pg_catalog.string_agg(
               pg_catalog.octet_length(pg_catalog.convert_to(c, 'UTF8')) || ':' || c || ';', '' ORDER BY i), '')
    FROM pg_catalog.unnest(choices) WITH ORDINALITY AS t(c, i)
$$;

-- Cache reads by key (C: a direct read through the key's index, st_cache_lookup.c;
-- the scores' read stays SQL, SECURITY DEFINER). Callers need no access to the
-- table: knowing a key means knowing the inputs, and the answer is
-- deterministic, so a read by key reveals nothing the caller could not
-- compute. A hit is counted by the sidecar, never written here, so hits work
-- in read-only transactions and on standbys.
CREATE FUNCTION @extschema@._steadytext_cached_text(key text)
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_cached_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_cached_embedding(key text)
RETURNS @extschema@.vector AS 'MODULE_PATHNAME', 'steadytext_cached_embedding'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@._steadytext_cached_scores(keys text[])
RETURNS TABLE(key text, score double precision) LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found_keys text[];
    found_scores double precision[];
BEGIN
    SELECT array_agg(c.cache_key), array_agg(c.score) INTO found_keys, found_scores
    FROM @extschema@.steadytext_cache c WHERE c.cache_key = ANY (keys) AND c.kind = 'rerank';
    IF found_keys IS NOT NULL THEN
        PERFORM @extschema@._steadytext_record_hits(found_keys);
    END IF;
    RETURN QUERY SELECT * FROM unnest(found_keys, found_scores);
END
$$;

-- Chunks of a text as the daemon streams them: a chunk ends where ASCII
-- whitespace is followed by anything else (sidecar/src/daemon/word-chunker.ts),
-- so leading whitespace is a chunk of its own and all-whitespace text is one chunk.
CREATE FUNCTION @extschema@._steadytext_chunks(t text)
RETURNS SETOF text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT c FROM pg_catalog.regexp_split_to_table(t, E'(?<=[ \\t\\n\\r\\f\\v])(?=[^ \\t\\n\\r\\f\\v])') AS c
    WHERE c <> ''
$$;

-- ---------------------------------------------------------------------------
-- Generation
-- ---------------------------------------------------------------------------

-- A generation request, checked and resolved: the daemon's params (with the
-- configured defaults applied) and its cache key (NULL while the model's
-- identity is unknown). Shared by every text generator.
CREATE FUNCTION @extschema@._steadytext_generation_request(
    prompt text, max_tokens integer, use_cache boolean, seed integer, eos_string text,
    model text, model_repo text, model_filename text, size text, unsafe_mode boolean,
    constraint_kind text, constraint_text text, OUT params jsonb, OUT cache_key text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
    v_max integer;
    v_eos text := coalesce(eos_string, '[EOS]');
BEGIN
    PERFORM @extschema@._steadytext_check_prompt(prompt, v_seed);
    v_max := @extschema@._steadytext_max_tokens(max_tokens);
    IF v_eos = '' THEN
        RAISE EXCEPTION 'eos_string cannot be empty';
    END IF;
    IF coalesce(use_cache, true) THEN
        cache_key := @extschema@._steadytext_generate_key(
            @extschema@._steadytext_model_selector('generation', model, model_repo, model_filename, size, unsafe_mode),
            prompt, v_max, v_seed, v_eos, constraint_kind, constraint_text);
    ELSE
        -- Still validates the model arguments.
        PERFORM @extschema@._steadytext_model_selector('generation', model, model_repo, model_filename, size, unsafe_mode);
    END IF;
    params := jsonb_build_object('prompt', prompt, 'max_new_tokens', v_max, 'seed', v_seed, 'eos_string', v_eos,
                                 'model', model, 'model_repo', model_repo, 'model_filename', model_filename,
                                 'size', nullif(size, ''), 'unsafe_mode', unsafe_mode, 'use_cache', coalesce(use_cache, true));
END
$$;

-- Shared body of the text generators: cache fast path, then the daemon.
CREATE FUNCTION @extschema@._steadytext_generate(
    prompt text, max_tokens integer, use_cache boolean, seed integer, eos_string text,
    model text, model_repo text, model_filename text, size text, unsafe_mode boolean,
    constraint_kind text, constraint_text text, extra jsonb, sync_mirror boolean)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    r record;
    v_result text;
BEGIN
    r := @extschema@._steadytext_generation_request(prompt, max_tokens, use_cache, seed, eos_string, model, model_repo,
                                                    model_filename, size, unsafe_mode, constraint_kind, constraint_text);
    v_result := @extschema@._steadytext_cached_text(r.cache_key);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    RETURN @extschema@._steadytext_text_result('generate', @extschema@._steadytext_call('generate',
        r.params || jsonb_build_object('sync_mirror', sync_mirror) || coalesce(extra, '{}')));
END
$$;

-- C (st_cache_lookup.c): a cache hit of the default model runs no SQL at all;
-- everything else goes to _steadytext_generate.
CREATE FUNCTION @extschema@.steadytext_generate(
    prompt text,
    max_tokens integer DEFAULT NULL,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    eos_string text DEFAULT '[EOS]',
    model text DEFAULT NULL,
    model_repo text DEFAULT NULL,
    model_filename text DEFAULT NULL,
    size text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'steadytext_generate_fast'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.steadytext_generate(text, integer, boolean, integer, text, text, text, text, text, boolean) IS
    'Deterministic text generation: the same arguments give the same text, from the cache when it has it. NULL when no model or daemon answers.';

CREATE FUNCTION @extschema@.steadytext_generate_cached(prompt text, max_tokens integer DEFAULT NULL, seed integer DEFAULT 42)
RETURNS text LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
BEGIN
    RETURN @extschema@._steadytext_generate(prompt, max_tokens, true, seed, '[EOS]', NULL, NULL, NULL, NULL, false,
                                            'none', '', NULL, true);
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_cached(text, integer, integer) IS
    'Like steadytext_generate, and the result is committed to steadytext_cache when the function returns (NULL results are not).';

CREATE FUNCTION @extschema@.steadytext_generate_stream(
    prompt text,
    max_tokens integer DEFAULT NULL,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    eos_string text DEFAULT '[EOS]',
    model text DEFAULT NULL,
    model_repo text DEFAULT NULL,
    model_filename text DEFAULT NULL,
    size text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS SETOF text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    r record;
    v_cached text;
BEGIN
    r := @extschema@._steadytext_generation_request(prompt, max_tokens, use_cache, seed, eos_string, model, model_repo,
                                                    model_filename, size, unsafe_mode, 'none', '');
    v_cached := @extschema@._steadytext_cached_text(r.cache_key);
    IF v_cached IS NOT NULL THEN
        RETURN QUERY SELECT @extschema@._steadytext_chunks(v_cached);
        RETURN;
    END IF;
    RETURN QUERY SELECT @extschema@._steadytext_call_stream(r.params);
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_stream(text, integer, boolean, integer, text, text, text, text, text, boolean) IS
    'steadytext_generate as rows of chunks; the rows concatenate to exactly what steadytext_generate returns.';

CREATE FUNCTION @extschema@.steadytext_generate_json(
    prompt text,
    schema jsonb,
    max_tokens integer DEFAULT NULL,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    unsafe_mode boolean DEFAULT false,
    model text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF schema IS NULL THEN
        RAISE EXCEPTION 'Schema cannot be null';
    END IF;
    IF jsonb_typeof(schema) <> 'object' THEN
        RAISE EXCEPTION 'Invalid JSON schema: the schema must be a JSON object';
    END IF;
    -- The schema travels as jsonb's own text, which is also what the key hashes.
    RETURN @extschema@._steadytext_generate(prompt, max_tokens, use_cache, seed, '[EOS]', model, NULL, NULL, NULL,
                                            unsafe_mode, 'json', schema::text,
                                            jsonb_build_object('schema', schema::text), false);
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_json(text, jsonb, integer, boolean, integer, boolean, text) IS
    'Generation constrained by a JSON Schema: the result is JSON valid for the schema (cast it to jsonb).';

CREATE FUNCTION @extschema@.steadytext_generate_regex(
    prompt text,
    pattern text,
    max_tokens integer DEFAULT NULL,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    unsafe_mode boolean DEFAULT false,
    model text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF pattern IS NULL OR pattern = '' THEN
        RAISE EXCEPTION 'Pattern cannot be null or empty';
    END IF;
    RETURN @extschema@._steadytext_generate(prompt, max_tokens, use_cache, seed, '[EOS]', model, NULL, NULL, NULL,
                                            unsafe_mode, 'regex', pattern, jsonb_build_object('regex', pattern), false);
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_regex(text, text, integer, boolean, integer, boolean, text) IS
    'Generation constrained by a regular expression: the result matches the whole pattern.';

CREATE FUNCTION @extschema@.steadytext_generate_choice(
    prompt text,
    choices text[],
    max_tokens integer DEFAULT NULL,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    unsafe_mode boolean DEFAULT false,
    model text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF choices IS NULL OR cardinality(choices) = 0 THEN
        RAISE EXCEPTION 'Choices cannot be null or empty';
    END IF;
    IF array_position(choices, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'Choices cannot contain null elements';
    END IF;
    IF cardinality(choices) < 2 THEN
        RAISE EXCEPTION 'Must provide at least 2 choices';
    END IF;
    IF array_position(choices, '') IS NOT NULL THEN
        RAISE EXCEPTION 'Choices cannot be empty strings';
    END IF;
    RETURN @extschema@._steadytext_generate(prompt, max_tokens, use_cache, seed, '[EOS]', model, NULL, NULL, NULL,
                                            unsafe_mode, 'choice', @extschema@._steadytext_choices_text(choices),
                                            jsonb_build_object('choices', to_jsonb(choices)), false);
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_choice(text, text[], integer, boolean, integer, boolean, text) IS
    'Generation constrained to exactly one of the choices.';

-- ---------------------------------------------------------------------------
-- Embeddings
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@._steadytext_embed(
    text_input text, use_cache boolean, seed integer, model text, unsafe_mode boolean, sync_mirror boolean)
RETURNS vector LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
    v_selector text;
    v_cached @extschema@.vector;
    v_values real[];
BEGIN
    IF text_input IS NULL THEN
        RAISE EXCEPTION 'Text cannot be null';
    END IF;
    IF pg_catalog.btrim(text_input, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Text cannot be empty';
    END IF;
    IF v_seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
    v_selector := @extschema@._steadytext_model_selector('embedding', model, NULL, NULL, NULL, unsafe_mode);
    IF coalesce(use_cache, true) THEN
        v_cached := @extschema@._steadytext_cached_embedding(
            @extschema@._steadytext_embed_key(v_selector, text_input, v_seed, 'query'));
        IF v_cached IS NOT NULL THEN
            RETURN v_cached;
        END IF;
    END IF;
    v_values := @extschema@._steadytext_call_vector('embed',
        jsonb_build_object('text_input', text_input, 'seed', v_seed, 'model', model, 'mode', 'query',
                           'unsafe_mode', unsafe_mode, 'use_cache', coalesce(use_cache, true), 'sync_mirror', sync_mirror));
    RETURN v_values::@extschema@.vector(1024);
END
$$;

-- C (st_cache_lookup.c): a cache hit of the default model runs no SQL at all;
-- everything else goes to _steadytext_embed.
CREATE FUNCTION @extschema@.steadytext_embed(
    text_input text,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS vector(1024) AS 'MODULE_PATHNAME', 'steadytext_embed_fast'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.steadytext_embed(text, boolean, integer, text, boolean) IS
    'Deterministic 1024-dimensional, L2-normalised embedding. NULL (never a zero vector) when no model or daemon answers.';

CREATE FUNCTION @extschema@.steadytext_embed_cached(
    text_input text,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS vector(1024) LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
BEGIN
    RETURN @extschema@._steadytext_embed(text_input, true, seed, model, unsafe_mode, true);
END
$$;

CREATE FUNCTION @extschema@.steadytext_embed_batch(
    texts text[],
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS TABLE(idx integer, embedding vector(1024)) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
    v_selector text;
    v_position integer;
    v_missing text[] := '{}';
    v_missing_at integer[] := '{}';
    v_found @extschema@.vector[];
    v_vector @extschema@.vector;
    v_computed real[];
    v_i integer := 0;
BEGIN
    IF texts IS NULL THEN
        RAISE EXCEPTION 'Texts cannot be null';
    END IF;
    IF cardinality(texts) = 0 THEN
        RAISE EXCEPTION 'Texts array cannot be empty';
    END IF;
    FOR v_position IN 1 .. cardinality(texts) LOOP
        IF texts[v_position] IS NULL THEN
            RAISE EXCEPTION 'Text at position % cannot be null', v_position;
        END IF;
        IF pg_catalog.btrim(texts[v_position], E' \t\n\r\f\v') = '' THEN
            RAISE EXCEPTION 'Text at position % cannot be empty', v_position;
        END IF;
    END LOOP;
    IF v_seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
    v_selector := @extschema@._steadytext_model_selector('embedding', model, NULL, NULL, NULL, unsafe_mode);
    v_found := array_fill(NULL::@extschema@.vector, ARRAY[cardinality(texts)]);
    FOR v_position IN 1 .. cardinality(texts) LOOP
        IF coalesce(use_cache, true) THEN
            v_found[v_position] := @extschema@._steadytext_cached_embedding(
                @extschema@._steadytext_embed_key(v_selector, texts[v_position], v_seed, 'query'));
        END IF;
        IF v_found[v_position] IS NULL THEN
            v_missing := v_missing || texts[v_position];
            v_missing_at := v_missing_at || v_position;
        END IF;
    END LOOP;
    IF cardinality(v_missing) > 0 THEN
        -- One request for everything the cache did not have.
        FOR v_computed IN SELECT * FROM @extschema@._steadytext_call_vectors('embed_batch',
                jsonb_build_object('text_input', to_jsonb(v_missing), 'seed', v_seed, 'model', model, 'mode', 'query',
                                   'unsafe_mode', unsafe_mode, 'use_cache', coalesce(use_cache, true))) LOOP
            v_i := v_i + 1;
            v_found[v_missing_at[v_i]] := v_computed::@extschema@.vector(1024);
        END LOOP;
    END IF;
    FOR v_position IN 1 .. cardinality(texts) LOOP
        idx := v_position;
        embedding := v_found[v_position];
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_embed_batch(text[], boolean, integer, text, boolean) IS
    'Embeds a whole array with one daemon request; each vector equals steadytext_embed of that text.';

-- ---------------------------------------------------------------------------
-- Reranking
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.steadytext_rerank(
    query text,
    documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true,
    seed integer DEFAULT 42)
RETURNS TABLE(document text, score double precision) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
    v_task text := coalesce(task, 'Given a web search query, retrieve relevant passages that answer the query');
    v_selector text := 'reranking:default';
    v_keys text[];
    v_scores double precision[];
    v_missing text[];
    v_result jsonb;
BEGIN
    IF query IS NULL THEN
        RAISE EXCEPTION 'Query cannot be null';
    END IF;
    IF pg_catalog.btrim(query, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Query cannot be empty';
    END IF;
    IF documents IS NULL THEN
        RAISE EXCEPTION 'Documents cannot be null';
    END IF;
    IF cardinality(documents) = 0 THEN
        RAISE EXCEPTION 'Documents array cannot be empty';
    END IF;
    IF array_position(documents, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'Documents cannot contain null elements';
    END IF;
    IF v_seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;

    SELECT array_agg(@extschema@._steadytext_rerank_key(v_selector, query, d, v_task, v_seed) ORDER BY i)
    INTO v_keys FROM unnest(documents) WITH ORDINALITY AS t(d, i);
    SELECT array_agg(c.score ORDER BY t.i) INTO v_scores
    FROM unnest(v_keys) WITH ORDINALITY AS t(k, i)
    LEFT JOIN @extschema@._steadytext_cached_scores(v_keys) c ON c.key = t.k;

    SELECT array_agg(DISTINCT d) INTO v_missing
    FROM unnest(documents, v_scores) AS t(d, s) WHERE s IS NULL;
    IF v_missing IS NOT NULL THEN
        -- One request for all documents the cache did not have.
        v_result := @extschema@._steadytext_call('rerank',
            jsonb_build_object('query', query, 'documents', to_jsonb(v_missing), 'task', v_task,
                               'return_scores', true, 'seed', v_seed));
        SELECT array_agg(coalesce(s, (SELECT (p ->> 1)::double precision
                                       FROM jsonb_array_elements(v_result) AS p WHERE p ->> 0 = d LIMIT 1)) ORDER BY i)
        INTO v_scores
        FROM unnest(documents, v_scores) WITH ORDINALITY AS t(d, s, i);
    END IF;

    -- Best first; equal scores keep the input order. Unavailable: NULL scores, input order.
    RETURN QUERY
        SELECT t.d, CASE WHEN coalesce(return_scores, true) THEN t.s END
        FROM unnest(documents, v_scores) WITH ORDINALITY AS t(d, s, i)
        ORDER BY t.s DESC NULLS LAST, t.i;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_rerank(text, text[], text, boolean, integer) IS
    'Documents ordered by relevance to the query (Qwen3-Reranker: p(yes)), best first. NULL scores when no reranker answers.';

CREATE FUNCTION @extschema@.steadytext_rerank_docs_only(
    query text,
    documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    seed integer DEFAULT 42)
RETURNS TABLE(document text) LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.document FROM @extschema@.steadytext_rerank(query, documents, task, true, seed) AS r
$$;

CREATE FUNCTION @extschema@.steadytext_rerank_top_k(
    query text,
    documents text[],
    top_k integer,
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true,
    seed integer DEFAULT 42)
RETURNS TABLE(document text, score double precision) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF top_k IS NULL OR top_k <= 0 THEN
        RAISE EXCEPTION 'top_k must be greater than 0';
    END IF;
    RETURN QUERY SELECT r.document, r.score
                 FROM @extschema@.steadytext_rerank(query, documents, task, return_scores, seed) AS r
                 LIMIT top_k;
END
$$;

CREATE FUNCTION @extschema@.steadytext_rerank_batch(
    queries text[],
    documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true,
    seed integer DEFAULT 42)
RETURNS TABLE(query_index integer, document text, score double precision) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_query text;
    v_index integer := 0;
BEGIN
    IF queries IS NULL OR cardinality(queries) = 0 THEN
        RAISE EXCEPTION 'Queries cannot be null or empty';
    END IF;
    -- query_index counts from 0, as in the original pg_steadytext.
    FOREACH v_query IN ARRAY queries LOOP
        RETURN QUERY SELECT v_index, r.document, r.score
                     FROM @extschema@.steadytext_rerank(v_query, documents, task, return_scores, seed) AS r;
        v_index := v_index + 1;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Summaries and facts. The aggregate's state holds what every plan can agree
-- on whatever order rows arrive in: counts, and for facts and samples the k
-- entries with the smallest md5 (a bottom-k sample is the same however the
-- rows are split and combined). The model writes the summary, from the state
-- only, so serial, parallel and partial/final plans give the same text.
-- ---------------------------------------------------------------------------

-- The original's sentence splitter: a sentence ends at . ! or ? once it has
-- more than 10 characters. Cheap, so the aggregate uses it for every row.
CREATE FUNCTION @extschema@._steadytext_sentences(input_text text, max_count integer)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_piece text;
    v_current text := '';
    v_out text[] := '{}';
BEGIN
    FOR v_piece IN SELECT m[1] FROM pg_catalog.regexp_matches(input_text, '([^.!?]*[.!?]|[^.!?]+$)', 'g') AS m LOOP
        v_current := v_current || v_piece;
        IF pg_catalog.right(v_piece, 1) IN ('.', '!', '?') AND length(btrim(v_current, E' \t\n\r\f\v')) > 10 THEN
            v_out := v_out || btrim(v_current, E' \t\n\r\f\v');
            v_current := '';
            EXIT WHEN cardinality(v_out) >= max_count;
        END IF;
    END LOOP;
    IF cardinality(v_out) < max_count AND btrim(v_current, E' \t\n\r\f\v') <> '' THEN
        v_out := v_out || btrim(v_current, E' \t\n\r\f\v');
    END IF;
    RETURN v_out;
END
$$;

-- The union of two JSON arrays of strings, distinct, reduced to the k
-- entries with the smallest md5: commutative and associative.
CREATE FUNCTION @extschema@._steadytext_bottom_k(a jsonb, b jsonb, k integer)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_agg(s.t ORDER BY s.h, s.t COLLATE "C"), '[]'::jsonb)
    FROM (SELECT u.t, md5(u.t) AS h
          FROM (SELECT jsonb_array_elements_text(coalesce(a, '[]'::jsonb))
                UNION SELECT jsonb_array_elements_text(coalesce(b, '[]'::jsonb))) AS u(t)
          ORDER BY h, u.t COLLATE "C" LIMIT k) AS s
$$;

-- Metadata of two states: every key, and where they differ the least value
-- (jsonb order), so the merge does not depend on which row came first.
CREATE FUNCTION @extschema@._steadytext_merge_metadata(a jsonb, b jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(s.k, s.v), '{}'::jsonb)
    FROM (SELECT e.k, (array_agg(e.v ORDER BY e.v))[1] AS v
          FROM (SELECT * FROM jsonb_each(CASE WHEN jsonb_typeof(a) = 'object' THEN a ELSE '{}'::jsonb END)
                UNION ALL
                SELECT * FROM jsonb_each(CASE WHEN jsonb_typeof(b) = 'object' THEN b ELSE '{}'::jsonb END)) AS e(k, v)
          GROUP BY e.k) AS s
$$;

-- The generation parameters and context line a summary prompt takes from metadata.
CREATE FUNCTION @extschema@._steadytext_metadata_context(metadata jsonb)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN count(*) > 0 THEN '. Context: ' || string_agg(e.key || ': ' || (e.value #>> '{}'), ', ' ORDER BY e.key COLLATE "C") ELSE '' END
    FROM jsonb_each(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END) AS e
    WHERE e.key NOT IN ('model', 'unsafe_mode')
$$;

CREATE FUNCTION @extschema@.steadytext_extract_facts(input_text text, max_facts integer DEFAULT 10)
RETURNS jsonb LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_text text;
    v_facts text[];
BEGIN
    IF max_facts IS NULL OR max_facts <= 0 OR max_facts > 50 THEN
        RAISE EXCEPTION 'max_facts must be between 1 and 50';
    END IF;
    IF input_text IS NULL OR btrim(input_text, E' \t\n\r\f\v') = '' THEN
        RETURN '{"facts": []}'::jsonb;
    END IF;
    v_text := @extschema@.steadytext_generate(
        'Extract at most ' || max_facts || ' short, self-contained facts from the text below. '
        || 'Write one fact per line, with no numbering and nothing else.' || E'\n\nText:\n' || left(input_text, 1000),
        least(4096, 64 * max_facts));
    IF v_text IS NULL THEN
        -- No model: the sentences of the text, as the original did.
        v_facts := @extschema@._steadytext_sentences(input_text, max_facts);
    ELSE
        SELECT coalesce(array_agg(f ORDER BY first_at), '{}') INTO v_facts
        FROM (SELECT f, min(i) AS first_at
              FROM (SELECT btrim(regexp_replace(line, '^\s*([-*•]|[0-9]+[.)])\s*', ''), E' \t\r\f\v') AS f, i
                    FROM regexp_split_to_table(v_text, E'\n') WITH ORDINALITY AS l(line, i)) AS lines
              WHERE f <> ''
              GROUP BY f
              ORDER BY min(i)
              LIMIT max_facts) AS distinct_lines;
    END IF;
    RETURN jsonb_build_object('facts', to_jsonb(v_facts));
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_extract_facts(text, integer) IS
    'Facts of a text as {"facts": [...]}: written by the model from the first 1000 characters, one per line (the text''s sentences when no model answers).';

CREATE FUNCTION @extschema@.steadytext_deduplicate_facts(facts_array jsonb, similarity_threshold double precision DEFAULT 0.85)
RETURNS jsonb LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_texts text[];
    v_positions integer[];
    v_vectors @extschema@.vector[];
    v_keep boolean[];
    v_use_vectors boolean;
    v_i integer;
    v_j integer;
BEGIN
    IF similarity_threshold IS NULL OR similarity_threshold < 0.0 OR similarity_threshold > 1.0 THEN
        RAISE EXCEPTION 'similarity_threshold must be between 0.0 and 1.0';
    END IF;
    IF facts_array IS NULL THEN
        RETURN '[]'::jsonb;
    END IF;
    -- steadytext_extract_facts' own shape is accepted, and kept.
    IF jsonb_typeof(facts_array) = 'object' AND jsonb_typeof(facts_array -> 'facts') = 'array' THEN
        RETURN jsonb_build_object('facts', @extschema@.steadytext_deduplicate_facts(facts_array -> 'facts', similarity_threshold));
    END IF;
    IF jsonb_typeof(facts_array) <> 'array' THEN
        RAISE EXCEPTION 'facts_array must be a JSON array of facts (strings or objects with "text")';
    END IF;
    -- Facts with text (a string, or an object's "text"); anything else is kept as it is.
    SELECT array_agg(t ORDER BY i), array_agg(i::integer ORDER BY i) INTO v_texts, v_positions
    FROM (SELECT CASE jsonb_typeof(e) WHEN 'string' THEN e #>> '{}' WHEN 'object' THEN e ->> 'text' END AS t, i
          FROM jsonb_array_elements(facts_array) WITH ORDINALITY AS a(e, i)) AS x
    WHERE btrim(coalesce(t, ''), E' \t\n\r\f\v') <> '';
    IF coalesce(cardinality(v_texts), 0) <= 1 THEN
        RETURN facts_array;
    END IF;

    SELECT array_agg(b.embedding ORDER BY b.idx) INTO v_vectors FROM @extschema@.steadytext_embed_batch(v_texts) b;
    v_use_vectors := array_position(v_vectors, NULL) IS NULL;
    -- Greedy, in the given order: a fact is dropped when it is too similar to one kept before it.
    v_keep := array_fill(true, ARRAY[cardinality(v_texts)]);
    FOR v_i IN 2 .. cardinality(v_texts) LOOP
        FOR v_j IN 1 .. v_i - 1 LOOP
            CONTINUE WHEN NOT v_keep[v_j];
            IF (v_use_vectors AND 1 - (v_vectors[v_i] OPERATOR(@extschema@.<=>) v_vectors[v_j]) > similarity_threshold)
               OR (NOT v_use_vectors AND lower(btrim(v_texts[v_i])) = lower(btrim(v_texts[v_j]))) THEN
                v_keep[v_i] := false;
                EXIT;
            END IF;
        END LOOP;
    END LOOP;
    RETURN (SELECT coalesce(jsonb_agg(e ORDER BY a.i), '[]'::jsonb)
            FROM jsonb_array_elements(facts_array) WITH ORDINALITY AS a(e, i)
            WHERE coalesce(v_keep[array_position(v_positions, a.i::integer)], true));
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_deduplicate_facts(jsonb, double precision) IS
    'Drops facts whose embedding''s cosine similarity to an earlier kept fact exceeds the threshold (exact, case-insensitive matches when no embedding model answers).';

CREATE FUNCTION @extschema@.steadytext_summarize_accumulate(state jsonb, value text, metadata jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_state jsonb := coalesce(state, '{"facts": [], "samples": [], "stats": {"row_count": 0, "total_chars": 0, "min_length": null, "max_length": 0}, "metadata": {}}');
    v_length integer;
BEGIN
    IF value IS NULL OR value = '' THEN
        RETURN v_state;
    END IF;
    v_length := length(value);
    RETURN jsonb_build_object(
        'facts', @extschema@._steadytext_bottom_k(v_state -> 'facts', to_jsonb(@extschema@._steadytext_sentences(value, 3)), 50),
        'samples', @extschema@._steadytext_bottom_k(v_state -> 'samples', jsonb_build_array(left(value, 200)), 10),
        'stats', jsonb_build_object(
            'row_count', (v_state #>> '{stats,row_count}')::bigint + 1,
            'total_chars', (v_state #>> '{stats,total_chars}')::bigint + v_length,
            'min_length', least((v_state #>> '{stats,min_length}')::integer, v_length),
            'max_length', greatest((v_state #>> '{stats,max_length}')::integer, v_length)),
        'metadata', @extschema@._steadytext_merge_metadata(v_state -> 'metadata', metadata));
END
$$;

CREATE FUNCTION @extschema@.steadytext_summarize_combine(state1 jsonb, state2 jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF state1 IS NULL THEN
        RETURN state2;
    END IF;
    IF state2 IS NULL THEN
        RETURN state1;
    END IF;
    RETURN jsonb_build_object(
        'facts', @extschema@._steadytext_bottom_k(state1 -> 'facts', state2 -> 'facts', 50),
        'samples', @extschema@._steadytext_bottom_k(state1 -> 'samples', state2 -> 'samples', 10),
        'stats', jsonb_build_object(
            'row_count', coalesce((state1 #>> '{stats,row_count}')::bigint, 0) + coalesce((state2 #>> '{stats,row_count}')::bigint, 0),
            'total_chars', coalesce((state1 #>> '{stats,total_chars}')::bigint, 0) + coalesce((state2 #>> '{stats,total_chars}')::bigint, 0),
            'min_length', least((state1 #>> '{stats,min_length}')::integer, (state2 #>> '{stats,min_length}')::integer),
            'max_length', greatest(coalesce((state1 #>> '{stats,max_length}')::integer, 0), coalesce((state2 #>> '{stats,max_length}')::integer, 0))),
        'metadata', @extschema@._steadytext_merge_metadata(state1 -> 'metadata', state2 -> 'metadata'));
END
$$;

-- For steadytext_summarize_final: a stored partial state folded into the running one.
CREATE FUNCTION @extschema@.steadytext_summarize_combine_states(state1 jsonb, partial_state jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT @extschema@.steadytext_summarize_combine(state1, partial_state)
$$;

CREATE FUNCTION @extschema@.steadytext_summarize_finalize(state jsonb)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_rows bigint := coalesce((state #>> '{stats,row_count}')::bigint, 0);
    v_facts jsonb;
    v_prompt text;
BEGIN
    IF v_rows = 0 THEN
        RETURN 'No data to summarize';
    END IF;
    -- The sampled facts (in their md5 order), near-duplicates dropped, at most 10.
    v_facts := @extschema@.steadytext_deduplicate_facts(coalesce(state -> 'facts', '[]'::jsonb), 0.85);
    v_prompt := 'Create a concise summary of this data: Facts: '
        || coalesce((SELECT string_agg(f, '; ' ORDER BY i) FROM jsonb_array_elements_text(v_facts) WITH ORDINALITY AS a(f, i) WHERE i <= 10),
                    'No specific facts extracted')
        || ', Row count: ' || v_rows
        || ', Average length: ' || ((state #>> '{stats,total_chars}')::bigint / v_rows)
        || @extschema@._steadytext_metadata_context(state -> 'metadata');
    -- NULL when no model answers: never a placeholder summary.
    RETURN @extschema@.steadytext_generate(v_prompt, NULL, true, 42, '[EOS]', state #>> '{metadata,model}', NULL, NULL, NULL,
                                           coalesce((state #>> '{metadata,unsafe_mode}')::boolean, false));
END
$$;

CREATE AGGREGATE @extschema@.steadytext_summarize(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate,
    STYPE = jsonb,
    FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.steadytext_summarize(text, jsonb) IS
    'A model-written summary of the rows: the same rows give the same summary whatever the plan (serial, parallel, partial/final).';

-- For TimescaleDB continuous aggregates: store steadytext_summarize_partial's
-- state per bucket, then steadytext_summarize_final over the stored states.
CREATE AGGREGATE @extschema@.steadytext_summarize_partial(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate,
    STYPE = jsonb,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

CREATE AGGREGATE @extschema@.steadytext_summarize_final(jsonb) (
    SFUNC = @extschema@.steadytext_summarize_combine_states,
    STYPE = jsonb,
    FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

CREATE AGGREGATE @extschema@.st_summarize(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate, STYPE = jsonb, FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.st_summarize_partial(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate, STYPE = jsonb,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.st_summarize_final(jsonb) (
    SFUNC = @extschema@.steadytext_summarize_combine_states, STYPE = jsonb, FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine, PARALLEL = SAFE);

CREATE FUNCTION @extschema@.steadytext_summarize_text(
    input_text text,
    metadata jsonb DEFAULT '{}',
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF input_text IS NULL OR btrim(input_text, E' \t\n\r\f\v') = '' THEN
        RETURN 'No text to summarize';
    END IF;
    RETURN @extschema@.steadytext_generate(
        'Summarize the following text in 1-2 sentences: ' || left(input_text, 1000)
            || @extschema@._steadytext_metadata_context(metadata),
        NULL, true, 42, '[EOS]', coalesce(model, metadata ->> 'model'), NULL, NULL, NULL, coalesce(unsafe_mode, false));
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_summarize_text(text, jsonb, text, boolean) IS
    'A model-written summary of one text (its first 1000 characters); NULL when no model answers.';

-- ---------------------------------------------------------------------------
-- Prompt registry: versioned Jinja2 templates. The daemon parses and renders
-- them (no model needed). Creating or updating a prompt needs the daemon, to
-- check the template and find its variables (08006 when it does not answer);
-- rendering without the daemon gives NULL (or 08006 with
-- steadytext.on_unavailable = 'error'), like the other functions.
-- ---------------------------------------------------------------------------

CREATE TABLE @extschema@.steadytext_prompts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text UNIQUE NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 100),
    description text CHECK (length(description) <= 500),
    created_at timestamptz DEFAULT now(),
    created_by text DEFAULT session_user,
    updated_at timestamptz DEFAULT now(),
    updated_by text DEFAULT session_user
);

CREATE TABLE @extschema@.steadytext_prompt_versions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt_id uuid NOT NULL REFERENCES @extschema@.steadytext_prompts (id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version > 0),
    template text NOT NULL CHECK (length(template) > 0),
    required_variables text[],
    metadata jsonb DEFAULT '{}',
    created_at timestamptz DEFAULT now(),
    created_by text DEFAULT session_user,
    is_active boolean DEFAULT false,
    UNIQUE (prompt_id, version)
);
CREATE INDEX idx_steadytext_prompts_created_at ON @extschema@.steadytext_prompts (created_at DESC);
CREATE UNIQUE INDEX idx_steadytext_prompt_versions_prompt_id_active
    ON @extschema@.steadytext_prompt_versions (prompt_id) WHERE is_active;
CREATE INDEX idx_steadytext_prompt_versions_created_at ON @extschema@.steadytext_prompt_versions (created_at DESC);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompt_versions', '');

-- A slug as the original accepts it, or 22P02.
CREATE FUNCTION @extschema@._steadytext_check_slug(slug text)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF slug IS NULL OR slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$' OR length(slug) NOT BETWEEN 3 AND 100 THEN
        RAISE EXCEPTION 'Invalid slug format. Use lowercase letters, numbers, and hyphens only (3-100 chars)'
            USING ERRCODE = 'invalid_text_representation';
    END IF;
END
$$;

-- The variables a template needs (sorted), or 42601 when it does not parse.
-- Needs the daemon: 08006 when it does not answer.
CREATE FUNCTION @extschema@._steadytext_template_variables(template text)
RETURNS text[] LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET steadytext.on_unavailable = 'error' AS $$
DECLARE
    v_result jsonb;
BEGIN
    IF template IS NULL OR template = '' THEN
        RAISE EXCEPTION 'Invalid Jinja2 template: the template cannot be empty' USING ERRCODE = 'syntax_error';
    END IF;
    v_result := @extschema@._steadytext_call('template_analyze', jsonb_build_object('template', template));
    IF NOT (v_result ->> 'ok')::boolean THEN
        RAISE EXCEPTION 'Invalid Jinja2 template: %', v_result ->> 'message' USING ERRCODE = 'syntax_error';
    END IF;
    RETURN ARRAY(SELECT jsonb_array_elements_text(v_result -> 'variables'));
END
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_create(
    slug text,
    template text,
    description text DEFAULT NULL,
    metadata jsonb DEFAULT '{}')
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_variables text[];
    v_id uuid;
BEGIN
    PERFORM @extschema@._steadytext_check_slug(slug);
    IF length(description) > 500 THEN
        RAISE EXCEPTION 'Description cannot be longer than 500 characters' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    v_variables := @extschema@._steadytext_template_variables(template);
    INSERT INTO @extschema@.steadytext_prompts (slug, description, created_by, updated_by)
    VALUES (slug, description, session_user, session_user)
    ON CONFLICT ON CONSTRAINT steadytext_prompts_slug_key DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'Prompt with slug "%" already exists', slug USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO @extschema@.steadytext_prompt_versions (prompt_id, version, template, required_variables, metadata, created_by, is_active)
    VALUES (v_id, 1, template, v_variables, coalesce(metadata, '{}'), session_user, true);
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_prompt_create(text, text, text, jsonb) IS
    'Registers a Jinja2 prompt template as version 1 of a new slug; returns the prompt''s id.';

CREATE FUNCTION @extschema@.steadytext_prompt_update(
    slug text,
    template text,
    metadata jsonb DEFAULT '{}')
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prompt uuid;
    v_variables text[];
    v_id uuid;
BEGIN
    -- Locked: concurrent updates of one prompt number their versions one after the other.
    SELECT p.id INTO v_prompt FROM @extschema@.steadytext_prompts p WHERE p.slug = steadytext_prompt_update.slug FOR UPDATE;
    IF v_prompt IS NULL THEN
        RAISE EXCEPTION 'Prompt with slug "%" not found', slug USING ERRCODE = 'no_data_found';
    END IF;
    v_variables := @extschema@._steadytext_template_variables(steadytext_prompt_update.template);
    UPDATE @extschema@.steadytext_prompt_versions v SET is_active = false WHERE v.prompt_id = v_prompt AND v.is_active;
    INSERT INTO @extschema@.steadytext_prompt_versions (prompt_id, version, template, required_variables, metadata, created_by, is_active)
    SELECT v_prompt, coalesce(max(v.version), 0) + 1, steadytext_prompt_update.template, v_variables,
           coalesce(steadytext_prompt_update.metadata, '{}'), session_user, true
    FROM @extschema@.steadytext_prompt_versions v WHERE v.prompt_id = v_prompt
    RETURNING id INTO v_id;
    UPDATE @extschema@.steadytext_prompts p SET updated_at = now(), updated_by = session_user WHERE p.id = v_prompt;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_prompt_update(text, text, jsonb) IS
    'Adds a new version of a prompt and makes it the active one; returns the version''s id.';

CREATE FUNCTION @extschema@.steadytext_prompt_get(slug text, version integer DEFAULT NULL)
RETURNS TABLE(prompt_id uuid, version_num integer, template text, required_variables text[], metadata jsonb,
              created_at timestamptz, created_by text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prompt uuid;
BEGIN
    SELECT p.id INTO v_prompt FROM @extschema@.steadytext_prompts p WHERE p.slug = steadytext_prompt_get.slug;
    IF v_prompt IS NULL THEN
        RAISE EXCEPTION 'Prompt with slug "%" not found', slug USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
        SELECT v.prompt_id, v.version, v.template, v.required_variables, v.metadata, v.created_at, v.created_by
        FROM @extschema@.steadytext_prompt_versions v
        WHERE v.prompt_id = v_prompt
          AND CASE WHEN steadytext_prompt_get.version IS NULL THEN v.is_active ELSE v.version = steadytext_prompt_get.version END;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Version % not found for prompt "%"', version, slug USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- Renders a version (the active one by default) with the variables of a JSON
-- object. strict: a variable the template uses without a default is an
-- error (22023) when missing; otherwise it renders empty.
CREATE FUNCTION @extschema@.steadytext_prompt_render(
    slug text,
    variables jsonb,
    version integer DEFAULT NULL,
    strict boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_template text;
    v_result jsonb;
BEGIN
    SELECT g.template INTO v_template FROM @extschema@.steadytext_prompt_get(slug, version) g;
    IF variables IS NOT NULL AND jsonb_typeof(variables) <> 'object' THEN
        RAISE EXCEPTION 'variables must be a JSON object, not %', jsonb_typeof(variables)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_result := @extschema@._steadytext_call('template_render',
        jsonb_build_object('template', v_template, 'variables', coalesce(variables, '{}'), 'strict', coalesce(strict, true)));
    IF v_result IS NULL THEN
        RETURN NULL;
    END IF;
    IF (v_result ->> 'ok')::boolean THEN
        RETURN v_result ->> 'text';
    END IF;
    CASE v_result ->> 'kind'
    WHEN 'missing' THEN
        RAISE EXCEPTION '%', v_result ->> 'message' USING ERRCODE = 'invalid_parameter_value';
    WHEN 'syntax' THEN
        RAISE EXCEPTION 'Template syntax error: %', v_result ->> 'message' USING ERRCODE = 'syntax_error';
    ELSE
        RAISE EXCEPTION 'Template rendering error: %', v_result ->> 'message' USING ERRCODE = 'data_exception';
    END CASE;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_prompt_render(text, jsonb, integer, boolean) IS
    'Renders a registered Jinja2 prompt with JSON variables (in the daemon; NULL when it does not answer).';

CREATE FUNCTION @extschema@.steadytext_prompt_list()
RETURNS TABLE(prompt_id uuid, slug text, description text, latest_version_num integer, total_versions integer,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.id, p.slug, p.description, max(v.version), count(v.id)::integer, p.created_at, p.updated_at
    FROM @extschema@.steadytext_prompts p
    LEFT JOIN @extschema@.steadytext_prompt_versions v ON v.prompt_id = p.id
    GROUP BY p.id
    ORDER BY p.created_at DESC, p.slug
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_versions(slug text)
RETURNS TABLE(version integer, template text, required_variables text[], metadata jsonb, created_at timestamptz,
              created_by text, is_active boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prompt uuid;
BEGIN
    SELECT p.id INTO v_prompt FROM @extschema@.steadytext_prompts p WHERE p.slug = steadytext_prompt_versions.slug;
    IF v_prompt IS NULL THEN
        RAISE EXCEPTION 'Prompt with slug "%" not found', slug USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
        SELECT v.version, v.template, v.required_variables, v.metadata, v.created_at, v.created_by, v.is_active
        FROM @extschema@.steadytext_prompt_versions v WHERE v.prompt_id = v_prompt
        ORDER BY v.version DESC;
END
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_delete(slug text)
RETURNS boolean LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    WITH deleted AS (DELETE FROM @extschema@.steadytext_prompts p WHERE p.slug = steadytext_prompt_delete.slug RETURNING 1)
    SELECT count(*) > 0 FROM deleted
$$;

-- ---------------------------------------------------------------------------
-- Version, configuration, daemon
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.steadytext_version()
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '2026.11.26'::text $$;

CREATE FUNCTION @extschema@.steadytext_config_get(config_key text)
RETURNS text LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT c.value #>> '{}' FROM @extschema@.steadytext_config c WHERE c.key = config_key
$$;

-- Validated configuration change with an audit row. Known keys (matched
-- case-insensitively) are validated and stored typed; any other key is the
-- user's own setting, stored as given. Host and port also become this
-- database's steadytext.daemon_host / daemon_port settings.
CREATE FUNCTION @extschema@.steadytext_config_set(config_key text, config_value text)
RETURNS void LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_key text := lower(btrim(config_key));
    v_value jsonb;
    v_number numeric;
BEGIN
    IF v_key = '' THEN
        RAISE EXCEPTION 'Configuration key cannot be empty';
    END IF;
    -- Where the daemon is, and what starts it, are superuser-only settings
    -- (steadytext.daemon_host/port/command are PGC_SUSET): this function runs
    -- as its owner, so it checks who called it rather than lend that right.
    IF v_key IN ('daemon_host', 'daemon_port', 'daemon_command')
       AND NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false) THEN
        RAISE EXCEPTION 'permission denied to set %', v_key
            USING ERRCODE = '42501', HINT = 'Only a superuser may change where the daemon is or what starts it.';
    END IF;
    CASE v_key
    WHEN 'daemon_host' THEN
        IF config_value !~ '^[A-Za-z0-9._-]{1,253}$' THEN
            RAISE EXCEPTION 'Invalid host format';
        END IF;
        v_value := to_jsonb(config_value);
    WHEN 'daemon_port', 'default_max_tokens', 'default_seed', 'cache_max_entries', 'cache_max_size_mb' THEN
        IF config_value !~ '^\s*[0-9]{1,12}(\.[0-9]+)?\s*$' THEN
            IF v_key = 'daemon_port' THEN
                RAISE EXCEPTION 'Invalid port format';
            END IF;
            RAISE EXCEPTION 'Invalid % value: %', v_key, config_value;
        END IF;
        v_number := config_value::numeric;
        IF v_key = 'daemon_port' AND (v_number <> trunc(v_number) OR v_number < 1 OR v_number > 65535) THEN
            RAISE EXCEPTION 'Invalid port format';
        ELSIF v_key = 'default_max_tokens' AND (v_number <> trunc(v_number) OR v_number < 1 OR v_number > 4096) THEN
            RAISE EXCEPTION 'default_max_tokens must be between 1 and 4096';
        ELSIF v_key = 'default_seed' AND (v_number <> trunc(v_number) OR v_number > 2147483647) THEN
            RAISE EXCEPTION 'default_seed must be an integer between 0 and 2147483647';
        ELSIF v_key IN ('cache_max_entries', 'cache_max_size_mb') AND v_number <= 0 THEN
            RAISE EXCEPTION '% must be positive', v_key;
        END IF;
        v_value := to_jsonb(v_number);
    WHEN 'cache_enabled', 'cache_eviction_enabled', 'daemon_auto_start' THEN
        IF lower(btrim(config_value)) NOT IN ('true', 'false', 'on', 'off', '1', '0', 'yes', 'no') THEN
            RAISE EXCEPTION 'Invalid boolean for %: %', v_key, config_value;
        END IF;
        v_value := to_jsonb(config_value::boolean);
    WHEN 'model_path' THEN
        IF config_value LIKE '/%' OR config_value ~ '[;|]' THEN
            RAISE EXCEPTION 'Invalid file path';
        END IF;
        v_value := to_jsonb(config_value);
    WHEN 'daemon_command' THEN
        IF config_value ~ '[;&|]' OR config_value ~ '\s' THEN
            RAISE EXCEPTION 'Invalid command format';
        END IF;
        v_value := to_jsonb(config_value);
    ELSE
        IF v_key LIKE '%table_name' AND config_value !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
            RAISE EXCEPTION 'Invalid table name';
        END IF;
        -- A user-defined key: kept as given, value as a JSON string.
        v_key := config_key;
        v_value := to_jsonb(config_value);
    END CASE;

    INSERT INTO @extschema@.steadytext_config (key, value, updated_at, updated_by)
    VALUES (v_key, v_value, now(), session_user)
    ON CONFLICT ON CONSTRAINT steadytext_config_pkey
    DO UPDATE SET value = excluded.value, updated_at = now(), updated_by = session_user;
    INSERT INTO @extschema@.steadytext_audit_log (event_type, user_id, details)
    VALUES ('config_change', session_user, jsonb_build_object('key', v_key, 'value', v_value));

    IF v_key IN ('daemon_host', 'daemon_port') THEN
        PERFORM set_config('steadytext.' || v_key, v_value #>> '{}', false);
        EXECUTE format('ALTER DATABASE %I SET %s = %L', current_database(), 'steadytext.' || v_key, v_value #>> '{}');
    END IF;
END
$$;

-- The daemon's own answer when it responds; otherwise the last heartbeat it wrote.
-- last_heartbeat is always the one the daemon wrote (NULL if it writes none), never the time of asking.
CREATE FUNCTION @extschema@.steadytext_daemon_status()
RETURNS TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamptz, uptime_seconds integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET steadytext.request_timeout_ms = 2000
SET steadytext.on_unavailable = 'null' AS $$
DECLARE
    v_status jsonb := @extschema@._steadytext_call('status', '{}');
BEGIN
    IF v_status IS NOT NULL THEN
        RETURN QUERY SELECT v_status ->> 'daemon_id', 'healthy'::text, @extschema@._steadytext_endpoint(),
                            (SELECT h.last_heartbeat FROM @extschema@.steadytext_daemon_health h
                             WHERE h.daemon_id = v_status ->> 'daemon_id'),
                            (v_status ->> 'uptime_seconds')::integer;
        RETURN;
    END IF;
    RETURN QUERY SELECT h.daemon_id, CASE WHEN h.status = 'unknown' THEN 'unknown' ELSE 'unhealthy' END,
                        @extschema@._steadytext_endpoint(), h.last_heartbeat, 0
                 FROM @extschema@.steadytext_daemon_health h;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'default'::text, 'unknown'::text, @extschema@._steadytext_endpoint(), NULL::timestamptz, 0;
    END IF;
END
$$;

-- Companion of steadytext_daemon_status (whose columns stay the original's):
-- each model the daemon has loaded, and where it computes (backend "cpu",
-- "vulkan", "cuda"; the device class; layers on the GPU), its file's sha256 and
-- the identity its results are cached under (what steadytext_models.model_sha256
-- holds: the file's sha256 on the CPU). No rows when the daemon does not answer.
CREATE FUNCTION @extschema@.steadytext_daemon_models()
RETURNS TABLE(role text, model_name text, loaded boolean, backend text, device text, gpu_layers integer,
              file_sha256 text, cache_identity text, warmed boolean, error text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET steadytext.request_timeout_ms = 2000
SET steadytext.on_unavailable = 'null' AS $$
DECLARE
    v_status jsonb := @extschema@._steadytext_call('status', '{}');
BEGIN
    RETURN QUERY
    SELECT m ->> 'role', m ->> 'name', (m ->> 'loaded')::boolean, m ->> 'backend', m ->> 'device',
           (m ->> 'gpu_layers')::integer, m ->> 'sha256', m ->> 'identity', coalesce((m ->> 'warmed')::boolean, false),
           m ->> 'error'
    FROM jsonb_array_elements(coalesce(v_status -> 'models', '[]')) AS m
    ORDER BY 1, 2;
END
$$;

-- Starts the configured steadytext.daemon_command (a path set by a
-- superuser) with fixed arguments; no shell, no user-controlled text.
CREATE FUNCTION @extschema@.steadytext_daemon_start()
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN @extschema@._steadytext_spawn_daemon();
END
$$;

CREATE FUNCTION @extschema@.steadytext_daemon_stop()
RETURNS boolean LANGUAGE plpgsql VOLATILE
SET steadytext.request_timeout_ms = 15000
SET steadytext.on_unavailable = 'null' AS $$
BEGIN
    RETURN coalesce(@extschema@._steadytext_call('shutdown', '{}') IS NOT NULL, false);
END
$$;

-- ---------------------------------------------------------------------------
-- Cache management
-- ---------------------------------------------------------------------------

-- Frecency: access count decayed by days since the last access (clamped so
-- exp() never underflows).
CREATE FUNCTION @extschema@._steadytext_frecency(access_count integer, last_accessed timestamptz)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT access_count * exp(greatest(-700.0, -extract(epoch FROM (now() - last_accessed)) / 86400.0))
$$;

CREATE VIEW @extschema@.steadytext_cache_with_frecency AS
    SELECT c.*, @extschema@._steadytext_frecency(c.access_count, c.last_accessed) AS frecency_score
    FROM @extschema@.steadytext_cache c;

CREATE FUNCTION @extschema@._steadytext_entry_bytes(c @extschema@.steadytext_cache)
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (coalesce(pg_column_size(c.prompt), 0) + coalesce(pg_column_size(c.response), 0)
            + coalesce(pg_column_size(c.embedding), 0))::bigint
$$;

CREATE FUNCTION @extschema@.steadytext_cache_stats()
RETURNS TABLE(total_entries bigint, total_size_mb double precision, cache_hit_rate double precision,
              avg_access_count double precision, oldest_entry timestamptz, newest_entry timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    -- Each entry was computed once (its first access) and every further
    -- access was a hit, so hits / accesses is the hit rate of what is cached.
    SELECT count(*)::bigint,
           coalesce(sum(@extschema@._steadytext_entry_bytes(c)), 0) / 1048576.0,
           coalesce(sum(c.access_count - 1)::double precision / nullif(sum(c.access_count), 0), 0),
           coalesce(avg(c.access_count), 0)::double precision,
           min(c.created_at),
           max(c.created_at)
    FROM @extschema@.steadytext_cache c
$$;

CREATE FUNCTION @extschema@.steadytext_cache_clear()
RETURNS bigint LANGUAGE sql VOLATILE AS $$
    WITH deleted AS (DELETE FROM @extschema@.steadytext_cache RETURNING 1)
    SELECT count(*) FROM deleted
$$;

-- Shared eviction loop: delete in batches, in the given order, until the
-- cache is within both targets or nothing old enough is left.
CREATE FUNCTION @extschema@._steadytext_evict(
    by_frecency boolean, target_entries integer, target_size_mb double precision,
    batch_size integer, min_access_count integer, min_age_hours integer)
RETURNS TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_target_entries integer := coalesce(target_entries,
        (SELECT (c.value #>> '{}')::integer FROM @extschema@.steadytext_config c WHERE c.key = 'cache_max_entries'), 10000);
    v_target_mb double precision := coalesce(target_size_mb,
        (SELECT (c.value #>> '{}')::double precision FROM @extschema@.steadytext_config c WHERE c.key = 'cache_max_size_mb'), 100);
    v_entries bigint;
    v_mb double precision;
    v_deleted integer;
    v_freed double precision;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1';
    END IF;
    IF v_target_entries < 0 OR v_target_mb < 0 THEN
        RAISE EXCEPTION 'eviction targets must not be negative';
    END IF;
    evicted_count := 0;
    freed_size_mb := 0;
    LOOP
        SELECT count(*), coalesce(sum(@extschema@._steadytext_entry_bytes(c)), 0) / 1048576.0
        INTO v_entries, v_mb FROM @extschema@.steadytext_cache c;
        EXIT WHEN v_entries <= v_target_entries AND v_mb <= v_target_mb;
        WITH victims AS (
            SELECT c.id FROM @extschema@.steadytext_cache c
            WHERE c.created_at < now() - make_interval(hours => coalesce(min_age_hours, 0))
            ORDER BY CASE WHEN by_frecency THEN (c.access_count >= coalesce(min_access_count, 0))::int END,
                     CASE WHEN by_frecency THEN @extschema@._steadytext_frecency(c.access_count, c.last_accessed) END,
                     c.created_at, c.id
            LIMIT least(batch_size, greatest(v_entries - v_target_entries, 1))
        ), deleted AS (
            DELETE FROM @extschema@.steadytext_cache c USING victims v WHERE c.id = v.id
            RETURNING @extschema@._steadytext_entry_bytes(c) AS bytes
        )
        SELECT count(*), coalesce(sum(bytes), 0) / 1048576.0 INTO v_deleted, v_freed FROM deleted;
        EXIT WHEN v_deleted = 0;
        evicted_count := evicted_count + v_deleted;
        freed_size_mb := freed_size_mb + v_freed;
    END LOOP;
    IF evicted_count > 0 THEN
        INSERT INTO @extschema@.steadytext_audit_log (event_type, details)
        VALUES ('cache_eviction', jsonb_build_object('evicted_count', evicted_count, 'freed_size_mb', freed_size_mb,
                                                     'eviction_type', CASE WHEN by_frecency THEN 'frecency' ELSE 'age' END));
    END IF;
    remaining_entries := v_entries;
    remaining_size_mb := v_mb;
    RETURN NEXT;
END
$$;

CREATE FUNCTION @extschema@.steadytext_cache_evict_by_age(
    target_entries integer DEFAULT NULL,
    target_size_mb double precision DEFAULT NULL,
    batch_size integer DEFAULT 100,
    min_age_hours integer DEFAULT 1)
RETURNS TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM @extschema@._steadytext_evict(false, target_entries, target_size_mb, batch_size, 0, min_age_hours)
$$;

CREATE FUNCTION @extschema@.steadytext_cache_evict_by_frecency(
    target_entries integer DEFAULT NULL,
    target_size_mb double precision DEFAULT NULL,
    batch_size integer DEFAULT 100,
    min_access_count integer DEFAULT 2,
    min_age_hours integer DEFAULT 1)
RETURNS TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)
LANGUAGE sql VOLATILE AS $$
    -- Entries used at least min_access_count times go last; within each
    -- group the least frecent go first.
    SELECT * FROM @extschema@._steadytext_evict(true, target_entries, target_size_mb, batch_size, min_access_count, min_age_hours)
$$;

CREATE FUNCTION @extschema@.steadytext_cache_preview_eviction(preview_count integer DEFAULT 10)
RETURNS TABLE(cache_key text, prompt text, access_count integer, last_accessed timestamptz,
              created_at timestamptz, age_days double precision, size_bytes bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.cache_key,
           left(c.prompt, 50) || CASE WHEN length(c.prompt) > 50 THEN '...' ELSE '' END,
           c.access_count, c.last_accessed, c.created_at,
           extract(epoch FROM (now() - c.created_at)) / 86400.0,
           @extschema@._steadytext_entry_bytes(c)
    FROM @extschema@.steadytext_cache c
    WHERE c.created_at < now() - interval '1 hour'
    ORDER BY (c.access_count >= 2)::int, @extschema@._steadytext_frecency(c.access_count, c.last_accessed), c.created_at, c.id
    LIMIT preview_count
$$;

CREATE FUNCTION @extschema@.steadytext_cache_analyze_usage()
RETURNS TABLE(age_bucket text, entry_count bigint, avg_access_count double precision,
              total_size_mb double precision, percentage_of_cache double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH bucketed AS (
        SELECT CASE
                   WHEN c.created_at > now() - interval '1 hour' THEN 1
                   WHEN c.created_at > now() - interval '1 day' THEN 2
                   WHEN c.created_at > now() - interval '7 days' THEN 3
                   WHEN c.created_at > now() - interval '30 days' THEN 4
                   ELSE 5
               END AS bucket,
               c.access_count,
               @extschema@._steadytext_entry_bytes(c) AS bytes
        FROM @extschema@.steadytext_cache c
    ), total AS (SELECT count(*) AS n FROM bucketed)
    SELECT (ARRAY['< 1 hour', '1 hour - 1 day', '1 day - 7 days', '7 days - 30 days', '> 30 days'])[b.bucket],
           count(*)::bigint,
           avg(b.access_count)::double precision,
           sum(b.bytes) / 1048576.0,
           100.0 * count(*) / nullif((SELECT n FROM total), 0)
    FROM bucketed b
    GROUP BY b.bucket
    ORDER BY b.bucket
$$;

-- For pg_cron: SELECT cron.schedule('steadytext-evict', '0 * * * *', 'SELECT steadytext_cache_scheduled_eviction()');
CREATE FUNCTION @extschema@.steadytext_cache_scheduled_eviction()
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_enabled boolean;
    v_result record;
BEGIN
    SELECT (c.value #>> '{}')::boolean INTO v_enabled FROM @extschema@.steadytext_config c WHERE c.key = 'cache_eviction_enabled';
    IF NOT coalesce(v_enabled, true) THEN
        RETURN;
    END IF;
    SELECT * INTO v_result FROM @extschema@.steadytext_cache_evict_by_frecency();
    IF v_result.evicted_count > 0 THEN
        RAISE NOTICE 'Cache eviction completed: % entries evicted, % MB freed',
            v_result.evicted_count, round(v_result.freed_size_mb::numeric, 3);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Async queue: requests the sidecar's worker answers later
-- ---------------------------------------------------------------------------

-- Tables that embed themselves (steadytext_auto_embed). Each pipeline knows
-- how to find a row (its key columns) and what text to embed (a column or a
-- template over several).
CREATE TABLE @extschema@.steadytext_auto_embed_pipelines (
    id serial PRIMARY KEY,
    source regclass NOT NULL,
    text_column name,
    vector_column name NOT NULL,
    template text,
    key_columns name[] NOT NULL,
    seed integer NOT NULL DEFAULT 42 CHECK (seed >= 0),
    model text,
    batch_size integer NOT NULL DEFAULT 64 CHECK (batch_size BETWEEN 1 AND 1000),
    priority integer NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 10),
    max_retries integer NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    rows_embedded bigint NOT NULL DEFAULT 0,
    last_embedded_at timestamptz,
    -- Throughput: rows written in the current one-minute window, and the rate of the last full one.
    rate_window_start timestamptz,
    rate_window_rows bigint NOT NULL DEFAULT 0,
    rows_per_second double precision,
    last_error text,
    last_error_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT session_user,
    UNIQUE (source, vector_column)
);
COMMENT ON TABLE @extschema@.steadytext_auto_embed_pipelines IS
    'Tables kept embedded by steadytext_auto_embed(); see steadytext_auto_embed_status.';

-- The original's columns, plus what a worker that may crash needs: a lease
-- (locked_by, locked_until), the time of the next attempt, and for pipeline
-- items the pipeline and the row's key instead of a prompt.
CREATE TABLE @extschema@.steadytext_queue (
    id bigserial PRIMARY KEY,
    request_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    request_type text NOT NULL CHECK (request_type IN ('generate', 'embed', 'rerank', 'auto_embed')),
    prompt text,
    params jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    user_id text DEFAULT session_user,
    session_id text,
    result text,
    results text[],
    embedding vector(1024),
    embeddings vector(1024)[],
    error text,
    retry_count integer NOT NULL DEFAULT 0,
    max_retries integer NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    completed_at timestamptz,
    processing_time_ms integer,
    daemon_endpoint text,
    pipeline_id integer REFERENCES @extschema@.steadytext_auto_embed_pipelines ON DELETE CASCADE,
    source_key jsonb,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    locked_by text,
    locked_until timestamptz,
    CHECK ((request_type = 'auto_embed') = (pipeline_id IS NOT NULL AND source_key IS NOT NULL))
);
CREATE INDEX steadytext_queue_claim_idx ON @extschema@.steadytext_queue (priority DESC, id) WHERE status = 'pending';
CREATE INDEX steadytext_queue_lease_idx ON @extschema@.steadytext_queue (locked_until) WHERE status = 'processing';
CREATE INDEX steadytext_queue_source_idx ON @extschema@.steadytext_queue (pipeline_id, source_key) WHERE pipeline_id IS NOT NULL;
-- One pending item per row: a row updated ten times before the worker gets to it is embedded once.
CREATE UNIQUE INDEX steadytext_queue_pending_row_idx ON @extschema@.steadytext_queue (pipeline_id, source_key)
    WHERE status = 'pending' AND pipeline_id IS NOT NULL;
COMMENT ON TABLE @extschema@.steadytext_queue IS
    'Async requests and auto-embedding work, claimed by sidecar workers with FOR UPDATE SKIP LOCKED and a lease.';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_auto_embed_pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_auto_embed_pipelines_id_seq', '');

-- Wakes the workers: they LISTEN instead of polling. One notification per
-- statement (PostgreSQL folds equal ones within a transaction).
CREATE FUNCTION @extschema@._steadytext_queue_wake()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('steadytext_queue', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER steadytext_queue_wake AFTER INSERT ON @extschema@.steadytext_queue
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._steadytext_queue_wake();

-- Enqueue requests in one statement, returning their ids in the order
-- given (callers are the SECURITY DEFINER functions below).
CREATE FUNCTION @extschema@._steadytext_enqueue(p_type text, p_prompts text[], p_params jsonb[], p_priority integer)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_ids uuid[] := ARRAY(SELECT gen_random_uuid() FROM generate_series(1, cardinality(p_prompts)));
BEGIN
    INSERT INTO @extschema@.steadytext_queue (request_id, request_type, prompt, params, priority, user_id, session_id)
    SELECT v_ids[i], p_type, p_prompts[i], p_params[i], p_priority, session_user, pg_catalog.pg_backend_pid()::text
    FROM generate_series(1, cardinality(p_prompts)) AS i;
    RETURN v_ids;
END
$$;

CREATE FUNCTION @extschema@._steadytext_check_priority(priority integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF priority IS NULL OR priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority must be between 1 and 10';
    END IF;
END
$$;

-- The checks of the original's async functions, then the synchronous path's own.
CREATE FUNCTION @extschema@._steadytext_generate_async_params(
    prompt text, max_tokens integer, use_cache boolean, seed integer, eos_string text,
    model text, model_repo text, model_filename text, size text, unsafe_mode boolean)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF prompt IS NULL OR pg_catalog.btrim(prompt, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Prompt cannot be empty';
    END IF;
    IF max_tokens IS NOT NULL AND (max_tokens < 1 OR max_tokens > 4096) THEN
        RAISE EXCEPTION 'max_tokens must be between 1 and 4096';
    END IF;
    RETURN (@extschema@._steadytext_generation_request(prompt, max_tokens, use_cache, seed, eos_string, model, model_repo,
                                                       model_filename, size, unsafe_mode, 'none', '')).params;
END
$$;

CREATE FUNCTION @extschema@._steadytext_embed_async_params(
    text_input text, use_cache boolean, seed integer, model text, unsafe_mode boolean)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
BEGIN
    IF text_input IS NULL OR pg_catalog.btrim(text_input, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Text cannot be empty';
    END IF;
    IF v_seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
    PERFORM @extschema@._steadytext_model_selector('embedding', model, NULL, NULL, NULL, unsafe_mode);
    RETURN jsonb_build_object('text_input', text_input, 'seed', v_seed, 'model', model, 'mode', 'query',
                              'unsafe_mode', unsafe_mode, 'use_cache', coalesce(use_cache, true));
END
$$;

CREATE FUNCTION @extschema@._steadytext_rerank_async_params(
    query text, documents text[], task text, return_scores boolean, seed integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_seed integer := @extschema@._steadytext_seed(seed);
BEGIN
    IF query IS NULL OR pg_catalog.btrim(query, E' \t\n\r\f\v') = '' THEN
        RAISE EXCEPTION 'Query cannot be empty';
    END IF;
    IF documents IS NULL OR cardinality(documents) = 0 THEN
        RAISE EXCEPTION 'Documents cannot be empty';
    END IF;
    IF array_position(documents, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'Documents cannot contain null elements';
    END IF;
    IF v_seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
    RETURN jsonb_build_object('query', query, 'documents', to_jsonb(documents),
                              'task', coalesce(task, 'Given a web search query, retrieve relevant passages that answer the query'),
                              'return_scores', coalesce(return_scores, true), 'seed', v_seed);
END
$$;

CREATE FUNCTION @extschema@._steadytext_check_batch(items anyarray, what text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF items IS NULL OR cardinality(items) = 0 THEN
        RAISE EXCEPTION '% cannot be empty', what;
    END IF;
    IF cardinality(items) > 100 THEN
        RAISE EXCEPTION 'Batch size exceeds maximum limit' USING DETAIL = format('%s items; at most 100 per call.', cardinality(items));
    END IF;
END
$$;

CREATE FUNCTION @extschema@.steadytext_generate_async(
    prompt text,
    max_tokens integer DEFAULT 512,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    eos_string text DEFAULT '[EOS]',
    model text DEFAULT NULL,
    model_repo text DEFAULT NULL,
    model_filename text DEFAULT NULL,
    size text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false,
    priority integer DEFAULT 5)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_priority(priority);
    RETURN (@extschema@._steadytext_enqueue('generate', ARRAY[prompt],
        ARRAY[@extschema@._steadytext_generate_async_params(prompt, max_tokens, use_cache, seed, eos_string, model, model_repo,
                                                      model_filename, size, unsafe_mode)], priority))[1];
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_generate_async(text, integer, boolean, integer, text, text, text, text, text, boolean, integer) IS
    'Queues a generation; the result (steadytext_get_async_result) equals steadytext_generate with the same arguments.';

CREATE FUNCTION @extschema@.steadytext_generate_batch_async(
    prompts text[],
    max_tokens integer DEFAULT 512,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    eos_string text DEFAULT '[EOS]',
    model text DEFAULT NULL,
    priority integer DEFAULT 5)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_params jsonb[];
    i integer;
BEGIN
    PERFORM @extschema@._steadytext_check_batch(prompts, 'Prompts');
    PERFORM @extschema@._steadytext_check_priority(priority);
    -- Everything is checked before anything is queued: a bad element queues nothing.
    FOR i IN 1 .. cardinality(prompts) LOOP
        v_params[i] := @extschema@._steadytext_generate_async_params(prompts[i], max_tokens, use_cache, seed, eos_string,
                                                                     model, NULL, NULL, NULL, false);
    END LOOP;
    RETURN @extschema@._steadytext_enqueue('generate', prompts, v_params, priority);
END
$$;

CREATE FUNCTION @extschema@.steadytext_embed_async(
    text_input text,
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false,
    priority integer DEFAULT 5)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_priority(priority);
    RETURN (@extschema@._steadytext_enqueue('embed', ARRAY[text_input],
        ARRAY[@extschema@._steadytext_embed_async_params(text_input, use_cache, seed, model, unsafe_mode)], priority))[1];
END
$$;

CREATE FUNCTION @extschema@.steadytext_embed_batch_async(
    texts text[],
    use_cache boolean DEFAULT true,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false,
    priority integer DEFAULT 5)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_params jsonb[];
    i integer;
BEGIN
    PERFORM @extschema@._steadytext_check_batch(texts, 'Texts');
    PERFORM @extschema@._steadytext_check_priority(priority);
    FOR i IN 1 .. cardinality(texts) LOOP
        v_params[i] := @extschema@._steadytext_embed_async_params(texts[i], use_cache, seed, model, unsafe_mode);
    END LOOP;
    RETURN @extschema@._steadytext_enqueue('embed', texts, v_params, priority);
END
$$;

CREATE FUNCTION @extschema@.steadytext_rerank_async(
    query text,
    documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true,
    seed integer DEFAULT 42,
    priority integer DEFAULT 5)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_priority(priority);
    RETURN (@extschema@._steadytext_enqueue('rerank', ARRAY[query],
        ARRAY[@extschema@._steadytext_rerank_async_params(query, documents, task, return_scores, seed)], priority))[1];
END
$$;

CREATE FUNCTION @extschema@.steadytext_rerank_batch_async(
    queries text[],
    documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true,
    seed integer DEFAULT 42,
    priority integer DEFAULT 5)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_params jsonb[];
    i integer;
BEGIN
    PERFORM @extschema@._steadytext_check_batch(queries, 'Queries');
    PERFORM @extschema@._steadytext_check_priority(priority);
    FOR i IN 1 .. cardinality(queries) LOOP
        v_params[i] := @extschema@._steadytext_rerank_async_params(queries[i], documents, task, return_scores, seed);
    END LOOP;
    RETURN @extschema@._steadytext_enqueue('rerank', queries, v_params, priority);
END
$$;

-- Request ids are random UUIDs: knowing one is what entitles a caller to its
-- status and result (the queue table itself is not readable by PUBLIC).
CREATE FUNCTION @extschema@.steadytext_check_async(request_id uuid)
RETURNS TABLE(status text, result text, results text[], embedding @extschema@.vector, embeddings @extschema@.vector[], error text,
              created_at timestamptz, completed_at timestamptz, processing_time_ms integer, request_type text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'Request ID cannot be null';
    END IF;
    RETURN QUERY SELECT q.status, q.result, q.results, q.embedding::@extschema@.vector, q.embeddings::@extschema@.vector[],
                        q.error, q.created_at, q.completed_at, q.processing_time_ms, q.request_type
                 FROM @extschema@.steadytext_queue q
                 WHERE q.request_id = steadytext_check_async.request_id AND q.pipeline_id IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Request % not found', request_id USING ERRCODE = 'P0002';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.steadytext_check_async_batch(request_ids uuid[])
RETURNS TABLE(request_id uuid, status text, result text, error text, completed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF request_ids IS NULL OR cardinality(request_ids) = 0 THEN
        RAISE EXCEPTION 'Request IDs cannot be empty';
    END IF;
    IF cardinality(request_ids) > 100 THEN
        RAISE EXCEPTION 'Batch size exceeds maximum limit' USING DETAIL = format('%s ids; at most 100 per call.', cardinality(request_ids));
    END IF;
    -- In the order asked; an unknown id is a row with status 'not_found'.
    RETURN QUERY SELECT r.id, coalesce(q.status, 'not_found'), q.result, q.error, q.completed_at
                 FROM unnest(request_ids) WITH ORDINALITY AS r(id, i)
                 LEFT JOIN @extschema@.steadytext_queue q ON q.request_id = r.id AND q.pipeline_id IS NULL
                 ORDER BY r.i;
END
$$;

-- The answer to a finished request as text: the generated text, the
-- embedding in pgvector's text form, or the ranking as JSON.
CREATE FUNCTION @extschema@._steadytext_async_answer(q @extschema@.steadytext_queue)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE q.request_type WHEN 'embed' THEN q.embedding::text ELSE q.result END
$$;

-- Waits for the daemon's word that the request finished (it LISTENs for
-- completions, whichever sidecar did the work), so nothing polls. Without a
-- daemon to ask, it looks again every half second until the timeout.
CREATE FUNCTION @extschema@.steadytext_get_async_result(request_id uuid, timeout_seconds integer DEFAULT 30)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_item @extschema@.steadytext_queue;
    v_deadline timestamptz;
    v_remaining_ms integer;
    v_timeout_setting text;
    v_waited jsonb;
BEGIN
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'Request ID cannot be null';
    END IF;
    IF timeout_seconds IS NULL OR timeout_seconds < 1 OR timeout_seconds > 3600 THEN
        RAISE EXCEPTION 'timeout_seconds must be between 1 and 3600';
    END IF;
    v_deadline := clock_timestamp() + make_interval(secs => timeout_seconds);
    LOOP
        SELECT * INTO v_item FROM @extschema@.steadytext_queue q
        WHERE q.request_id = steadytext_get_async_result.request_id AND q.pipeline_id IS NULL;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Request % not found', request_id USING ERRCODE = 'P0002';
        END IF;
        CASE v_item.status
            WHEN 'completed' THEN RETURN @extschema@._steadytext_async_answer(v_item);
            WHEN 'failed' THEN RAISE EXCEPTION 'Request failed: %', v_item.error;
            WHEN 'cancelled' THEN RAISE EXCEPTION 'Request was cancelled';
            ELSE NULL;
        END CASE;
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            RAISE EXCEPTION 'steadytext_get_async_result cannot wait inside a % transaction', upper(current_setting('transaction_isolation'))
                USING HINT = 'Its snapshot would never show the result: wait in a READ COMMITTED transaction, or poll with steadytext_check_async.';
        END IF;
        v_remaining_ms := ceil(extract(epoch FROM v_deadline - clock_timestamp()) * 1000)::integer;
        IF v_remaining_ms <= 0 THEN
            RAISE EXCEPTION 'Timeout waiting for async result (% seconds)', timeout_seconds;
        END IF;
        PERFORM @extschema@._steadytext_endpoint();  -- loads the library, which defines the setting
        v_timeout_setting := current_setting('steadytext.request_timeout_ms');
        PERFORM set_config('steadytext.request_timeout_ms', (v_remaining_ms + 2000)::text, true);
        v_waited := @extschema@._steadytext_call('queue_wait',
            jsonb_build_object('request_id', request_id, 'timeout_ms', v_remaining_ms));
        PERFORM set_config('steadytext.request_timeout_ms', v_timeout_setting, true);
        IF v_waited IS NULL THEN
            PERFORM pg_sleep(least(0.5, v_remaining_ms / 1000.0));
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION @extschema@.steadytext_cancel_async(request_id uuid)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_found boolean;
BEGIN
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'Request ID cannot be null';
    END IF;
    -- A request being worked on is cancelled too: the worker's result is then discarded.
    UPDATE @extschema@.steadytext_queue q SET status = 'cancelled', completed_at = clock_timestamp(), locked_by = NULL, locked_until = NULL
    WHERE q.request_id = steadytext_cancel_async.request_id AND q.pipeline_id IS NULL AND q.status IN ('pending', 'processing');
    v_found := FOUND;
    IF v_found THEN
        PERFORM pg_catalog.pg_notify('steadytext_queue_done', request_id::text);
    END IF;
    RETURN v_found;
END
$$;

-- ---------------------------------------------------------------------------
-- Auto-embedding: tables that embed themselves through the queue
-- ---------------------------------------------------------------------------

-- The text a pipeline embeds, as a SQL expression over the row alias `r`:
-- the text column, or the template with each {column} replaced. Only quoted
-- identifiers and quoted literals go in; NULL when every column is NULL.
CREATE FUNCTION @extschema@._steadytext_pipeline_text_sql(p @extschema@.steadytext_auto_embed_pipelines, r text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_parts text[] := '{}';
    v_columns text[] := '{}';
    v_rest text := p.template;
    v_match text[];
BEGIN
    IF p.template IS NULL THEN
        RETURN format('%s.%I::text', r, p.text_column);
    END IF;
    LOOP
        v_match := regexp_match(v_rest, '^(.*?)\{([^{}]+)\}(.*)$', 's');
        EXIT WHEN v_match IS NULL;
        IF v_match[1] <> '' THEN
            v_parts := v_parts || quote_literal(v_match[1]);
        END IF;
        v_parts := v_parts || format('coalesce(%s.%I::text, '''')', r, v_match[2]);
        v_columns := v_columns || format('%s.%I IS NULL', r, v_match[2]);
        v_rest := v_match[3];
    END LOOP;
    IF v_rest <> '' THEN
        v_parts := v_parts || quote_literal(v_rest);
    END IF;
    RETURN format('(CASE WHEN %s THEN NULL ELSE %s END)', array_to_string(v_columns, ' AND '), array_to_string(v_parts, ' || '));
END
$$;

-- The columns a pipeline's text reads.
CREATE FUNCTION @extschema@._steadytext_pipeline_columns(template text, text_column name)
RETURNS name[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN template IS NULL THEN ARRAY[text_column]
                ELSE ARRAY(SELECT DISTINCT m[1]::name FROM regexp_matches(template, '\{([^{}]+)\}', 'g') AS m) END
$$;

-- SQL that matches the pipeline's row alias `r` to a queue item's key (jsonb array `k`).
CREATE FUNCTION @extschema@._steadytext_pipeline_key_match(p @extschema@.steadytext_auto_embed_pipelines, r text, k text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(format('%s.%I = (%s ->> %s)::%s', r, c.name, k, c.i - 1,
                             format_type(a.atttypid, a.atttypmod)), ' AND ' ORDER BY c.i)
    FROM unnest(p.key_columns) WITH ORDINALITY AS c(name, i)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = p.source AND a.attname = c.name
$$;

-- The per-pipeline trigger function: computes the row's text, takes the
-- vector from the cache when it is there, and otherwise clears it and queues
-- the row. Generated from the pipeline's checked column names (quoted), so
-- it runs as fast as hand-written plpgsql.
CREATE FUNCTION @extschema@._steadytext_pipeline_trigger_sql(p @extschema@.steadytext_auto_embed_pipelines)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_key text;
BEGIN
    SELECT format('jsonb_build_array(%s)', string_agg(format('NEW.%I', c), ', ' ORDER BY i)) INTO v_key
    FROM unnest(p.key_columns) WITH ORDINALITY AS t(c, i);
    RETURN format($body$
CREATE FUNCTION @extschema@.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_text text;
    v_vector @extschema@.vector;
BEGIN
    -- A vector the statement sets itself is kept.
    IF NEW.%2$I IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.%2$I IS NULL OR NOT NEW.%2$I OPERATOR(@extschema@.=) OLD.%2$I) THEN
        RETURN NEW;
    END IF;
    v_text := %3$s;
    IF v_text IS NULL OR btrim(v_text, E' \t\n\r\f\v') = '' THEN
        NEW.%2$I := NULL;
        RETURN NEW;
    END IF;
    v_vector := @extschema@._steadytext_cached_embedding(@extschema@._steadytext_embed_key(%4$L, v_text, %5$s, 'query'));
    NEW.%2$I := v_vector;
    IF v_vector IS NULL THEN
        INSERT INTO @extschema@.steadytext_queue (request_type, pipeline_id, source_key, priority, max_retries)
        VALUES ('auto_embed', %6$s, %7$s, %8$s, %9$s)
        ON CONFLICT (pipeline_id, source_key) WHERE status = 'pending' AND pipeline_id IS NOT NULL DO NOTHING;
    END IF;
    RETURN NEW;
END
$fn$
$body$,
        '_steadytext_auto_embed_' || p.id, p.vector_column, @extschema@._steadytext_pipeline_text_sql(p, 'NEW'),
        @extschema@._steadytext_model_selector('embedding', p.model, NULL, NULL, NULL, false), p.seed,
        p.id, v_key, p.priority, p.max_retries);
END
$$;

-- A deleted or truncated row takes its queue items with it.
CREATE FUNCTION @extschema@._steadytext_auto_embed_forget()
RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p @extschema@.steadytext_auto_embed_pipelines;
BEGIN
    SELECT * INTO p FROM @extschema@.steadytext_auto_embed_pipelines x
    WHERE x.source = TG_RELID AND x.vector_column = TG_ARGV[0];
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM @extschema@.steadytext_queue q WHERE q.pipeline_id = p.id;
    ELSE
        DELETE FROM @extschema@.steadytext_queue q
        WHERE q.pipeline_id = p.id
          AND q.source_key IN (SELECT (SELECT jsonb_agg(to_jsonb(g) -> c ORDER BY i)
                                       FROM unnest(p.key_columns) WITH ORDINALITY AS k(c, i))
                               FROM steadytext_gone g);
    END IF;
    RETURN NULL;
END
$$;

-- Who may set up or remove a pipeline: the table's owner (or a member of
-- the owning role). session_user, since SECURITY DEFINER hides the caller.
CREATE FUNCTION @extschema@._steadytext_check_table_owner(source regclass)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(session_user, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = source), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', source USING ERRCODE = '42501';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.steadytext_auto_embed(
    source regclass,
    text_column name,
    vector_column name DEFAULT 'embedding',
    template text DEFAULT NULL,
    create_index boolean DEFAULT true,
    backfill boolean DEFAULT true,
    batch_size integer DEFAULT 64,
    priority integer DEFAULT 3,
    seed integer DEFAULT 42,
    model text DEFAULT NULL,
    max_retries integer DEFAULT 3)
RETURNS bigint LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p @extschema@.steadytext_auto_embed_pipelines;
    v_kind "char";
    v_keys name[];
    v_missing text;
    v_type oid;
    v_typmod integer;
    v_queued bigint := 0;
    v_text text;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source cannot be null';
    END IF;
    IF vector_column IS NULL OR vector_column = '' THEN
        RAISE EXCEPTION 'vector_column cannot be null or empty';
    END IF;
    IF text_column IS NULL AND template IS NULL THEN
        RAISE EXCEPTION 'text_column or template is required';
    END IF;
    IF template IS NOT NULL AND template !~ '\{[^{}]+\}' THEN
        RAISE EXCEPTION 'template must name at least one column as {column}';
    END IF;
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 1000';
    END IF;
    PERFORM @extschema@._steadytext_check_priority(priority);
    IF seed IS NULL OR seed < 0 THEN
        RAISE EXCEPTION 'seed must be non-negative';
    END IF;
    IF max_retries IS NULL OR max_retries NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'max_retries must be between 0 and 100';
    END IF;
    PERFORM @extschema@._steadytext_model_selector('embedding', model, NULL, NULL, NULL, false);

    SELECT c.relkind INTO v_kind FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF v_kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', source;
    END IF;
    PERFORM @extschema@._steadytext_check_table_owner(source);
    IF EXISTS (SELECT 1 FROM @extschema@.steadytext_auto_embed_pipelines x
               WHERE x.source = steadytext_auto_embed.source AND x.vector_column = steadytext_auto_embed.vector_column) THEN
        RAISE EXCEPTION 'auto-embedding of %.% already exists', source, vector_column USING ERRCODE = '42710',
            HINT = 'Drop it first with steadytext_auto_embed_drop().';
    END IF;

    SELECT array_agg(a.attname ORDER BY k.i) INTO v_keys
    FROM pg_catalog.pg_index x
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
    WHERE x.indrelid = source AND x.indisprimary;
    IF v_keys IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', source USING ERRCODE = '55000',
            HINT = 'Auto-embedding finds rows by their primary key: add one (ALTER TABLE ... ADD PRIMARY KEY).';
    END IF;

    SELECT string_agg(c, ', ') INTO v_missing
    FROM unnest(@extschema@._steadytext_pipeline_columns(template, text_column)) AS c
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = source AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'column % of table % does not exist', v_missing, source USING ERRCODE = '42703';
    END IF;
    IF vector_column = ANY (@extschema@._steadytext_pipeline_columns(template, text_column)) OR vector_column = ANY (v_keys) THEN
        RAISE EXCEPTION 'vector_column must not be a text or key column';
    END IF;

    SELECT a.atttypid, a.atttypmod INTO v_type, v_typmod FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = source AND a.attname = vector_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN %I @extschema@.vector(1024)', source, vector_column);
    ELSIF v_type <> '@extschema@.vector'::regtype OR v_typmod <> 1024 THEN
        RAISE EXCEPTION 'column %.% is %, not vector(1024)', source, vector_column, format_type(v_type, v_typmod)
            USING ERRCODE = '42804';
    END IF;

    INSERT INTO @extschema@.steadytext_auto_embed_pipelines
        (source, text_column, vector_column, template, key_columns, seed, model, batch_size, priority, max_retries)
    VALUES (source, text_column, vector_column, template, v_keys, seed, model, batch_size, priority, max_retries)
    RETURNING * INTO p;

    EXECUTE @extschema@._steadytext_pipeline_trigger_sql(p);
    -- Dropped with the extension (with CASCADE, its triggers too), never left behind pointing at a missing queue.
    EXECUTE format('ALTER FUNCTION @extschema@.%I() DEPENDS ON EXTENSION pg_steadytext', '_steadytext_auto_embed_' || p.id);
    -- An update fires it only when the text changes, or when the vector is cleared (a request to embed again).
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION @extschema@.%I()',
        'steadytext_auto_embed_' || vector_column, source, '_steadytext_auto_embed_' || p.id);
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW WHEN (%s) EXECUTE FUNCTION @extschema@.%I()',
        'steadytext_auto_embed_' || vector_column || '_update', source,
        (SELECT string_agg(format('OLD.%1$I IS DISTINCT FROM NEW.%1$I', c), ' OR ')
         FROM unnest(@extschema@._steadytext_pipeline_columns(template, text_column)) AS c)
        || format(' OR (NEW.%1$I IS NULL AND OLD.%1$I IS NOT NULL)', vector_column),
        '_steadytext_auto_embed_' || p.id);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS steadytext_gone FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._steadytext_auto_embed_forget(%L)',
        'steadytext_auto_embed_' || vector_column || '_delete', source, vector_column);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._steadytext_auto_embed_forget(%L)',
        'steadytext_auto_embed_' || vector_column || '_truncate', source, vector_column);

    IF coalesce(create_index, true) THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING hnsw (%I @extschema@.vector_cosine_ops)',
            left(format('%s_%s_hnsw_idx', (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), vector_column), 63),
            source, vector_column);
    END IF;

    IF coalesce(backfill, true) THEN
        v_text := @extschema@._steadytext_pipeline_text_sql(p, 'r');
        EXECUTE format(
            'INSERT INTO @extschema@.steadytext_queue (request_type, pipeline_id, source_key, priority, max_retries)
             SELECT ''auto_embed'', $1, jsonb_build_array(%s), $2, $3 FROM %s r
             WHERE r.%I IS NULL AND btrim(%s, E'' \t\n\r\f\v'') <> ''''
             ON CONFLICT (pipeline_id, source_key) WHERE status = ''pending'' AND pipeline_id IS NOT NULL DO NOTHING',
            (SELECT string_agg(format('r.%I', c), ', ' ORDER BY i) FROM unnest(v_keys) WITH ORDINALITY AS t(c, i)),
            source, vector_column, v_text)
        USING p.id, p.priority, p.max_retries;
        GET DIAGNOSTICS v_queued = ROW_COUNT;
    END IF;
    RETURN v_queued;
END
$$;
COMMENT ON FUNCTION @extschema@.steadytext_auto_embed(regclass, name, name, text, boolean, boolean, integer, integer, integer, text, integer) IS
    'Keeps vector_column equal to steadytext_embed of the row''s text (a column, or a template such as ''{title}: {body}''), through the queue. Returns the rows queued for the backfill.';

CREATE FUNCTION @extschema@.steadytext_auto_embed_drop(
    source regclass,
    vector_column name DEFAULT 'embedding',
    drop_column boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p @extschema@.steadytext_auto_embed_pipelines;
    v_trigger text;
BEGIN
    IF source IS NULL OR vector_column IS NULL THEN
        RAISE EXCEPTION 'source and vector_column cannot be null';
    END IF;
    PERFORM @extschema@._steadytext_check_table_owner(source);
    DELETE FROM @extschema@.steadytext_auto_embed_pipelines x
    WHERE x.source = steadytext_auto_embed_drop.source AND x.vector_column = steadytext_auto_embed_drop.vector_column
    RETURNING * INTO p;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOREACH v_trigger IN ARRAY ARRAY['', '_update', '_delete', '_truncate'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'steadytext_auto_embed_' || vector_column || v_trigger, source);
    END LOOP;
    EXECUTE format('DROP FUNCTION IF EXISTS @extschema@.%I()', '_steadytext_auto_embed_' || p.id);
    IF coalesce(drop_column, false) THEN
        EXECUTE format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', source, vector_column);
    END IF;
    RETURN true;
END
$$;

-- A dropped table takes its pipelines (and so their queue items) with it; a
-- dropped column a pipeline reads or writes ends that pipeline, with a
-- warning, so the table's inserts keep working.
CREATE FUNCTION @extschema@._steadytext_forget_dropped_tables()
RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_pipeline record;
    v_trigger text;
BEGIN
    FOR v_pipeline IN
        DELETE FROM @extschema@.steadytext_auto_embed_pipelines x
        USING pg_catalog.pg_event_trigger_dropped_objects() d
        WHERE x.source = d.objid
          AND (d.object_type = 'table'
               OR (d.object_type = 'table column'
                   AND d.address_names[3] = ANY (x.key_columns || x.vector_column
                                                 || @extschema@._steadytext_pipeline_columns(x.template, x.text_column))))
        RETURNING x.id, x.source, x.vector_column, d.object_type
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS @extschema@.%I() CASCADE', '_steadytext_auto_embed_' || v_pipeline.id);
        IF v_pipeline.object_type = 'table column' THEN
            FOREACH v_trigger IN ARRAY ARRAY['_delete', '_truncate'] LOOP
                EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'steadytext_auto_embed_' || v_pipeline.vector_column || v_trigger, v_pipeline.source);
            END LOOP;
            RAISE WARNING 'auto-embedding of %.% ended: a column it uses was dropped', v_pipeline.source, v_pipeline.vector_column;
        END IF;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER steadytext_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION @extschema@._steadytext_forget_dropped_tables();

-- Per pipeline: rows embedded and still to do, what the queue holds, the
-- last error and the recent throughput. Lists the tables the caller can read.
CREATE FUNCTION @extschema@._steadytext_auto_embed_status()
RETURNS TABLE(pipeline_id integer, source regclass, text_column name, vector_column name, template text,
              rows_total bigint, rows_embedded bigint, rows_pending bigint, rows_processing bigint, rows_failed bigint,
              last_error text, last_error_at timestamptz, last_embedded_at timestamptz, rows_per_second double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p @extschema@.steadytext_auto_embed_pipelines;
BEGIN
    FOR p IN SELECT * FROM @extschema@.steadytext_auto_embed_pipelines x
             WHERE pg_catalog.has_table_privilege(session_user, x.source, 'SELECT') ORDER BY x.id LOOP
        pipeline_id := p.id;
        source := p.source;
        text_column := p.text_column;
        vector_column := p.vector_column;
        template := p.template;
        EXECUTE format('SELECT count(*), count(%I) FROM %s', p.vector_column, p.source) INTO rows_total, rows_embedded;
        SELECT count(*) FILTER (WHERE q.status = 'pending'), count(*) FILTER (WHERE q.status = 'processing'),
               count(*) FILTER (WHERE q.status = 'failed')
        INTO rows_pending, rows_processing, rows_failed
        FROM @extschema@.steadytext_queue q WHERE q.pipeline_id = p.id;
        last_error := p.last_error;
        last_error_at := p.last_error_at;
        last_embedded_at := p.last_embedded_at;
        -- The last full minute's rate; while the first minute runs, the rate so far.
        rows_per_second := coalesce(p.rows_per_second,
            p.rate_window_rows / nullif(extract(epoch FROM clock_timestamp() - p.rate_window_start), 0));
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE VIEW @extschema@.steadytext_auto_embed_status AS
    SELECT * FROM @extschema@._steadytext_auto_embed_status();

-- ---------------------------------------------------------------------------
-- The worker's side (the sidecar, as a member of steadytext_admin)
-- ---------------------------------------------------------------------------

-- Leases that ran out: the item goes back to pending (a pending twin of the
-- same row makes it redundant), or fails once its worker died too often.
CREATE FUNCTION @extschema@._steadytext_queue_reclaim()
RETURNS integer LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_failed integer;
BEGIN
    DELETE FROM @extschema@.steadytext_queue q
    WHERE q.status = 'processing' AND q.locked_until < now() AND q.pipeline_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM @extschema@.steadytext_queue t
                  WHERE t.pipeline_id = q.pipeline_id AND t.source_key = q.source_key AND t.status = 'pending');
    WITH expired AS (
        UPDATE @extschema@.steadytext_queue q
        SET retry_count = q.retry_count + 1,
            status = CASE WHEN q.retry_count + 1 > q.max_retries THEN 'failed' ELSE 'pending' END,
            error = CASE WHEN q.retry_count + 1 > q.max_retries
                         THEN format('the worker (%s) stopped while working on it %s times', q.locked_by, q.retry_count + 1)
                         ELSE q.error END,
            completed_at = CASE WHEN q.retry_count + 1 > q.max_retries THEN clock_timestamp() END,
            locked_by = NULL, locked_until = NULL
        WHERE q.status = 'processing' AND q.locked_until < now()
        RETURNING q.request_id, q.status, q.pipeline_id
    )
    SELECT count(pg_catalog.pg_notify('steadytext_queue_done', e.request_id::text)) INTO v_failed
    FROM expired e WHERE e.status = 'failed' AND e.pipeline_id IS NULL;
    RETURN v_failed;
END
$$;

-- Claim the next batch: the highest-priority pending item and more of its
-- kind (the same pipeline, or the same request type), locked with SKIP LOCKED
-- and leased to `worker`. Leases that ran out are reclaimed first; an item
-- whose worker died too often fails. Auto-embed items come with the row's
-- current text as the prompt (NULL when the row is gone or its text blank).
CREATE FUNCTION @extschema@._steadytext_queue_claim(worker text, max_items integer, lease_seconds integer)
RETURNS TABLE(id bigint, request_id uuid, request_type text, prompt text, params jsonb, pipeline_id integer,
              seed integer, model text, retry_count integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_head record;
    v_limit integer;
    v_ids bigint[];
    p @extschema@.steadytext_auto_embed_pipelines;
BEGIN
    -- Expired leases, reclaimed by one worker at a time (two would only wait on each other).
    IF pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('steadytext_queue_reclaim')) THEN
        PERFORM @extschema@._steadytext_queue_reclaim();
    END IF;

    SELECT q.request_type, q.pipeline_id INTO v_head
    FROM @extschema@.steadytext_queue q
    WHERE q.status = 'pending' AND q.next_attempt_at <= now()
    ORDER BY q.priority DESC, q.id
    LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_head.pipeline_id IS NOT NULL THEN
        SELECT * INTO p FROM @extschema@.steadytext_auto_embed_pipelines x WHERE x.id = v_head.pipeline_id;
    END IF;
    v_limit := CASE WHEN v_head.request_type IN ('embed', 'auto_embed') THEN least(max_items, coalesce(p.batch_size, max_items))
                    ELSE least(max_items, 4) END;

    WITH picked AS (
        SELECT q.id FROM @extschema@.steadytext_queue q
        WHERE q.status = 'pending' AND q.next_attempt_at <= now()
          AND q.request_type = v_head.request_type AND q.pipeline_id IS NOT DISTINCT FROM v_head.pipeline_id
        ORDER BY q.priority DESC, q.id
        LIMIT v_limit FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE @extschema@.steadytext_queue q
        SET status = 'processing', locked_by = worker, locked_until = now() + make_interval(secs => lease_seconds),
            started_at = clock_timestamp()
        FROM picked WHERE q.id = picked.id
        RETURNING q.id
    )
    SELECT array_agg(claimed.id ORDER BY claimed.id) INTO v_ids FROM claimed;

    IF v_head.pipeline_id IS NULL THEN
        RETURN QUERY SELECT q.id, q.request_id, q.request_type, q.prompt, q.params, NULL::integer, NULL::integer, NULL::text, q.retry_count
                     FROM @extschema@.steadytext_queue q WHERE q.id = ANY (v_ids) ORDER BY q.priority DESC, q.id;
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT q.id, q.request_id, q.request_type, %s, q.params, q.pipeline_id, $2, $3, q.retry_count
             FROM @extschema@.steadytext_queue q LEFT JOIN %s r ON %s
             WHERE q.id = ANY ($1) ORDER BY q.priority DESC, q.id',
            @extschema@._steadytext_pipeline_text_sql(p, 'r'), p.source,
            @extschema@._steadytext_pipeline_key_match(p, 'r', 'q.source_key'))
        USING v_ids, p.seed, p.model;
    EXCEPTION WHEN OTHERS THEN
        -- The table changed under the pipeline (a column dropped, say): fail its items with the reason, once.
        UPDATE @extschema@.steadytext_queue q SET status = 'failed', error = SQLERRM, completed_at = clock_timestamp(),
            locked_by = NULL, locked_until = NULL
        WHERE q.id = ANY (v_ids);
        UPDATE @extschema@.steadytext_auto_embed_pipelines x SET last_error = SQLERRM, last_error_at = now() WHERE x.id = p.id;
        RAISE WARNING 'steadytext auto-embedding of %.% failed: %', p.source, p.vector_column, SQLERRM;
    END;
END
$$;

-- Store results. Async requests become 'completed' and their waiters are
-- told; auto-embed items write the vector into their row (only when the row
-- still has that text and no vector: each row is written once) and leave
-- the queue. Items whose lease this worker lost are left alone. Vectors come
-- as little-endian float32 bytes (see _steadytext_real4_from_f32le).
CREATE FUNCTION @extschema@._steadytext_queue_finish(worker text, p_ids bigint[], p_results text[], p_embeddings bytea[], elapsed_ms integer)
RETURNS integer LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p @extschema@.steadytext_auto_embed_pipelines;
    v_done integer := 0;
    v_written integer;
    v_pipeline integer;
BEGIN
    WITH done AS (
        UPDATE @extschema@.steadytext_queue q
        SET status = 'completed', result = d.result, embedding = @extschema@._steadytext_real4_from_f32le(d.embedding)::@extschema@.vector,
            results = CASE WHEN q.request_type = 'rerank'
                           THEN ARRAY(SELECT coalesce(e ->> 0, e #>> '{}') FROM jsonb_array_elements(d.result::jsonb) AS e) END,
            error = NULL, completed_at = clock_timestamp(), processing_time_ms = elapsed_ms,
            locked_until = NULL  -- locked_by stays: it tells which worker answered
        FROM unnest(p_ids, p_results, p_embeddings) AS d(id, result, embedding)
        WHERE q.id = d.id AND q.status = 'processing' AND q.locked_by = worker AND q.pipeline_id IS NULL
        RETURNING q.request_id
    )
    SELECT count(pg_catalog.pg_notify('steadytext_queue_done', done.request_id::text)) INTO v_done FROM done;

    FOR v_pipeline IN SELECT DISTINCT q.pipeline_id FROM @extschema@.steadytext_queue q
                      WHERE q.id = ANY (p_ids) AND q.pipeline_id IS NOT NULL LOOP
        SELECT * INTO p FROM @extschema@.steadytext_auto_embed_pipelines x WHERE x.id = v_pipeline FOR UPDATE;
        EXECUTE format(
            'WITH gone AS (
                 DELETE FROM @extschema@.steadytext_queue q USING unnest($1, $2, $3) AS d(id, txt, vec)
                 WHERE q.id = d.id AND q.pipeline_id = $4 AND q.status = ''processing'' AND q.locked_by = $5
                 RETURNING q.source_key, d.txt, @extschema@._steadytext_real4_from_f32le(d.vec) AS vec
             ), written AS (
                 UPDATE %s r SET %I = gone.vec::@extschema@.vector FROM gone
                 WHERE %s AND r.%I IS NULL AND gone.vec IS NOT NULL AND %s = gone.txt
                 RETURNING 1
             ) SELECT count(*) FROM written',
            p.source, p.vector_column, @extschema@._steadytext_pipeline_key_match(p, 'r', 'gone.source_key'),
            p.vector_column, @extschema@._steadytext_pipeline_text_sql(p, 'r'))
        INTO v_written USING p_ids, p_results, p_embeddings, v_pipeline, worker;
        v_done := v_done + v_written;
        UPDATE @extschema@.steadytext_auto_embed_pipelines x
        SET rows_embedded = x.rows_embedded + v_written,
            last_embedded_at = CASE WHEN v_written > 0 THEN clock_timestamp() ELSE x.last_embedded_at END,
            rows_per_second = CASE WHEN x.rate_window_start < clock_timestamp() - interval '1 minute'
                                   THEN x.rate_window_rows / extract(epoch FROM clock_timestamp() - x.rate_window_start)
                                   ELSE x.rows_per_second END,
            rate_window_rows = CASE WHEN x.rate_window_start IS NULL OR x.rate_window_start < clock_timestamp() - interval '1 minute'
                                    THEN v_written ELSE x.rate_window_rows + v_written END,
            rate_window_start = CASE WHEN x.rate_window_start IS NULL OR x.rate_window_start < clock_timestamp() - interval '1 minute'
                                     THEN clock_timestamp() ELSE x.rate_window_start END
        WHERE x.id = v_pipeline;
    END LOOP;
    RETURN v_done;
END
$$;

-- A failed attempt: back to pending after a backoff (1 s, 2 s, 4 s, ... at
-- most 5 minutes), or 'failed' with its error once max_retries is used up
-- or at once when retrying cannot help (`permanent`: the input is invalid,
-- and the same input always gives the same error). Returns which items
-- failed for good, so the worker logs each once.
CREATE FUNCTION @extschema@._steadytext_queue_fail(worker text, ids bigint[], errors text[], permanent boolean[])
RETURNS TABLE(id bigint, final boolean) LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH failed AS (
        UPDATE @extschema@.steadytext_queue q
        SET retry_count = q.retry_count + 1,
            status = CASE WHEN d.permanent OR q.retry_count + 1 > q.max_retries THEN 'failed' ELSE 'pending' END,
            error = left(d.error, 4000),
            next_attempt_at = now() + make_interval(secs => least(300, 2 ^ q.retry_count)),
            completed_at = CASE WHEN d.permanent OR q.retry_count + 1 > q.max_retries THEN clock_timestamp() END,
            locked_by = NULL, locked_until = NULL
        FROM unnest(ids, errors, permanent) AS d(id, error, permanent)
        WHERE q.id = d.id AND q.status = 'processing' AND q.locked_by = worker
        RETURNING q.id, q.status = 'failed' AS final, q.request_id, q.pipeline_id, q.error
    ), notified AS (
        SELECT f.*, CASE WHEN f.final AND f.pipeline_id IS NULL
                         THEN pg_catalog.pg_notify('steadytext_queue_done', f.request_id::text) END AS n
        FROM failed f
    ), pipelines AS (
        UPDATE @extschema@.steadytext_auto_embed_pipelines x SET last_error = n.error, last_error_at = now()
        FROM (SELECT DISTINCT ON (nf.pipeline_id) nf.pipeline_id, nf.error FROM notified nf
              WHERE nf.final AND nf.pipeline_id IS NOT NULL) n
        WHERE x.id = n.pipeline_id
        RETURNING 1
    )
    SELECT nf.id, nf.final FROM notified nf;
END
$$;

-- Keep leases of work still running.
CREATE FUNCTION @extschema@._steadytext_queue_renew(worker text, ids bigint[], lease_seconds integer)
RETURNS integer LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    WITH renewed AS (
        UPDATE @extschema@.steadytext_queue q SET locked_until = now() + make_interval(secs => lease_seconds)
        WHERE q.id = ANY (ids) AND q.status = 'processing' AND q.locked_by = worker
        RETURNING 1
    ) SELECT count(*)::integer FROM renewed
$$;

-- Give back the leases of work a stopping worker did not finish: pending
-- again at once, without counting an attempt.
CREATE FUNCTION @extschema@._steadytext_queue_release(worker text, ids bigint[])
RETURNS integer LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    WITH released AS (
        UPDATE @extschema@.steadytext_queue q SET status = 'pending', locked_by = NULL, locked_until = NULL
        WHERE q.id = ANY (ids) AND q.status = 'processing' AND q.locked_by = worker
          AND NOT (q.pipeline_id IS NOT NULL AND EXISTS (
              SELECT 1 FROM @extschema@.steadytext_queue t
              WHERE t.pipeline_id = q.pipeline_id AND t.source_key = q.source_key AND t.status = 'pending'))
        RETURNING 1
    ) SELECT count(*)::integer FROM released
$$;

-- When the queue next needs a look without a notification: the earliest
-- retry or lease expiry (NULL when there is none).
CREATE FUNCTION @extschema@._steadytext_queue_next_wake()
RETURNS timestamptz LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT least((SELECT min(q.next_attempt_at) FROM @extschema@.steadytext_queue q WHERE q.status = 'pending'),
                 (SELECT min(q.locked_until) FROM @extschema@.steadytext_queue q WHERE q.status = 'processing'))
$$;

-- Whether a request has finished (for the daemon's queue_wait).
CREATE FUNCTION @extschema@._steadytext_queue_finished(request_id uuid)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT q.status IN ('completed', 'failed', 'cancelled') FROM @extschema@.steadytext_queue q
                     WHERE q.request_id = _steadytext_queue_finished.request_id), true)
$$;

-- Internal helpers run only inside the SECURITY DEFINER functions above;
-- the worker's functions are for steadytext_admin (the sidecar's role).
DO $queue_privileges$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND p.proname ~ '^_steadytext_(queue_|enqueue|check_priority|check_batch|generate_async|embed_async|rerank_async|async_answer|pipeline_|auto_embed_forget|forget_dropped|check_table_owner)'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
        IF f.proname ~ '^_steadytext_queue_(claim|finish|fail|renew|release|next_wake|finished|reclaim)$' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        END IF;
    END LOOP;
END
$queue_privileges$;

-- ---------------------------------------------------------------------------
-- st_* aliases: one for every public steadytext_* function, same
-- arguments, defaults and volatility. Where the original's alias has its
-- own signature, the override list below gives it (and the generic loop
-- skips that name); an override whose target does not exist is skipped.
-- ---------------------------------------------------------------------------

DO $aliases$
DECLARE
    f record;
    call_args text;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.proretset, p.provolatile, p.proparallel,
               pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity_args,
               pg_catalog.pg_get_function_result(p.oid) AS result,
               p.proargnames, p.proargmodes, p.pronargs
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname LIKE 'steadytext\_%' AND p.prokind = 'f'
          AND p.proname NOT IN ('steadytext_generate_json', 'steadytext_generate_regex', 'steadytext_generate_choice',
                                'steadytext_rerank_top_k', 'steadytext_generate_async', 'steadytext_deduplicate_facts',
                                'steadytext_config_get', 'steadytext_config_set')
    LOOP
        SELECT coalesce(string_agg(pg_catalog.quote_ident(n), ', ' ORDER BY i), '') INTO call_args
        FROM unnest(f.proargnames[1:f.pronargs]) WITH ORDINALITY AS a(n, i);
        EXECUTE format('CREATE FUNCTION @extschema@.%I(%s) RETURNS %s LANGUAGE sql %s %s AS %L',
            'st_' || substr(f.proname, 12), f.args, f.result,
            CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
            CASE f.proparallel WHEN 's' THEN 'PARALLEL SAFE' WHEN 'r' THEN 'PARALLEL RESTRICTED' ELSE 'PARALLEL UNSAFE' END,
            CASE WHEN f.proretset THEN format('SELECT * FROM @extschema@.%I(%s)', f.proname, call_args)
                 ELSE format('SELECT @extschema@.%I(%s)', f.proname, call_args) END);
        EXECUTE format('COMMENT ON FUNCTION @extschema@.%I(%s) IS %L',
            'st_' || substr(f.proname, 12), f.identity_args, 'Alias of ' || f.proname || '.');
    END LOOP;
END
$aliases$;

-- The original's own alias signatures: (alias, target, alias arguments, the call's arguments).
DO $alias_overrides$
DECLARE
    o record;
    f record;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('st_generate_json', 'steadytext_generate_json(text,jsonb,integer,boolean,integer,boolean,text)',
         'prompt text, schema jsonb, max_tokens integer DEFAULT NULL, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false',
         'prompt, schema, max_tokens, use_cache, seed, unsafe_mode'),
        ('st_generate_regex', 'steadytext_generate_regex(text,text,integer,boolean,integer,boolean,text)',
         'prompt text, pattern text, max_tokens integer DEFAULT NULL, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false',
         'prompt, pattern, max_tokens, use_cache, seed, unsafe_mode'),
        ('st_generate_choice', 'steadytext_generate_choice(text,text[],integer,boolean,integer,boolean,text)',
         'prompt text, choices text[], max_tokens integer DEFAULT NULL, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false',
         'prompt, choices, max_tokens, use_cache, seed, unsafe_mode'),
        ('st_rerank_top_k', 'steadytext_rerank_top_k(text,text[],integer,text,boolean,integer)',
         'query text, documents text[], k integer DEFAULT 5, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query'', return_scores boolean DEFAULT true, seed integer DEFAULT 42',
         'query, documents, k, task, return_scores, seed'),
        ('st_generate_async', 'steadytext_generate_async(text,integer,boolean,integer,text,text,text,text,text,boolean,integer)',
         'prompt text, max_tokens integer DEFAULT NULL',
         'prompt, max_tokens'),
        ('st_deduplicate_facts', 'steadytext_deduplicate_facts(jsonb,double precision)',
         'facts jsonb, similarity_threshold double precision DEFAULT 0.8',
         'facts, similarity_threshold'),
        ('st_config_get', 'steadytext_config_get(text)', 'key text', 'key'),
        ('st_config_set', 'steadytext_config_set(text,text)', 'key text, value text', 'key, value')
    ) AS t(alias, target, args, call_args)
    LOOP
        SELECT p.oid, p.proname, p.proretset, p.provolatile, p.proparallel, p.proisstrict,
               pg_catalog.pg_get_function_result(p.oid) AS result
        INTO f
        FROM pg_catalog.pg_proc p
        WHERE p.oid = pg_catalog.to_regprocedure('@extschema@.' || o.target);
        CONTINUE WHEN NOT FOUND;
        EXECUTE format('CREATE FUNCTION @extschema@.%I(%s) RETURNS %s LANGUAGE sql %s %s %s AS %L',
            o.alias, o.args, f.result,
            CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
            CASE f.proparallel WHEN 's' THEN 'PARALLEL SAFE' WHEN 'r' THEN 'PARALLEL RESTRICTED' ELSE 'PARALLEL UNSAFE' END,
            CASE WHEN f.proisstrict THEN 'STRICT' ELSE '' END,
            CASE WHEN f.proretset THEN format('SELECT * FROM @extschema@.%I(%s)', f.proname, o.call_args)
                 ELSE format('SELECT @extschema@.%I(%s)', f.proname, o.call_args) END);
        EXECUTE format('COMMENT ON FUNCTION %s IS %L',
            (SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname = o.alias),
            'Alias of ' || f.proname || ', with the original''s st_ signature.');
    END LOOP;
END
$alias_overrides$;

-- ---------------------------------------------------------------------------
-- Privileges: nothing on users' tables; admin functions only for steadytext_admin.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
GRANT SELECT ON @extschema@.steadytext_config, @extschema@.steadytext_models TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_cache, @extschema@.steadytext_models,
    @extschema@.steadytext_config, @extschema@.steadytext_audit_log, @extschema@.steadytext_daemon_health,
    @extschema@.steadytext_rate_limits, @extschema@.steadytext_prompts, @extschema@.steadytext_prompt_versions
    TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_cache_with_frecency TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_auto_embed_status TO PUBLIC;
GRANT SELECT ON @extschema@.steadytext_queue, @extschema@.steadytext_auto_embed_pipelines TO steadytext_admin;
GRANT USAGE ON SEQUENCE @extschema@.steadytext_cache_id_seq, @extschema@.steadytext_audit_log_id_seq TO steadytext_admin;

DO $admin$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND (p.proname ~ '^(steadytext|st)_(config_set|daemon_start|daemon_stop|cache_clear|cache_evict_by_age|cache_evict_by_frecency|cache_preview_eviction|cache_analyze_usage|cache_scheduled_eviction|prompt_create|prompt_update|prompt_delete)$'
               OR p.proname IN ('_steadytext_spawn_daemon', '_steadytext_evict', '_steadytext_take_hits', '_steadytext_real4_from_f32le'))
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
    END LOOP;
END
$admin$;
