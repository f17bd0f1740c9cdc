#!/usr/bin/env bash
# The gateway's resident memory under load, for each allocator the binary can be built
# with, measured side by side in one run: downloads at 1, 32 and 256 concurrent, 32
# concurrent entry decodes of every compression method, and 32 concurrent 1 GiB downloads
# both on a fresh process and after that mixed warm-up. Optionally a mixed soak of one
# build. See benches/load/README.md ("Memory") for the method and the last numbers.
#
# Usage (as root, from anywhere):   bash benches/load/memory.sh
# Knobs (environment):
#   VARIANTS="system mimalloc jemalloc"  builds measured: the cargo feature that picks the
#                    allocator (system: neither); each is built into the scratch directory
#   ROUNDS=3         passes per build, builds alternated (order rotated each round)
#   BIG_MB=1024      the archive of the 1- and 32-download phases, MiB
#   MID_MB=64        the archive of the 256-download phase, MiB
#   DECODE_MB=8      decoded size of each method's entry, MiB
#   BLOCKING=""      --blocking-threads for every gateway (empty: the binary's default)
#   SOAK_SECS=0      after the rounds, a mixed soak of this many seconds (600: ten minutes)
#   SOAK_VARIANT=    the build soaked (default: the first of VARIANTS)
#   SKIP_BUILD=1     use $SCRATCH_BIN/artifact-gateway-<variant> from an earlier run
#   BIN_<variant>=PATH  use this binary for a variant instead of building it
#   KEEP_SCRATCH=1   keep the scratch directory (logs, configs, data)
#
# Everything listens on 127.0.0.1 only; every curl has --max-time, every wait a deadline,
# every loop a bound. Everything started is stopped by PID on exit.
set -euo pipefail

VARIANTS=${VARIANTS:-"system mimalloc jemalloc"}
ROUNDS=${ROUNDS:-3}
BIG_MB=${BIG_MB:-1024}
MID_MB=${MID_MB:-64}
DECODE_MB=${DECODE_MB:-8}
BLOCKING=${BLOCKING:-}
SOAK_SECS=${SOAK_SECS:-0}
read -r -a VARIANT_LIST <<<"$VARIANTS"
SOAK_VARIANT=${SOAK_VARIANT:-${VARIANT_LIST[0]}}
CURL_MAX_TIME=600
METHODS=(stored deflate deflate64 bzip2 lzma xz zstd)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=benches/load/lib.sh
source "$REPO/benches/load/lib.sh"
SCRATCH_BIN=${SCRATCH_BIN:-/tmp/agw-memory-bin}

# --- tools ---------------------------------------------------------------------------------
install_missing curl:curl openssl:openssl python3:python3 pgrep:procps
# Python has no zstd encoder of its own: the zstd entry is written with `zstandard`.
python3 -c 'import zstandard' 2>/dev/null || python3 -m pip install --quiet zstandard

# --- builds --------------------------------------------------------------------------------
mkdir -p "$SCRATCH_BIN"
declare -A BIN
for v in "${VARIANT_LIST[@]}"; do
    given="BIN_$v"
    if [[ -n ${!given:-} ]]; then
        BIN[$v]=${!given}
    else
        BIN[$v]="$SCRATCH_BIN/artifact-gateway-$v"
        if [[ ${SKIP_BUILD:-0} != 1 ]]; then
            features=demo
            [[ $v != system ]] && features+=",$v"
            log "cargo build --release --no-default-features --features $features"
            (cd "$REPO" && nice cargo build --release --quiet --bin artifact-gateway \
                --no-default-features --features "$features")
            cp "$REPO/target/release/artifact-gateway" "${BIN[$v]}"
        fi
    fi
    [[ -x ${BIN[$v]} ]] || die "${BIN[$v]} not found"
done

