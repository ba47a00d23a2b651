#!/usr/bin/env bash
# Benchmarks tulip against its peers in one interleaved run; see bench/README.md.
#
# Usage: bench/run-peers.sh [--quick | --smoke] [--only LIST] [--out DIR] [--commit REV]
#                           [--threads N]
#        bench/run-peers.sh --tls [--quick | --smoke] [--out DIR]
#   (default)     every workload, each case repeated 5 times (about 25 minutes)
#   --tls         the TLS workloads instead (bench/run-tls.sh: TLS echo and
#                 handshakes against epoll + OpenSSL, Boost.Asio, uvloop, asyncio)
#   --quick       every workload, fewer and shorter repetitions (about 4 minutes)
#   --smoke       a few seconds: proves the runner works, measures nothing useful
#                 (leaves out the loop and callgrind sections unless --only names them)
#   --only LIST   only these sections, comma-separated: echo (with bulk), churn,
#                 idle, loop, callgrind, coro, streams, unix, udp (UDP echo, then
#                 sendfile), process (bench/run-process-peers.sh: child processes,
#                 pipes and executors; not with --smoke unless named), threads
#                 (a loop per core: tulip-echo-server --threads N against N
#                 epoll floors sharing the port; not with --smoke unless named),
#                 python (tulip's Python loop beside uvloop and asyncio: echo
#                 servers, loop and coroutine microbenchmarks, client churn; see
#                 bench/python_section.sh)
#   --threads N   the threads section's N: N server loops on N cores and N load
#                 generators on N others (default: half the cores, at least 1)
#   --commit REV  measure tulip as committed at REV (built from `git archive` into
#                 build-bench-commit/), not the working tree
#   TULIP_BENCH_PORT=N  the first of the TCP ports it uses (default 29300; up to N+60)
#   TULIP_BENCH_BUILD=DIR  build in this existing Release tree, not build-bench/
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
only=""
threads=$(($(nproc) / 2))
[ "$threads" -ge 1 ] || threads=1
# The TLS workloads have a runner of their own, with the same options.
for argument in "$@"; do
  if [ "$argument" = --tls ]; then
    rest=()
    for other in "$@"; do [ "$other" = --tls ] || rest+=("$other"); done
    exec bench/run-tls.sh "${rest[@]}"
  fi
done
all_sections=(echo churn idle loop callgrind coro streams unix udp process threads python)
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
    --threads)
      [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]{0,2}$ ]] || {
        echo "run-peers.sh: --threads needs a number from 1 to 999" >&2
        exit 2
      }
      threads=$2
      shift
      ;;
    --only)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "run-peers.sh: --only needs a list of sections" >&2; exit 2; }
      only=$2
      shift
      ;;
    -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *)
      echo "run-peers.sh: unknown argument '$1' (--quick, --smoke, --only LIST, --out DIR, --commit REV, --threads N)" >&2
      exit 2
      ;;
  esac
  shift
done

# ---- sections -------------------------------------------------------------------------
if [ -n "$only" ]; then
  IFS=, read -r -a sections <<<"$only"
  for section in "${sections[@]}"; do
    [[ " ${all_sections[*]} " == *" $section "* ]] || {
      echo "run-peers.sh: unknown section '$section' in --only (${all_sections[*]})" >&2
      exit 2
    }
  done
elif [ "$mode" = smoke ]; then
  sections=(echo churn idle coro streams unix udp python)
else
  sections=("${all_sections[@]}")
fi
want() { [[ " ${sections[*]} " == *" $1 "* ]]; } # section -> selected?

# ---- settings per mode ------------------------------------------------------------
case "$mode" in
  full)
    reps=5 warmup=0.3 duration=1.5 churn_seconds=1.5 bulk_bytes=$((1 << 30))
    idle_conns=10000 idle_reps=3 loop_min_time=0.3 py_loop_scale=1 py_coro_scale=1
    sizes=(1024 10240 102400) concurrencies=(1 10 64)
    callgrind_small=2000 callgrind_large=22000 callgrind_concurrencies=(1 10)
    ;;
  quick)
    reps=2 warmup=0.1 duration=0.3 churn_seconds=0.3 bulk_bytes=$((256 << 20))
    idle_conns=2000 idle_reps=1 loop_min_time=0.05 py_loop_scale=0.1 py_coro_scale=0.1
    sizes=(1024 10240 102400) concurrencies=(1 10 64)
    callgrind_small=500 callgrind_large=3500 callgrind_concurrencies=(1 10)
    ;;
  smoke)
    reps=1 warmup=0.05 duration=0.1 churn_seconds=0.1 bulk_bytes=$((8 << 20))
    idle_conns=100 idle_reps=1 loop_min_time=0 py_loop_scale=0 py_coro_scale=0.01
    sizes=(1024) concurrencies=(10)
    callgrind_small=0 callgrind_large=0 callgrind_concurrencies=()
    ;;
