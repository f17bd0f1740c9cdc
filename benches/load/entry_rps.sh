#!/usr/bin/env bash
# Requests/s for one 1,000-byte entry of a warm 70,000-entry archive through the gateway,
# next to nginx serving a 1,000-byte static file on the same machine (what loopback and
# the client can do). See benches/load/README.md for the method and the last numbers.
#
# Usage (as root, from anywhere):   bash benches/load/entry_rps.sh
# Knobs (environment):
#   ROUNDS=3         wrk runs per server, servers alternated (odd: the median is one run)
#   DURATION=15      seconds per wrk run
#   THREADS=2        wrk threads
#   CONNS=32         wrk connections
#   SKIP_BUILD=1     do not run cargo build (use the existing target/release binary)
#   KEEP_SCRATCH=1   keep the scratch directory (logs, archive) instead of removing it
#   PROFILE=1        after the rounds, one more (unmeasured) wrk run per gateway under
#                    `perf record -g`, and the top of each profile in the results
#   GW_LOG=warn      the gateway's log filter (warn: no access log, like nginx's access_log off)
#   BASE_BIN=PATH    also measure this gateway binary (an older build) in the same rounds, as "base"
#   GATEWAY_BIN=PATH the gateway binary measured as "gw" and "gw-cold" (default: target/release)
#
# Servers, each its own process, all on the same archive, measured in turns whose order
# rotates every round:
#   gw       the gateway, defaults (hot small entries cached: a warm hit reads no storage)
#   gw-cold  the gateway with zip.hot_entry_cache_bytes = 0: every request reads the entry
#            from the file and inflates it (the work itself, no cache in front)
#   base     BASE_BIN with its defaults, when set
#   ng       nginx serving the same 1,000 bytes as a static file
#
# Everything listens on 127.0.0.1 only. Every wrk run is bounded by -d and by timeout(1),
# every curl has a --max-time, every readiness wait has a deadline. Everything started is
# stopped by PID on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
GW_LOG=${GW_LOG:-warn}
ENTRIES=70000

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=benches/load/lib.sh
source "$REPO/benches/load/lib.sh"
BIN=${GATEWAY_BIN:-"$REPO/target/release/artifact-gateway"}
ENTRY=dir42/file-42.txt
ENTRY_PATH=/api/v4/projects/1/jobs/104/artifacts/$ENTRY

# --- tools and build -------------------------------------------------------------------
install_missing wrk:wrk nginx:nginx curl:curl python3:python3 pgrep:procps
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet)
fi
[[ -x $BIN ]] || die "$BIN not found"

# --- scratch, cleanup -----------------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/agw-rps.XXXXXX)
chmod 755 "$SCRATCH"
GW_PIDS=()
BACKEND_PID=""
NGINX_PID=""

cleanup() {
    local rc=$?
    local pid
    for pid in "${GW_PIDS[@]}"; do stop_pid "$pid"; done
    stop_pid "$BACKEND_PID"
    stop_pid "$NGINX_PID"
    if [[ ${KEEP_SCRATCH:-0} == 1 ]]; then
        log "scratch kept at $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- machine ---------------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (+ uncommitted changes)')"
    echo "nproc: $(nproc)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)   nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
} | tee "$SCRATCH/machine.txt" >&2

# --- archive: 70,000 deflated entries, one of exactly 1,000 bytes ---------------------------------
mkdir -p "$SCRATCH/store/1/104" "$SCRATCH/www"
log "writing the $ENTRIES-entry archive with Python's zipfile"
python3 - "$SCRATCH/store/1/104/artifacts.zip" "$SCRATCH/www/file.txt" "$ENTRIES" <<'EOF'
import sys, zipfile
path, static, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The 1,000-byte entry: text, like most small artifacts.
line = b"line %03d of the one-kilobyte entry in a seventy-thousand-entry archive\n"
body = b"".join(line % i for i in range(14))[:1000]
body = body.ljust(1000, b".")
assert len(body) == 1000
with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for i in range(count):
        name = f"dir{i % 100}/file-{i}.txt"
        data = body if i == 42 else f"entry {i}: a small text file\n".encode()
        z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
with open(static, "wb") as f:
    f.write(body)
EOF
chmod 644 "$SCRATCH/www/file.txt"
SUM=$(sha256sum <"$SCRATCH/www/file.txt" | cut -d' ' -f1)
log "archive: $(stat -c %s "$SCRATCH/store/1/104/artifacts.zip") bytes"

