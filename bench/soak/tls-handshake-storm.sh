#!/usr/bin/env bash
# The TLS handshake storm at full size: builds tulip-tls-storm (Release) and
# runs 10,000 TLS connections (1,000 handshakes in flight at a time) three times on
# one loop, each a handshake, one echoed message and close_notify both ways,
# then 2,000 connections whose handshakes all fail (the client distrusts the
# server). Each run checks that no descriptor, server connection or memory
# per connection is left behind (see docs/soak.md). The test suite runs 1,000
# (tests/tls/tls_fault_test.cpp); this is the size the issue asks for, too
# slow for the test command under the sanitizers.
# Usage: bench/soak/tls-handshake-storm.sh [connections]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh
build=build-release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTULIP_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target tulip-tls-storm
"$build/bench/soak/tulip-tls-storm" --connections "${1:-10000}"
"$build/bench/soak/tulip-tls-storm" --connections 2000 --fail
