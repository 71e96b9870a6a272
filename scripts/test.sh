#!/usr/bin/env bash
# Every check and test. Installs and starts what the tests need (a local S3 server), stops it
# afterwards, and fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

# A run from a clean checkout writes about 10 GiB under target/ (builds, the S3 server's data,
# test scratch). A disk that fills mid-run fails the tests that write to the S3 server with
# `HTTP 500 InternalError`, far from the cause: say so up front.
mkdir -p target
free_gib=$(df -Pk target | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "${free_gib:-0}" -lt 12 ]; then
  echo "warning: only ${free_gib} GiB free under target/; a full run needs about 10 GiB (make clean frees the previous run's)" >&2
fi
# A fresh CI machine builds everything once: incremental compilation state would only cost time
# and about 2 GiB of disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

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

# Each test phase is also written to target/test-logs/, so that what failed can be printed again
# at the very end: a CI log is often read from its last lines.
LOGS=target/test-logs
status=0
failed=()
# run_logged NAME COMMAND...: run COMMAND, its output to the console and to $LOGS/NAME.log.
run_logged() {
  local name=$1 started=$SECONDS
  shift
  set +e
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  echo "==> $name: exit code $rc after $((SECONDS - started)) s (the whole run so far: ${SECONDS} s)"
  if [ "$rc" != 0 ]; then status=$rc; failed+=("$name"); fi
}
# what_failed: the failing tests of every phase that failed, with the output cargo kept for each
# (its first lines), after everything else. A phase that passed is left out: its tests print the
# errors they expect from the commands they run, which would read as failures here.
what_failed() {
  echo "==> what failed"
  local name
  for name in "${failed[@]}"; do
    grep -E '^test .* \.\.\. FAILED$|^error(\[|:)|^fuzz: .* found a failing input' "$LOGS/$name.log" | sed "s|^|$name: |" || true
  done
  for name in "${failed[@]}"; do
    awk '/^---- .* stdout ----$/ { shown = 0; keep = 1 }
         /^failures:$/ && keep { keep = 0 }
         keep && shown < 40 { print; shown++ }' "$LOGS/$name.log"
  done
}

rm -rf "$LOGS"
mkdir -p "$LOGS"

echo "==> local S3 server"
scripts/s3-server.sh start
# On a failure, what the server saw (a full disk makes it answer every write with HTTP 500).
trap 'rc=$?; if [ "$rc" != 0 ]; then scripts/s3-server.sh errors || true; fi; scripts/s3-server.sh stop; if [ "$rc" != 0 ]; then what_failed; fi' EXIT
eval "$(scripts/s3-server.sh env)"

echo "==> headless Chromium and playwright-core for the browser tests"
scripts/browser-setup.sh

echo "==> cargo test (libraries)"
run_logged libraries cargo test --workspace --exclude sparkwing-cli --no-fail-fast

# The end-to-end tests run real pipelines, signals and timing bounds (a cancel within 5 s, a
# worker cap observed from timestamps): one at a time, so a 2-core machine never starves them.
echo "==> cargo test (sparkwing CLI and end-to-end, one test at a time)"
run_logged e2e cargo test -p sparkwing-cli --no-fail-fast -- --test-threads=1

# Every fuzz target for a few seconds: enough to catch a parser that panics on what a hostile
# repository or bucket can hold; `make fuzz` runs them for longer.
echo "==> fuzz targets (${SPARKWING_FUZZ_SECONDS:-10} s each)"
run_logged fuzz scripts/fuzz.sh "${SPARKWING_FUZZ_SECONDS:-10}"
exit "$status"
