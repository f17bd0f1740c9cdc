#!/usr/bin/env bash
# The compose topology of deploy/docker-compose.yml, without docker: the same binary, the
# image's configuration (deploy/gateway.toml) and the gateway service's environment taken
# from the compose file, with an S3 server on loopback standing in for MinIO (moto, from
# PyPI) and the host names rewritten to 127.0.0.1 ports. Then: health, readiness, metrics,
# downloads checked byte for byte against the sample data, and a SIGTERM.
#
# Usage: bash deploy/smoke-without-docker.sh [BINARY]   (default target/release/artifact-gateway)
# Needs: python3 with moto[server], boto3 and PyYAML (PYTHON=/path/to/venv/bin/python), curl.
# Everything listens on 127.0.0.1; every wait is bounded; everything started is stopped by PID.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$REPO/target/release/artifact-gateway}")
PYTHON=${PYTHON:-python3}
SCRATCH=$(mktemp -d /tmp/agw-smoke.XXXXXX)
PIDS=()
PASS=0
FAIL=0

log() { printf '[smoke] %s\n' "$*" >&2; }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        PASS=$((PASS + 1))
        log "ok: $what"
    else
        FAIL=$((FAIL + 1))
        log "FAILED: $what"
    fi
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for URL: until the binary's own probe answers 2xx, at most 20 s
    local i
    for ((i = 0; i < 100; i++)); do
        "$BIN" probe --timeout-secs 1 "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${@:2}" "$1"; }

S3_PORT=$(free_port)
BACKEND_PORT=$(free_port)
GATEWAY_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# sample-data service: the sample archives and logs.
"$BIN" sample-data "$SCRATCH/data"
log "sample data: $(find "$SCRATCH/data" -type f | wc -l) files"

# minio + minio-init services: an S3 server, bucket "artifacts", the data mirrored into it.
"$PYTHON" -m moto.server -H 127.0.0.1 -p "$S3_PORT" >"$SCRATCH/s3.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$S3_PORT/" && break
    sleep 0.2
done
# The gateway service's environment from the compose file (interpolation defaults applied),
# host names pointed at this machine's ports.
"$PYTHON" - "$REPO/deploy/docker-compose.yml" "$SCRATCH/gateway.env" "$S3_PORT" "$BACKEND_PORT" <<'EOF'
import re, sys, yaml
compose, out, s3_port, backend_port = sys.argv[1:]
env = yaml.safe_load(open(compose))["services"]["gateway"]["environment"]
def interpolate(value):
    value = str(value).lower() if isinstance(value, bool) else str(value)
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")
with open(out, "w") as f:
    for name, value in env.items():
        value = interpolate(value)
        value = value.replace("//minio:9000", f"//127.0.0.1:{s3_port}")
        value = value.replace("//backend:3000", f"//127.0.0.1:{backend_port}")
        f.write(f"{name}={value}\n")
EOF
set -a
# shellcheck disable=SC1091
. "$SCRATCH/gateway.env"
set +a
"$PYTHON" - "$SCRATCH/data" "$S3_PORT" <<'EOF'
import os, sys, boto3
root, port = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id=os.environ["ARTIFACT_GATEWAY_STORAGE__ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["ARTIFACT_GATEWAY_STORAGE__SECRET_ACCESS_KEY"])
s3.create_bucket(Bucket="artifacts")
for dirpath, _, files in os.walk(root):
    for name in files:
        path = os.path.join(dirpath, name)
        s3.upload_file(path, "artifacts", os.path.relpath(path, root))
print(sorted(o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]), file=sys.stderr)
EOF

# backend service.
"$BIN" sample-backend --listen "127.0.0.1:$BACKEND_PORT" >"$SCRATCH/backend.log" 2>&1 &
PIDS+=($!)
check "backend health check URL answers 2xx" wait_for "http://127.0.0.1:$BACKEND_PORT/api/v4/projects/1/jobs/101"

# gateway service: the image's config file, the compose environment, loopback ports.
export ARTIFACT_GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT"
export ARTIFACT_GATEWAY_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT"
export ARTIFACT_GATEWAY_PUBLIC_URL="http://127.0.0.1:$GATEWAY_PORT"
log "gateway environment: $(env | grep -o '^ARTIFACT_GATEWAY_[A-Z_]*' | sort | tr '\n' ' ')"
"$BIN" --config "$REPO/deploy/gateway.toml" >"$SCRATCH/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
ADMIN="http://127.0.0.1:$ADMIN_PORT"
API="http://127.0.0.1:$GATEWAY_PORT/api/v4"
check "/-/health (the image's HEALTHCHECK command)" wait_for "$ADMIN/-/health"
check "/-/readiness (compose health check) answers 2xx" wait_for "$ADMIN/-/readiness"
check "/metrics is Prometheus text" bash -c "curl -sf --max-time 10 '$ADMIN/metrics' | grep -q '^# TYPE '"

same_bytes() { # same_bytes URL FILE [curl args...]
    local url=$1 file=$2
    shift 2
    curl -sf --max-time 30 "$@" "$url" -o "$SCRATCH/got" && cmp -s "$SCRATCH/got" "$file"
}
for job in 101 103 104; do
    check "archive of job $job from S3, byte for byte" \
        same_bytes "$API/projects/1/jobs/$job/artifacts" "$SCRATCH/data/1/$job/artifacts.zip" -H 'PRIVATE-TOKEN: demo-token'
done
check "job log of job 101 from S3" \
    same_bytes "$API/projects/1/jobs/101/trace" "$SCRATCH/data/1/101/job.log" -H 'PRIVATE-TOKEN: demo-token'
check "private project, with the token: 200" \
    test "$(status "$API/projects/2/jobs/201/artifacts" -H 'PRIVATE-TOKEN: demo-token')" = 200
check "private project, anonymous: not 200" \
    test "$(status "$API/projects/2/jobs/201/artifacts")" != 200
entry=$("$PYTHON" -c 'import sys, zipfile; print(next(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if not n.endswith("/")))' "$SCRATCH/data/1/101/artifacts.zip")
"$PYTHON" -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
    "$SCRATCH/data/1/101/artifacts.zip" "$entry" >"$SCRATCH/entry"
encoded=$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$entry")
check "single file '$entry' decoded out of the archive" \
    same_bytes "$API/projects/1/jobs/101/artifacts/$encoded" "$SCRATCH/entry" -H 'PRIVATE-TOKEN: demo-token'
check "logs are JSON lines" bash -c "grep -m1 '^{' '$SCRATCH/gateway.log' | $PYTHON -c 'import json, sys; json.loads(sys.stdin.read())'"
log "gateway VmRSS after these requests: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$GATEWAY_PID/status")"

# docker stop: SIGTERM, graceful exit well within the 40 s stop period.
kill -TERM "$GATEWAY_PID"
start=$(date +%s%N)
for ((i = 0; i < 400; i++)); do
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 0.1
done
rc=0
wait "$GATEWAY_PID" || rc=$?
check "SIGTERM: exit 0 (took $((($(date +%s%N) - start) / 1000000)) ms)" test "$rc" = 0

echo "smoke: $PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
