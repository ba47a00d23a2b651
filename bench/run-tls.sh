#!/usr/bin/env bash
# The TLS benchmarks: tulip's TLS echo server against a hand-written epoll +
# OpenSSL server (the floor), Boost.Asio's ssl::stream, uvloop and asyncio with
# ssl=, in one interleaved run; see bench/README.md ("TLS"). Also run by
# `bench/run-peers.sh --tls`.
#
# Usage: bench/run-tls.sh [--quick | --smoke] [--out DIR]
#   (default)  every case repeated 5 times (about 12 minutes)
#   --quick    every case, 2 short repetitions (about 2 minutes)
#   --smoke    a few seconds: proves the runner works, measures nothing useful
#
# Workloads, all TLS 1.3 with TLS_AES_128_GCM_SHA256 (the load generator
# offers nothing else):
#   tls-echo       S-byte ping-pong on C connections, S = 1, 10, 100 KiB,
#                  C = 1, 10, 64: requests/s and server CPU per request
#   tls-handshake  10 connections at a time, each a full handshake (ECDHE on
#                  P-256 or X25519, an ECDSA P-256 certificate, no resumption),
#                  one byte each way and close: handshakes/s, server CPU per one
#   echo           tulip's plain TCP echo server at S = 10 KiB, for the
#                  TLS-against-TCP target
# Writes results.csv, machine.txt and summary.md into bench/results/<UTC time>-tls/.
# TULIP_BENCH_BUILD=DIR builds in this existing Release tree, not build-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --out)
      [ $# -ge 2 ] || { echo "run-tls.sh: --out needs a directory" >&2; exit 2; }
      out=$2
      shift
      ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-tls.sh: unknown argument '$1' (--quick, --smoke, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done

case "$mode" in
  full) reps=5 warmup=0.3 duration=1.5 sizes=(1024 10240 102400) concurrencies=(1 10 64) ;;
  quick) reps=2 warmup=0.1 duration=0.3 sizes=(1024 10240 102400) concurrencies=(1 10 64) ;;
  smoke) reps=1 warmup=0.05 duration=0.1 sizes=(1024) concurrencies=(10) ;;
esac

build=build-bench
source bench/build_tree.sh
bench_choose_build run-tls.sh
python=/usr/bin/python3 # Debian's interpreter: python3-uvloop is installed for it
base_port=${TULIP_BENCH_TLS_PORT:-29400}
[ -n "$out" ] || out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-tls${mode/full/}"
mkdir -p "$out/raw"
csv="$out/results.csv"
echo "workload,case,peer,rep,metric,value" >"$csv"

scripts/install-deps.sh libboost1.81-dev python3-uvloop libssl-dev openssl >"$out/raw/install.log" 2>&1 || {
  echo "run-tls.sh: installing Debian packages failed, see $out/raw/install.log" >&2
  exit 1
}
echo "building into $build/ (Release)" >&2
targets=(tulip-bench-tls-echo-server tulip-echo-server bench-loadgen bench-tls-loadgen
  bench-epoll-tls-echo-server bench-asio-tls-echo-server)
{
  bench_configure . "$build" &&
    cmake --build "$build" -j 2 --target "${targets[@]}"
} >"$out/raw/build.log" 2>&1 || {
  echo "run-tls.sh: the build failed, see $out/raw/build.log" >&2
  exit 1
}
bin=$build/bench

# The server's certificate: ECDSA on P-256, made for this run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -days 2 -keyout "$out/raw/key.pem" -out "$out/raw/cert.pem" >"$out/raw/openssl.log" 2>&1
tls_args="--cert $out/raw/cert.pem --key $out/raw/key.pem"

if [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0)
  pin_load=(taskset -c 1)
else
  pin_server=()
  pin_load=()
fi
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $mode"
  echo "tulip: working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ' with local changes')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "kernel: $(uname -r), OpenSSL: $(openssl version | cut -d' ' -f2)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "boost: $(dpkg-query -W -f='${Version}' libboost1.81-dev)," \
    "python: $($python -c 'import platform; print(platform.python_version())')," \
    "uvloop: $($python -c 'import uvloop; print(uvloop.__version__)')"
  echo "pinning: server ${pin_server[*]:-none}, load generator ${pin_load[*]:-none}"
} >"$out/machine.txt"

declare -A server_pid=()
started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  started=()
}
trap cleanup EXIT
trap 'echo "run-tls.sh: interrupted" >&2; exit 130' INT TERM

