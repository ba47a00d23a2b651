#!/usr/bin/env bash
# Benchmarks tulip against its peers in one interleaved run; see bench/README.md.
#
# Usage: bench/run-peers.sh [--quick | --smoke] [--out DIR] [--commit REV]
#   (default)     every workload, each case repeated 5 times (about 12 minutes)
#   --quick       every workload, fewer and shorter repetitions (under 2 minutes)
#   --smoke       a few seconds: proves the runner works, measures nothing useful
#   --commit REV  measure tulip as committed at REV (built from `git archive` into
#                 build-bench-commit/), not the working tree
#
# Builds everything in Release into build-bench/, installs the Debian packages it
# needs, pins the servers and the load generator to different cores, runs the
# peers interleaved (A B C ... A B C ...), and writes results.csv, summary.md and
# charts into bench/results/<UTC time>/ (or --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
out=""
commit=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --out)
      [ $# -ge 2 ] || { echo "run-peers.sh: --out needs a directory" >&2; exit 2; }
      out=$2
      shift
      ;;
    --commit)
      [ $# -ge 2 ] || { echo "run-peers.sh: --commit needs a revision" >&2; exit 2; }
      commit=$2
      shift
      ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-peers.sh: unknown argument '$1' (--quick, --smoke, --out DIR, --commit REV)" >&2; exit 2 ;;
  esac
  shift
done

# ---- settings per mode ------------------------------------------------------------
case "$mode" in
  full)
    reps=5 warmup=0.3 duration=1.5 churn_seconds=1.5 bulk_bytes=$((1 << 30))
    idle_conns=10000 idle_reps=3 loop_min_time=0.3 py_loop_scale=1
    sizes=(1024 10240 102400) concurrencies=(1 10 64)
    callgrind_small=2000 callgrind_large=22000 callgrind_concurrencies=(1 10)
    ;;
  quick)
    reps=2 warmup=0.1 duration=0.3 churn_seconds=0.3 bulk_bytes=$((256 << 20))
    idle_conns=2000 idle_reps=1 loop_min_time=0.05 py_loop_scale=0.1
    sizes=(1024 10240 102400) concurrencies=(1 10 64)
    callgrind_small=500 callgrind_large=3500 callgrind_concurrencies=(1 10)
    ;;
  smoke)
    reps=1 warmup=0.05 duration=0.1 churn_seconds=0.1 bulk_bytes=$((8 << 20))
    idle_conns=100 idle_reps=1 loop_min_time=0 py_loop_scale=0
    sizes=(1024) concurrencies=(10)
    callgrind_small=0 callgrind_large=0 callgrind_concurrencies=()
    ;;
esac

build=build-bench
source_dir=.
python=/usr/bin/python3 # Debian's interpreter: python3-uvloop is installed for it
base_port=${TULIP_BENCH_PORT:-29300}
[ -n "$out" ] || out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)${mode/full/}"
mkdir -p "$out/raw"
csv="$out/results.csv"
echo "workload,case,peer,rep,metric,value" >"$csv"

# ---- build ----------------------------------------------------------------------------
scripts/install-deps.sh libuv1-dev libboost1.81-dev python3-uvloop gnuplot-nox valgrind pkg-config \
  >"$out/raw/install.log" 2>&1 || {
  echo "run-peers.sh: installing Debian packages failed, see $out/raw/install.log" >&2
  exit 1
}
if [ -n "$commit" ]; then
  revision=$(git rev-parse --verify "$commit^{commit}" 2>/dev/null) || {
    echo "run-peers.sh: '$commit' is not a commit" >&2
    exit 2
  }
  build=build-bench-commit
  source_dir=$build/src
  # Extracted once per revision, so an unchanged revision does not rebuild.
  if [ "$(cat "$build/revision" 2>/dev/null)" != "$revision" ]; then
    rm -rf "$source_dir"
    mkdir -p "$source_dir"
    git archive "$revision" | tar -x -C "$source_dir"
    echo "$revision" >"$build/revision"
  fi
