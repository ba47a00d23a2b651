# shellcheck shell=bash disable=SC2154 # sourced; the caller sets pin_server, pin_load, loadgen, scratch
# Sourced by bench/uring-cost.sh and bench/uring-fixed-files.sh: one echo
# server's CPU (perf's task-clock) and system calls over a fixed number of
# 1 KiB ping-pong requests, and the medians of such rows. The caller sets
# pin_server and pin_load (arrays: taskset or nothing), loadgen (the
# bench-loadgen program) and scratch (a directory of its own).

# measure_server_cost LABEL PORT CONNS REQUESTS COMMAND...: starts COMMAND
# --port PORT, warms it up with 5,000 requests, then prints one row,
# "LABEL cpu_ms syscalls REQUESTS", for REQUESTS requests on CONNS connections.
measure_server_cost() {
  local label=$1 port=$2 conns=$3 requests=$4
  shift 4
  "${pin_server[@]}" "$@" --port "$port" >"$scratch/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    ss -ltn "sport = :$port" | grep -q LISTEN && break
    sleep 0.05
  done
  "${pin_load[@]}" "$loadgen" --mode pingpong --port "$port" --conns "$conns" --size 1024 \
    --requests 5000 >/dev/null
  perf stat -x, -e task-clock,raw_syscalls:sys_enter -p "$pid" -o "$scratch/perf" &
  local perf_pid=$!
  sleep 0.2 # perf attaches
  "${pin_load[@]}" "$loadgen" --mode pingpong --port "$port" --conns "$conns" --size 1024 \
    --requests "$requests" >/dev/null
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$label $(grep task-clock "$scratch/perf" | cut -d, -f1)" \
    "$(grep sys_enter "$scratch/perf" | cut -d, -f1) $requests"
}

# print_cost_medians FILE: for rows "rep conns name cpu_ms syscalls requests",
# the medians per connection count and name of µs of server CPU and system
# calls per request.
print_cost_medians() {
  awk '$1 ~ /^[0-9]+$/ { key = $2 " " $3; n[key]++; cpu[key, n[key]] = $4 * 1000 / $6; sys[key, n[key]] = $5 / $6 }
    function median(a, key, count,   i, j, t, v) {
      for (i = 1; i <= count; i++) v[i] = a[key, i]
      for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return count % 2 ? v[(count + 1) / 2] : (v[count / 2] + v[count / 2 + 1]) / 2
    }
    END { for (key in n) printf "%s %.3f %.3f\n", key, median(cpu, key, n[key]), median(sys, key, n[key]) }' \
    "$1" | sort -n
}
