-- Runs once, when the entrypoint creates the database (POSTGRES_DB).
CREATE EXTENSION IF NOT EXISTS pg_steadytext CASCADE;
-- Every session loads the library, so steadytext.* settings are known
-- parameters: ALTER SYSTEM / ALTER DATABASE SET steadytext.... work, and
-- apply in parallel workers too (see README, "Summaries and facts").
ALTER SYSTEM SET session_preload_libraries = 'pg_steadytext';
