#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, type-checks, builds,
# and runs every test (unit, contract, e2e with real sandboxes, sshd, registry, PostgreSQL, age, nu).
# Tests start and stop the services they use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx biome check .
# Copy/paste ratchet: .jscpd.json holds the highest accepted share of duplicated lines.
npx jscpd
npx tsc -p tsconfig.json
npx vitest run "$@"
