#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of what reads untrusted bytes: the configuration
# parser, the state.ndjson reader, the log-record reader and the secret masker.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 20); all by default
#
# `make test` runs every target briefly; `make fuzz` runs them for longer. Installs cargo-fuzz
# (pinned) into target/tools when it is missing. The targets need rustc's -Z sanitizer flags,
# which the stable toolchain accepts with RUSTC_BOOTSTRAP=1. New inputs go to target/fuzz/corpus,
# seeded from fuzz/seeds; a crash is written to target/fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-20}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(config state_dump log_record masker)
fi
CARGO_FUZZ_VERSION=0.13.2
TOOLS=$REPO/target/tools
export PATH=$TOOLS/bin:$PATH

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS" >&2
    cargo install -q --locked --root "$TOOLS" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$REPO/target/fuzz/build
cd "$REPO/fuzz"
echo "fuzz: building ${TARGETS[*]}" >&2
for t in "${TARGETS[@]}"; do
    cargo fuzz build -O "$t"
done
for t in "${TARGETS[@]}"; do
    corpus=$REPO/target/fuzz/corpus/$t
    artifacts=$REPO/target/fuzz/artifacts/$t
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    [ -d "$REPO/fuzz/seeds/$t" ] && seeds=("$REPO/fuzz/seeds/$t")
    echo "fuzz: $t for ${SECONDS_EACH}s" >&2
    cargo fuzz run -O "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1 |
        grep -E -A2 "^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+== ERROR|SUMMARY|thread .* panicked)" || true
    if [ -n "$(ls -A "$artifacts")" ]; then
        echo "fuzz: $t found a failing input: $(ls "$artifacts")" >&2
        exit 1
    fi
done
echo "fuzz: no target failed" >&2
