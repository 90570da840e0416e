#!/usr/bin/env bash
# Runs once, in Dockerfile.postgres, as root: everything the image needs
# except pg_steadytext itself (built in a stage of its own, so that a change
# to the extension does not redo this). On the official postgres image
# (PostgreSQL from PGDG already there) it adds pgvector, libzmq and tini; on
# a plain Debian image it first installs Debian's PostgreSQL the way the
# official image lays it out (no "main" cluster, PGDATA owned by postgres).
# Build tools needed for pgvector's source are installed, used and purged in
# this one step, so none stays in the image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PGVECTOR_SOURCE_SUITE="${PGVECTOR_SOURCE_SUITE:-trixie}"

apt-get update -qq
saved_manual="$(apt-mark showmanual)"

if [ -x /usr/local/bin/docker-entrypoint.sh ] && [ -d /usr/lib/postgresql ]; then
  # The official image: its PG_MAJOR (an ENV) names the installed server.
  pg_major="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
  runtime=""
else
  pg_major="${PG_MAJOR:?set the PG_MAJOR build argument}"
  apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
  # As the official image does: the entrypoint runs initdb into PGDATA, so Debian's default cluster would be dead weight.
  sed -ri 's/#?(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf
  # The cluster uses C.UTF-8, which glibc has built in (no locales package).
  apt-get install -y -qq --no-install-recommends "postgresql-$pg_major" >/dev/null
  runtime="postgresql-$pg_major"
  install -d -o postgres -g postgres -m 3777 /var/run/postgresql
fi
pg_config="/usr/lib/postgresql/$pg_major/bin/pg_config"
echo "$pg_major" >/usr/local/share/pg_steadytext_pg_major

apt-get install -y -qq --no-install-recommends libzmq5 tini >/dev/null
runtime="$runtime libzmq5 tini"
if apt-cache show "postgresql-$pg_major-pgvector" >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends "postgresql-$pg_major-pgvector" >/dev/null
  runtime="$runtime postgresql-$pg_major-pgvector"
else
  # No binary pgvector for this major here (Debian 12): Debian's source package, fetched through a private sources list.
  apt-get install -y -qq --no-install-recommends make gcc libc6-dev "postgresql-server-dev-$pg_major" >/dev/null
  mkdir -p /tmp/apt/lists/partial /tmp/pgvector
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $PGVECTOR_SOURCE_SUITE main" >/tmp/apt/sources.list
  apt_private=(-o Dir::Etc::sourcelist=/tmp/apt/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=/tmp/apt/lists)
  apt-get "${apt_private[@]}" update -qq
  (cd /tmp/pgvector && apt-get "${apt_private[@]}" source --download-only pgvector >/dev/null && tar -xzf pgvector_*.orig.tar.gz)
  # OPTFLAGS="": no -march=native, so the image runs on any x86-64 machine.
  make -s -C /tmp/pgvector/pgvector-* PG_CONFIG="$pg_config" OPTFLAGS="" install >/dev/null
  rm -rf /tmp/apt /tmp/pgvector
fi

apt-mark auto '.*' >/dev/null
# shellcheck disable=SC2086
apt-mark manual $saved_manual $runtime >/dev/null
# postgresql-common keeps postgresql-* packages from autoremove: the -dev package goes by name.
build_tools=()
for p in "postgresql-server-dev-$pg_major" gcc make; do dpkg -s "$p" >/dev/null 2>&1 && build_tools+=("$p"); done
apt-get purge -y -qq --auto-remove -o APT::AutoRemove::RecommendsImportant=false "${build_tools[@]}" >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*
"/usr/lib/postgresql/$pg_major/bin/postgres" --version
test -f "/usr/lib/postgresql/$pg_major/lib/vector.so"
