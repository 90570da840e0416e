#!/usr/bin/env bash
# The whole test suite, against real parts: it installs what it needs
# (scripts/setup.sh), type-checks, runs the sidecar and integration tests
# (node's test runner; each integration file starts its own PostgreSQL
# cluster and sidecar) and the pgTAP suite (pg_prove).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STEADYTEXT_SETUP_QUIET=1 bash scripts/setup.sh

echo "== type check"
npx tsc -p tsconfig.test.json

echo "== sidecar tests"
node --import tsx --test --test-concurrency=2 --test-reporter=spec sidecar/test/*.test.ts

echo "== integration tests (PostgreSQL + extension + sidecar)"
node --import tsx --test --test-concurrency=1 --test-reporter=spec test/integration/*.test.ts

echo "== fuzz, small (npm run test:fuzz runs the big one; the daemon's part ran with the sidecar tests)"
FUZZER="$(bash extension/fuzz/build.sh)"
if [[ "$FUZZER" == *libfuzzer ]]; then "$FUZZER" -runs=100000 -seed=1; else "$FUZZER" 100000 1; fi

echo "== pgTAP"
node --import tsx test/pgtap/run.ts

echo "== pgTAP again, with the extension in another schema"
node --import tsx test/pgtap/run.ts --schema=steadytext_ext

echo "== all tests passed"
