#!/usr/bin/env bash
# The TLS soak: builds tulip-soak (Release) and runs it with --tls for ten
# minutes: 1,000 long-lived TLS connections to tulip-echo-server --tls, each
# echoing a message every 0.5 s, beside a churn of new TLS connections (100 a
# second asked, 64 at most in flight: a full handshake, one echoed message,
# close_notify both ways, close), both processes' resident memory and
# descriptors sampled every 2 s. It fails if either grows (see docs/soak.md,
# "The TLS soak"). With --python it then puts the same load, for three minutes
# each, on Python's asyncio and uvloop ssl= servers (bench/soak/py_soak_server.py),
# for comparison. Not part of the test command: it takes 10 to 17 minutes.
# Usage: bench/soak/tls-soak.sh [--python] [seconds]   (default 600)
set -euo pipefail
cd "$(dirname "$0")/../.."

python=no
if [ "${1:-}" = "--python" ]; then
  python=yes
  shift
fi
seconds=${1:-600}
extra=()
[ "$python" = yes ] && extra=(python3-uvloop)
scripts/install-deps.sh "${extra[@]}"
build=build-soak
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTULIP_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target tulip-soak
load=(--tls --interval 0.5 --churn 100)
status=0
"$build/bench/soak/tulip-soak" "${load[@]}" --seconds "$seconds" || status=$?
if [ "$python" = yes ]; then
  for loop in asyncio uvloop; do
    echo "--- the same load on Python's $loop ssl= server, 180 s"
    "$build/bench/soak/tulip-soak" "${load[@]}" --seconds 180 \
      --server bench/soak/py_soak_server.py --server-arg "--loop=$loop" || true
  done
fi
exit "$status"
