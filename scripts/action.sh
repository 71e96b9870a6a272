#!/usr/bin/env bash
# The steps of the GitHub Action (action.yml), kept here so that they run — and are tested —
# outside GitHub too. Each reads the action's inputs from the environment:
#
#   action.sh resolve   INPUT_VERSION, INPUT_INSTALL_DIR, ACTION_REF (the action's own ref),
#                       RUNNER_TOOL_CACHE, RUNNER_OS, RUNNER_ARCH → tag, dir, cache-key on $GITHUB_OUTPUT
#   action.sh install   TAG, DIR → installs with scripts/install.sh unless DIR already holds that
#                       version; appends DIR to $GITHUB_PATH
#   action.sh run       PIPELINE, PROFILE, ARGS → sparkwing run <pipeline> --sw-mode=ci-embedded …
set -euo pipefail
# No dirname: a runner image may have little beyond what install.sh needs.
case ${BASH_SOURCE[0]} in */*) HERE=${BASH_SOURCE[0]%/*} ;; *) HERE=. ;; esac

resolve() {
  local version=${INPUT_VERSION:-} ref tag dir
  if [ -z "$version" ]; then
    ref=${ACTION_REF:-${GITHUB_ACTION_REF:-}}
    case $ref in
      v[0-9]*.[0-9]*.[0-9]*) version=$ref ;;
      *)
        echo "::error title=sparkwing::no version to install: the action's ref \`${ref:-(none)}\` is not a release tag; set \`with: version: 0.1.0\`"
        exit 1
        ;;
    esac
  fi
  case $version in
    v[0-9]*) tag=$version ;;
    [0-9]*) tag=v$version ;;
    *) echo "::error title=sparkwing::invalid version \`$version\`: expected 0.1.0 or v0.1.0"; exit 1 ;;
  esac
  dir=${INPUT_INSTALL_DIR:-$RUNNER_TOOL_CACHE/sparkwing/${tag#v}/$RUNNER_ARCH}
  {
    echo "tag=$tag"
    echo "dir=$dir"
    echo "cache-key=sparkwing-${tag#v}-$RUNNER_OS-$RUNNER_ARCH"
  } >> "$GITHUB_OUTPUT"
}

install() {
  # `sparkwing --version` prints `sparkwing <version> (commit …)`: compare up to the details.
  installed=$("$DIR/sparkwing" --version 2>/dev/null || true)
  if [ -x "$DIR/sparkwing" ] && [ "${installed%% (*}" = "sparkwing ${TAG#v}" ]; then
    echo "sparkwing ${TAG#v}: cached in $DIR"
  else
    sh "$HERE/install.sh" --version "$TAG" --to "$DIR"
  fi
  echo "$DIR" >> "$GITHUB_PATH"
}

run() {
  local cmd extra=()
  cmd=(sparkwing run "$PIPELINE" --sw-mode=ci-embedded)
  if [ -n "${PROFILE:-}" ]; then cmd+=(--profile "$PROFILE"); fi
  # Split on whitespace only: no globbing, no quotes.
  read -r -a extra <<< "${ARGS:-}"
  cmd+=(${extra[@]+"${extra[@]}"})
  echo "+ ${cmd[*]}"
  exec "${cmd[@]}"
}

case "${1:-}" in
  resolve) resolve ;;
  install) install ;;
  run) run ;;
  *) echo "usage: $0 resolve|install|run" >&2; exit 2 ;;
esac
