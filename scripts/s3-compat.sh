#!/usr/bin/env bash
# Runs the storage conformance suite against every S3-compatible server this machine can start
# and prints a case × server table (also written to target/s3/compat/results.md).
#
#   scripts/s3-compat.sh [seaweedfs] [moto] [s3s-fs] [s3rver]      (default: all four)
#
# Servers: SeaweedFS 4.48 (via scripts/s3-server.sh, on its own port), moto 5.2.5 (PyPI, in a
# venv), s3s-fs 0.14.1 (`cargo install`, ~3 min the first time), s3rver 3.7.1 (npm). Everything lives under
# target/s3/compat and binds 127.0.0.1 only. Each server is stopped by PID before the next starts.
# SPARKWING_COMPAT_BIG_MIB (default 200) sizes the big streamed object.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/target/s3/compat
# The compatibility instance of SeaweedFS must not replace the test server's settings file.
export SPARKWING_S3_ENV_FILE=
BIG_MIB=${SPARKWING_COMPAT_BIG_MIB:-200}
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(seaweedfs moto s3s-fs s3rver)
mkdir -p "$OUT"

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SPARKWING_S3_PORT=18333 "$REPO/scripts/s3-server.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready URL AK SK BUCKET-OR-EMPTY
wait_ready() {
  local end=$(( $(date +%s) + 60 )) code=
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
      -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
      --aws-sigv4 "aws:amz:us-east-1:s3" --user "$2:$3" "$1/$4" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  echo "s3-compat: $1/$4 not ready (last HTTP $code)" >&2
  return 1
}

echo "s3-compat: building the conformance runner (release)" >&2
(cd "$REPO" && cargo build -q --release -p sparkwing-storage-testing --example s3-conformance)
RUNNER=$REPO/target/release/examples/s3-conformance

run_suite() { # NAME ENDPOINT BUCKET AK SK [runner args...]
  local name=$1 endpoint=$2 bucket=$3 ak=$4 sk=$5
  shift 5
  echo "s3-compat: running the suite against $name ($endpoint)" >&2
  local started=$SECONDS rc=0
  SPARKWING_TEST_S3_ENDPOINT=$endpoint SPARKWING_TEST_S3_BUCKET=$bucket \
    AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_REGION=us-east-1 \
    RUST_S3_SKIP_LOCATION_CONSTRAINT=true \
    "$RUNNER" --big-mib "$BIG_MIB" "$@" > "$OUT/$name.tsv" 2> "$OUT/$name.err" || rc=$?
  echo "s3-compat: $name done in $((SECONDS - started)) s (exit $rc)" >&2
  if [ ! -s "$OUT/$name.tsv" ]; then
    echo "s3-compat: $name produced no results:" >&2
    tail -n 5 "$OUT/$name.err" >&2
  fi
}

