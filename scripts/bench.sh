#!/usr/bin/env bash
# Every benchmark, in one go (`make bench`). Starts the local S3 server when it is not running.
# Set BENCH_COLD_BUILD=1 to include the two cold release builds (slow: ~2 × 5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/s3-server.sh status >/dev/null 2>&1; then
  scripts/s3-server.sh start
  trap 'scripts/s3-server.sh stop' EXIT
fi
eval "$(scripts/s3-server.sh env)"

echo "## sparkwing run (local mode, remote cache)"
python3 scripts/bench.py

echo
echo "## Runtime in ci-embedded mode"
cargo build -q --release -p sparkwing --examples
cargo test -q --release -p sparkwing --test bench_ci -- --ignored --nocapture --test-threads 1

echo
echo "## Storage"
cargo run -q --release -p sparkwing-storage-testing --example storage-bench

echo
echo "## Dashboard"
scripts/browser-bench.sh

echo
echo "## Line latency: runs logs --follow and the dashboard's live view of a local run"
cargo test -q -p sparkwing-cli --test e2e bench_follow_and_live_latency -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^line latency|panicked|FAIL'

echo
echo "## Nothing to the first job (install from a loopback mirror, binary from the bucket)"
cargo test -q --release -p sparkwing-cli --test e2e bench_nothing_to_first_job -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^nothing to first job|panicked|FAIL'

echo
echo "## Sharded runs (4 shards x 250 jobs vs 1 x 1,000; cross-shard wait)"
cargo test -q -p sparkwing-cli --test e2e bench_shards -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^bench:|panicked|FAIL'

echo
echo "## New key on a fresh machine: dependency set in the bucket vs cold build"
cargo test -q --release -p sparkwing-cli --test e2e bench_new_key_with_dependency_set -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^new key, fresh machine|panicked|FAIL'

if [[ "${BENCH_COLD_BUILD:-}" == 1 ]]; then
  echo
  echo "## Cold build of the sample pipelines: where the time goes"
  python3 scripts/build-timings.py
fi
