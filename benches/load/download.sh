#!/usr/bin/env bash
# Download load benchmark: artifact-gateway vs nginx serving the same archive from the
# page cache, plus the gateway's peak RSS under 32 concurrent downloads of a 1 GiB and a
# 64 MiB archive. See benches/load/README.md for the method and the last recorded numbers.
#
# Usage (as root, from anywhere):   bash benches/load/download.sh
# Knobs (environment):
#   ROUNDS=7        rounds per server and concurrency (odd: the median is one round)
#   CONCS="4 1"     concurrent downloads per round, one pass per value
#   SIZE_MB=200     throughput archive size, MiB
#   RSS_CONC=32     concurrent downloads in the RSS phase
#   RSS_SIZES_MB="1024 64"   archive sizes for the RSS phase, MiB, one fresh gateway each
#   SKIP_BUILD=1    do not run cargo build (use the existing target/release binary)
#   KEEP_SCRATCH=1  keep the scratch directory (logs) instead of removing it
#
# Everything listens on 127.0.0.1 only. Every loop is bounded in count, every curl has a
# --max-time, every readiness wait has a deadline. Everything started is stopped by PID on
# exit.
set -euo pipefail

ROUNDS=${ROUNDS:-7}
CONCS=${CONCS:-"4 1"}
SIZE_MB=${SIZE_MB:-200}
RSS_CONC=${RSS_CONC:-32}
RSS_SIZES_MB=${RSS_SIZES_MB:-"1024 64"}
CURL_MAX_TIME=${CURL_MAX_TIME:-600}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=benches/load/lib.sh
source "$REPO/benches/load/lib.sh"
BIN=${GATEWAY_BIN:-"$REPO/target/release/artifact-gateway"}
ARTIFACT_PATH=/api/v4/projects/1/jobs/104/artifacts
CLK_TCK=$(getconf CLK_TCK)

# --- 1. tools and build ------------------------------------------------------------------
install_missing nginx:nginx curl:curl openssl:openssl pgrep:procps
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet)
fi
[[ -x $BIN ]] || die "$BIN not found"

# --- scratch, cleanup ----------------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/agw-load.XXXXXX)
chmod 755 "$SCRATCH"
GW_PID=""
NGINX_PID=""
SAMPLER_PID=""

cleanup() {
    local rc=$?
    stop_pid "$SAMPLER_PID"
    stop_pid "$GW_PID"
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

# Deterministic, incompressible bytes: AES-256-CTR keystream under a fixed key and IV.
gen_bytes() { # gen_bytes MiB FILE
    openssl enc -aes-256-ctr -nosalt \
        -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
        -iv 00000000000000000000000000000000 </dev/zero 2>/dev/null \
        | head -c "$(($1 * 1024 * 1024))" >"$2" || true
    [[ $(stat -c %s "$2") == $(($1 * 1024 * 1024)) ]] || die "could not generate $2"
}

start_gateway() { # start_gateway STORAGE_DIR LOGFILE; sets GW_PID, GW_PORT
    GW_PORT=$(free_port)
    RUST_LOG=warn "$BIN" --demo --listen "127.0.0.1:$GW_PORT" --storage-dir "$1" >"$2" 2>&1 &
    GW_PID=$!
    wait_http "http://127.0.0.1:$GW_PORT$ARTIFACT_PATH" -I
}

cpu_split() { # cpu_split PID...: "user_ticks sys_ticks" of the processes (all threads)
    local u=0 s=0 pid line f
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # After the ")" that ends comm, field 1 is state; utime and stime are fields 12, 13.
        read -r -a f <<<"${line##*) }"
        u=$((u + f[11])); s=$((s + f[12]))
    done
    echo "$u $s"
}

now_ns() { date +%s%N; }

# Machine-wide busy and total jiffies (all CPUs) from /proc/stat: "busy total".
machine_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }

