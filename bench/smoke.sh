#!/usr/bin/env bash
# Smoke check of the peer benchmark runner (not a benchmark): runs
# bench/run-peers.sh --smoke into a temporary directory and checks that
# results.csv has rows for every peer. Takes a few seconds once built.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d "${TMPDIR:-/tmp}/tulip-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
bench/run-peers.sh --smoke --out "$out" 2>"$out/progress.log" || {
  cat "$out/progress.log" >&2
  echo "smoke.sh: bench/run-peers.sh --smoke failed" >&2
  exit 1
}
rows=$(($(wc -l <"$out/results.csv") - 1))
[ "$rows" -gt 0 ] || { echo "smoke.sh: results.csv has no rows" >&2; exit 1; }
for peer in epoll tulip libuv asio uvloop asyncio; do
  grep -q "^echo,[^,]*,$peer," "$out/results.csv" || {
    echo "smoke.sh: results.csv has no echo row for $peer" >&2
    exit 1
  }
done
[ -s "$out/summary.md" ] || { echo "smoke.sh: no summary.md" >&2; exit 1; }
echo "smoke.sh: ok ($rows result rows)"
