# shellcheck shell=bash disable=SC2154 # sourced by run-peers.sh, whose settings it uses
# The "threads" section of bench/run-peers.sh (14): a loop per core. Sourced by
# run-peers.sh after its settings and helpers; run_threads_section runs it.
# tulip-echo-server --threads N (a ServerGroup: N loops, each with its own
# SO_REUSEPORT listener on the port) against N single-threaded epoll floors
# sharing a port the same way (a process per core), each driven by N load
# generators at once. The servers are confined to cores 0..N-1, load generator
# i is pinned to core N+i; with fewer than 2N cores nothing is pinned, and
# machine.txt says so. Self-contained: its own ports, servers and records.
threads_port=$((base_port + 30))
threads_floor_port=$((base_port + 31))
threads_size=1024
case "$mode" in
  smoke) threads_concurrencies=(10) ;;
  *) threads_concurrencies=(10 64) ;;
esac

listeners_on() { # port -> how many sockets listen on it (/proc/net/tcp, state 0A)
  awk -v port="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == port' \
    /proc/net/tcp | wc -l
}

wait_for_listeners() { # port count pid...: until `count` sockets listen on the port
  local port=$1 count=$2 pid i
  shift 2
  for i in $(seq 200); do
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null || return 1; done
    [ "$(listeners_on "$port")" -ge "$count" ] && return 0
    sleep 0.05
  done
  return 1
}

stop_pids() { # pid...: SIGTERM, wait, and forget them
  local pid kept=() p
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
  for p in "${started[@]}"; do [[ " $* " == *" $p "* ]] || kept+=("$p"); done
  started=("${kept[@]}")
}

# Runs the N load generators at once against one server and records their sum:
# requests/s add up; each load generator saw the whole server's CPU over its
# window, so the server's CPU per request is the mean CPU rate over the total rate.
threads_case() { # peer port rep conns [server-pid]
  local peer=$1 port=$2 rep=$3 conns=$4 pid=${5:-} i files=() pids=() line
  for i in $(seq 0 $((threads - 1))); do
    files+=("$out/raw/threads-$peer-C$conns-rep$rep-$i.txt")
    # shellcheck disable=SC2086 # an empty pin expands to nothing
    ${threads_load_pins[$i]} "$bin/bench-loadgen" --mode pingpong --port "$port" \
      ${pid:+--server-pid "$pid"} --conns "$conns" --size "$threads_size" --warmup "$warmup" \
      --duration "$duration" >"${files[$i]}" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || {
      echo "run-peers.sh: a load generator failed against $peer (threads C=$conns)" >&2
      exit 1
    }
  done
  line=$(cat "${files[@]}" | awk '
    { for (f = 1; f <= NF; ++f) { split($f, kv, "="); v[kv[1]] = kv[2] }
      rate += v["req_per_s"]; share = v["loadgen_cpu_share"] > share ? v["loadgen_cpu_share"] : share
      if ("server_cpu_s" in v) { cpu_rate += v["server_cpu_s"] / v["seconds"]; cpu_share += v["server_cpu_share"] }
      delete v; ++n }
    END {
      printf "req_per_s=%.1f loadgen_cpu_share=%.3f", rate, share
      if (cpu_rate > 0) printf " server_cpu_share=%.3f server_cpu_us_per_req=%.3f", cpu_share / n, cpu_rate / n * 1e6 / rate
    }')
  record threads "N=$threads S=$threads_size C=$conns" "$peer" "$rep" "$line"
  progress "threads N=$threads C=$conns x $threads $peer rep $rep/$reps: $(value_of req_per_s "$line") req/s, server $(value_of server_cpu_us_per_req "$line") us/req on $(value_of server_cpu_share "$line") cores"
}

run_threads_section() {
  local n=$threads i server_pin=() tulip_pid floor_pids=() rep conns
  threads_load_pins=()
  if [ "$(nproc)" -ge $((2 * n)) ]; then
    server_pin=(taskset -c "0-$((n - 1))")
    for i in $(seq 0 $((n - 1))); do threads_load_pins+=("taskset -c $((n + i))"); done
    echo "threads: N=$n: servers on cores 0-$((n - 1)), load generators on cores $n-$((2 * n - 1))" >>"$out/machine.txt"
  else
    for i in $(seq 0 $((n - 1))); do threads_load_pins+=(""); done
    echo "threads: N=$n: nothing pinned ($(nproc) cores, $((2 * n)) needed)" >>"$out/machine.txt"
  fi
  for port in "$threads_port" "$threads_floor_port"; do
    if accepts_connections "$port"; then
      echo "run-peers.sh: $port already accepts connections (another run?); set TULIP_BENCH_PORT to another base port" >&2
      exit 1
    fi
  done
  "${server_pin[@]}" "$build/tulip-echo-server" --threads "$n" --keep-open --quiet \
    --port "$threads_port" --backlog 1024 $tulip_epoll >>"$out/raw/server-threads-tulip.log" 2>&1 &
  tulip_pid=$!
  started+=("$tulip_pid")
  for i in $(seq 0 $((n - 1))); do
    "${server_pin[@]}" "$bin/bench-epoll-echo-server" --port "$threads_floor_port" --backlog 1024 \
      --reuse-port >>"$out/raw/server-threads-epoll.log" 2>&1 &
    floor_pids+=($!)
    started+=($!)
  done
  # Every listener up before the first connection, or the first ones take them all.
  wait_for_listeners "$threads_port" "$n" "$tulip_pid" &&
    wait_for_listeners "$threads_floor_port" "$n" "${floor_pids[@]}" || {
    echo "run-peers.sh: the threads section's servers did not start, see $out/raw/server-threads-*.log" >&2
    exit 1
  }
  for rep in $(seq "$reps"); do
    for conns in "${threads_concurrencies[@]}"; do
      threads_case tulip "$threads_port" "$rep" "$conns" "$tulip_pid"
      # One floor process's CPU is the floor's only at N = 1.
      if [ "$n" -eq 1 ]; then
        threads_case epoll "$threads_floor_port" "$rep" "$conns" "${floor_pids[0]}"
      else
        threads_case epoll "$threads_floor_port" "$rep" "$conns"
      fi
    done
  done
  stop_pids "$tulip_pid" "${floor_pids[@]}"
}
