# shellcheck shell=bash disable=SC2154 # sourced by run-peers.sh, whose settings it uses
# The "python" section of bench/run-peers.sh: tulip's Python loop (the `tulip`
# package, `tulip._core`) beside uvloop and asyncio's own loop, in one run.
# Sourced by run-peers.sh after its settings and helpers; self-contained so that
# the other sections and this one change independently. Records:
#   py-echo     asyncio.Protocol echo servers on asyncio, uvloop and tulip, and the
#               epoll floor (C) they are measured against, ping-pong S × C
#   py-streams  the same with asyncio's streams (start_server, read/write/drain)
#   py-loop     bench/peers/py_loop_bench.py on the three loops
#   py-coro     bench/peers/py_coro_bench.py on the three loops
#   py-churn    the seed's client shape (bench/peers/py_churn_client.py) against the
#               epoll server; tulip's under `python3 -m tulip`, unchanged
# Peers: "epoll" (the floor), "uvloop", "asyncio", "tulip-py" (and "-streams").
# Every tulip-py run imports the package of this build tree (PYTHONPATH), and
# runs on the backend tulip.EventLoop picks: epoll unless TULIP_BACKEND is set
# (docs/python.md says why); TULIP_BACKEND=io_uring in the environment of the
# runner measures the other.

python_echo_peers=(epoll tulip-py uvloop asyncio)
python_streams_peers=(epoll tulip-py-streams uvloop-streams asyncio-streams)
python_loop_peers=(tulip-py uvloop asyncio)
python_base_port=$((base_port + 50))
python_package_dir=$build/python

python_server_command() { # peer port -> the command line of its echo server
  local echo_server="bench/peers/py_echo_server.py --port $2 --backlog 1024"
  case "$1" in
    epoll) echo "$bin/bench-epoll-echo-server --port $2 --backlog 1024" ;;
    tulip-py) echo "$python $echo_server --loop tulip" ;;
    uvloop) echo "$python $echo_server --loop uvloop" ;;
    asyncio) echo "$python $echo_server --loop asyncio" ;;
    tulip-py-streams) echo "$python $echo_server --loop tulip --streams" ;;
    uvloop-streams) echo "$python $echo_server --loop uvloop --streams" ;;
    asyncio-streams) echo "$python $echo_server --loop asyncio --streams" ;;
  esac
}

python_loop_name() { # peer -> the --loop of the Python peers
  case "$1" in
    tulip-py) echo tulip ;;
    *) echo "$1" ;;
  esac
}

start_python_server() { # key peer port: starts it pinned, sets server_pid[key]
  local key=$1 peer=$2 port=$3
  if accepts_connections "$port"; then
    echo "run-peers.sh: $port already accepts connections (another run?); set TULIP_BENCH_PORT to another base port" >&2
    exit 1
  fi
  # shellcheck disable=SC2046 # the command line is split on purpose
  PYTHONPATH=$python_package_dir "${pin_server[@]}" $(python_server_command "$peer" "$port") \
    >>"$out/raw/server-python-$peer.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  # shellcheck disable=SC2004 # server_pid is run-peers.sh's associative array
  server_pid[$key]=$pid
  wait_for_server "$port" "$pid" || {
    echo "run-peers.sh: the $peer server did not start, see $out/raw/server-python-$peer.log" >&2
    exit 1
  }
}

# One repetition of the ping-pong matrix against servers at python_port[key].
python_pingpong_rep() { # workload rep peer...
  local workload=$1 rep=$2 size conns peer line case_name
  shift 2
  for size in "${sizes[@]}"; do
    for conns in "${concurrencies[@]}"; do
      case_name="S=$size C=$conns"
      for peer in "$@"; do
        line=$(loadgen --mode pingpong --port "${python_port[$workload/$peer]}" \
          --server-pid "${server_pid[$workload/$peer]}" --conns "$conns" --size "$size" \
          --warmup "$warmup" --duration "$duration") || {
          echo "run-peers.sh: the load generator failed against $peer ($workload $case_name)" >&2
          exit 1
        }
        record "$workload" "$case_name" "$peer" "$rep" "$line"
        progress "$workload $case_name $peer rep $rep/$reps: $(value_of req_per_s "$line") req/s, server $(value_of server_cpu_us_per_req "$line") us/req, loadgen CPU $(value_of loadgen_cpu_share "$line")"
      done
    done
  done
}

