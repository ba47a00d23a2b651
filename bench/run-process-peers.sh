#!/usr/bin/env bash
# The process benchmarks: child processes, pipes and executors, tulip against
# libuv, Boost.Asio (Boost.Process v2), uvloop and asyncio, interleaved; see
# bench/README.md ("Processes, pipes and executors").
#
# Usage: bench/run-process-peers.sh [--quick | --smoke] [--out DIR] [--build DIR] [--prebuilt]
#   (default)   every workload, 5 repetitions, 1 GiB through cat (a few minutes)
#   --quick     2 repetitions, 256 MiB through cat
#   --smoke     seconds: proves the runner works, measures nothing useful
#   --build     the build directory to use (default build-bench/, as run-peers.sh);
#               it is configured in Release with the peers and without tests
#   --prebuilt  use the binaries already in --build as they are: no
#               configuring, no building (a build tree of your own, configured
#               with -DTULIP_BENCH_PEERS=ON)
#
# Workloads (each prints key=value lines; results.csv as run-peers.sh's):
#   spawn     /bin/true started and waited for, one at a time: processes/s
#   spawn-raw posix_spawn against fork+exec from a process with 0 and 1 GiB of
#             touched memory: microseconds per child (tulip's primitive alone)
#   cat       bytes through `cat` (stdin -> stdout): GB/s and CPU per MiB, with a
#             blocking two-thread C program as the floor
#   executor  run_in_executor / uv_queue_work round trips of a no-op: per second
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/build_tree.sh

mode=full
out=""
build=build-bench
source_dir=.
prebuilt=0
while [ $# -gt 0 ]; do
  case "$1" in
    --full) mode=full ;;
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --source) source_dir=$2; shift ;;
    --prebuilt) prebuilt=1 ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-process-peers.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

case "$mode" in
  full) reps=5 spawn_count=2000 raw_count=500 ballasts=(0 1024) cat_bytes=$((1 << 30)) work_count=100000 ;;
  quick) reps=2 spawn_count=300 raw_count=100 ballasts=(0 1024) cat_bytes=$((256 << 20)) work_count=20000 ;;
  smoke) reps=1 spawn_count=10 raw_count=10 ballasts=(0) cat_bytes=$((4 << 20)) work_count=200 ;;
esac
python=/usr/bin/python3 # Debian's interpreter: python3-uvloop is installed for it
[ -n "$out" ] || out="bench/results/process-$(date -u +%Y-%m-%dT%H%M%SZ)${mode/full/}"
mkdir -p "$out/raw"
csv="$out/results.csv"
echo "workload,case,peer,rep,metric,value" >"$csv"

if [ "$prebuilt" = 0 ]; then
  scripts/install-deps.sh libuv1-dev libboost1.81-dev python3-uvloop pkg-config \
    >"$out/raw/install.log" 2>&1 || {
    echo "run-process-peers.sh: installing Debian packages failed, see $out/raw/install.log" >&2
    exit 1
  }
  echo "building into $build/ (Release)" >&2
  {
    bench_configure "$source_dir" "$build" &&
      cmake --build "$build" -j 2 --target tulip-bench-process bench-uv-process bench-blocking-cat bench-asio-process
  } >"$out/raw/build.log" 2>&1 || {
    echo "run-process-peers.sh: the build failed, see $out/raw/build.log" >&2
    exit 1
  }
fi
bin=$build/bench
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $mode"
  echo "tulip: working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ' with local changes')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "kernel: $(uname -r), loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "libuv: $(pkg-config --modversion libuv), boost: $(dpkg-query -W -f='${Version}' libboost1.81-dev)," \
    "python: $($python -c 'import platform; print(platform.python_version())')," \
    "uvloop: $($python -c 'import uvloop; print(uvloop.__version__)')"
} >"$out/machine.txt"

record() { # workload case peer rep line
  local pair
  for pair in $5; do
    case "$pair" in
      *=*) echo "$1,$2,$3,$4,${pair%%=*},${pair#*=}" >>"$csv" ;;
    esac
  done
}

