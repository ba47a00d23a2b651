#!/usr/bin/env bash
# The io_uring cost table of bench/README.md: server CPU (perf's task-clock)
# and system calls for a fixed number of 1 KiB ping-pong requests, at 10 and
# 64 connections, for the epoll floor, the liburing floor and tulip on each
# backend, one server at a time, repetitions interleaved. Counting a fixed
# number of requests (not a fixed time) keeps the figures comparable when the
# machine is busy; only ratios and system-call counts mean much then.
#
# Usage: bench/uring-cost.sh [--reps N] [--requests N] [--baseline PATH]
#   --baseline PATH  also measure another tulip-echo-server (e.g. one built
#                    from main) on io_uring, as "tulip-uring-baseline"
# Needs the programs run-peers.sh builds (bench/run-peers.sh --only echo
# --smoke builds them into build-bench/, or TULIP_BENCH_BUILD=DIR) and perf.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/sections/server_cost.sh
source bench/sections/server_cost.sh

reps=3
requests=50000
baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "usage: bench/uring-cost.sh [--reps N] [--requests N] [--baseline PATH]" >&2; exit 2 ;;
  esac
done
build=${TULIP_BENCH_BUILD:-build-bench}  # where run-peers.sh builds
bin=$build/bench
for program in "$bin/bench-loadgen" "$bin/bench-epoll-echo-server" "$bin/bench-uring-echo-server" \
  "$build/tulip-echo-server"; do
  [ -x "$program" ] || { echo "uring-cost.sh: $program is missing (run bench/run-peers.sh --only echo --smoke)" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "uring-cost.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }

tulip="$build/tulip-echo-server --keep-open --quiet --backlog 1024"
servers=("epoll=$bin/bench-epoll-echo-server --backlog 1024"
  "uring=$bin/bench-uring-echo-server --backlog 1024"
  "tulip=$tulip --backend epoll"
  "tulip-uring=$tulip --backend io_uring")
[ -n "$baseline" ] && servers+=("tulip-uring-baseline=$baseline --keep-open --quiet --backlog 1024 --backend io_uring")
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0) pin_load=(taskset -c 1); else pin_server=() pin_load=(); fi
port=${TULIP_BENCH_PORT:-29300}
loadgen=$bin/bench-loadgen
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tulip-uring-cost.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

echo "rep conns server cpu_ms syscalls requests"
for rep in $(seq "$reps"); do
  for conns in 10 64; do
    for spec in "${servers[@]}"; do
      name=${spec%%=*}
      port=$((port + 1))
      # shellcheck disable=SC2086 # the command line is split on purpose
      measure_server_cost "$rep $conns $name" "$port" "$conns" "$requests" ${spec#*=}
    done
  done
done