fi
echo "building into $build/ (Release)" >&2
targets=(tulip-echo-server tulip-bench-loop tulip-bench-churn-client bench-loadgen
  bench-epoll-echo-server bench-epoll-churn-client bench-uv-echo-server bench-uv-churn-client
  bench-uv-loop bench-asio-echo-server bench-asio-churn-client bench-asio-loop)
{
  cmake -S "$source_dir" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTULIP_BUILD_TESTS=OFF -DTULIP_BENCH_PEERS=ON &&
    cmake --build "$build" -j 2 --target "${targets[@]}"
} >"$out/raw/build.log" 2>&1 || {
  echo "run-peers.sh: the build failed, see $out/raw/build.log" >&2
  exit 1
}
bin=$build/bench

# ---- machine --------------------------------------------------------------------------
# Servers on one core, the load generator (and clients) on another, when there are two.
if [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0)
  pin_load=(taskset -c 1)
else
  pin_server=()
  pin_load=()
fi
# 10,000 idle connections need as many descriptors in the server and the load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $mode"
  echo "tulip: $(if [ -n "$commit" ]; then echo "commit $revision"; else echo "working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include tools || echo ' with local changes')"; fi)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "kernel: $(uname -r), memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "libuv: $(pkg-config --modversion libuv), boost: $(dpkg-query -W -f='${Version}' libboost1.81-dev)," \
    "python: $($python -c 'import platform; print(platform.python_version())')," \
    "uvloop: $($python -c 'import uvloop; print(uvloop.__version__)')"
  echo "pinning: server ${pin_server[*]:-none}, load generator ${pin_load[*]:-none}"
} >"$out/machine.txt"

# ---- processes --------------------------------------------------------------------------
declare -A server_pid=()
started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  started=()
}
trap cleanup EXIT
trap 'echo "run-peers.sh: interrupted" >&2; exit 130' INT TERM

peers=(epoll tulip libuv asio uvloop asyncio)
# Under callgrind also libuv's textbook shape (uv_write of every read buffer), the
# shape the issue's libuv figures were taken with.
cc_peers=(epoll tulip libuv libuv-plain asio)

server_command() { # peer port -> the command line of its echo server
  local port=$2
  case "$1" in
    epoll) echo "$bin/bench-epoll-echo-server --port $port --backlog 1024" ;;
    tulip) echo "$build/tulip-echo-server --keep-open --quiet --port $port --backlog 1024" ;;
    libuv) echo "$bin/bench-uv-echo-server --port $port --backlog 1024" ;;
    libuv-plain) echo "$bin/bench-uv-echo-server --port $port --backlog 1024 --plain-write" ;;
    asio) echo "$bin/bench-asio-echo-server --port $port --backlog 1024" ;;
    uvloop) echo "$python bench/peers/py_echo_server.py --loop uvloop --port $port --backlog 1024" ;;
    asyncio) echo "$python bench/peers/py_echo_server.py --loop asyncio --port $port --backlog 1024" ;;
  esac
}

client_command() { # peer port seconds -> the command line of its churn client
  local args="--port $2 --duration $3"
  case "$1" in
    epoll) echo "$bin/bench-epoll-churn-client $args" ;;
    tulip) echo "$bin/tulip-bench-churn-client $args" ;;
    libuv) echo "$bin/bench-uv-churn-client $args" ;;
    asio) echo "$bin/bench-asio-churn-client $args" ;;
    uvloop) echo "$python bench/peers/py_churn_client.py --loop uvloop $args" ;;
    asyncio) echo "$python bench/peers/py_churn_client.py --loop asyncio $args" ;;
  esac
}

