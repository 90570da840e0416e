#!/usr/bin/env bash
# On a plain Debian base (no official docker-entrypoint.sh) this stands in for
# the official image's entrypoint, with the same contract: on first start
# (empty PGDATA) initdb, a POSTGRES_PASSWORD for POSTGRES_USER (default
# postgres), password login from any address (scram-sha-256, or
# POSTGRES_HOST_AUTH_METHOD), listen_addresses='*', POSTGRES_DB created, and
# /docker-entrypoint-initdb.d/*.sql and *.sh run against it; then postgres
# runs in the foreground as the container's main process.
set -euo pipefail

pg_bin="/usr/lib/postgresql/$(cat /usr/local/share/pg_steadytext_pg_major)/bin"
export PATH="$pg_bin:$PATH"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ "$(id -u)" = "0" ]; then
  install -d -o postgres -g postgres -m 700 "$PGDATA"
  install -d -o postgres -g postgres -m 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != "trust" ]; then
    echo "error: the database is uninitialized and no password was given: set POSTGRES_PASSWORD" >&2
    echo "       (or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one, which is unsafe)" >&2
    exit 1
  fi
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" --no-psqlrc -q)
  if [ "$db" != "postgres" ]; then
    "${psql[@]}" -d postgres --set db="$db" <<<'CREATE DATABASE :"db";'
  fi
  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "running $f"; "${psql[@]}" -d "$db" -f "$f" ;;
      *.sh) echo "running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *) echo "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi

[ "${1:-}" = "postgres" ] && shift
exec postgres -D "$PGDATA" "$@"
