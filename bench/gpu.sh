#!/usr/bin/env bash
# GPU offload: determinism checks and throughput against the CPU of the same
# machine, in under five minutes, with nothing installed or downloaded. See
# bench/gpu.ts for what it checks.
#
#   bench/gpu.sh                  # STEADYTEXT_GPU=auto (or what the environment says)
#   bench/gpu.sh --gpu vulkan     # insist on a backend
#   bench/gpu.sh --gpu off        # the CPU, to prove the script end to end without a GPU
#   bench/gpu.sh --models tiny    # the tiny test models (default where no GPU is usable)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/node-llama-cpp ] || [ ! -d node_modules/tsx ]; then
  echo "bench/gpu.sh: node_modules is missing; run npm ci first (this script installs nothing)" >&2
  exit 2
fi
# The daemon runs from sidecar/dist: build it (locally, with the installed TypeScript) when it is older than the sources.
if [ ! -f sidecar/dist/cli/st.js ] || [ -n "$(find sidecar/src -newer sidecar/dist/cli/st.js -name '*.ts' -print -quit)" ]; then
  npx --no-install tsc -p .
fi
exec node --import tsx bench/gpu.ts "$@"