wait_for_port() { # port pid
  local i
  for i in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

start_server() { # peer port [wrapper ...]: starts it, sets server_pid[peer]
  local peer=$1 port=$2
  shift 2
  # shellcheck disable=SC2046 # the command line is split on purpose
  "$@" $(server_command "$peer" "$port") >>"$out/raw/server-$peer.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  server_pid[$peer]=$pid
  wait_for_port "$port" "$pid" || {
    echo "run-peers.sh: the $peer server did not start, see $out/raw/server-$peer.log" >&2
    exit 1
  }
}

stop_server() { # peer
  local pid=${server_pid[$1]}
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${started[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  started=("${kept[@]}")
}

port_of() { # peer -> its port
  local i
  for i in "${!peers[@]}"; do
    if [ "${peers[$i]}" = "$1" ]; then
      echo $((base_port + i))
      return 0
    fi
  done
  return 1
}

# Appends every key=value of a result line as CSV rows.
record() { # workload case peer rep line
  local workload=$1 case_name=$2 peer=$3 rep=$4 pair
  for pair in $5; do
    case "$pair" in
      mode=* | conns=* | size=* | bytes=* | bench=*) ;;
      *=*) echo "$workload,$case_name,$peer,$rep,${pair%%=*},${pair#*=}" >>"$csv" ;;
    esac
  done
}

value_of() { # key line
  local pair
  for pair in $2; do [ "${pair%%=*}" = "$1" ] && echo "${pair#*=}" && return; done
  echo "?"
}

step=0
total_steps=0
progress() { # text
  step=$((step + 1))
  printf '[%3d/%d %s] %s\n' "$step" "$total_steps" "$(date -u +%H:%M:%S)" "$1" >&2
}

loadgen() { "${pin_load[@]}" "$bin/bench-loadgen" "$@"; }

n_peers=${#peers[@]}
n_echo=$((${#sizes[@]} * ${#concurrencies[@]}))
total_steps=$((reps * n_peers * (n_echo + 2) + idle_reps * n_peers))
[ "$mode" = smoke ] || total_steps=$((total_steps + reps + 2 * ${#cc_peers[@]} * ${#callgrind_concurrencies[@]}))
started_at=$(date +%s)

# ---- 1 and 3: echo throughput and bulk stream, every server running at once ----------
for peer in "${peers[@]}"; do start_server "$peer" "$(port_of "$peer")" "${pin_server[@]}"; done
for rep in $(seq "$reps"); do
  for size in "${sizes[@]}"; do
    for conns in "${concurrencies[@]}"; do
      case_name="S=$size C=$conns"
      for peer in "${peers[@]}"; do
        line=$(loadgen --mode pingpong --port "$(port_of "$peer")" --server-pid "${server_pid[$peer]}" \
          --conns "$conns" --size "$size" --warmup "$warmup" --duration "$duration") || {
          echo "run-peers.sh: the load generator failed against $peer ($case_name)" >&2
          exit 1
        }
        record echo "$case_name" "$peer" "$rep" "$line"
        progress "echo $case_name $peer rep $rep/$reps: $(value_of req_per_s "$line") req/s, server $(value_of server_cpu_us_per_req "$line") us/req, loadgen CPU $(value_of loadgen_cpu_share "$line")"
      done
    done
  done
  for peer in "${peers[@]}"; do
    line=$(loadgen --mode bulk --port "$(port_of "$peer")" --server-pid "${server_pid[$peer]}" \
      --bytes "$bulk_bytes") || {
      echo "run-peers.sh: the load generator failed against $peer (bulk)" >&2
      exit 1
    }
    record bulk "$((bulk_bytes >> 20)) MiB" "$peer" "$rep" "$line"
    progress "bulk $((bulk_bytes >> 20)) MiB each way $peer rep $rep/$reps: $(value_of gb_per_s "$line") GB/s"
  done
done
for peer in "${peers[@]}"; do stop_server "$peer"; done

# ---- 2: client churn against the epoll server ------------------------------------------
churn_port=$((base_port + n_peers))
start_server epoll "$churn_port" "${pin_server[@]}"
for rep in $(seq "$reps"); do
  for peer in "${peers[@]}"; do
    # shellcheck disable=SC2046
    line=$("${pin_load[@]}" $(client_command "$peer" "$churn_port" "$churn_seconds")) || {
      echo "run-peers.sh: the $peer churn client failed" >&2
      exit 1
    }
    record churn "seed client" "$peer" "$rep" "$line"
    progress "churn $peer rep $rep/$reps: $(value_of conns_per_s "$line") connections/s"
  done
done
stop_server epoll

# ---- 4: RSS per idle connection, a fresh server each time --------------------------------
for rep in $(seq "$idle_reps"); do
  for peer in "${peers[@]}"; do
    port=$(port_of "$peer")
    start_server "$peer" "$port" "${pin_server[@]}"
    sleep 0.2
    line=$(loadgen --mode idle --port "$port" --server-pid "${server_pid[$peer]}" --conns "$idle_conns") || {
      echo "run-peers.sh: the load generator failed against $peer (idle)" >&2
      exit 1
    }
    stop_server "$peer"
    record idle "$idle_conns conns" "$peer" "$rep" "$line"
    progress "idle $idle_conns connections $peer rep $rep/$idle_reps: $(value_of bytes_per_conn "$line") bytes/connection"
  done
done

if [ "$mode" != smoke ]; then
  # ---- 5: loop overhead microbenchmarks --------------------------------------------------
  gbench_rows() { # peer rep: Google Benchmark CSV on stdin -> records
    local peer=$1 rep=$2 name rate
    while IFS=, read -r name _ _ _ _ _ rate _; do
      name=${name//\"/}
      case "$name" in
        BM_CallSoonChain | BM_PostChain) name=call_soon_chain ;;
        BM_CallSoonBatch/* | BM_PostBatch/*) name=call_soon_batch ;;
        BM_TimersScheduledAndFired/*) name=timers_fired ;;
        BM_TimerScheduleCancel) name=schedule_cancel ;;
        BM_FutureResolveAndCallback) name=future_callback ;;
        *) continue ;;
      esac
      echo "loop,$name,$peer,$rep,items_per_s,$rate" >>"$csv"
    done
  }
  plain_rows() { # peer rep: "bench=NAME items_per_s=R" lines on stdin -> records
    local peer=$1 rep=$2 line
    while read -r line; do
      echo "loop,$(value_of bench "$line"),$peer,$rep,items_per_s,$(value_of items_per_s "$line")" >>"$csv"
    done
  }
  for rep in $(seq "$reps"); do
    "${pin_load[@]}" "$build/bench/tulip-bench-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows tulip "$rep"
    "${pin_load[@]}" "$bin/bench-asio-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows asio "$rep"
    "${pin_load[@]}" "$bin/bench-uv-loop" | plain_rows libuv "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop uvloop --scale "$py_loop_scale" |
      plain_rows uvloop "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop asyncio --scale "$py_loop_scale" |
      plain_rows asyncio "$rep"
    progress "loop microbenchmarks rep $rep/$reps"
  done

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
fi

# ---- 7: processes, pipes and executors: a runner of its own ---------------------------
# bench/run-process-peers.sh measures child processes (spawn+wait), 1 GiB
# through cat and executor round trips against the same peers, into
# $out/process/. It is kept in a script of its own so that this one's
# workloads, CSV and report stay as they are. (Not with --commit: older
# revisions have no process benchmark.)
if [ "$mode" != smoke ] && [ -z "$commit" ]; then
  bench/run-process-peers.sh "--$mode" --build "$build" --out "$out/process"
fi

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "elapsed: $(($(date +%s) - started_at)) s" >>"$out/machine.txt"
$python bench/charts/make_report.py "$out"
echo "results: $csv, $out/summary.md, $out/peers.png" >&2
