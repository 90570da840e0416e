#!/usr/bin/env bash
# Local stand-ins for the registry images Dockerfile.postgres builds FROM, for
# machines that reach Debian's archive but no container registry:
#   local/debian:bookworm, local/debian:trixie   debootstrap --variant=minbase + docker import
#   local/node:20-bookworm                        the bookworm root plus this machine's Node 20
#                                                 (laid out as in node:20-bookworm-slim)
# Each image is made once and kept (a second run only checks that it exists).
# This machine's CA bundle goes into each root, so a TLS-intercepting proxy
# that the host trusts is trusted inside the build too (npm ci over https).
#   STEADYTEXT_DOCKER_ROOT  where the debootstrapped roots are kept (default .steadytext/docker)
#   DOCKER_HOST             the engine (scripts/docker-engine.sh start prints it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_ROOT="${STEADYTEXT_DOCKER_ROOT:-$ROOT/.steadytext/docker}"
ROOTFS_DIR="$DATA_ROOT/rootfs"
MIRROR="${STEADYTEXT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER=/usr/bin/docker

say() { echo "docker-base-images: $*" >&2; }
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

debian_root() {
  local suite="$1" dir="$ROOTFS_DIR/$1"
  if [ ! -f "$dir/.complete" ]; then
    if ! command -v debootstrap >/dev/null; then
      say "installing debootstrap from Debian's archive"
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    say "debootstrap $suite (about half a minute)"
    debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$ROOTFS_DIR/$suite.log" 2>&1 ||
      { tail -n 20 "$ROOTFS_DIR/$suite.log" >&2; exit 1; }
    # Plain http to the archive, as debootstrap used.
    echo "deb $MIRROR $suite main" >"$dir/etc/apt/sources.list"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    touch "$dir/.complete"
  fi
  mkdir -p "$dir/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
}

import_root() {
  local image="$1" dir="$2"; shift 2
  say "docker import $image"
  tar -C "$dir" --exclude=./.complete -c . | "$DOCKER" import "$@" - "$image" >/dev/null
}

for suite in bookworm trixie; do
  if ! have_image "local/debian:$suite"; then
    debian_root "$suite"
    import_root "local/debian:$suite" "$ROOTFS_DIR/$suite" --change 'CMD ["bash"]' \
      --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
  fi
done

if ! have_image local/node:20-bookworm; then
  node_version="$(node --version)"
  case "$node_version" in v20.*) ;; *) say "this machine's Node is $node_version, not 20"; exit 1 ;; esac
  debian_root bookworm
  staging="$(mktemp -d)"
  trap 'rm -rf "$staging"' EXIT
  cp -a "$ROOTFS_DIR/bookworm/." "$staging/"
  mkdir -p "$staging/usr/local/bin" "$staging/usr/local/lib/node_modules" "$staging/usr/local/include"
  cp "$(command -v node)" "$staging/usr/local/bin/node"
  npm_dir="$(npm root -g)/npm"
  cp -a "$npm_dir" "$staging/usr/local/lib/node_modules/npm"
  [ -d /usr/include/node ] && cp -a /usr/include/node "$staging/usr/local/include/node"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$staging/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$staging/usr/local/bin/npx"
  # npm_config_nodedir: native addons compile against these headers instead of downloading them.
  import_root local/node:20-bookworm "$staging" --change 'CMD ["node"]' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV npm_config_nodedir=/usr/local' --change "ENV NODE_VERSION=${node_version#v}"
fi
say "local/debian:bookworm local/debian:trixie local/node:20-bookworm ready"
