#!/usr/bin/env bash
# Installs what the dashboard's browser tests need: Debian's Chromium (/usr/bin/chromium) and
# playwright-core (pinned by tests/browser/package-lock.json) into tests/browser/node_modules.
# Idempotent and quiet: a second run installs nothing.
#
#   scripts/browser-setup.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROWSER_DIR=$REPO/tests/browser

die() { echo "browser-setup: $*" >&2; exit 1; }

if ! [ -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install Debian's \`chromium\` package by hand"
  echo "browser-setup: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine.
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
    || die "apt-get install chromium failed"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing after the install"

command -v npm >/dev/null || die "npm not found: install Node.js 20 (apt-get install nodejs npm)"
PW_VERSION=$(node -e "console.log(require('$BROWSER_DIR/package.json').devDependencies['playwright-core'])")
if ! [ -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] \
  || [ "$(node -e "console.log(require('$BROWSER_DIR/node_modules/playwright-core/package.json').version)")" != "$PW_VERSION" ]; then
  echo "browser-setup: installing playwright-core $PW_VERSION (npm ci)" >&2
  # playwright-core never downloads a browser of its own; the tests use /usr/bin/chromium.
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci in tests/browser failed"
fi
