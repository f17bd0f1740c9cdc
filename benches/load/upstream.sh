#!/usr/bin/env bash
# The gateway on S3, in storage mode and in upstream mode, against its peers on the same S3
# server and the same sample backend (not part of CI): nginx proxy_pass and python
# remotezip given the backend's presigned URLs. Builds the gateway (unless SKIP_BUILD=1) and
# the driver (benches/load/upstream, its own crate and workspace) in release mode, then runs
# the driver, which starts the gateways and nginx as child processes and prints a Markdown
# report on stdout (progress on stderr).
# Method and figures: benches/load/README.md, "S3: storage mode, upstream mode and peers".
# Knobs (environment): ROUNDS=5 COLD_PER_ROUND=40 ENTRIES=2000 WARM_SECS=3 WARM_CONCS="1 16"
# ARCHIVE_MB=200 ARCHIVE_CONCS="1 4" TEXT_MB=100 RSS_CONCS="1 32" BACKEND_SAMPLES=200
# NO_CACHE=1 PEERS=1 S3_RELAY=1 SKIP_BUILD=0 KEEP_SCRATCH=0.
# Installs (as root, when missing and PEERS=1): nginx, python3 and pip's remotezip.
# Exits non-zero if any answer failed its check or a server died.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/load/lib.sh
. benches/load/lib.sh
if [ "${PEERS:-1}" != 0 ]; then
  install_missing nginx:nginx python3:python3
  # A Debian python3 refuses pip's installs outside a venv (PEP 668) unless told.
  python3 -c 'import remotezip' 2>/dev/null || python3 -m pip install --quiet remotezip \
    || python3 -m pip install --quiet --break-system-packages remotezip
  export NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  nice cargo build --release --bin artifact-gateway >&2
fi
nice cargo build --release --manifest-path benches/load/upstream/Cargo.toml >&2
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' + uncommitted changes'); nproc $(nproc); uptime:$(uptime)" >&2
GATEWAY_BIN="$PWD/target/release/artifact-gateway" \
  timeout 1500 benches/load/upstream/target/release/artifact-gateway-load-upstream
echo "# end: uptime:$(uptime)" >&2
