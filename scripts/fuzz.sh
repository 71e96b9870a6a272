#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of what reads untrusted bytes: the configuration
# parser, the state.ndjson reader, the log-record reader and the secret masker.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 20); all by default
#
# `make test` runs every target briefly; `make fuzz` runs them for longer. The targets are built
# with cargo and the stable toolchain, with the coverage instrumentation libFuzzer needs (what
# `cargo fuzz build` passes, without a sanitizer: every fuzzed line is safe Rust, so what the
# fuzzers look for is a panic, and an address sanitizer would only slow each input down). New
# inputs go to target/fuzz/corpus, seeded from fuzz/seeds; a crash is written to
# target/fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-20}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(config state_dump log_record masker)
fi

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=$REPO/target/fuzz/build
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-pc-table"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
RUSTFLAGS+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
RUSTFLAGS+=" --cfg fuzzing -Cdebug-assertions"
case "$TRIPLE" in *-linux-*) RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-stack-depth" ;; esac
export RUSTFLAGS
echo "fuzz: building ${TARGETS[*]}" >&2
bins=()
for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
# --target keeps RUSTFLAGS away from build scripts and proc macros.
cargo build --manifest-path "$REPO/fuzz/Cargo.toml" --target "$TRIPLE" --release \
    --config 'profile.release.debug="line-tables-only"' "${bins[@]}"
for t in "${TARGETS[@]}"; do
    corpus=$REPO/target/fuzz/corpus/$t
    artifacts=$REPO/target/fuzz/artifacts/$t
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    [ -d "$REPO/fuzz/seeds/$t" ] && seeds=("$REPO/fuzz/seeds/$t")
    echo "fuzz: $t for ${SECONDS_EACH}s" >&2
    "$CARGO_TARGET_DIR/$TRIPLE/release/$t" "$corpus" "${seeds[@]}" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1 |
        grep -E -A2 "^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+== ERROR|SUMMARY|thread .* panicked)" || true
    if [ -n "$(ls -A "$artifacts")" ]; then
        echo "fuzz: $t found a failing input: $(ls "$artifacts")" >&2
        exit 1
    fi
done
echo "fuzz: no target failed" >&2
