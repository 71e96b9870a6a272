#!/bin/sh
# Installs the sparkwing CLI from a release archive, after checking its sha256.
#
#   curl -fsSL https://github.com/sparkwing-dev/sparkwing/releases/latest/download/install.sh | sh
#   sh install.sh --version 0.1.0 --to /opt/bin
#
# Options (each has a variable; an option wins over its variable):
#   --version V   SPARKWING_VERSION       release to install: `0.1.0`, `v0.1.0` or `latest` (default)
#   --to DIR      SPARKWING_INSTALL_DIR   where `sparkwing` goes (default: ~/.local/bin)
#                 SPARKWING_DOWNLOAD_URL  a mirror holding `<tag>/<archive>` and `<tag>/<archive>.sha256`
#                                         for each release (`<tag>` is `v0.1.0` or `latest`)
#
# Needs only sh, uname, mktemp, mkdir, cp, mv, rm, chmod, tar with gzip, curl or wget, and
# sha256sum or shasum. The archive and checksum names are the release's own (one archive per
# target triple, holding `sparkwing-cli-<target>/sparkwing`); a checksum mismatch installs nothing.
set -eu

GITHUB_RELEASES=https://github.com/sparkwing-dev/sparkwing/releases
APP=sparkwing-cli
BIN=sparkwing

say() { printf 'sparkwing-install: %s\n' "$*"; }
die() {
  printf 'sparkwing-install: error: %s\n' "$1" >&2
  [ -z "${2:-}" ] || printf 'sparkwing-install: hint: %s\n' "$2" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: install.sh [--version V] [--to DIR]

  --version V   release to install (0.1.0, v0.1.0 or latest); default $SPARKWING_VERSION or latest
  --to DIR      install directory; default $SPARKWING_INSTALL_DIR or ~/.local/bin

SPARKWING_DOWNLOAD_URL points at a mirror laid out as <tag>/<archive> (+ .sha256).
EOF
}

version=${SPARKWING_VERSION:-latest}
dir=${SPARKWING_INSTALL_DIR:-}
while [ $# -gt 0 ]; do
  case $1 in
    --version) [ $# -ge 2 ] || die "\`--version\` needs a value"; version=$2; shift 2 ;;
    --version=*) version=${1#--version=}; shift ;;
    --to) [ $# -ge 2 ] || die "\`--to\` needs a directory"; dir=$2; shift 2 ;;
    --to=*) dir=${1#--to=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \`$1\`" ;;
  esac
done
if [ -z "$dir" ]; then
  [ -n "${HOME:-}" ] || die "HOME is not set" "name a directory with \`--to DIR\` or SPARKWING_INSTALL_DIR"
  dir=$HOME/.local/bin
fi

case $version in
  latest) tag=latest ;;
  v[0-9]*) tag=$version ;;
  [0-9]*) tag=v$version ;;
  *) die "invalid version \`$version\`: expected 1.2.3, v1.2.3 or latest" ;;
esac

# The target triple of this machine, as the release names its archives.
os=$(uname -s)
arch=$(uname -m)
case $arch in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) die "no sparkwing release for CPU \`$arch\`" "build from source: cargo install --locked sparkwing-cli" ;;
esac
case $os in
  Linux) target=$arch-unknown-linux-gnu ;;
  Darwin)
    # An x86_64 shell under Rosetta on Apple silicon still gets the native binary.
    if [ "$arch" = x86_64 ] && [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
      arch=aarch64
    fi
    target=$arch-apple-darwin
    ;;
  *) die "no sparkwing release for \`$os\`" "build from source: cargo install --locked sparkwing-cli" ;;
esac

archive=$APP-$target.tar.gz
if [ -n "${SPARKWING_DOWNLOAD_URL:-}" ]; then
  base=${SPARKWING_DOWNLOAD_URL%/}/$tag
elif [ "$tag" = latest ]; then
  base=$GITHUB_RELEASES/latest/download
else
  base=$GITHUB_RELEASES/download/$tag
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 3 --proto '=https,http' -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is on PATH" "install one of them"
fi
if command -v sha256sum >/dev/null 2>&1; then
  digest() { sha256sum "$1"; }
elif command -v shasum >/dev/null 2>&1; then
  digest() { shasum -a 256 "$1"; }
else
  die "neither sha256sum nor shasum is on PATH" "install coreutils (or perl's shasum)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sparkwing-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "target $target, release $tag"
say "downloading $base/$archive"
fetch "$base/$archive" "$tmp/$archive" || die "download \`$base/$archive\`" \
  "check the version and SPARKWING_DOWNLOAD_URL; releases are listed at $GITHUB_RELEASES"
fetch "$base/$archive.sha256" "$tmp/$archive.sha256" || die "download \`$base/$archive.sha256\`"

# The checksum file is `<hex> *<name>` (sha256sum's binary mode), as the release writes it.
read -r expected _ < "$tmp/$archive.sha256" || true
case $expected in
  *[!0-9a-f]* | "") die "\`$archive.sha256\` holds no sha256 digest" ;;
esac
[ ${#expected} -eq 64 ] || die "\`$archive.sha256\` holds no sha256 digest"
# shellcheck disable=SC2046 # the digest and the file name, split on purpose
set -- $(digest "$tmp/$archive")
actual=$1
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for \`$archive\`: expected $expected, got $actual; nothing was installed" \
    "the download or the mirror is corrupt; retry, or compare with $GITHUB_RELEASES"
fi
say "verified sha256 $actual"

mkdir "$tmp/x"
tar -xzf "$tmp/$archive" -C "$tmp/x" || die "extract \`$archive\`"
src=$tmp/x/$APP-$target/$BIN
[ -f "$src" ] || src=$tmp/x/$BIN
[ -f "$src" ] || die "\`$archive\` holds no \`$BIN\` binary"

mkdir -p "$dir" || die "create \`$dir\`" "name a writable directory with \`--to DIR\` or SPARKWING_INSTALL_DIR"
# Copy next to the destination, then rename: a running `sparkwing` is never overwritten in place.
cp "$src" "$dir/.$BIN.new.$$" || die "write into \`$dir\`" "name a writable directory with \`--to DIR\`"
chmod 755 "$dir/.$BIN.new.$$"
mv -f "$dir/.$BIN.new.$$" "$dir/$BIN"
say "installed $dir/$BIN"

case :${PATH:-}: in
  *:"$dir":*) ;;
  *) say "$dir is not on PATH; add it: export PATH=\"$dir:\$PATH\"" ;;
esac
