#!/usr/bin/env bash
# Proves that every crate packages for crates.io and that `cargo install sparkwing-cli` would
# build a CLI able to scaffold and build pipelines:
#   1. cli/sdk/ is regenerated (scripts/vendor-sdk.sh) and every workspace crate is packaged
#      (`cargo package --workspace --no-verify`, offline: from the registry cache);
#   2. the packaged sparkwing-cli crate holds exactly the SDK files of this workspace;
#   3. the packaged crate, unpacked outside the repository, builds (its build.rs finds no
#      workspace and embeds sdk/), and its `sparkwing` scaffolds a pipeline, builds and runs it.
# Step 3 reuses target/ (only sparkwing-cli itself compiles again) and target/e2e-pipelines.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
WORK=$REPO/target/package-check
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

fail() { echo "package-check: $*" >&2; exit 1; }

scripts/vendor-sdk.sh
echo "package-check: cargo package --workspace --no-verify" >&2
cargo package --workspace --no-verify --offline --allow-dirty --quiet

rm -rf "$WORK"
mkdir -p "$WORK"
tar -xzf "target/package/sparkwing-cli-$VERSION.crate" -C "$WORK"
pkg=$WORK/sparkwing-cli-$VERSION
[ -f "$pkg/sdk/sparkwing/src/lib.rs" ] || fail "the packaged CLI holds no sdk/sparkwing/src/lib.rs"
[ -f "$pkg/sdk/Cargo.lock" ] || fail "the packaged CLI holds no sdk/Cargo.lock"
diff -r "$REPO/cli/sdk" "$pkg/sdk" >&2 || fail "the packaged sdk/ differs from the workspace's SDK"
echo "package-check: sparkwing-cli-$VERSION.crate holds the SDK ($(find "$pkg/sdk" -type f | wc -l) files)" >&2

# Build the unpacked crate as `cargo install` would, with the workspace's library crates standing
# in for their crates.io releases. (An empty [workspace] keeps it out of this repository's
# workspace, as it is out of any workspace in cargo's registry cache.)
printf '\n[workspace]\n' >> "$pkg/Cargo.toml"
patches=()
for c in contract config storage records sparkwing bincache; do
  name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$c/Cargo.toml" | head -n1)
  patches+=(--config "patch.crates-io.$name.path=\"$REPO/$c\"")
done
echo "package-check: building the unpacked sparkwing-cli-$VERSION" >&2
# A .crate stores one fixed file time for every file: without a touch, cargo would take the
# unpacked sources for ones it already built and reuse a stale build-script output.
find "$pkg" -type f -exec touch {} +
(cd "$pkg" && CARGO_TARGET_DIR=$REPO/target cargo build --offline --quiet "${patches[@]}")
packaged=$WORK/sparkwing
cp "$REPO/target/debug/sparkwing" "$packaged"
# The packaged build wrote target/debug/sparkwing: put the workspace's binary back for the tests.
cargo build --offline --quiet -p sparkwing-cli
if cmp -s "$packaged" "$REPO/target/debug/sparkwing"; then
  touch cli/src/main.rs
  cargo build --offline --quiet -p sparkwing-cli
fi
cmp -s "$packaged" "$REPO/target/debug/sparkwing" &&
  fail "target/debug/sparkwing is still the packaged build"
# Same SDK, byte for byte: the content hash (part of every pipeline's cache key) must match.
sdk_of() { "$1" --version | sed -n 's/.*, sdk \([0-9a-f]*\),.*/\1/p'; }
[ -n "$(sdk_of "$packaged")" ] && [ "$(sdk_of "$packaged")" = "$(sdk_of "$REPO/target/debug/sparkwing")" ] ||
  fail "the packaged CLI embeds SDK $(sdk_of "$packaged"), the workspace's is $(sdk_of "$REPO/target/debug/sparkwing")"
echo "package-check: the packaged CLI embeds the workspace's SDK ($(sdk_of "$packaged"))" >&2

repo=$WORK/repo
mkdir -p "$repo"
git -C "$repo" init -q -b main
run_in_repo() {
  (cd "$repo" && SPARKWING_HOME=$1 SPARKWING_CARGO_TARGET_DIR=$REPO/target/e2e-pipelines \
    SPARKWING_LOG_FORMAT=plain "${@:2}")
}
run_in_repo "$WORK/home" "$packaged" pipeline new --name ci >&2
run_in_repo "$WORK/home" "$packaged" run ci >&2 || fail "the packaged CLI could not build and run a scaffolded pipeline"
echo "package-check: the packaged CLI scaffolded, built and ran a pipeline" >&2
