#!/usr/bin/env bash
# Load-and-fault run (not part of CI): builds the gateway and the driver in release mode, then
# runs benches/load/fault for DURATION_SECS (default 120) at CONNECTIONS (default 64).
# Method and figures: benches/load/README.md, "Load and faults". Exits non-zero if any byte
# was delivered wrong or the gateway died.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bin artifact-gateway
cargo build --release --manifest-path benches/load/fault/Cargo.toml
GATEWAY_BIN="$PWD/target/release/artifact-gateway" \
  benches/load/fault/target/release/artifact-gateway-load-fault
