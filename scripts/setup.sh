#!/usr/bin/env bash
# Installs everything the stack needs on Debian/Ubuntu, idempotently:
# PostgreSQL server + server-dev, libzmq, pgTAP, pgvector (the distribution's
# package where there is one, else built from Debian's source package), npm
# dependencies, the TypeScript build and the extension. A second run checks
# and changes nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.steadytext"
QUIET="${STEADYTEXT_SETUP_QUIET:-}"
mkdir -p "$STATE"

say() { [ -n "$QUIET" ] || echo "setup: $*"; }
die() { echo "setup: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): system packages are needed"
  SUDO="sudo"
fi

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

APT_UPDATED=""
apt_install() {
  local missing=()
  for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- PostgreSQL: the distribution's default major version -------------------
# g++ and python3: better-sqlite3 compiles itself when no prebuilt binary can be fetched.
apt_install postgresql postgresql-common ca-certificates make gcc g++ python3 libc6-dev
PG_MAJOR="${STEADYTEXT_PG_MAJOR:-$(ls /usr/lib/postgresql | sort -V | tail -n 1)}"
[ -n "$PG_MAJOR" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
apt_install "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" libzmq3-dev "postgresql-$PG_MAJOR-pgtap" pgtap
PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
say "PostgreSQL $PG_MAJOR ($PG_CONFIG)"

# --- pgvector ---------------------------------------------------------------
if [ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]; then
  say "pgvector: installed"
elif apt-cache show "postgresql-$PG_MAJOR-pgvector" >/dev/null 2>&1; then
  apt_install "postgresql-$PG_MAJOR-pgvector"
else
  # No binary package (Debian 12): build Debian's own source package. The
  # source index comes through a private sources list; the machine's apt
  # configuration is never touched.
  say "pgvector: building from Debian's source package"
  APT_DIR="$STATE/apt"
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/src"
  SUITE="${STEADYTEXT_PGVECTOR_SUITE:-trixie}"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main" \
    >"$APT_DIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$APT_DIR/lists")
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
  (cd "$APT_DIR/src" && $SUDO apt-get "${APT_OPTS[@]}" source --download-only pgvector >/dev/null 2>&1)
  ORIG="$(ls "$APT_DIR"/src/pgvector_*.orig.tar.gz | sort -V | tail -n 1)"
  [ -f "$ORIG" ] || die "could not download pgvector's source package"
  BUILD="$(mktemp -d)"
  tar -xzf "$ORIG" -C "$BUILD"
  # OPTFLAGS="": no -march=native, so the build runs on any x86-64 machine.
  make -s -C "$BUILD"/pgvector-* PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$BUILD"/pgvector-* PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >/dev/null
  rm -rf "$BUILD"
  say "pgvector: installed $(basename "$ORIG" .orig.tar.gz)"
fi

# --- npm dependencies ---------------------------------------------------------
LOCK_HASH="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
STAMP="$ROOT/node_modules/.steadytext-lock-sha256"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_HASH" ]; then
  say "npm dependencies: up to date"
else
  say "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$LOCK_HASH" >"$STAMP"
fi

# --- TypeScript build -----------------------------------------------------------
BUILD_STAMP="$ROOT/sidecar/dist/.build-stamp"
if [ -f "$BUILD_STAMP" ] && [ -z "$(find "$ROOT/sidecar/src" "$ROOT/tsconfig.json" -newer "$BUILD_STAMP" -print -quit)" ]; then
  say "sidecar build: up to date"
else
  say "building the sidecar"
  (cd "$ROOT" && npx tsc -p .)
  touch "$BUILD_STAMP"
fi

# --- the extension ----------------------------------------------------------------
make -s -C "$ROOT/extension" PG_CONFIG="$PG_CONFIG" >/dev/null
extension_current() {
  cmp -s "$ROOT/extension/pg_steadytext.so" "$("$PG_CONFIG" --pkglibdir)/pg_steadytext.so" || return 1
  for f in "$ROOT"/sql/pg_steadytext--*.sql "$ROOT/extension/pg_steadytext.control"; do
    cmp -s "$f" "$("$PG_CONFIG" --sharedir)/extension/$(basename "$f")" || return 1
  done
}
if extension_current; then
  say "extension: installed and current"
else
  $SUDO make -s -C "$ROOT/extension" PG_CONFIG="$PG_CONFIG" install >/dev/null
  say "extension: installed into PostgreSQL $PG_MAJOR"
fi

echo "$PG_CONFIG" >"$STATE/pg_config"