# --- nginx: the same 1,000 bytes as a static file ------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$SCRATCH/nginx/logs" "$SCRATCH/nginx/tmp"
cat >"$SCRATCH/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
user $(id -un) $(id -gn);
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    default_type text/plain;
    sendfile on;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    access_log off;
    client_body_temp_path $SCRATCH/nginx/tmp/body;
    proxy_temp_path $SCRATCH/nginx/tmp/proxy;
    fastcgi_temp_path $SCRATCH/nginx/tmp/fastcgi;
    uwsgi_temp_path $SCRATCH/nginx/tmp/uwsgi;
    scgi_temp_path $SCRATCH/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $SCRATCH/www;
        location / { }
    }
}
EOF
"$NGINX" -c "$SCRATCH/nginx/nginx.conf" -p "$SCRATCH/nginx" 2>>"$SCRATCH/nginx/logs/stderr.log" &
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT/file.txt"
wait_http "$NGINX_URL"
log "nginx on 127.0.0.1:$NGINX_PORT, master $NGINX_PID"

# --- sample backend and gateways --------------------------------------------------------------
BACKEND_PORT=$(free_port)
"$BIN" sample-backend --listen "127.0.0.1:$BACKEND_PORT" >"$SCRATCH/backend.log" 2>&1 &
BACKEND_PID=$!
wait_http "http://127.0.0.1:$BACKEND_PORT/api/v4/projects/1/jobs/104"
SERVERS=(gw gw-cold)
[[ -n ${BASE_BIN:-} ]] && SERVERS+=(base)
SERVERS+=(ng)
declare -A URL PIDS_OF
URL[ng]=$NGINX_URL
PIDS_OF[ng]="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
start_gateway() { # start_gateway NAME BINARY EXTRA-TOML: a gateway on its own port
    local name=$1 bin=$2 extra=$3 port got
    port=$(free_port)
    printf '%s\n' "listen = \"127.0.0.1:$port\"" "[log]" "filter = \"$GW_LOG\"" \
        "[upstream]" "url = \"http://127.0.0.1:$BACKEND_PORT\"" \
        "[storage]" "url = \"file://$SCRATCH/store\"" "$extra" >"$SCRATCH/$name.toml"
    "$bin" --config "$SCRATCH/$name.toml" >"$SCRATCH/$name.log" 2>&1 &
    GW_PIDS+=("$!")
    PIDS_OF[$name]=$!
    URL[$name]="http://127.0.0.1:$port$ENTRY_PATH"
    # Warm: the first request opens the archive (tail read, directory read, index into the
    # cache); it also checks the content.
    wait_http "${URL[$name]}"
    got=$(curl -s --max-time 30 "${URL[$name]}" | sha256sum | cut -d' ' -f1)
    [[ $got == "$SUM" ]] || die "$name answered other bytes than the entry for $ENTRY"
    log "$name on 127.0.0.1:$port, pid ${PIDS_OF[$name]} ($bin)"
}
start_gateway gw "$BIN" ""
start_gateway gw-cold "$BIN" $'[zip]\nhot_entry_cache_bytes = 0'
if [[ -n ${BASE_BIN:-} ]]; then start_gateway base "$BASE_BIN" ""; fi
got=$(curl -s --max-time 30 "$NGINX_URL" | sha256sum | cut -d' ' -f1)
[[ $got == "$SUM" ]] || die "nginx answered other bytes than the file"
curl -s -o /dev/null -D - --max-time 30 "${URL[gw]}" | tr -d '\r' | grep -v '^$' | sed 's/^/    /' >"$SCRATCH/gw-headers.txt"

