#!/usr/bin/env bash
# The README's first command: everything the demo needs, then the demo (see src/demo/run.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup/ensure-pgvector.sh
[ -x node_modules/node/bin/node ] || npm ci --no-audit --no-fund
exec node scripts/with-node24.mjs dist/cli/index.js demo