esac

build=build-bench
source bench/build_tree.sh
bench_choose_build run-peers.sh
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
# Only the programs the chosen sections run.
echo_servers=(tulip-echo-server bench-epoll-echo-server bench-uv-echo-server bench-asio-echo-server)
targets=(bench-loadgen)
want echo || want idle || want callgrind && targets+=("${echo_servers[@]}")
# The io_uring floor, in a tree that has it (and a build with liburing).
with_uring=0
if want echo && [ -f "$source_dir/bench/peers/uring_echo_server.c" ] && [ -f /usr/include/liburing.h ]; then
  with_uring=1
  targets+=(bench-uring-echo-server)
fi
want churn && targets+=(bench-epoll-echo-server tulip-bench-churn-client bench-epoll-churn-client
  bench-uv-churn-client bench-asio-churn-client)
want loop && targets+=(tulip-bench-loop bench-uv-loop bench-asio-loop)
want coro && targets+=(tulip-bench-coro bench-asio-coro)
want streams && targets+=(tulip-echo-server bench-asio-coro-echo-server)
want unix && targets+=(tulip-echo-server bench-epoll-echo-server bench-uv-echo-server)
want threads && targets+=(tulip-echo-server bench-epoll-echo-server)
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort -u)
{
  bench_configure "$source_dir" "$build" -DPython3_EXECUTABLE="$python" &&
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
# The Unix sockets live in a fresh directory with a short path (sun_path holds 108 bytes).
socket_dir=$(mktemp -d "${TMPDIR:-/tmp}/tulip-bench.XXXXXX")
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $mode"
  echo "sections: ${sections[*]}"
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
  rm -rf "$socket_dir"
}
trap cleanup EXIT
trap 'echo "run-peers.sh: interrupted" >&2; exit 130' INT TERM

peers=(epoll tulip libuv asio uvloop asyncio)
# Under callgrind also libuv's textbook shape (uv_write of every read buffer), the
# shape the issue's libuv figures were taken with.
cc_peers=(epoll tulip libuv libuv-plain asio)
# The streams workload: tulip's Protocol server beside its streams server and the
# other coroutine / streams servers.
streams_peers=(tulip tulip-streams asio-coro uvloop-streams asyncio-streams)
# The Unix-socket workload: the epoll floor, tulip and libuv's pipe server.
unix_peers=(epoll tulip libuv)
# Each server's address for the running section: a TCP port, or a Unix socket path.
declare -A address=()

listen_args() { # address -> the options that name it
  case "$1" in
    */*) echo "--unix $1" ;;
    *) echo "--port $1" ;;
  esac
}

server_command() { # peer address -> the command line of its echo server
  local at
  at=$(listen_args "$2")
  case "$1" in
    epoll) echo "$bin/bench-epoll-echo-server $at --backlog 1024" ;;
    tulip) echo "$build/tulip-echo-server --keep-open --quiet $at --backlog 1024 $tulip_epoll" ;;
    tulip-uring) echo "$build/tulip-echo-server --keep-open --quiet $at --backlog 1024 --backend io_uring" ;;
    uring) echo "$bin/bench-uring-echo-server $at --backlog 1024" ;;
    tulip-streams) echo "$build/tulip-echo-server --streams --keep-open --quiet $at --backlog 1024" ;;
    libuv) echo "$bin/bench-uv-echo-server $at --backlog 1024" ;;
    libuv-plain) echo "$bin/bench-uv-echo-server $at --backlog 1024 --plain-write" ;;
    asio) echo "$bin/bench-asio-echo-server $at --backlog 1024" ;;
    asio-coro) echo "$bin/bench-asio-coro-echo-server $at --backlog 1024" ;;
    uvloop) echo "$python bench/peers/py_echo_server.py --loop uvloop $at --backlog 1024" ;;
    asyncio) echo "$python bench/peers/py_echo_server.py --loop asyncio $at --backlog 1024" ;;
    uvloop-streams) echo "$python bench/peers/py_echo_server.py --loop uvloop --streams $at --backlog 1024" ;;
    asyncio-streams) echo "$python bench/peers/py_echo_server.py --loop asyncio --streams $at --backlog 1024" ;;
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

accepts_connections() { # address -> whether a connection to it succeeds
  case "$1" in
    */*)
      [ -S "$1" ] && $python -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
        "$1" 2>/dev/null
      ;;
    *) (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null ;;
  esac
}

