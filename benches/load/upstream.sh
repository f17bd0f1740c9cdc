#!/usr/bin/env bash
# Storage mode vs upstream mode on the same S3 server and the same sample backend (not part
# of CI): builds the gateway (unless SKIP_BUILD=1) and the driver (benches/load/upstream,
# its own crate and workspace) in release mode, then runs the driver, which starts the
# gateways as child processes and prints a Markdown report on stdout (progress on stderr).
# Method and figures: benches/load/README.md, "Storage mode vs upstream mode".
# Knobs (environment): ROUNDS=5 COLD_PER_ROUND=40 ENTRIES=2000 WARM_SECS=3 WARM_CONCS="1 16"
# ARCHIVE_MB=200 ARCHIVE_CONCS="1 4" BACKEND_SAMPLES=200 NO_CACHE=1 SKIP_BUILD=0 KEEP_SCRATCH=0.
# Exits non-zero if any answer failed its check or a gateway died.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  nice cargo build --release --bin artifact-gateway >&2
fi
nice cargo build --release --manifest-path benches/load/upstream/Cargo.toml >&2
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' + uncommitted changes'); nproc $(nproc); uptime:$(uptime)" >&2
GATEWAY_BIN="$PWD/target/release/artifact-gateway" \
  timeout 900 benches/load/upstream/target/release/artifact-gateway-load-upstream
echo "# end: uptime:$(uptime)" >&2