# --- scratch, cleanup ------------------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/agw-memory.XXXXXX)
chmod 755 "$SCRATCH"
GW_PID=""
BACKEND_PID=""
cleanup() {
    local rc=$?
    [[ -n ${SAMPLER_PID:-} ]] && stop_pid "$SAMPLER_PID"
    stop_pid "$GW_PID"
    stop_pid "$BACKEND_PID"
    if [[ ${KEEP_SCRATCH:-0} == 1 ]]; then log "scratch kept at $SCRATCH"; else rm -rf "$SCRATCH"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (+ uncommitted changes)')"
    echo "nproc: $(nproc)   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)   curl: $(curl --version | head -1 | cut -d' ' -f2)"
} | tee "$SCRATCH/machine.txt" >&2

# --- data --------------------------------------------------------------------------------------
# Job 104: BIG_MB of incompressible bytes; job 103: MID_MB of them (archive downloads stream
# the object as it is). Job 101: one entry per method, DECODE_MB of text each.
STORE="$SCRATCH/store"
mkdir -p "$STORE/1/101" "$STORE/1/103" "$STORE/1/104"
keystream() { { openssl enc -aes-256-ctr -K "$(printf '%064d' 0)" -iv 0 -nosalt </dev/zero 2>/dev/null || true; } | head -c "$1"; }
log "writing the ${BIG_MB} MiB and ${MID_MB} MiB archives"
keystream $((BIG_MB << 20)) >"$STORE/1/104/artifacts.zip"
keystream $((MID_MB << 20)) >"$STORE/1/103/artifacts.zip"
log "writing the methods archive (${DECODE_MB} MiB per entry)"
python3 - "$STORE/1/101/artifacts.zip" "$REPO/tests/fixtures/zip/7zip-deflate64.zip" "$DECODE_MB" <<'EOF'
import io, lzma, random, struct, sys, zipfile, zlib
import zstandard
out, deflate64_fixture, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(11)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
text = bytearray()
while len(text) < mb << 20:
    text += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
text = bytes(text[: mb << 20])

def raw_entries(data):
    """(name, method, crc, uncompressed size, raw data) of every entry of a zip."""
    z = zipfile.ZipFile(io.BytesIO(data))
    for info in z.infolist():
        at = info.header_offset
        name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
        start = at + 30 + name_len + extra_len
        yield info.filename, info.compress_type, info.CRC, info.file_size, data[start : start + info.compress_size]

entries = []
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    for name, method in [("stored", zipfile.ZIP_STORED), ("deflate", zipfile.ZIP_DEFLATED),
                         ("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)]:
        z.writestr(zipfile.ZipInfo(f"{name}.txt", (2026, 1, 1, 0, 0, 0)), text, method)
entries += list(raw_entries(buf.getvalue()))
crc = zlib.crc32(text)
entries.append(("xz.txt", 95, crc, len(text), lzma.compress(text, format=lzma.FORMAT_XZ)))
entries.append(("zstd.txt", 93, crc, len(text), zstandard.ZstdCompressor(level=3).compress(text)))
# Python has no deflate64 encoder: the fixture's entry, as 7-Zip wrote it.
for name, method, c, size, data in raw_entries(open(deflate64_fixture, "rb").read()):
    if method == 9:
        entries.append(("deflate64.txt", 9, c, size, data))
        break

with open(out, "wb") as f:
    central = b""
    for name, method, c, size, data in entries:
        offset = f.tell()
        n = name.encode()
        head = struct.pack("<HHHHHIIIHH", 20, 0, method, 0, 0x5C21, c, len(data), size, len(n), 0)
        f.write(b"PK\x03\x04" + head + n + data)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + head + struct.pack("<HHHII", 0, 0, 0, 0, offset) + n
    start = f.tell()
    f.write(central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central), start, 0))