wait_for_server() { # address pid
  local i
  for i in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    accepts_connections "$1" && return 0
    sleep 0.05
  done
  return 1
}

start_server() { # peer address [wrapper ...]: starts it, sets server_pid[peer]
  local peer=$1 at=$2
  shift 2
  # Something already answering there (another run of this script, say) would
  # be measured in place of this server.
  if accepts_connections "$at"; then
    echo "run-peers.sh: $at already accepts connections (another run?); set TULIP_BENCH_PORT to another base port" >&2
    exit 1
  fi
  # shellcheck disable=SC2046 # the command line is split on purpose
  "$@" $(server_command "$peer" "$at") >>"$out/raw/server-$peer.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  server_pid[$peer]=$pid
  wait_for_server "$at" "$pid" || {
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

# One repetition of the ping-pong matrix (every size and concurrency, peers
# interleaved) against servers already running at address[peer].
pingpong_rep() { # workload rep peer...
  local workload=$1 rep=$2 size conns peer line case_name
  shift 2
  for size in "${sizes[@]}"; do
    for conns in "${concurrencies[@]}"; do
      case_name="S=$size C=$conns"
      for peer in "$@"; do
        # shellcheck disable=SC2046 # --port P or --unix PATH
        line=$(loadgen --mode pingpong $(listen_args "${address[$peer]}") --server-pid "${server_pid[$peer]}" \
          --conns "$conns" --size "$size" --warmup "$warmup" --duration "$duration") || {
          echo "run-peers.sh: the load generator failed against $peer ($workload $case_name)" >&2
          exit 1
        }
        record "$workload" "$case_name" "$peer" "$rep" "$line"
        progress "$workload $case_name $peer rep $rep/$reps: $(value_of req_per_s "$line") req/s, server $(value_of server_cpu_us_per_req "$line") us/req, loadgen CPU $(value_of loadgen_cpu_share "$line")"
      done
    done
  done
}

# tulip-echo-server gains --streams with the streams API; a tree without it
# still measures everything else, and says so.
if want streams && ! "$build/tulip-echo-server" --help 2>&1 | grep -q -- --streams; then
  echo "run-peers.sh: tulip-echo-server has no --streams here; the streams workload runs without it" >&2
  echo "skipped: tulip-streams (tulip-echo-server has no --streams)" >>"$out/machine.txt"
  streams_peers=(tulip asio-coro uvloop-streams asyncio-streams)
fi

# ---- the sections in files of their own ---------------------------------------------
# Each defines its settings and a run_*_section function, run below in order
# (bench/sections/*.sh; the Python loop's is bench/python_section.sh).
# shellcheck source=bench/sections/microbenchmarks.sh
source bench/sections/microbenchmarks.sh
# shellcheck source=bench/sections/callgrind.sh
source bench/sections/callgrind.sh
# shellcheck source=bench/sections/threads.sh
source bench/sections/threads.sh

# tulip-echo-server gains --backend with the io_uring backend: `tulip` is then
# pinned to epoll (auto would take io_uring), and the echo section measures
# tulip on io_uring (tulip-uring) beside the io_uring floor (uring).
tulip_epoll=""
echo_peers=("${peers[@]}")
if "$build/tulip-echo-server" --help 2>&1 | grep -q -- --backend; then
  tulip_epoll="--backend epoll"
  if [ $with_uring -eq 1 ] && "$build/tulip-echo-server" --backend io_uring --help >/dev/null 2>&1; then
    echo_peers=(epoll uring tulip tulip-uring libuv asio uvloop asyncio)
  else
    echo "skipped: tulip-uring and the io_uring floor (io_uring unavailable here)" >>"$out/machine.txt"
  fi
  # Every other tulip program of the run (the streams, UDP and threads servers,
  # the churn client, the Python loop) on epoll too, so that "tulip" means one
  # backend throughout; --backend io_uring (tulip-uring) still overrides it.
  export TULIP_BACKEND=epoll
fi

n_peers=${#peers[@]}
n_echo=$((${#sizes[@]} * ${#concurrencies[@]}))
want echo && total_steps=$((total_steps + reps * ${#echo_peers[@]} * (n_echo + 1)))
want churn && total_steps=$((total_steps + reps * n_peers))
want idle && total_steps=$((total_steps + idle_reps * n_peers))
want loop && total_steps=$((total_steps + reps))
want callgrind && total_steps=$((total_steps + 2 * ${#cc_peers[@]} * ${#callgrind_concurrencies[@]}))
want coro && total_steps=$((total_steps + reps))
want streams && total_steps=$((total_steps + reps * ${#streams_peers[@]} * n_echo))
want unix && total_steps=$((total_steps + reps * ${#unix_peers[@]} * n_echo))
want threads && total_steps=$((total_steps + reps * 2 * ${#threads_concurrencies[@]}))
# shellcheck source=bench/python_section.sh
source bench/python_section.sh
want python && total_steps=$((total_steps + $(python_section_steps)))
started_at=$(date +%s)

# shellcheck source=bench/sections/udp_sendfile.sh
source bench/sections/udp_sendfile.sh

# ---- 1 and 3: echo throughput and bulk stream, every server running at once ----------
if want echo; then
  for i in "${!echo_peers[@]}"; do address[${echo_peers[$i]}]=$((base_port + i)); done
  for peer in "${echo_peers[@]}"; do start_server "$peer" "${address[$peer]}" "${pin_server[@]}"; done
  for rep in $(seq "$reps"); do
    pingpong_rep echo "$rep" "${echo_peers[@]}"
    for peer in "${echo_peers[@]}"; do
      line=$(loadgen --mode bulk --port "${address[$peer]}" --server-pid "${server_pid[$peer]}" \
        --bytes "$bulk_bytes") || {
        echo "run-peers.sh: the load generator failed against $peer (bulk)" >&2
        exit 1
      }
      record bulk "$((bulk_bytes >> 20)) MiB" "$peer" "$rep" "$line"
      progress "bulk $((bulk_bytes >> 20)) MiB each way $peer rep $rep/$reps: $(value_of gb_per_s "$line") GB/s"
    done
  done
  for peer in "${echo_peers[@]}"; do stop_server "$peer"; done
fi

# ---- 2: client churn against the epoll server ------------------------------------------
if want churn; then
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
fi

# ---- 4: RSS per idle connection, a fresh server each time --------------------------------
if want idle; then
  for rep in $(seq "$idle_reps"); do
    for i in "${!peers[@]}"; do
      peer=${peers[$i]}
      port=$((base_port + i))
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
fi

# ---- 5: loop overhead microbenchmarks (bench/sections/microbenchmarks.sh) --------------
want loop && run_loop_section

# ---- 6: callgrind instructions per echo round trip (bench/sections/callgrind.sh) -------
want callgrind && run_callgrind_section

# ---- 7: coroutine microbenchmarks (bench/sections/microbenchmarks.sh) ------------------
want coro && run_coro_section

# ---- 8: streams echo servers, beside tulip's Protocol server ---------------------------
if want streams; then
  for i in "${!streams_peers[@]}"; do address[${streams_peers[$i]}]=$((base_port + 10 + i)); done
  for peer in "${streams_peers[@]}"; do start_server "$peer" "${address[$peer]}" "${pin_server[@]}"; done
  for rep in $(seq "$reps"); do pingpong_rep streams "$rep" "${streams_peers[@]}"; done
  for peer in "${streams_peers[@]}"; do stop_server "$peer"; done
fi

# ---- 9: echo over Unix stream sockets ------------------------------------------------
if want unix; then
  for peer in "${unix_peers[@]}"; do address[$peer]=$socket_dir/$peer.sock; done
  for peer in "${unix_peers[@]}"; do start_server "$peer" "${address[$peer]}" "${pin_server[@]}"; done
  for rep in $(seq "$reps"); do pingpong_rep unix "$rep" "${unix_peers[@]}"; done
  for peer in "${unix_peers[@]}"; do stop_server "$peer"; done
fi

want udp && run_datagram_and_sendfile_sections
want threads && run_threads_section

# ---- 14-17: tulip's Python loop against uvloop and asyncio (bench/python_section.sh) ----
want python && run_python_section

# ---- 13: processes, pipes and executors: a runner of its own --------------------------
# bench/run-process-peers.sh measures child processes (spawn+wait), 1 GiB
# through cat and executor round trips against the same peers, into
# $out/process/ (its own results.csv and summary.md). (Not with --commit:
# older revisions have no process benchmark.)
if want process && [ -z "$commit" ]; then
  bench/run-process-peers.sh "--$mode" --build "$build" --out "$out/process"
fi

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "elapsed: $(($(date +%s) - started_at)) s" >>"$out/machine.txt"
$python bench/charts/make_report.py "$out"
echo "results: $csv, $out/summary.md, $out/peers.png" >&2
