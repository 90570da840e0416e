#!/usr/bin/env bash
# Keeps the SteadyText sidecar daemon running beside PostgreSQL in this
# container, as the postgres user, restarting it when it exits. It listens on
# the container's loopback (the extension's default endpoint,
# tcp://127.0.0.1:5557), so nothing outside the container can reach it, and
# writes its results into the database over the local socket.
set -uo pipefail

db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
export STEADYTEXT_PG_URL="${STEADYTEXT_PG_URL:-postgresql://${POSTGRES_USER:-postgres}@/${db}?host=/var/run/postgresql}"
export STEADYTEXT_DAEMON_HOST="${STEADYTEXT_DAEMON_HOST:-127.0.0.1}"
export STEADYTEXT_ALLOW_MODEL_DOWNLOADS="${STEADYTEXT_ALLOW_MODEL_DOWNLOADS:-0}"
run_as_postgres=()
if [ "$(id -u)" = "0" ]; then
  install -d -o postgres -g postgres "$STEADYTEXT_CACHE_DIR"
  run_as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
delay=1
while :; do
  started=$SECONDS
  "${run_as_postgres[@]}" node /opt/pg_steadytext/sidecar/bin/st.js daemon start --foreground
  echo "steadytext-sidecar: the daemon exited with status $?; starting it again in ${delay}s" >&2
  # A daemon that ran a while gets restarted at once; one that keeps failing, less and less often.
  if [ $((SECONDS - started)) -gt 60 ]; then delay=1; elif [ "$delay" -lt 30 ]; then delay=$((delay * 2)); fi
  sleep "$delay"
done
