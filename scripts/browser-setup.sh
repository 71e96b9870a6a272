#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium (/usr/bin/chromium), and playwright-core
# and marked (the Markdown renderer the run-summary test uses; both pinned by
# tests/browser/package-lock.json) into tests/browser/node_modules.
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

# The run summary's outcome symbols are emoji: without a colour emoji font its screenshot shows
# empty boxes where a CI page shows symbols.
EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if ! [ -f "$EMOJI_FONT" ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install Debian's \`fonts-noto-color-emoji\` package by hand"
  echo "browser-setup: installing fonts-noto-color-emoji (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji >/dev/null; } \
    || die "apt-get install fonts-noto-color-emoji failed"
fi

command -v npm >/dev/null || die "npm not found: install Node.js 20 (apt-get install nodejs npm)"
# Every pinned package present at its pinned version, or `npm ci` once for all of them.
STALE=$(cd "$BROWSER_DIR" && node -e "
  const fs = require('fs');
  const want = require('./package.json').devDependencies;
  for (const [name, version] of Object.entries(want)) {
    const p = 'node_modules/' + name + '/package.json';
    if (!fs.existsSync(p) || JSON.parse(fs.readFileSync(p, 'utf8')).version !== version) console.log(name + ' ' + version);
  }")
if [ -n "$STALE" ]; then
  echo "browser-setup: installing $(echo "$STALE" | paste -sd, -) (npm ci)" >&2
  # playwright-core never downloads a browser of its own; the tests use /usr/bin/chromium.
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci in tests/browser failed"
fi
