#!/usr/bin/env bash
# Runs everything CI runs: brings the local services up (deploy/setup.sh), then the type check,
# lint, format check, and the whole test suite against real PostgreSQL, MinIO and dockerd.
# Ends with a line "vitest: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
echo '[crossdock] typecheck' && npx tsc --noEmit -p tsconfig.json
echo '[crossdock] lint' && npx eslint --max-warnings 0 .
echo '[crossdock] format' && npx prettier --check . >/dev/null
mkdir -p test-output
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-output/vitest.json "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-output/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (r.numTotalTests === 0) process.exit(1);
' || status=1
exit "$status"