for server in "${SERVERS[@]}"; do
  case "$server" in
    seaweedfs)
      # Its own instance (port 18333..18342) so a running test server is left alone.
      SPARKWING_S3_PORT=18333 "$REPO/scripts/s3-server.sh" start
      eval "$(SPARKWING_S3_PORT=18333 "$REPO/scripts/s3-server.sh" env)"
      run_suite seaweedfs "$SPARKWING_TEST_S3_ENDPOINT" "$SPARKWING_TEST_S3_BUCKET" \
        "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
      SPARKWING_S3_PORT=18333 "$REPO/scripts/s3-server.sh" stop
      ;;
    moto)
      if [ ! -x "$OUT/moto/bin/moto_server" ]; then
        echo "s3-compat: installing moto 5.2.5 (~35 s)" >&2
        python3 -m venv "$OUT/moto"
        "$OUT/moto/bin/pip" install -q --disable-pip-version-check 'moto[s3]==5.2.5' flask flask-cors
      fi
      port=$(free_port)
      "$OUT/moto/bin/moto_server" -H 127.0.0.1 -p "$port" > "$OUT/moto.log" 2>&1 &
      SERVER_PID=$!
      wait_ready "http://127.0.0.1:$port" test test ""
      # moto keeps objects in memory and has no pre-made bucket: the runner creates it.
      run_suite moto "http://127.0.0.1:$port" sparkwing-compat test test --create-bucket
      cleanup; SERVER_PID=
      ;;
    s3s-fs)
      if [ ! -x "$OUT/s3s/bin/s3s-fs" ]; then
        echo "s3-compat: building s3s-fs 0.14.1 (~3 min)" >&2
        cargo install -q s3s-fs --version 0.14.1 --features binary --locked --root "$OUT/s3s"
      fi
      port=$(free_port)
      rm -rf "$OUT/s3s-data" && mkdir -p "$OUT/s3s-data/sparkwing-compat"
      "$OUT/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$port" \
        --access-key compataccess --secret-key compatsecret0123456789 "$OUT/s3s-data" > "$OUT/s3s.log" 2>&1 &
      SERVER_PID=$!
      wait_ready "http://127.0.0.1:$port" compataccess compatsecret0123456789 sparkwing-compat
      run_suite s3s-fs "http://127.0.0.1:$port" sparkwing-compat compataccess compatsecret0123456789
      cleanup; SERVER_PID=
      rm -rf "$OUT/s3s-data"
      ;;
    s3rver)
      if [ ! -x "$OUT/s3rver/node_modules/.bin/s3rver" ]; then
        echo "s3-compat: installing s3rver 3.7.1 (npm, ~15 s)" >&2
        mkdir -p "$OUT/s3rver"
        (cd "$OUT/s3rver" && npm install --silent --no-audit --no-fund --no-save s3rver@3.7.1 >/dev/null)
      fi
      port=$(free_port)
      rm -rf "$OUT/s3rver-data" && mkdir -p "$OUT/s3rver-data"
      # Its list pagination builds tokens with DES, which OpenSSL 3 refuses without the legacy
      # provider; s3rver accepts any key pair.
      NODE_OPTIONS=--openssl-legacy-provider "$OUT/s3rver/node_modules/.bin/s3rver" \
        --address 127.0.0.1 --port "$port" --directory "$OUT/s3rver-data" \
        --configure-bucket sparkwing-compat --silent > "$OUT/s3rver.log" 2>&1 &
      SERVER_PID=$!
      wait_ready "http://127.0.0.1:$port" S3RVER S3RVER sparkwing-compat
      run_suite s3rver "http://127.0.0.1:$port" sparkwing-compat S3RVER S3RVER
      cleanup; SERVER_PID=
      rm -rf "$OUT/s3rver-data"
      ;;
    *) echo "s3-compat: unknown server \`$server\` (known: seaweedfs moto s3s-fs s3rver)" >&2; exit 2 ;;
  esac
done

python3 - "$OUT" "${SERVERS[@]}" <<'EOF' | tee "$OUT/results.md"
import sys, os
out, servers = sys.argv[1], sys.argv[2:]
rows, results = [], {}
for s in servers:
    path = os.path.join(out, s + ".tsv")
    results[s] = {}
    if not os.path.exists(path):
        continue
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3:
            continue
        key = (parts[0], parts[1])
        if key not in rows:
            rows.append(key)
        results[s][key] = (parts[2], parts[3] if len(parts) > 3 else "")
print("| group | case | " + " | ".join(servers) + " |")
print("|---|---|" + "---|" * len(servers))
notes = []
for key in rows:
    cells = []
    for s in servers:
        mark, detail = results[s].get(key, ("–", ""))
        if mark in ("FAIL", "SKIP") or (mark == "PASS" and detail):
            notes.append(f"- {s} / {key[1]}: {mark} {detail}")
        cells.append(mark)
    print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
totals = []
for s in servers:
    r = results[s].values()
    p = sum(1 for m, _ in r if m == "PASS")
    totals.append(f"{p}/{len(r)}" if r else "no results")
print("| | **passed** | " + " | ".join(totals) + " |")
if notes:
    print()
    print("\n".join(notes))
EOF
