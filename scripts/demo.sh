#!/usr/bin/env bash
# Builds the sparkwing CLI and runs the sample pipeline `hello` on the embedded default: records in
# SQLite and logs on disk under $SPARKWING_HOME (default here: target/demo/home), no S3, no server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cargo build --release -p sparkwing-cli
sparkwing="$root/target/release/sparkwing"

demo="$root/target/demo"
repo="$demo/repo"
export SPARKWING_HOME="${SPARKWING_HOME:-$demo/home}"
rm -rf "$repo"
mkdir -p "$repo" "$SPARKWING_HOME"
cp -R "$root/fixtures/sample/.sparkwing" "$repo/"
rm -rf "$repo/.sparkwing/target" "$repo/.sparkwing/Cargo.lock"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q -m "sample pipelines"

cd "$repo"
echo "==> sparkwing run hello   (in $repo, SPARKWING_HOME=$SPARKWING_HOME)"
"$sparkwing" run hello
echo
echo "==> sparkwing runs list"
"$sparkwing" runs list --limit 5
echo
echo "Try: $sparkwing runs logs latest   |   $sparkwing runs show latest   (from $repo)"
