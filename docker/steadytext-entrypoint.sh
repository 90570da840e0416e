#!/usr/bin/env bash
# The image's entrypoint (under tini, which reaps and forwards signals). For
# the server command ("postgres ..." or flags only) it starts the sidecar
# daemon beside PostgreSQL, kept running by steadytext-sidecar.sh, then hands
# over to the base image's own entrypoint (the official image's
# docker-entrypoint.sh, or steadytext-postgres.sh on a plain Debian base),
# so POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, PGDATA and
# /docker-entrypoint-initdb.d work as users of the official image expect.
# Any other command (bash, psql ...) runs as it is.
set -euo pipefail

if [ "${1:-}" != "" ] && [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "${1:-}" = "postgres" ]; then
  if [ "${STEADYTEXT_SIDECAR:-1}" != "0" ]; then
    # setsid: the supervisor is not postgres's child (the postmaster would
    # count its exit as a crashed backend); tini, the subreaper, adopts it.
    setsid /usr/local/bin/steadytext-sidecar.sh </dev/null &
  fi
  if [ -x /usr/local/bin/docker-entrypoint.sh ]; then exec /usr/local/bin/docker-entrypoint.sh "$@"; fi
  exec /usr/local/bin/steadytext-postgres.sh "$@"
fi
exec "$@"
