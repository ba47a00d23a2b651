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

# ==== 14: a loop per core: settings and functions =======================================
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

# ==== 10-11: UDP echo and sendfile: settings and functions ===============================
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

# Google Benchmark's CSV on stdin -> records, with each benchmark's case name.
gbench_rows() { # workload peer rep
  local workload=$1 peer=$2 rep=$3 name rate
  while IFS=, read -r name _ _ _ _ _ rate _; do
    name=${name//\"/}
    case "$name" in
      BM_CallSoonChain | BM_PostChain | BM_CallSoonChainReference) name=call_soon_chain ;;
      BM_CallSoonBatch/* | BM_PostBatch/*) name=call_soon_batch ;;
      BM_TimersScheduledAndFired/*) name=timers_fired ;;
      BM_TimerScheduleCancel) name=schedule_cancel ;;
      BM_FutureResolveAndCallback) name=future_callback ;;
      BM_TaskCreateAndRun) name=task_create_and_run ;;
      BM_AwaitDoneFuture) name=await_done_future ;;
      BM_SleepZeroChain) name=sleep_zero_chain ;;
      BM_QueuePingPong) name=queue_ping_pong ;;
      BM_AwaitInlineCoroutine) name=await_inline ;;
      *) continue ;;
    esac
    echo "$workload,$name,$peer,$rep,items_per_s,$rate" >>"$csv"
  done
}
# "bench=NAME items_per_s=R" lines on stdin -> records.
plain_rows() { # workload peer rep
  local workload=$1 peer=$2 rep=$3 line
  while read -r line; do
    echo "$workload,$(value_of bench "$line"),$peer,$rep,items_per_s,$(value_of items_per_s "$line")" >>"$csv"
  done
}

# ---- 5: loop overhead microbenchmarks --------------------------------------------------
if want loop; then
  for rep in $(seq "$reps"); do
    "${pin_load[@]}" "$build/bench/tulip-bench-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows loop tulip "$rep"
    "${pin_load[@]}" "$bin/bench-asio-loop" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/loop.log" | gbench_rows loop asio "$rep"
    "${pin_load[@]}" "$bin/bench-uv-loop" | plain_rows loop libuv "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop uvloop --scale "$py_loop_scale" |
      plain_rows loop uvloop "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_loop_bench.py --loop asyncio --scale "$py_loop_scale" |
      plain_rows loop asyncio "$rep"
    progress "loop microbenchmarks rep $rep/$reps"
  done
fi

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
if want callgrind; then
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

# ---- 7: coroutine microbenchmarks ----------------------------------------------------
# tulip-bench-coro and bench-asio-coro (Google Benchmark, the same case names)
# and py_coro_bench.py on uvloop and asyncio; rates per CPU-second.
if want coro; then
  for rep in $(seq "$reps"); do
    "${pin_load[@]}" "$build/bench/tulip-bench-coro" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/coro.log" | gbench_rows coro tulip "$rep"
    "${pin_load[@]}" "$bin/bench-asio-coro" --benchmark_min_time="$loop_min_time" \
      --benchmark_format=csv 2>>"$out/raw/coro.log" | gbench_rows coro asio "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_coro_bench.py --loop uvloop --scale "$py_coro_scale" |
      plain_rows coro uvloop "$rep"
    "${pin_load[@]}" "$python" bench/peers/py_coro_bench.py --loop asyncio --scale "$py_coro_scale" |
      plain_rows coro asyncio "$rep"
    progress "coroutine microbenchmarks rep $rep/$reps"
  done
fi

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
