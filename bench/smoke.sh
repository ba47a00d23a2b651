#!/usr/bin/env bash
# Smoke check of the peer benchmark runners (not a benchmark): runs
# bench/run-peers.sh --smoke, and bench/run-tls.sh --smoke when tulip is built
# with TLS, into temporary directories and checks that each results.csv has
# rows for every peer. Takes a few seconds once built.
set -euo pipefail
cd "$(dirname "$0")/.."

# The runners build their peers into the test command's release tree when there
# is one, rather than compiling the library a further time in build-bench/.
if [ -z "${TULIP_BENCH_BUILD:-}" ] && grep -qs '^CMAKE_BUILD_TYPE:STRING=Release$' build-release/CMakeCache.txt; then
  export TULIP_BENCH_BUILD=build-release
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/tulip-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
bench/run-peers.sh --smoke --out "$out" 2>"$out/progress.log" || {
  cat "$out/progress.log" >&2
  echo "smoke.sh: bench/run-peers.sh --smoke failed" >&2
  exit 1
}
rows=$(($(wc -l <"$out/results.csv") - 1))
[ "$rows" -gt 0 ] || { echo "smoke.sh: results.csv has no rows" >&2; exit 1; }
expect() { # workload peer...: each peer has a row of the workload, unless the runner skipped it
  local workload=$1 peer
  shift
  for peer in "$@"; do
    grep -q "^skipped: $peer " "$out/machine.txt" && continue
    grep -q "^$workload,[^,]*,$peer," "$out/results.csv" || {
      echo "smoke.sh: results.csv has no $workload row for $peer" >&2
      exit 1
    }
  done
}
expect echo epoll tulip libuv asio uvloop asyncio
expect coro tulip asio uvloop asyncio
expect streams tulip tulip-streams asio-coro uvloop-streams asyncio-streams
expect unix epoll tulip libuv
expect udp epoll tulip libuv asio uvloop asyncio
expect sendfile floor tulip tulip-buffered
# tulip's Python loop, where the build has its package (python3-dev installed).
if ! grep -q "^skipped: python section" "$out/machine.txt"; then
  expect py-echo epoll tulip-py uvloop asyncio
  expect py-streams epoll tulip-py-streams uvloop-streams asyncio-streams
  expect py-loop tulip-py uvloop asyncio
  expect py-churn tulip-py uvloop asyncio
fi
[ -s "$out/summary.md" ] || { echo "smoke.sh: no summary.md" >&2; exit 1; }

# The TLS runner, where OpenSSL's headers are installed (scripts/install-deps.sh
# installs them; without them the TLS peers are not built).
tls_rows=0
if [ -f /usr/include/openssl/ssl.h ]; then
  mkdir -p "$out/tls"
  bench/run-tls.sh --smoke --out "$out/tls" 2>"$out/tls-progress.log" || {
    cat "$out/tls-progress.log" >&2
    echo "smoke.sh: bench/run-tls.sh --smoke failed" >&2
    exit 1
  }
  tls_rows=$(($(wc -l <"$out/tls/results.csv") - 1))
  for peer in epoll tulip asio uvloop asyncio; do
    for workload in tls-echo tls-handshake; do
      grep -q "^$workload,[^,]*,$peer," "$out/tls/results.csv" || {
        echo "smoke.sh: the TLS results.csv has no $workload row for $peer" >&2
        exit 1
      }
    done
  done
  [ -s "$out/tls/summary.md" ] || { echo "smoke.sh: no TLS summary.md" >&2; exit 1; }
fi
echo "smoke.sh: ok ($rows result rows, $tls_rows TLS result rows)"