measure() { # workload case peer rep command...: runs it, records its line
  local workload=$1 case_name=$2 peer=$3 rep=$4 line
  shift 4
  line=$("$@" 2>>"$out/raw/$workload-$peer.log") || {
    echo "run-process-peers.sh: $peer failed ($workload $case_name), see $out/raw/$workload-$peer.log" >&2
    exit 1
  }
  record "$workload" "$case_name" "$peer" "$rep" "$line"
  echo "[$(date -u +%H:%M:%S)] $workload $case_name $peer rep $rep/$reps: $line" >&2
}

for rep in $(seq "$reps"); do
  measure spawn "/bin/true" tulip "$rep" "$bin/tulip-bench-process" --mode spawn --count "$spawn_count"
  measure spawn "/bin/true" libuv "$rep" "$bin/bench-uv-process" --mode spawn --count "$spawn_count"
  measure spawn "/bin/true" asio "$rep" "$bin/bench-asio-process" --mode spawn --count "$spawn_count"
  measure spawn "/bin/true" uvloop "$rep" "$python" bench/peers/py_process_bench.py --loop uvloop --mode spawn --count "$spawn_count"
  measure spawn "/bin/true" asyncio "$rep" "$python" bench/peers/py_process_bench.py --loop asyncio --mode spawn --count "$spawn_count"

  for ballast in "${ballasts[@]}"; do
    for how in posix_spawn fork; do
      measure spawn-raw "$ballast MiB touched" "$how" "$rep" \
        "$bin/tulip-bench-process" --mode spawn-raw --how "$how" --ballast "$ballast" --count "$raw_count"
    done
  done

  measure cat "$((cat_bytes >> 20)) MiB" floor "$rep" "$bin/bench-blocking-cat" --bytes "$cat_bytes"
  measure cat "$((cat_bytes >> 20)) MiB" tulip "$rep" "$bin/tulip-bench-process" --mode cat --bytes "$cat_bytes"
  measure cat "$((cat_bytes >> 20)) MiB" libuv "$rep" "$bin/bench-uv-process" --mode cat --bytes "$cat_bytes"
  measure cat "$((cat_bytes >> 20)) MiB" asio "$rep" "$bin/bench-asio-process" --mode cat --bytes "$cat_bytes"
  measure cat "$((cat_bytes >> 20)) MiB" uvloop "$rep" "$python" bench/peers/py_process_bench.py --loop uvloop --mode cat --bytes "$cat_bytes"
  measure cat "$((cat_bytes >> 20)) MiB" asyncio "$rep" "$python" bench/peers/py_process_bench.py --loop asyncio --mode cat --bytes "$cat_bytes"

  measure executor "no-op job" tulip "$rep" "$bin/tulip-bench-process" --mode executor --count "$work_count"
  measure executor "no-op job" libuv "$rep" "$bin/bench-uv-process" --mode work --count "$work_count"
  measure executor "no-op job" uvloop "$rep" "$python" bench/peers/py_process_bench.py --loop uvloop --mode executor --count "$work_count"
  measure executor "no-op job" asyncio "$rep" "$python" bench/peers/py_process_bench.py --loop asyncio --mode executor --count "$work_count"
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

# The median of every (workload, case, peer, metric) over the repetitions.
$python - "$csv" >"$out/summary.md" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for row in rows:
    groups.setdefault((row["workload"], row["case"], row["metric"]), {}).setdefault(
        row["peer"], []).append(float(row["value"]))
print("| workload | case | metric | " + " | ".join(["peer: median (min-max)"]) + " |")
print("|---|---|---|---|")
for (workload, case, metric), peers in groups.items():
    cells = ", ".join(f"{peer} {statistics.median(v):g} ({min(v):g}-{max(v):g})"
                      for peer, v in peers.items())
    print(f"| {workload} | {case} | {metric} | {cells} |")
EOF
cat "$out/summary.md" >&2
echo "results: $csv, $out/summary.md" >&2
