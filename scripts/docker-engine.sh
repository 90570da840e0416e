#!/usr/bin/env bash
# A Docker engine of the project's own, for `npm run test:docker`:
#   scripts/docker-engine.sh start   install docker.io (Debian's archive) if
#                                    needed and start dockerd, unless one
#                                    already answers; prints DOCKER_HOST
#   scripts/docker-engine.sh stop    stop the dockerd this script started
#   scripts/docker-engine.sh status  exit 0 when the engine answers
# Everything it writes is private to the project (no /var/lib/docker, no
# /var/run/docker.sock, no /etc/docker), so it runs beside any other engine:
#   STEADYTEXT_DOCKER_ROOT    data root        (default .steadytext/docker)
#   STEADYTEXT_DOCKER_SOCKET  daemon socket    (default $STEADYTEXT_DOCKER_ROOT/docker.sock)
#   STEADYTEXT_DOCKER_BRIDGE  bridge interface (default st-<hash of the data root>)
#   STEADYTEXT_DOCKER_SUBNET  its subnet       (default 172.31.<from that hash>.1/24)
# (Checkouts side by side on one machine get different bridges and subnets.)
# An engine given by DOCKER_HOST is used as it is, and never started or stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_ROOT="${STEADYTEXT_DOCKER_ROOT:-$ROOT/.steadytext/docker}"
SOCKET="${STEADYTEXT_DOCKER_SOCKET:-$DATA_ROOT/docker.sock}"
ROOT_HASH="$(printf '%s' "$DATA_ROOT" | sha256sum | cut -c1-10)"
BRIDGE="${STEADYTEXT_DOCKER_BRIDGE:-st-${ROOT_HASH:0:8}}"
SUBNET="${STEADYTEXT_DOCKER_SUBNET:-172.31.$((16#${ROOT_HASH:0:2})).1/24}"
# containerd's sockets live under the exec root, whose path must stay short (unix sockets: 108 bytes).
EXEC_ROOT="/run/steadytext-docker-$ROOT_HASH"
PID_FILE="$EXEC_ROOT/dockerd.pid"
LOG_FILE="$DATA_ROOT/dockerd.log"
DOCKER=/usr/bin/docker

say() { echo "docker-engine: $*" >&2; }

answers() { [ -x "$DOCKER" ] && "$DOCKER" -H "$1" version >/dev/null 2>&1; }

start() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    answers "$DOCKER_HOST" || { say "DOCKER_HOST=$DOCKER_HOST does not answer"; exit 1; }
    echo "$DOCKER_HOST"; return
  fi
  if answers "unix://$SOCKET"; then echo "unix://$SOCKET"; return; fi
  [ "$(id -u)" -eq 0 ] || { say "starting a Docker engine needs root"; exit 1; }
  if ! [ -x /usr/sbin/dockerd ] || ! [ -x "$DOCKER" ] || ! command -v iptables >/dev/null; then
    say "installing docker.io from Debian's archive"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null 2>&1; } ||
      { say "could not install docker.io"; exit 1; }
  fi
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$SOCKET")"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge && ip addr add "$SUBNET" dev "$BRIDGE" && ip link set "$BRIDGE" up ||
      { say "could not create bridge $BRIDGE (no CAP_NET_ADMIN?)"; exit 1; }
  fi
  # The config file keeps dockerd away from /etc/docker/daemon.json and its key file.
  cat >"$DATA_ROOT/daemon.json" <<EOF
{ "bridge": "$BRIDGE", "pidfile": "$PID_FILE", "storage-driver": "overlay2" }
EOF
  say "starting dockerd (data root $DATA_ROOT, socket $SOCKET; log $LOG_FILE)"
  setsid /usr/sbin/dockerd --config-file "$DATA_ROOT/daemon.json" --data-root "$DATA_ROOT/data" \
    --exec-root "$EXEC_ROOT" -H "unix://$SOCKET" >"$LOG_FILE" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers "unix://$SOCKET"; then echo "unix://$SOCKET"; return; fi
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  say "dockerd did not come up; the end of its log:"
  tail -n 15 "$LOG_FILE" >&2 || true
  exit 1
}

stop() {
  [ -f "$PID_FILE" ] || { say "no dockerd of ours is running"; return; }
  local pid
  pid="$(cat "$PID_FILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  ip link delete "$BRIDGE" 2>/dev/null || true
  rm -rf "$EXEC_ROOT"
  say "stopped dockerd $pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers "${DOCKER_HOST:-unix://$SOCKET}" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
