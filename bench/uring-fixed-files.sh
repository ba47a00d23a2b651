#!/usr/bin/env bash
# Registered files (io_uring_register_files, IOSQE_FIXED_FILE) on the liburing
# echo floor: bench-uring-echo-server against itself with --fixed-files, the
# ping-pong workload at 1 KiB, server CPU (perf's task-clock) and system calls
# for a fixed number of requests, at 1, 10 and 64 connections, the two
# variants interleaved in every repetition; medians. bench/README.md
# ("io_uring", "Registered files") records a run and the decision it led to.
#
# Usage: bench/uring-fixed-files.sh [--reps N] [--requests N]
# Builds the two C programs it needs (the floor and the load generator) with
# cc into a scratch directory; needs liburing-dev and perf.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
requests=50000
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    *) echo "usage: bench/uring-fixed-files.sh [--reps N] [--requests N]" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "uring-fixed-files.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tulip-fixed-files.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cc -std=gnu11 -O2 -o "$scratch/server" bench/peers/uring_echo_server.c -luring
cc -std=gnu11 -O2 -o "$scratch/loadgen" bench/loadgen/loadgen.c
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
      "${pin_server[@]}" "$scratch/server" --port "$port" --backlog 1024 ${spec#*=} >"$scratch/server.log" 2>&1 &
      pid=$!
      for _ in $(seq 100); do
        ss -ltn "sport = :$port" | grep -q LISTEN && break
        sleep 0.05
      done
      "${pin_load[@]}" "$scratch/loadgen" --mode pingpong --port "$port" --conns "$conns" --size 1024 \
        --requests 5000 >/dev/null
      perf stat -x, -e task-clock,raw_syscalls:sys_enter -p "$pid" -o "$scratch/perf" &
      perf_pid=$!
      sleep 0.2 # perf attaches
      "${pin_load[@]}" "$scratch/loadgen" --mode pingpong --port "$port" --conns "$conns" --size 1024 \
        --requests "$requests" >/dev/null
      kill -INT "$perf_pid"
      wait "$perf_pid" || true
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      echo "$rep $conns $name $(grep task-clock "$scratch/perf" | cut -d, -f1)" \
        "$(grep sys_enter "$scratch/perf" | cut -d, -f1) $requests"
    done
  done
done | tee "$scratch/raw"

# Medians per connection count and variant: µs of server CPU and system calls per request.
echo
echo "conns variant us_cpu_per_request syscalls_per_request (medians of $reps)"
awk '$1 ~ /^[0-9]+$/ { key = $2 " " $3; n[key]++; cpu[key, n[key]] = $4 * 1000 / $6; sys[key, n[key]] = $5 / $6 }
  function median(a, key, count,   i, j, t, v) {
    for (i = 1; i <= count; i++) v[i] = a[key, i]
    for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return count % 2 ? v[(count + 1) / 2] : (v[count / 2] + v[count / 2 + 1]) / 2
  }
  END { for (key in n) printf "%s %.3f %.3f\n", key, median(cpu, key, n[key]), median(sys, key, n[key]) }' \
  "$scratch/raw" | sort -n
