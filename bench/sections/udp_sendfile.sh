# shellcheck shell=bash disable=SC2154,SC2004 # sourced by run-peers.sh, whose settings (and associative server_pid) it uses
# The "udp" section of bench/run-peers.sh (10-12): UDP echo, its callgrind
# counts, then sendfile. Sourced by run-peers.sh after its settings and helpers;
# run_datagram_and_sendfile_sections runs it.
# Self-contained: their own targets, servers, ports and records; run at the end
# (run_datagram_and_sendfile_sections).
case "$mode" in
  full)
    udp_reps=$reps udp_warmup=0.3 udp_duration=1.5 udp_sizes=(64 1400) udp_senders=(1 16)
    udp_callgrind_small=2000 udp_callgrind_large=22000 sendfile_bytes=$((1 << 30)) sendfile_reps=$reps
    ;;
  quick)
    udp_reps=$reps udp_warmup=0.1 udp_duration=0.3 udp_sizes=(64 1400) udp_senders=(1 16)
    udp_callgrind_small=500 udp_callgrind_large=3500 sendfile_bytes=$((256 << 20)) sendfile_reps=$reps
    ;;
  smoke)
    udp_reps=1 udp_warmup=0.05 udp_duration=0.1 udp_sizes=(64) udp_senders=(16)
    udp_callgrind_small=0 udp_callgrind_large=0 sendfile_bytes=$((8 << 20)) sendfile_reps=1
    ;;
esac
udp_peers=(epoll tulip libuv asio uvloop asyncio)
udp_callgrind_peers=(epoll tulip libuv asio)
sendfile_peers=(floor tulip tulip-buffered)
udp_base_port=$((base_port + 20))
sendfile_port=$((base_port + 40))
udp_window_for() { # senders -> datagrams in flight per sender: 64 in flight in all
  if [ "$1" -ge 16 ]; then echo 4; else echo $((64 / $1)); fi
}
want udp && total_steps=$((total_steps + udp_reps * ${#udp_peers[@]} * ${#udp_sizes[@]} * ${#udp_senders[@]} +
  sendfile_reps * ${#sendfile_peers[@]}))
want udp && [ "$mode" != smoke ] && total_steps=$((total_steps + 2 * ${#udp_callgrind_peers[@]}))

udp_server_command() { # peer port -> the command line of its UDP echo server
  case "$1" in
    epoll) echo "$bin/bench-udp-floor-server --port $2" ;;
    tulip) echo "$build/tulip-echo-server --udp --quiet --port $2" ;;
    libuv) echo "$bin/bench-uv-udp-echo-server --port $2" ;;
    asio) echo "$bin/bench-asio-udp-echo-server --port $2" ;;
    uvloop) echo "$python bench/peers/py_udp_echo_server.py --loop uvloop --port $2" ;;
    asyncio) echo "$python bench/peers/py_udp_echo_server.py --loop asyncio --port $2" ;;
  esac
}

sendfile_server_command() { # peer port file -> the command line of its file sender
  case "$1" in
    floor) echo "$bin/bench-sendfile-floor-server --port $2 --file $3" ;;
    tulip) echo "$bin/tulip-bench-sendfile-server --port $2 --file $3" ;;
    tulip-buffered) echo "$bin/tulip-bench-sendfile-server --port $2 --file $3 --buffered" ;;
  esac
}

wait_for_udp_port() { # port pid: until the port is bound (no UDP handshake to try)
  local i hex
  hex=$(printf '%04X' "$1")
  for i in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    grep -q "^ *[0-9]*: [0-9A-F]*:$hex " /proc/net/udp && return 0
    sleep 0.05
  done
  return 1
}

start_udp_server() { # peer port [wrapper ...]: starts it, sets server_pid[udp-peer]
  local peer=$1 port=$2
  shift 2
  # shellcheck disable=SC2046 # the command line is split on purpose
  "$@" $(udp_server_command "$peer" "$port") >>"$out/raw/server-udp-$peer.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  server_pid[udp-$peer]=$pid
  wait_for_udp_port "$port" "$pid" || {
    echo "run-peers.sh: the $peer UDP server did not start, see $out/raw/server-udp-$peer.log" >&2
    exit 1
  }
}

