#!/usr/bin/env bash
# Copies the SDK sources the CLI embeds into cli/sdk/, so that the packaged sparkwing-cli crate
# (crates.io, `cargo install sparkwing-cli`) carries them: outside this repository, cli/build.rs
# reads cli/sdk/ instead of the workspace's SDK folders. cli/sdk/ is generated (not committed).
#
# It holds what cli/build.rs ships and nothing more (the list comes from `sparkwing sdk-files`),
# plus the workspace Cargo.lock. A crate manifest
# is stored as `Cargo.toml.sdk`, because cargo leaves any folder with a Cargo.toml out of a package.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/cli/sdk

# The list is the CLI's own: exactly the files cli/build.rs embeds (no rule repeated here).
(cd "$REPO" && cargo build --quiet -p sparkwing-cli)
rm -rf "$OUT"
mkdir -p "$OUT"
"$REPO/target/debug/sparkwing" sdk-files |
  while IFS= read -r rel; do
    dest=$OUT/$rel
    [ "${rel##*/}" = Cargo.toml ] && dest=$dest.sdk
    mkdir -p "$(dirname "$dest")"
    cp "$REPO/$rel" "$dest"
  done
cp "$REPO/Cargo.lock" "$OUT/Cargo.lock"
echo "vendor-sdk: $(find "$OUT" -type f | wc -l) files in cli/sdk/" >&2
