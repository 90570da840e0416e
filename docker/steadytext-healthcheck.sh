#!/usr/bin/env bash
# Healthy when PostgreSQL accepts connections and the sidecar answers.
set -euo pipefail
pg_isready -q -h /var/run/postgresql -U "${POSTGRES_USER:-postgres}"
node /opt/pg_steadytext/sidecar/bin/st.js daemon status --json | grep -q '"responsive":true'
