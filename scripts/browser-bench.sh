#!/usr/bin/env bash
# Dashboard benchmarks (docs/benchmarks.md, "Dashboard"): 10,000 runs in a bucket read with
# `--no-local-store` (first page of GET /api/v1/runs, cold and warm) and a 1,000-node run page
# drawn in headless Chromium; then the dashboard's peak memory under six concurrent tails of a
# 300 MB log and a 200 MB state dump, and the time to the first byte of that log's tail
# (`dashboard_bench_large_logs_and_dumps`). One at a time, so neither skews the other. Release
# build. Starts the S3 test server when it is not running, and then stops it again.
#
#   scripts/browser-bench.sh
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

scripts/browser-setup.sh
if ! scripts/s3-server.sh status >/dev/null 2>&1; then
  scripts/s3-server.sh start
  trap 'scripts/s3-server.sh stop' EXIT
fi
eval "$(scripts/s3-server.sh env)"
set +e
cargo test --release -q -p sparkwing-cli --test e2e dashboard_bench -- --ignored --nocapture --test-threads 1 2>&1 \
  | grep -E '^bench:|panicked|FAIL|test result'
status=${PIPESTATUS[0]}
set -e
exit "$status"
