#!/usr/bin/env bash
# Throughput and CPU per byte of the byte-heavy paths, each next to its peers, measured in
# one run with the tools taking turns: a whole archive (gateway vs nginx sendfile), a
# stored entry (gateway vs `unzip -p`) and a deflated entry (gateway vs `unzip -p` vs
# python remotezip reading ranges from nginx). See benches/load/README.md ("CPU per byte").
#
# Usage (as root, from anywhere):   bash benches/load/cpu.sh
# Knobs (environment):
#   ROUNDS=5         rounds; in each, every tool runs every measurement once, order rotated
#   STORED_MB=80     the stored entry, MiB of incompressible bytes
#   DEFLATED_MB=100  the deflated entry, MiB of text (Python zipfile, level 6)
#   REPEAT=8         transfers per measurement, one after another (CPU time is counted in
#                    10 ms clock ticks: one fast transfer is only a few)
#   GATEWAY_BIN=PATH the gateway (default: target/release/artifact-gateway)
#   BASE_BIN=PATH    also measure this gateway binary (an older build) as "base-*"
#   SKIP_BUILD=1     do not run cargo build
#   KEEP_SCRATCH=1   keep the scratch directory
#
# CPU is user + system time from /proc/PID/stat of the server processes (all gateway
# threads; nginx master and workers) over the transfer, or the rusage of unzip and python
# themselves. The client (curl to /dev/null) is not counted for the servers; unzip and
# remotezip are their own clients. Everything listens on 127.0.0.1 and is stopped by PID.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-8}
STORED_MB=${STORED_MB:-80}
DEFLATED_MB=${DEFLATED_MB:-100}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=benches/load/lib.sh
source "$REPO/benches/load/lib.sh"
BIN=${GATEWAY_BIN:-"$REPO/target/release/artifact-gateway"}

install_missing nginx:nginx curl:curl unzip:unzip python3:python3
python3 -c 'import remotezip' 2>/dev/null || python3 -m pip install --quiet remotezip
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    (cd "$REPO" && nice cargo build --release --quiet --bin artifact-gateway)
fi
[[ -x $BIN ]] || die "$BIN not found"

SCRATCH=$(mktemp -d /tmp/agw-cpu.XXXXXX)
chmod 755 "$SCRATCH"
PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP_SCRATCH:-0} == 1 ]]; then log "scratch kept at $SCRATCH"; else rm -rf "$SCRATCH"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (+ uncommitted changes)')"
    echo "nproc: $(nproc)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')   $(unzip -v | head -1 | cut -d' ' -f1-2)   remotezip: $(python3 -m pip show remotezip 2>/dev/null | awk '/^Version/ {print $2}')"
} | tee "$SCRATCH/machine.txt" >&2