python_section_steps() { # -> how many progress lines the section prints
  echo $((reps * (${#python_echo_peers[@]} + ${#python_streams_peers[@]}) * n_echo +
    reps + reps * ${#python_loop_peers[@]}))
}

run_python_section() {
  if [ ! -f "$source_dir/python/src/loop_core.cpp" ]; then
    # --commit of a revision from before tulip's Python package.
    echo "run-peers.sh: $source_dir has no Python package; the python section is skipped" >&2
    return 0
  fi
  if ! grep -q '^TULIP_BUILD_PYTHON:BOOL=ON' "$build/CMakeCache.txt"; then
    # No Python headers (Debian: python3-dev): nothing of tulip's to measure.
    echo "run-peers.sh: $build is configured without tulip's Python package (python3-dev missing?); the python section is skipped" >&2
    echo "skipped: python section (no tulip Python package in $build)" >>"$out/machine.txt"
    return 0
  fi
  cmake --build "$build" -j 2 --target tulip_python_core bench-loadgen bench-epoll-echo-server \
    >>"$out/raw/build.log" 2>&1 || {
    echo "run-peers.sh: building tulip's Python package failed (needs python3-dev), see $out/raw/build.log" >&2
    exit 1
  }
  PYTHONPATH=$python_package_dir $python -c 'import tulip' 2>>"$out/raw/build.log" || {
    echo "run-peers.sh: $python_package_dir has no importable tulip package, see $out/raw/build.log" >&2
    exit 1
  }
  local workload workload_peers peer rep port line loop_name
  declare -gA python_port=()

  # ---- 14-15: Python echo servers, Protocol and streams, every server running at once --
  port=$python_base_port
  for workload in py-echo py-streams; do
    workload_peers="python_${workload#py-}_peers[@]"
    for peer in "${!workload_peers}"; do
      python_port[$workload/$peer]=$port
      start_python_server "$workload/$peer" "$peer" "$port"
      port=$((port + 1))
    done
  done
  for rep in $(seq "$reps"); do
    python_pingpong_rep py-echo "$rep" "${python_echo_peers[@]}"
    python_pingpong_rep py-streams "$rep" "${python_streams_peers[@]}"
  done
  for workload in py-echo py-streams; do
    workload_peers="python_${workload#py-}_peers[@]"
    for peer in "${!workload_peers}"; do stop_server "$workload/$peer"; done
  done

  # ---- 16: loop and coroutine microbenchmarks from Python ------------------------------
  for rep in $(seq "$reps"); do
    for peer in "${python_loop_peers[@]}"; do
      loop_name=$(python_loop_name "$peer")
      PYTHONPATH=$python_package_dir "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py \
        --loop "$loop_name" --scale "$py_loop_scale" | plain_rows py-loop "$peer" "$rep"
      PYTHONPATH=$python_package_dir "${pin_load[@]}" "$python" bench/peers/py_coro_bench.py \
        --loop "$loop_name" --scale "$py_coro_scale" | plain_rows py-coro "$peer" "$rep"
    done
    progress "python loop and coroutine microbenchmarks rep $rep/$reps"
  done

  # ---- 17: the seed's client, churning connections against the epoll server -----------
  # tulip's under `python3 -m tulip` with the client's asyncio default: the
  # program unchanged, the loop swapped in from outside.
  port=$((python_base_port + ${#python_echo_peers[@]} + ${#python_streams_peers[@]}))
  start_python_server py-churn/epoll epoll "$port"
  for rep in $(seq "$reps"); do
    for peer in "${python_loop_peers[@]}"; do
      local client=(bench/peers/py_churn_client.py --port "$port" --duration "$churn_seconds")
      if [ "$peer" = tulip-py ]; then
        line=$(PYTHONPATH=$python_package_dir "${pin_load[@]}" "$python" -m tulip "${client[@]}" --loop asyncio)
      else
        line=$("${pin_load[@]}" "$python" "${client[@]}" --loop "$peer")
      fi || {
        echo "run-peers.sh: the $peer Python churn client failed" >&2
        exit 1
      }
      record py-churn "seed client" "$peer" "$rep" "$line"
      progress "py-churn $peer rep $rep/$reps: $(value_of conns_per_s "$line") connections/s"
    done
  done
  stop_server py-churn/epoll
}