EOF
# A 4 MiB job log, read through the gateway in the metadata phase.
head -c $((4 << 20)) "$STORE/1/101/artifacts.zip" | base64 >"$STORE/1/104/job.log"
# Readable by any user, and in the page cache before anything is measured.
chmod -R a+rX "$SCRATCH"
cat "$STORE"/1/*/artifacts.zip >/dev/null

BACKEND_PORT=$(free_port)
"${BIN[${VARIANT_LIST[0]}]}" sample-backend --listen "127.0.0.1:$BACKEND_PORT" >"$SCRATCH/backend.log" 2>&1 &
BACKEND_PID=$!
wait_http "http://127.0.0.1:$BACKEND_PORT/api/v4/projects/1/jobs/104"

# --- measuring ---------------------------------------------------------------------------------
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# The peak (VmHWM) is reset before each phase, so each phase reports its own.
reset_peak() { echo 5 >"/proc/$1/clear_refs"; }

start_gateway() { # start_gateway VARIANT: a fresh gateway on a free port; sets GW_PID, GW
    local v=$1 port extra=()
    port=$(free_port)
    printf '%s\n' "listen = \"127.0.0.1:$port\"" "[log]" "filter = \"warn\"" \
        "[upstream]" "url = \"http://127.0.0.1:$BACKEND_PORT\"" \
        "[storage]" "url = \"file://$STORE\"" >"$SCRATCH/gateway.toml"
    [[ -n $BLOCKING ]] && extra=(--blocking-threads "$BLOCKING")
    "${BIN[$v]}" --config "$SCRATCH/gateway.toml" "${extra[@]}" >>"$SCRATCH/gateway-$v.log" 2>&1 &
    GW_PID=$!
    GW="http://127.0.0.1:$port/api/v4/projects/1/jobs"
    wait_http "$GW/104"
}

# burst N URL BYTES: N concurrent GETs of URL; each must be a 200 of BYTES bytes.
burst() {
    local n=$1 url=$2 bytes=$3 i bad
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null --max-time "$CURL_MAX_TIME" -w '%{http_code} %{size_download}\n' "$url" \
            >"$SCRATCH/burst.$i" &
    done
    wait_pids
    bad=$(cat "$SCRATCH"/burst.* | grep -v -c -x "200 $bytes" || true)
    rm -f "$SCRATCH"/burst.*
    ((bad == 0)) || die "$bad of $n GETs of $url were not a 200 of $bytes bytes"
}
wait_pids() { # wait for every background curl (not the gateway, backend or sampler)
    local pid
    for pid in $(jobs -p); do
        [[ $pid == "$GW_PID" || $pid == "$BACKEND_PID" || $pid == "${SAMPLER_PID:-}" ]] && continue
        wait "$pid" || true
    done
}

# phase NAME: run the rest of the command line, then record the phase's VmHWM under NAME.
declare -A PEAK
phase() {
    local name=$1
    shift
    reset_peak "$GW_PID"
    "$@"
    PEAK[$name]+="$(kib "$GW_PID" VmHWM) "
}
entry_size() { python3 -c "import zipfile,sys; print(zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2] + '.txt').file_size)" "$STORE/1/101/artifacts.zip" "$1"; }
metadata() { # job JSON, job lists and logs, 64 at a time
    local i
    for ((i = 0; i < 64; i++)); do
        curl -s -o /dev/null --max-time 30 "$GW/104" &
        curl -s -o /dev/null --max-time 30 "$GW?per_page=100" &
        curl -s -o /dev/null --max-time 30 "$GW/104/trace" &
    done
    wait_pids
}

declare -A IDLE
BIG=$((BIG_MB << 20))
MID=$((MID_MB << 20))
N=${#VARIANT_LIST[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < N; k++)); do
        v=${VARIANT_LIST[$(((k + r - 1) % N))]}
        # Fresh: 32 concurrent big downloads on a process that has done nothing else.
        start_gateway "$v"
        IDLE[$v]+="$(kib "$GW_PID" VmRSS) "
        phase "$v fresh-32" burst 32 "$GW/104/artifacts" "$BIG"
        stop_pid "$GW_PID"
        # After a mixed warm-up: 256 downloads, every decoder, metadata and logs; then 1
        # and 32 big downloads.
        start_gateway "$v"
        phase "$v 256" burst 256 "$GW/103/artifacts" "$MID"
        for m in "${METHODS[@]}"; do
            phase "$v decode-$m" burst 32 "$GW/101/artifacts/$m.txt" "$(entry_size "$m")"
        done
        metadata
        phase "$v warm-1" burst 1 "$GW/104/artifacts" "$BIG"
        phase "$v warm-32" burst 32 "$GW/104/artifacts" "$BIG"
        PEAK["$v threads"]+="$(kib "$GW_PID" Threads) "
        PEAK["$v rss-after"]+="$(kib "$GW_PID" VmRSS) "
        log "round $r $v: peak RSS fresh-32 $(mib "$(awk '{print $NF}' <<<"${PEAK["$v fresh-32"]}")") MiB, warm-32 $(mib "$(awk '{print $NF}' <<<"${PEAK["$v warm-32"]}")") MiB"
        stop_pid "$GW_PID"
        GW_PID=""
    done
done

# --- soak ------------------------------------------------------------------------------------------
SOAK=()
if ((SOAK_SECS > 0)); then
    v=$SOAK_VARIANT
    start_gateway "$v"
    log "soak: $SOAK_SECS s of mixed traffic on $v (pid $GW_PID)"
    deadline=$(($(date +%s) + SOAK_SECS))
    next_sample=$(date +%s)
    while (($(date +%s) < deadline)); do
        for ((i = 0; i < 8; i++)); do
            curl -s -o /dev/null --max-time 120 "$GW/103/artifacts" &
            curl -s -o /dev/null --max-time 120 "$GW/101/artifacts/${METHODS[$((RANDOM % ${#METHODS[@]}))]}.txt" &
            curl -s -o /dev/null --max-time 30 "$GW/104" &
            curl -s -o /dev/null --max-time 30 "$GW/104/trace" &
        done
        curl -s -o /dev/null --max-time 120 -r 0-1048575 "$GW/104/artifacts" &
        wait_pids
        if (($(date +%s) >= next_sample)); then
            SOAK+=("$(($(date +%s) - deadline + SOAK_SECS)):$(kib "$GW_PID" VmRSS)")
            next_sample=$((next_sample + 30))
        fi
    done
    SOAK+=("end:$(kib "$GW_PID" VmRSS) hwm:$(kib "$GW_PID" VmHWM)")
fi

# --- report ---------------------------------------------------------------------------------------
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
{
    echo
    echo "== results =="
    cat "$SCRATCH/machine.txt"
    echo "archives: ${BIG_MB} MiB and ${MID_MB} MiB (incompressible), methods archive: ${DECODE_MB} MiB of text per entry (deflate64: 7-Zip's fixture entry)"
    echo "peak RSS (VmHWM, reset before each phase), MiB; median of $ROUNDS passes per build (each pass: min..max in brackets)"
    printf '%-22s' "phase"
    for v in "${VARIANT_LIST[@]}"; do printf '%-22s' "$v"; done
    echo
    rows=("idle" "fresh-32" "256" "warm-1" "warm-32")
    for m in "${METHODS[@]}"; do rows+=("decode-$m"); done
    rows+=("rss-after" "threads")
    for row in "${rows[@]}"; do
        printf '%-22s' "$row"
        for v in "${VARIANT_LIST[@]}"; do
            if [[ $row == idle ]]; then vals=${IDLE[$v]}; else vals=${PEAK["$v $row"]}; fi
            if [[ $row == threads ]]; then
                printf '%-22s' "$(median <<<"$vals") [$(tr ' ' '\n' <<<"$vals" | grep . | sort -g | sed -n '1p;$p' | paste -sd.)]"
            else
                lo=$(tr ' ' '\n' <<<"$vals" | grep . | sort -g | head -1)
                hi=$(tr ' ' '\n' <<<"$vals" | grep . | sort -g | tail -1)
                printf '%-22s' "$(mib "$(median <<<"$vals")") [$(mib "$lo")..$(mib "$hi")]"
            fi
        done
        echo
    done
    if ((${#SOAK[@]})); then
        echo "soak ($SOAK_VARIANT, $SOAK_SECS s): VmRSS KiB by second: ${SOAK[*]}"
    fi
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
