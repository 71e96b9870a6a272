#!/usr/bin/env bash
# Every check and test. Installs and starts what the tests need (a local S3 server), stops it
# afterwards, and fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> no import circles between modules"
python3 scripts/module-cycles.py

echo "==> action.yml and GitHub workflows (actionlint)"
scripts/lint-actions.sh

echo "==> every crate packages; the packaged CLI carries the SDK and builds pipelines"
scripts/package-check.sh

echo "==> local S3 server"
scripts/s3-server.sh start
trap 'scripts/s3-server.sh stop' EXIT
eval "$(scripts/s3-server.sh env)"

echo "==> headless Chromium and playwright-core for the browser tests"
scripts/browser-setup.sh

echo "==> cargo test (libraries)"
status=0
cargo test --workspace --exclude sparkwing-cli --no-fail-fast || status=$?

# The end-to-end tests run real pipelines, signals and timing bounds (a cancel within 5 s, a
# worker cap observed from timestamps): one at a time, so a 2-core machine never starves them.
echo "==> cargo test (sparkwing CLI and end-to-end, one test at a time)"
cargo test -p sparkwing-cli --no-fail-fast -- --test-threads=1 || status=$?

# Every fuzz target for a few seconds: enough to catch a parser that panics on what a hostile
# repository or bucket can hold; `make fuzz` runs them for longer.
echo "==> fuzz targets (${SPARKWING_FUZZ_SECONDS:-10} s each)"
scripts/fuzz.sh "${SPARKWING_FUZZ_SECONDS:-10}" || status=$?
exit "$status"
