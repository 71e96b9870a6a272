#!/usr/bin/env bash
# Builds this machine's release archive the way the release workflow does (`dist build`, from the
# `[workspace.metadata.dist]` table in Cargo.toml) and copies it with its .sha256 into target/dist/:
#   target/dist/sparkwing-cli-<target>.tar.gz         sparkwing-cli-<target>/sparkwing (+ docs)
#   target/dist/sparkwing-cli-<target>.tar.gz.sha256  `<hex> *<archive>`, as `sha256sum -b` writes
# The `dist` tool (crate cargo-dist, the version the workflow was generated with) is installed once
# into target/tools. Works offline once it and the crates are in cargo's cache.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DIST_VERSION=$(sed -n 's/^cargo-dist-version = "\(.*\)"/\1/p' Cargo.toml)
TOOLS=$REPO/target/tools
DIST=$TOOLS/bin/dist

if ! [ -x "$DIST" ] || [ "$("$DIST" --version)" != "cargo-dist $DIST_VERSION" ]; then
  echo "dist: installing cargo-dist $DIST_VERSION into $TOOLS (once; a long compile)" >&2
  cargo install cargo-dist --version "$DIST_VERSION" --locked --root "$TOOLS"
fi
target=$(rustc -vV | sed -n 's/^host: //p')
echo "dist: building the release archive for $target" >&2
"$DIST" build --artifacts=local --target "$target" --allow-dirty

archive=sparkwing-cli-$target.tar.gz
mkdir -p target/dist
cp "target/distrib/$archive" "target/distrib/$archive.sha256" target/dist/
(cd target/dist && sha256sum -c "$archive.sha256" >&2)
echo "dist: target/dist/$archive" >&2