# --- wrk rounds ----------------------------------------------------------------------------------------
one_run() { # one_run URL OUT: a bounded wrk run; fails on errors or non-2xx answers
    timeout --signal=INT --kill-after=10 $((DURATION + 30)) \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency "$1" >"$2" 2>&1 \
        || die "wrk failed: $(cat "$2")"
    if grep -q -E 'Non-2xx|Socket errors' "$2"; then
        die "errors during the run against $1: $(grep -E 'Non-2xx|Socket errors' "$2")"
    fi
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p() { awk -v q="$2" '$1 == q {print $2}' "$1"; } # p FILE 50%|99%: latency percentile
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
requests() { awk '/requests in/ {print $1}' "$1"; }
cpu_ticks() { # cpu_ticks PID...: "user sys" clock ticks of the processes (all threads)
    local u=0 s=0 pid line f
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # After the ")" that ends comm, field 1 is state; utime and stime are fields 12, 13.
        read -r -a f <<<"${line##*) }"
        u=$((u + f[11])); s=$((s + f[12]))
    done
    echo "$u $s"
}
CLK_TCK=$(getconf CLK_TCK)
N=${#SERVERS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < N; k++)); do
        who=${SERVERS[$(((k + r - 1) % N))]}
        url=${URL[$who]}
        read -r -a pids <<<"${PIDS_OF[$who]}"
        out="$SCRATCH/wrk.$who.$r"
        read -r u0 s0 < <(cpu_ticks "${pids[@]}")
        one_run "$url" "$out"
        read -r u1 s1 < <(cpu_ticks "${pids[@]}")
        # Server CPU per request, µs (user+sys; user alone).
        awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$CLK_TCK" -v n="$(requests "$out")" \
            'BEGIN {printf "%.1f %.1f\n", (u + s) / t / n * 1e6, u / t / n * 1e6}' >"$out.cpu"
        rps "$out" >>"$SCRATCH/rps.$who"
        log "round $r $who: $(rps "$out") req/s, p50 $(p "$out" 50%), p99 $(p "$out" 99%), server CPU $(cut -d' ' -f1 "$out.cpu") us/request, load $(cut -d' ' -f1 /proc/loadavg)"
    done
done

if [[ ${PROFILE:-0} == 1 ]]; then
    command -v perf >/dev/null 2>&1 || apt-get install -y -qq linux-perf >/dev/null 2>&1 || true
    command -v perf >/dev/null 2>&1 || die "PROFILE=1 needs perf"
    for who in "${SERVERS[@]}"; do
        [[ $who == ng ]] && continue
        perf record -q -F 1999 -g -p "${PIDS_OF[$who]}" -o "$SCRATCH/perf.$who.data" -- sleep $((DURATION - 2)) \
            >/dev/null 2>&1 &
        perf_pid=$!
        one_run "${URL[$who]}" "$SCRATCH/wrk.$who.profiled"
        wait "$perf_pid" || true
        # Self time by symbol (kernel and user), the largest first.
        perf report -q -i "$SCRATCH/perf.$who.data" --no-children --sort sym --stdio -g none \
            --percent-limit 1 2>/dev/null | grep -v '^$' | head -30 >"$SCRATCH/perf.$who.txt" || true
        log "profiled $who: $(rps "$SCRATCH/wrk.$who.profiled") req/s under perf"
    done
fi

NG_MED=$(median <"$SCRATCH/rps.ng")
{
    echo
    echo "== results =="
    cat "$SCRATCH/machine.txt"
    echo "archive: $ENTRIES deflated entries (Python zipfile, level 6), $(stat -c %s "$SCRATCH/store/1/104/artifacts.zip") bytes; entry $ENTRY: 1000 bytes"
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS runs per server, order rotated each round; gateway log filter $GW_LOG"
    printf '%-9s %-12s %-9s %s\n' "server" "median req/s" "/ nginx" "per run (req/s; p50 / p99 latency; server CPU us/request, user+sys / user)"
    for who in "${SERVERS[@]}"; do
        med=$(median <"$SCRATCH/rps.$who")
        runs=""
        for ((r = 1; r <= ROUNDS; r++)); do
            runs+="$(rps "$SCRATCH/wrk.$who.$r") ($(p "$SCRATCH/wrk.$who.$r" 50%) / $(p "$SCRATCH/wrk.$who.$r" 99%); $(tr ' ' / <"$SCRATCH/wrk.$who.$r.cpu"))  "
        done
        printf '%-9s %-12s %-9s %s\n' "$who" "$med" "$(awk -v g="$med" -v n="$NG_MED" 'BEGIN {printf "%.2f", g / n}')" "$runs"
    done
    for who in "${SERVERS[@]}"; do
        [[ $who == ng ]] && continue
        echo "$who VmHWM: $(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/${PIDS_OF[$who]}/status") MiB, threads at end: $(awk '/^Threads/ {print $2}' "/proc/${PIDS_OF[$who]}/status")"
    done
    if [[ ${PROFILE:-0} == 1 ]]; then
        for who in "${SERVERS[@]}"; do
            [[ -e $SCRATCH/perf.$who.txt ]] || continue
            echo "profile of $who (perf record -F 1999 -g, self time by symbol, >= 1 %):"
            sed 's/^/    /' "$SCRATCH/perf.$who.txt"
        done
    fi
    echo "gateway response headers:"
    cat "$SCRATCH/gw-headers.txt"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
