#!/usr/bin/env bash
# The Redis example's pipelined throughput beside redis-benchmark's, on one
# redis-server started here on a free loopback port (bench/README.md).
# Usage: bench/redis-pipeline.sh [REPETITIONS]   (default 5; after scripts/build.sh release)
# Each repetition runs, in turn: redis-benchmark -P 16 (its default 50
# connections), redis-benchmark -c 1 -P 16 (one connection, like the example),
# and the example with --pipeline 16; 100,000 SETs then 100,000 GETs each.
# Prints every figure, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
repetitions=${1:-5}
client=build-release/tulip-example-redis-client
[ -x "$client" ] || { echo "redis-pipeline.sh: build first: scripts/build.sh release" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tulip-redis-bench.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
server=$!
trap 'kill $server; wait $server || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# "SET: 606060.56 requests per second, ..." -> "SET 606060.56" (-q redraws progress with \r).
rates() { tr '\r' '\n' | sed -n 's/^ *\(SET\|GET\): \([0-9.]*\) requests per second.*/\1 \2/p'; }
for repetition in $(seq "$repetitions"); do
  redis-benchmark -p "$port" -P 16 -t set,get -n 100000 -q | rates | sed 's/^/redis-benchmark-c50 /'
  redis-benchmark -p "$port" -c 1 -P 16 -t set,get -n 100000 -q | rates | sed 's/^/redis-benchmark-c1 /'
  "$client" --port "$port" --pipeline 16 --count 100000 | rates | sed 's/^/tulip-example-c1 /'
done | tee "$work/all.txt"
echo "--- medians of $repetitions (requests per second)"
sort -k1,1 -k2,2 -k3,3g "$work/all.txt" | awk '
  { key = $1 " " $2; values[key, ++n[key]] = $3 }
  END { for (key in n) print key, values[key, int((n[key] + 1) / 2)] }' | sort
