#!/usr/bin/env bash
# Installs `xmllint` (Debian's libxml2-utils), which the end-to-end tests use to validate the
# JUnit reports of `sparkwing run --junit` against tests/e2e/junit.xsd.
# Idempotent and quiet: a second run installs nothing.
#
#   scripts/xmllint-setup.sh
set -euo pipefail

die() { echo "xmllint-setup: $*" >&2; exit 1; }

if ! command -v xmllint >/dev/null; then
  command -v apt-get >/dev/null || die "apt-get not found: install Debian's \`libxml2-utils\` package by hand"
  echo "xmllint-setup: installing libxml2-utils (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine.
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends libxml2-utils >/dev/null \
    || die "apt-get install libxml2-utils failed"
fi
command -v xmllint >/dev/null || die "xmllint is missing after the install"
