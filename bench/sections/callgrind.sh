# shellcheck shell=bash disable=SC2154 # sourced by run-peers.sh, whose settings it uses
# The "callgrind" section of bench/run-peers.sh (6). Sourced by run-peers.sh
# after its settings and helpers; run_callgrind_section runs it.

# ---- 6: callgrind instructions per echo round trip ------------------------------------
# Two runs that differ only in the number of round trips: the difference of the
# server's instruction counts divided by the difference of round trips leaves
# out start-up, accept and shutdown.
callgrind_run() { # peer conns round_trips: sets instructions, the server's total
  local peer=$1 conns=$2 count=$3 port=$((base_port + n_peers + 1))
  local file="$out/raw/callgrind.$peer.c$conns.n$count.out"
  start_server "$peer" "$port" "${pin_server[@]}" valgrind --tool=callgrind --callgrind-out-file="$file"
  loadgen --mode pingpong --port "$port" --conns "$conns" --size 1024 --requests "$count" >/dev/null || {
    echo "run-peers.sh: the load generator failed against $peer under callgrind" >&2
    exit 1
  }
  stop_server "$peer"
  instructions=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$file")
  [ -n "$instructions" ] || {
    echo "run-peers.sh: callgrind wrote no summary for $peer, see $file" >&2
    exit 1
  }
}
run_callgrind_section() {
  local conns peer small large per_trip
  for conns in "${callgrind_concurrencies[@]}"; do
    for peer in "${cc_peers[@]}"; do
      callgrind_run "$peer" "$conns" "$callgrind_small"
      small=$instructions
      progress "callgrind $peer C=$conns: $callgrind_small round trips"
      callgrind_run "$peer" "$conns" "$callgrind_large"
      large=$instructions
      per_trip=$(((large - small) / (callgrind_large - callgrind_small)))
      echo "callgrind,S=1024 C=$conns,$peer,1,instructions_per_round_trip,$per_trip" >>"$csv"
      progress "callgrind $peer C=$conns: $per_trip instructions per round trip"
    done
  done
}