# --- data: one archive, a stored entry of noise and a deflated entry of text ----------------
mkdir -p "$SCRATCH/store/1/104" "$SCRATCH/www"
ZIP="$SCRATCH/store/1/104/artifacts.zip"
log "writing the archive (${STORED_MB} MiB stored, ${DEFLATED_MB} MiB deflated)"
python3 - "$ZIP" "$STORED_MB" "$DEFLATED_MB" <<'EOF'
import random, sys, zipfile
path, stored_mb, deflated_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(5)
noise = rng.randbytes(stored_mb << 20)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
line = lambda: b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
block = b"".join(line() for _ in range(20000))
text = (block * ((deflated_mb << 20) // len(block) + 1))[: deflated_mb << 20]
with zipfile.ZipFile(path, "w") as z:
    z.writestr(zipfile.ZipInfo("stored.bin", (2026, 1, 1, 0, 0, 0)), noise, zipfile.ZIP_STORED)
    z.writestr(zipfile.ZipInfo("text.txt", (2026, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED, 6)
EOF
ln "$ZIP" "$SCRATCH/www/artifacts.zip"
chmod -R a+rX "$SCRATCH"
cat "$ZIP" >/dev/null
ZIP_BYTES=$(stat -c %s "$ZIP")
STORED_BYTES=$((STORED_MB << 20))
TEXT_BYTES=$((DEFLATED_MB << 20))
TEXT_SUM=$(unzip -p "$ZIP" text.txt | sha256sum | cut -d' ' -f1)

# --- servers -------------------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$SCRATCH/nginx/logs" "$SCRATCH/nginx/tmp"
cat >"$SCRATCH/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
user $(id -un) $(id -gn);
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    sendfile on;
    tcp_nopush on;
    access_log off;
    client_body_temp_path $SCRATCH/nginx/tmp/body;
    proxy_temp_path $SCRATCH/nginx/tmp/proxy;
    fastcgi_temp_path $SCRATCH/nginx/tmp/fastcgi;
    uwsgi_temp_path $SCRATCH/nginx/tmp/uwsgi;
    scgi_temp_path $SCRATCH/nginx/tmp/scgi;
    server { listen 127.0.0.1:$NGINX_PORT; root $SCRATCH/www; location / { } }
}
EOF
"$NGINX" -c "$SCRATCH/nginx/nginx.conf" -p "$SCRATCH/nginx" &
PIDS+=("$!")
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT/artifacts.zip"
wait_http "$NGINX_URL"
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"

BACKEND_PORT=$(free_port)
"$BIN" sample-backend --listen "127.0.0.1:$BACKEND_PORT" >"$SCRATCH/backend.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$BACKEND_PORT/api/v4/projects/1/jobs/104"
start_gateway() { # start_gateway NAME BINARY: sets GW_PID_<NAME>, URL_<NAME>
    local name=$1 bin=$2 port
    port=$(free_port)
    printf '%s\n' "listen = \"127.0.0.1:$port\"" "[log]" "filter = \"warn\"" "[upstream]" \
        "url = \"http://127.0.0.1:$BACKEND_PORT\"" "[storage]" "url = \"file://$SCRATCH/store\"" \
        >"$SCRATCH/$name.toml"
    "$bin" --config "$SCRATCH/$name.toml" >"$SCRATCH/$name.log" 2>&1 &
    PIDS+=("$!")
    printf -v "GW_PID_$name" '%s' "$!"
    printf -v "URL_$name" '%s' "http://127.0.0.1:$port/api/v4/projects/1/jobs/104/artifacts"
    local url="http://127.0.0.1:$port/api/v4/projects/1/jobs/104/artifacts"
    wait_http "$url"
    [[ $(curl -s "$url/text.txt" | sha256sum | cut -d' ' -f1) == "$TEXT_SUM" ]] || die "$name: wrong text.txt"
}
start_gateway gw "$BIN"
GW_PID=$GW_PID_gw
GW=$URL_gw
if [[ -n ${BASE_BIN:-} ]]; then start_gateway base "$BASE_BIN"; fi

# --- measuring -----------------------------------------------------------------------------------
ticks() { # user+sys clock ticks of the processes
    local t=0 pid f
    for pid in "$@"; do
        read -r -a f <<<"$(cut -d')' -f2- "/proc/$pid/stat")"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
CLK=$(getconf CLK_TCK)
# served NAME BYTES NS CPU_S: one measurement; MB/s and CPU-s per GB (10^9 bytes)
served() {
    awk -v b="$2" -v ns="$3" -v cpu="$4" 'BEGIN {printf "%.1f %.3f\n", b / (ns / 1e9) / 1e6, cpu / (b / 1e9)}' >>"$SCRATCH/m.$1"
}
server_get() { # server_get NAME URL BYTES PIDS...: curl to /dev/null, server CPU
    local name=$1 url=$2 bytes=$3 t0 c0 c1 t1 got
    shift 3
    local i codes=""
    c0=$(ticks "$@")
    t0=$(date +%s%N)
    for ((i = 0; i < REPEAT; i++)); do
        got=$(curl -s -o /dev/null --max-time 600 -w '%{http_code} %{size_download}' "$url")
        [[ $got == "200 $bytes" ]] || codes+="$got "
    done
    t1=$(date +%s%N)
    c1=$(ticks "$@")
    [[ -z $codes ]] || die "$name: $codes"
    served "$name" $((bytes * REPEAT)) $((t1 - t0)) "$(awk -v t=$((c1 - c0)) -v k="$CLK" 'BEGIN {print t / k}')"
}
own_cpu() { # own_cpu NAME BYTES COMMAND...: the command's own rusage (user+sys)
    local name=$1 bytes=$2 t0 t1 times
    shift 2
    t0=$(date +%s%N)
    times=$( { TIMEFORMAT='%U %S'; time (for ((i = 0; i < REPEAT; i++)); do "$@" >/dev/null; done); } 2>&1 )
    t1=$(date +%s%N)
    served "$name" $((bytes * REPEAT)) $((t1 - t0)) "$(awk '{print $1 + $2}' <<<"$times")"
}
remotezip_text() { # remotezip over nginx's ranges; its own CPU plus nginx's
    local c0 c1 t0 t1 times
    c0=$(ticks $NGINX_PIDS)
    t0=$(date +%s%N)
    times=$( { TIMEFORMAT='%U %S'; time python3 -c '
import sys, hashlib, remotezip
for _ in range(int(sys.argv[3])):
    with remotezip.RemoteZip(sys.argv[1]) as z, z.open("text.txt") as f:
        h = hashlib.sha256()
        while chunk := f.read(1 << 20):
            h.update(chunk)
    assert h.hexdigest() == sys.argv[2], "remotezip: wrong bytes"
' "$NGINX_URL" "$TEXT_SUM" "$REPEAT" >/dev/null; } 2>&1 )
    t1=$(date +%s%N)
    c1=$(ticks $NGINX_PIDS)
    served remotezip-deflated $((TEXT_BYTES * REPEAT)) $((t1 - t0)) \
        "$(awk -v t=$((c1 - c0)) -v k="$CLK" -v own="$times" 'BEGIN {split(own, o, " "); print t / k + o[1] + o[2]}')"
}
TASKS=(
    "server_get gw-archive $GW $ZIP_BYTES $GW_PID"
    "server_get nginx-archive $NGINX_URL $ZIP_BYTES $NGINX_PIDS"
    "server_get gw-stored $GW/stored.bin $STORED_BYTES $GW_PID"
    "own_cpu unzip-stored $STORED_BYTES unzip -p $ZIP stored.bin"
    "server_get gw-deflated $GW/text.txt $TEXT_BYTES $GW_PID"
    "own_cpu unzip-deflated $TEXT_BYTES unzip -p $ZIP text.txt"
    "remotezip_text"
)
if [[ -n ${BASE_BIN:-} ]]; then
    TASKS+=(
        "server_get base-archive $URL_base $ZIP_BYTES $GW_PID_base"
        "server_get base-stored $URL_base/stored.bin $STORED_BYTES $GW_PID_base"
        "server_get base-deflated $URL_base/text.txt $TEXT_BYTES $GW_PID_base"
    )
fi
N=${#TASKS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < N; k++)); do
        # shellcheck disable=SC2086
        ${TASKS[$(((k + r - 1) % N))]}
    done
    log "round $r done, load $(cut -d' ' -f1 /proc/loadavg)"
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$SCRATCH/m.$1" | median; }
{
    echo
    echo "== results =="
    cat "$SCRATCH/machine.txt"
    echo "archive $ZIP_BYTES bytes: stored.bin ${STORED_MB} MiB of noise, text.txt ${DEFLATED_MB} MiB of text deflated (level 6); $ROUNDS rounds of $REPEAT transfers per measurement, order rotated; medians"
    printf '%-20s %-10s %-12s %s\n' "measure" "MB/s" "CPU-s/GB" "per round (MB/s CPU-s/GB)"
    names=(gw-archive nginx-archive gw-stored unzip-stored gw-deflated unzip-deflated remotezip-deflated)
    [[ -n ${BASE_BIN:-} ]] && names+=(base-archive base-stored base-deflated)
    for name in "${names[@]}"; do
        printf '%-20s %-10s %-12s %s\n' "$name" "$(col "$name" 1)" "$(col "$name" 2)" "$(paste -sd' ' "$SCRATCH/m.$name" | sed 's/\([0-9.]*\) \([0-9.]*\)/\1\/\2/g')"
    done
    ratio() { awk -v a="$(col "$1" "$3")" -v b="$(col "$2" "$3")" 'BEGIN {printf "%.2f", a / b}'; }
    echo "gateway / peer, throughput and CPU per byte:"
    echo "  archive vs nginx:           $(ratio gw-archive nginx-archive 1) x throughput, $(ratio gw-archive nginx-archive 2) x CPU/GB"
    echo "  stored entry vs unzip -p:   $(ratio gw-stored unzip-stored 1) x throughput, $(ratio gw-stored unzip-stored 2) x CPU/GB"
    echo "  deflated entry vs unzip -p: $(ratio gw-deflated unzip-deflated 1) x throughput, $(ratio gw-deflated unzip-deflated 2) x CPU/GB"
    echo "  deflated entry vs remotezip: $(ratio gw-deflated remotezip-deflated 1) x throughput, $(ratio gw-deflated remotezip-deflated 2) x CPU/GB"
    echo "gateway VmHWM: $(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$GW_PID/status") MiB"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