# What else is running: top's second sample (1 s interval), the five busiest processes.
others() {
    top -b -n 2 -d 1 -o %CPU -w 160 2>/dev/null | awk '/^top -/ {n++} n == 2' \
        | awk '/^%Cpu/ {print "    " $0} /^ *PID/ {p = 1; print "    " $0; next} p && k++ < 5 {print "    " $0}'
}

# One round: C concurrent downloads of URL; prints the wall time in ns. Checks status/size.
round() { # round URL C EXPECTED_BYTES
    local url=$1 c=$2 expect=$3 i t0 t1 out
    out="$SCRATCH/round.out"
    : >"$out"
    t0=$(now_ns)
    for ((i = 0; i < c; i++)); do
        curl -s -o /dev/null --max-time "$CURL_MAX_TIME" -w '%{http_code} %{size_download}\n' "$url" >>"$out" &
    done
    wait # this runs in a $(...) subshell: only its own curl jobs
    t1=$(now_ns)
    local bad
    bad=$(awk -v e="$expect" '$1 != 200 || $2 != e' "$out" | head -3)
    [[ -z $bad && $(wc -l <"$out") == "$c" ]] || die "bad download(s) from $url: ${bad:-missing}"
    echo $((t1 - t0))
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }

# --- machine --------------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (+ uncommitted changes in src/)')"
    echo "binary: $BIN, built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)$([[ ${SKIP_BUILD:-0} == 1 ]] && echo ' (SKIP_BUILD=1: may predate the tree)')"
    echo "nproc: $(nproc)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
    echo "kernel: $(uname -r)   nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')   curl: $(curl --version | head -1 | cut -d' ' -f1-2)"
    echo "other load at start (top, 1 s sample):"
    others
} | tee "$SCRATCH/machine.txt" >&2

# --- 2. archive -------------------------------------------------------------------------------
SIZE=$((SIZE_MB * 1024 * 1024))
log "generating ${SIZE_MB} MiB archive (AES-CTR keystream, fixed key)"
mkdir -p "$SCRATCH/store/1/104" "$SCRATCH/www"
gen_bytes "$SIZE_MB" "$SCRATCH/store/1/104/artifacts.zip"
ln "$SCRATCH/store/1/104/artifacts.zip" "$SCRATCH/www/artifacts.zip" 2>/dev/null \
    || cp "$SCRATCH/store/1/104/artifacts.zip" "$SCRATCH/www/artifacts.zip"
chmod 644 "$SCRATCH/www/artifacts.zip"
SUM=$(sha256sum <"$SCRATCH/www/artifacts.zip" | cut -d' ' -f1)

# --- 3. nginx -----------------------------------------------------------------------------------
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
    default_type application/zip;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 10s;
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
"$NGINX" -t -q -c "$SCRATCH/nginx/nginx.conf" -p "$SCRATCH/nginx" 2>&1 | grep -v 'the "user" directive' >&2 || true
"$NGINX" -c "$SCRATCH/nginx/nginx.conf" -p "$SCRATCH/nginx" 2>>"$SCRATCH/nginx/logs/stderr.log" &
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT/artifacts.zip"
wait_http "$NGINX_URL" -I
NGINX_PIDS=("$NGINX_PID" $(pgrep -P "$NGINX_PID" | tr '\n' ' '))
log "nginx on 127.0.0.1:$NGINX_PORT, master $NGINX_PID, workers: ${NGINX_PIDS[*]:1}"

# --- 4. gateway -----------------------------------------------------------------------------------
start_gateway "$SCRATCH/store" "$SCRATCH/gateway.log"
GW_URL="http://127.0.0.1:$GW_PORT$ARTIFACT_PATH"
log "gateway on 127.0.0.1:$GW_PORT, pid $GW_PID"

# --- 5. throughput -----------------------------------------------------------------------------------
log "warm-up and content check (one download each)"
for url in "$GW_URL" "$NGINX_URL"; do
    got=$(curl -s --max-time "$CURL_MAX_TIME" "$url" | sha256sum | cut -d' ' -f1)
    [[ $got == "$SUM" ]] || die "content from $url differs from the archive"