run_datagram_and_sendfile_sections() {
  if [ ! -f "$source_dir/bench/peers/udp_floor_server.c" ]; then
    # --commit of a revision from before these sections: nothing of theirs to build.
    echo "run-peers.sh: $source_dir has no UDP or sendfile programs; sections 7-9 skipped" >&2
    return 0
  fi
  {
    cmake --build "$build" -j 2 --target tulip-echo-server bench-loadgen bench-udp-floor-server \
      bench-uv-udp-echo-server bench-asio-udp-echo-server bench-sendfile-floor-server \
      tulip-bench-sendfile-server
  } >>"$out/raw/build.log" 2>&1 || {
    echo "run-peers.sh: building the UDP and sendfile programs failed, see $out/raw/build.log" >&2
    exit 1
  }
  local rep size senders window peer line i port case_name

  # ---- 10: UDP echo, every server running at once ----------------------------------------
  for i in "${!udp_peers[@]}"; do
    start_udp_server "${udp_peers[$i]}" $((udp_base_port + i)) "${pin_server[@]}"
  done
  for rep in $(seq "$udp_reps"); do
    for size in "${udp_sizes[@]}"; do
      for senders in "${udp_senders[@]}"; do
        window=$(udp_window_for "$senders")
        case_name="S=$size N=$senders"
        for i in "${!udp_peers[@]}"; do
          peer=${udp_peers[$i]}
          line=$(loadgen --mode udp --port $((udp_base_port + i)) --server-pid "${server_pid[udp-$peer]}" \
            --conns "$senders" --window "$window" --size "$size" --warmup "$udp_warmup" \
            --duration "$udp_duration") || {
            echo "run-peers.sh: the load generator failed against the $peer UDP server ($case_name)" >&2
            exit 1
          }
          record udp "$case_name" "$peer" "$rep" "$line"
          progress "udp $case_name $peer rep $rep/$udp_reps: $(value_of dgram_per_s "$line") datagrams/s, server $(value_of server_cpu_us_per_dgram "$line") us/datagram, lost $(value_of lost "$line")"
        done
      done
    done
  done
  for peer in "${udp_peers[@]}"; do stop_server "udp-$peer"; done

  # ---- 11: callgrind instructions per UDP datagram echoed ---------------------------------
  if [ "$mode" != smoke ]; then
    local count small large file
    port=$((udp_base_port + ${#udp_peers[@]}))
    for peer in "${udp_callgrind_peers[@]}"; do
      for count in "$udp_callgrind_small" "$udp_callgrind_large"; do
        file="$out/raw/callgrind.udp.$peer.n$count.out"
        start_udp_server "$peer" "$port" "${pin_server[@]}" valgrind --tool=callgrind --callgrind-out-file="$file"
        loadgen --mode udp --port "$port" --conns 16 --window 4 --size 64 --loss-ms 2000 \
          --requests "$count" >/dev/null || {
          echo "run-peers.sh: the load generator failed against $peer under callgrind (UDP)" >&2
          exit 1
        }
        stop_server "udp-$peer"
        line=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$file")
        [ -n "$line" ] || {
          echo "run-peers.sh: callgrind wrote no summary for $peer (UDP), see $file" >&2
          exit 1
        }
        if [ "$count" = "$udp_callgrind_small" ]; then small=$line; else large=$line; fi
        progress "callgrind udp $peer: $count datagrams"
      done
      echo "udp-callgrind,S=64 N=16,$peer,1,instructions_per_datagram,$(((large - small) / (udp_callgrind_large - udp_callgrind_small)))" >>"$csv"
    done
  fi

  # ---- 12: sendfile, one file to one socket ------------------------------------------------
  # Global, for the exit trap: the file is large and must not outlive the run.
  sendfile_dir=$(mktemp -d "${TMPDIR:-/tmp}/tulip-bench-sendfile.XXXXXX")
  trap 'cleanup; rm -rf "${sendfile_dir:-}"' EXIT
  "$bin/bench-loadgen" --mode make-file --file "$sendfile_dir/file" --bytes "$sendfile_bytes" >/dev/null
  cat "$sendfile_dir/file" >/dev/null # into the page cache: the disk is not what is measured
  for rep in $(seq "$sendfile_reps"); do
    for peer in "${sendfile_peers[@]}"; do
      # shellcheck disable=SC2046 # the command line is split on purpose
      "${pin_server[@]}" $(sendfile_server_command "$peer" "$sendfile_port" "$sendfile_dir/file") \
        >>"$out/raw/server-sendfile-$peer.log" 2>&1 &
      server_pid[sendfile-$peer]=$!
      started+=("${server_pid[sendfile-$peer]}")
      wait_for_server "$sendfile_port" "${server_pid[sendfile-$peer]}" || {
        echo "run-peers.sh: the $peer file sender did not start, see $out/raw/server-sendfile-$peer.log" >&2
        exit 1
      }
      # wait_for_server's probe was a connection: the server sent it the file; a fresh one now.
      sleep 0.2
      line=$(loadgen --mode sink --port "$sendfile_port" --server-pid "${server_pid[sendfile-$peer]}" \
        --bytes "$sendfile_bytes") || {
        echo "run-peers.sh: the receiver failed against the $peer file sender" >&2
        exit 1
      }
      stop_server "sendfile-$peer"
      record sendfile "$((sendfile_bytes >> 20)) MiB" "$peer" "$rep" "$line"
      progress "sendfile $((sendfile_bytes >> 20)) MiB $peer rep $rep/$sendfile_reps: $(value_of gb_per_s "$line") GB/s, sender $(value_of server_cpu_us_per_mib "$line") us/MiB"
    done
  done
  rm -rf "$sendfile_dir"
}
