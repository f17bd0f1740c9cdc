# Shared by the load scripts in this directory (sourced, not run): progress and errors,
# installing missing tools, free ports, readiness waits, stopping what was started.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# install_missing COMMAND:PACKAGE...: apt-get install the packages whose command is missing.
install_missing() {
    local pair need=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${pair%%:*} ]] || need+=("${pair#*:}")
    done
    ((${#need[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "need root to install: ${need[*]}"
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
}

stop_pid() { # stop_pid PID: TERM, wait up to 10 s, then KILL
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

free_port() { # a port nothing listens on: the kernel's pick, or a probe without python
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
    local p i
    for ((p = 20000 + RANDOM % 20000, i = 0; i < 200; i++, p++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    die "no free port"
}

wait_http() { # wait_http URL [CURL-ARGS...]: until it answers 200, at most 15 s (-I: a HEAD)
    local url=$1 i
    shift
    for ((i = 0; i < 150; i++)); do
        [[ $(curl -s -o /dev/null "$@" -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]] && return 0
        sleep 0.1
    done
    die "$url did not answer 200 within 15 s"
}