done

declare -A MED RESULT_CPU
for c in $CONCS; do
    : >"$SCRATCH/gw.$c"; : >"$SCRATCH/ng.$c"
    declare -A U=() S=() WALL=() MBUSY=() MTOT=()
    for ((r = 1; r <= ROUNDS; r++)); do
        # ABBA order: G N | N G | G N ... so neither server always goes first.
        if ((r % 2)); then order="gw ng"; else order="ng gw"; fi
        for who in $order; do
            if [[ $who == gw ]]; then url=$GW_URL; pids=("$GW_PID"); else url=$NGINX_URL; pids=("${NGINX_PIDS[@]}"); fi
            read -r u0 s0 < <(cpu_split "${pids[@]}")
            read -r mb0 mt0 < <(machine_jiffies)
            ns=$(round "$url" "$c" "$SIZE")
            read -r mb1 mt1 < <(machine_jiffies)
            read -r u1 s1 < <(cpu_split "${pids[@]}")
            U[$who]=$((${U[$who]:-0} + u1 - u0)); S[$who]=$((${S[$who]:-0} + s1 - s0))
            WALL[$who]=$((${WALL[$who]:-0} + ns))
            MBUSY[$who]=$((${MBUSY[$who]:-0} + mb1 - mb0)); MTOT[$who]=$((${MTOT[$who]:-0} + mt1 - mt0))
            mbps=$(awk -v c="$c" -v b="$SIZE" -v ns="$ns" 'BEGIN {printf "%.1f", c * b / (ns / 1e9) / 1e6}')
            echo "$mbps" >>"$SCRATCH/$who.$c"
            log "C=$c round $r $who: $(awk -v ns="$ns" 'BEGIN {printf "%.2f", ns / 1e9}') s, $mbps MB/s"
        done
    done
    MED[gw.$c]=$(median <"$SCRATCH/gw.$c")
    MED[ng.$c]=$(median <"$SCRATCH/ng.$c")
    # Server CPU per GB served (user+sys, all threads / workers, over all rounds), the cores
    # the server kept busy while its rounds ran, and how busy the whole machine was then.
    gb=$(awk -v b="$SIZE" -v c="$c" -v r="$ROUNDS" 'BEGIN {print b * c * r / 1e9}')
    for who in gw ng; do
        RESULT_CPU[$who.$c]=$(awk -v u="${U[$who]}" -v s="${S[$who]}" -v t="$CLK_TCK" -v gb="$gb" \
            -v w="${WALL[$who]}" -v mb="${MBUSY[$who]}" -v mt="${MTOT[$who]}" -v n="$(nproc)" \
            'BEGIN {printf "%.2f s/GB (user %.2f, sys %.2f); server busy %.2f cores; machine busy %.0f%% of %d cores", (u + s) / t / gb, u / t / gb, s / t / gb, (u + s) / t / (w / 1e9), 100 * mb / mt, n}')
    done
done
gw_tp_hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$GW_PID/status")
stop_pid "$GW_PID"; GW_PID=""
stop_pid "$NGINX_PID"; NGINX_PID=""
rm -f "$SCRATCH/store/1/104/artifacts.zip" "$SCRATCH/www/artifacts.zip"