peers=(epoll tulip asio uvloop asyncio)
server_command() { # peer port -> its TLS echo server's command line
  local port=$2
  case "$1" in
    epoll) echo "$bin/bench-epoll-tls-echo-server --port $port --backlog 1024 $tls_args" ;;
    tulip) echo "$bin/tulip-bench-tls-echo-server --port $port --backlog 1024 $tls_args" ;;
    asio) echo "$bin/bench-asio-tls-echo-server --port $port --backlog 1024 $tls_args" ;;
    uvloop) echo "$python bench/peers/py_echo_server.py --loop uvloop --port $port --backlog 1024 $tls_args" ;;
    asyncio) echo "$python bench/peers/py_echo_server.py --loop asyncio --port $port --backlog 1024 $tls_args" ;;
    tulip-tcp) echo "$build/tulip-echo-server --keep-open --quiet --port $port --backlog 1024" ;;
  esac
}

start_server() { # peer port
  # shellcheck disable=SC2046 # the command line is split on purpose
  "${pin_server[@]}" $(server_command "$1" "$2") >>"$out/raw/server-$1.log" 2>&1 &
  local pid=$! i
  started+=("$pid")
  server_pid[$1]=$pid
  for i in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "run-tls.sh: the $1 server did not start, see $out/raw/server-$1.log" >&2
  exit 1
}

record() { # workload case peer rep line
  local pair
  for pair in $5; do
    case "$pair" in
      mode=* | conns=* | size=*) ;;
      *=*) echo "$1,$2,$3,$4,${pair%%=*},${pair#*=}" >>"$csv" ;;
    esac
  done
}

value_of() { # key line
  local pair
  for pair in $2; do [ "${pair%%=*}" = "$1" ] && echo "${pair#*=}" && return; done
  echo "?"
}

step=0
total_steps=$((reps * (${#peers[@]} * (${#sizes[@]} * ${#concurrencies[@]} + 2) + ${#concurrencies[@]})))
progress() {
  step=$((step + 1))
  printf '[%3d/%d %s] %s\n' "$step" "$total_steps" "$(date -u +%H:%M:%S)" "$1" >&2
}
started_at=$(date +%s)

for i in "${!peers[@]}"; do start_server "${peers[$i]}" $((base_port + i)); done
tcp_port=$((base_port + ${#peers[@]}))
start_server tulip-tcp "$tcp_port"
for rep in $(seq "$reps"); do
  for size in "${sizes[@]}"; do
    for conns in "${concurrencies[@]}"; do
      case_name="S=$size C=$conns"
      for i in "${!peers[@]}"; do
        peer=${peers[$i]}
        line=$("${pin_load[@]}" "$bin/bench-tls-loadgen" --mode pingpong --port $((base_port + i)) \
          --server-pid "${server_pid[$peer]}" --conns "$conns" --size "$size" \
          --warmup "$warmup" --duration "$duration") || {
          echo "run-tls.sh: the load generator failed against $peer ($case_name)" >&2
          exit 1
        }
        record tls-echo "$case_name" "$peer" "$rep" "$line"
        progress "tls echo $case_name $peer rep $rep/$reps: $(value_of req_per_s "$line") req/s, server $(value_of server_cpu_us_per_req "$line") us/req"
      done
    done
  done
  for group in P-256 X25519; do
    for i in "${!peers[@]}"; do
      peer=${peers[$i]}
      line=$("${pin_load[@]}" "$bin/bench-tls-loadgen" --mode handshake --port $((base_port + i)) \
        --server-pid "${server_pid[$peer]}" --conns 10 --group "$group" \
        --warmup "$warmup" --duration "$duration") || {
        echo "run-tls.sh: the load generator failed against $peer (handshakes, $group)" >&2
        exit 1
      }
      record tls-handshake "$group" "$peer" "$rep" "$line"
      progress "handshakes $group $peer rep $rep/$reps: $(value_of handshakes_per_s "$line")/s, server $(value_of server_cpu_us_per_handshake "$line") us each"
    done
  done
  for conns in "${concurrencies[@]}"; do
    line=$("${pin_load[@]}" "$bin/bench-loadgen" --mode pingpong --port "$tcp_port" \
      --server-pid "${server_pid[tulip-tcp]}" --conns "$conns" --size 10240 \
      --warmup "$warmup" --duration "$duration")
    record echo "S=10240 C=$conns" tulip-tcp "$rep" "$line"
    progress "plain TCP echo S=10240 C=$conns tulip rep $rep/$reps: $(value_of server_cpu_us_per_req "$line") us/req"
  done
done
cleanup

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "elapsed: $(($(date +%s) - started_at)) s" >>"$out/machine.txt"
$python bench/charts/tls_report.py "$out"
echo "results: $csv, $out/summary.md" >&2
