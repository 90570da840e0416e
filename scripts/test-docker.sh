#!/usr/bin/env bash
# npm run test:docker: builds Dockerfile.postgres and, through testcontainers,
# starts each image and runs the pgTAP suite and the demo against it
# (test/docker/image.test.ts).
#
# Images built and tested (STEADYTEXT_DOCKER_BASE):
#   local     (default) on local Debian bases made with debootstrap
#             (scripts/docker-base-images.sh): PostgreSQL 15 on Debian 12 and
#             PostgreSQL 17 on Debian 13, Node from this machine
#   official  on the registry's postgres:17-bookworm and node:20-bookworm-slim
#
# The Docker engine is DOCKER_HOST's, or one of the project's own that
# scripts/docker-engine.sh installs and starts (and this script stops again).
# Where no engine can run, or testcontainers is not installed, it says so and
# exits 0, unless STEADYTEXT_REQUIRE_DOCKER=1 asks it to insist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOCKER_BUILDKIT=0 TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE="${TESTCONTAINERS_HOST_OVERRIDE:-localhost}"
DOCKER=/usr/bin/docker
BASE="${STEADYTEXT_DOCKER_BASE:-local}"

cannot_run() {
  if [ "${STEADYTEXT_REQUIRE_DOCKER:-0}" = "1" ]; then
    echo "test:docker: FAILED: $* (STEADYTEXT_REQUIRE_DOCKER=1)" >&2
    exit 1
  fi
  echo "test:docker: SKIPPED, not run: $* (set STEADYTEXT_REQUIRE_DOCKER=1 to make this an error)"
  exit 0
}

(cd test/docker && node --input-type=module -e "await import('testcontainers')" 2>/dev/null) ||
  cannot_run "the npm package testcontainers is not installed"

started_engine=""
if [ -z "${DOCKER_HOST:-}" ] && ! bash scripts/docker-engine.sh status; then started_engine=1; fi
DOCKER_HOST="$(bash scripts/docker-engine.sh start)" || cannot_run "no Docker engine can run on this machine"
export DOCKER_HOST
stop_engine() { [ -z "$started_engine" ] || bash scripts/docker-engine.sh stop; }
trap stop_engine EXIT

build() {
  local tag="$1"; shift
  local t0=$SECONDS
  echo "== docker build $tag $*"
  "$DOCKER" build -q -f Dockerfile.postgres -t "$tag" "$@" . >/dev/null
  echo "   built in $((SECONDS - t0)) s, $("$DOCKER" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
}

if [ "$BASE" = "official" ]; then
  build pg-steadytext:test-official
  images="pg-steadytext:test-official"
else
  t0=$SECONDS
  bash scripts/docker-base-images.sh
  echo "== base images ready in $((SECONDS - t0)) s"
  node_image=(--build-arg NODE_IMAGE=local/node:20-bookworm)
  build pg-steadytext:test-pg15-bookworm --build-arg BASE_IMAGE=local/debian:bookworm --build-arg PG_MAJOR=15 "${node_image[@]}"
  build pg-steadytext:test-pg17-trixie --build-arg BASE_IMAGE=local/debian:trixie --build-arg PG_MAJOR=17 "${node_image[@]}"
  images="pg-steadytext:test-pg15-bookworm pg-steadytext:test-pg17-trixie"
fi

# pgTAP is plain SQL: its extension files from this machine's PostgreSQL go into each container.
PG_CONFIG="$(cat .steadytext/pg_config 2>/dev/null || command -v pg_config)"
ext_dir="$("$PG_CONFIG" --sharedir)/extension"
pgtap_version="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ext_dir/pgtap.control")"
pgtap_files="$ext_dir/pgtap.control $ext_dir/pgtap--$pgtap_version.sql"

echo "== type check (test/docker)"
npx tsc -p tsconfig.docker.json
echo "== the images, through testcontainers"
STEADYTEXT_DOCKER_IMAGES="$images" STEADYTEXT_PGTAP_FILES="$pgtap_files" \
  node --import tsx --test --test-concurrency=1 --test-reporter=spec test/docker/*.test.ts