# --- 6. peak RSS ----------------------------------------------------------------------------------------
declare -A RSS_BASE RSS_MAX RSS_HWM RSS_SECS RSS_THREADS
for mb in $RSS_SIZES_MB; do
    dir="$SCRATCH/rss-$mb"
    mkdir -p "$dir/1/104"
    log "generating ${mb} MiB archive for the RSS phase"
    gen_bytes "$mb" "$dir/1/104/artifacts.zip"
    cat "$dir/1/104/artifacts.zip" >/dev/null # into the page cache
    start_gateway "$dir" "$SCRATCH/gateway-rss-$mb.log"
    url="http://127.0.0.1:$GW_PORT$ARTIFACT_PATH"
    RSS_BASE[$mb]=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status")
    # Sampler: max VmRSS every 100 ms, bounded to CURL_MAX_TIME seconds.
    (
        max=0
        for ((i = 0; i < CURL_MAX_TIME * 10; i++)); do
            v=$(awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null) || break
            ((v > max)) && max=$v && echo "$max" >"$SCRATCH/rss-max"
            [[ -e $SCRATCH/rss-stop ]] && break
            sleep 0.1
        done
    ) &
    SAMPLER_PID=$!
    log "RSS: $RSS_CONC concurrent downloads of ${mb} MiB from a fresh gateway (pid $GW_PID)"
    ns=$(round "$url" "$RSS_CONC" $((mb * 1024 * 1024)))
    touch "$SCRATCH/rss-stop"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    rm -f "$SCRATCH/rss-stop"
    RSS_MAX[$mb]=$(cat "$SCRATCH/rss-max" 2>/dev/null || echo 0)
    RSS_HWM[$mb]=$(awk '/^VmHWM/ {print $2}' "/proc/$GW_PID/status")
    # Idle blocking-pool threads linger ~10 s, so this is about the most the run needed.
    RSS_THREADS[$mb]=$(awk '/^Threads/ {print $2}' "/proc/$GW_PID/status")
    RSS_SECS[$mb]=$(awk -v ns="$ns" 'BEGIN {printf "%.1f", ns / 1e9}')
    rm -f "$SCRATCH/rss-max"
    stop_pid "$GW_PID"; GW_PID=""
    rm -rf "$dir"
done

# --- 7. results -------------------------------------------------------------------------------------------
kib_to_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
{
    echo
    echo "== results =="
    cat "$SCRATCH/machine.txt"
    echo "throughput: ${SIZE_MB} MiB archive from the page cache, $ROUNDS rounds per server, servers alternated (ABBA), MB = 10^6 bytes"
    printf '%-6s %-14s %-14s %-10s %s\n' "C" "gateway MB/s" "nginx MB/s" "ratio" "per-round MB/s (gateway | nginx)"
    for c in $CONCS; do
        ratio=$(awk -v g="${MED[gw.$c]}" -v n="${MED[ng.$c]}" 'BEGIN {printf "%.2f", g / n}')
        printf '%-6s %-14s %-14s %-10s %s | %s\n' "$c" "${MED[gw.$c]}" "${MED[ng.$c]}" "$ratio" \
            "$(tr '\n' ' ' <"$SCRATCH/gw.$c")" "$(tr '\n' ' ' <"$SCRATCH/ng.$c")"
    done
    echo "server CPU per GB served (user+sys of all threads; nginx: master+workers), cores it kept busy, machine busy during its rounds:"
    for c in $CONCS; do
        echo "    C=$c gateway: ${RESULT_CPU[gw.$c]}"
        echo "    C=$c nginx:   ${RESULT_CPU[ng.$c]}"
    done
    echo "gateway VmHWM after the throughput runs: $(kib_to_mib "$gw_tp_hwm") MiB"
    echo
    echo "peak RSS: $RSS_CONC concurrent downloads, fresh gateway process per archive size (MiB = 2^20 bytes)"
    printf '%-10s %-16s %-20s %-16s %-12s %s\n' "archive" "RSS at start" "max VmRSS (100 ms)" "VmHWM after" "wall time" "threads after"
    for mb in $RSS_SIZES_MB; do
        printf '%-10s %-16s %-20s %-16s %-12s %s\n' "${mb} MiB" "$(kib_to_mib "${RSS_BASE[$mb]}") MiB" \
            "$(kib_to_mib "${RSS_MAX[$mb]}") MiB" "$(kib_to_mib "${RSS_HWM[$mb]}") MiB" "${RSS_SECS[$mb]} s" "${RSS_THREADS[$mb]}"
    done
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); other load at end (top, 1 s sample):"
    others
}
