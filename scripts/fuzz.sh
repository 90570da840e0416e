#!/usr/bin/env bash
# Fuzzing: the backend's C reply parser, built outside PostgreSQL with ASan
# and UBSan (libFuzzer when clang provides it, else a deterministic
# randomized driver), then the daemon fed random, mutated and truncated
# messages and raw bytes. Sizes: STEADYTEXT_FUZZ_C_ITERATIONS (default
# 2,000,000) and STEADYTEXT_FUZZ_ITERATIONS (default 20,000 messages);
# scripts/test.sh runs a small size of both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
C_ITERATIONS="${STEADYTEXT_FUZZ_C_ITERATIONS:-2000000}"
export STEADYTEXT_FUZZ_ITERATIONS="${STEADYTEXT_FUZZ_ITERATIONS:-20000}"

echo "== fuzz: the C reply parser ($C_ITERATIONS inputs)"
FUZZER="$(bash extension/fuzz/build.sh)"
if [[ "$FUZZER" == *libfuzzer ]]; then
  "$FUZZER" -runs="$C_ITERATIONS" -seed=20261130 -max_len=65536
else
  "$FUZZER" "$C_ITERATIONS" 20261130
fi

echo "== fuzz: the daemon ($STEADYTEXT_FUZZ_ITERATIONS messages)"
node --import tsx --test --test-reporter=spec sidecar/test/daemon-fuzz.test.ts
