#!/usr/bin/env bash
# Registered files (io_uring_register_files, IOSQE_FIXED_FILE) on the liburing
# echo floor: bench-uring-echo-server against itself with --fixed-files, the
# ping-pong workload at 1 KiB, server CPU (perf's task-clock) and system calls
# for a fixed number of requests, at 1, 10 and 64 connections, the two
# variants interleaved in every repetition; medians. bench/README.md
# ("io_uring", "Registered files") records a run and the decision it led to.
#
# Usage: bench/uring-fixed-files.sh [--reps N] [--requests N]
# Needs the programs run-peers.sh builds (bench/run-peers.sh --only echo
# --smoke builds them into build-bench/, or TULIP_BENCH_BUILD=DIR) and perf.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/sections/server_cost.sh
source bench/sections/server_cost.sh

reps=5
requests=50000
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    *) echo "usage: bench/uring-fixed-files.sh [--reps N] [--requests N]" >&2; exit 2 ;;
  esac
done
bin=${TULIP_BENCH_BUILD:-build-bench}/bench # where run-peers.sh builds
loadgen=$bin/bench-loadgen
for program in "$loadgen" "$bin/bench-uring-echo-server"; do
  [ -x "$program" ] || { echo "uring-fixed-files.sh: $program is missing (run bench/run-peers.sh --only echo --smoke)" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "uring-fixed-files.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tulip-fixed-files.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0) pin_load=(taskset -c 1); else pin_server=() pin_load=(); fi
port=${TULIP_BENCH_PORT:-29400}
variants=("plain=" "fixed=--fixed-files")

echo "rep conns variant cpu_ms syscalls requests"
for rep in $(seq "$reps"); do
  for conns in 1 10 64; do
    # Alternate which variant goes first.
    order=("${variants[@]}")
    if [ $(((rep + conns) % 2)) -eq 1 ]; then order=("${variants[1]}" "${variants[0]}"); fi
    for spec in "${order[@]}"; do
      name=${spec%%=*}
      port=$((port + 1))
      # shellcheck disable=SC2086 # the flag is split on purpose
      measure_server_cost "$rep $conns $name" "$port" "$conns" "$requests" \
        "$bin/bench-uring-echo-server" --backlog 1024 ${spec#*=}
    done
  done
done | tee "$scratch/raw"

# Medians per connection count and variant: µs of server CPU and system calls per request.
echo
echo "conns variant us_cpu_per_request syscalls_per_request (medians of $reps)"
print_cost_medians "$scratch/raw"
