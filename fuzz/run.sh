#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ (clang 14, ASan+UBSan) and runs them:
# transport (the TCP transport), resp and http (the examples' parsers), tls (the
# TLS layer; only when OpenSSL's headers are installed).
# Usage: fuzz/run.sh [--ci | --seconds N] [--target T] [extra libFuzzer options ...]
#   --ci         replay every committed corpus (fuzz/corpus*/), then fuzz from
#                them: transport 28 s, resp 9 s, http 9 s, tls 8 s; with each process's
#                second of start and stop, as long as the 50 s of the transport
#                alone used to take; exits non-zero on any finding
#   --seconds N  fuzz each target for N seconds (default: 600), one after the
#                other, keeping each growing corpus in build-fuzz/corpus*/ so
#                that the next run goes on from it
#   --target T   only this target (transport, resp, http or tls)
# Findings are written to build-fuzz/artifacts/ (see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=long
seconds=600
targets=(transport resp http tls)
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) mode=ci; shift ;;
    --seconds | --target)
      [ $# -ge 2 ] || { echo "fuzz/run.sh: $1 needs a value" >&2; exit 2; }
      if [ "$1" = --seconds ]; then seconds=$2; else targets=("$2"); fi
      shift 2
      ;;
    *) break ;;
  esac
done
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz/run.sh: --seconds needs a number, not '$seconds'" >&2; exit 2 ;;
esac
for target in "${targets[@]}"; do
  case "$target" in
    transport | resp | http | tls) ;;
    *) echo "fuzz/run.sh: unknown target '$target' (transport, resp, http or tls)" >&2; exit 2 ;;
  esac
done

# Debian's clang-14 ships libFuzzer and the sanitizer runtimes in libclang-rt-14-dev.
scripts/install-deps.sh clang-14 libclang-rt-14-dev

build=build-fuzz
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTULIP_BUILD_FUZZ=ON "-DTULIP_SANITIZE=address,undefined" -DTULIP_WERROR=ON \
  -DTULIP_BUILD_TESTS=OFF -DTULIP_BUILD_BENCH=OFF -DTULIP_BUILD_TOOLS=OFF >/dev/null
if ! grep -q '^TULIP_WITH_TLS:BOOL=ON' "$build/CMakeCache.txt"; then
  # Without OpenSSL there is no TLS layer to fuzz.
  kept_targets=()
  for target in "${targets[@]}"; do
    if [ "$target" = tls ]; then
      echo "fuzz/run.sh: tulip is built without TLS (libssl-dev missing): no tls target" >&2
    else
      kept_targets+=("$target")
    fi
  done
  targets=("${kept_targets[@]}")
  [ ${#targets[@]} -gt 0 ] || exit 0
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/tulip-fuzz-}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/artifacts"
common=("-artifact_prefix=$build/artifacts/" -print_final_stats=1 -rss_limit_mb=2048)

# The committed corpus of a target, its CI budget, and its own options:
# -timeout: an input that runs this long is reported as a hang (a correct one
# takes milliseconds); -max_len: longer inputs add nothing (the transport
# decodes at most 256 events; the parsers' paths are all reached in 4 KiB);
# -malloc_limit_mb: a parser given 4 KiB that asks for 64 MiB at once grows
# without bound.
corpus() { if [ "$1" = transport ]; then echo fuzz/corpus; else echo "fuzz/corpus-$1"; fi; }
ci_seconds() {
  case "$1" in
    transport) echo 28 ;;
    tls) echo 8 ;;
    *) echo 9 ;;
  esac
}
options() {
  if [ "$1" = transport ]; then
    echo -timeout=30 -max_len=1024
  elif [ "$1" = tls ]; then
    # Each input makes a real handshake (about a millisecond); inputs past
    # 2 KiB add events, not paths.
    echo -timeout=30 -max_len=2048
  else
    echo -timeout=10 -max_len=4096 -malloc_limit_mb=64
  fi
}

for target in "${targets[@]}"; do
  fuzzer=$build/fuzz/tulip-fuzz-$target
  seeds=$(corpus "$target")
  read -r -a own <<<"$(options "$target")"
  if [ "$mode" = ci ]; then
    # The targets that run a loop fuzz each backend for half the budget: epoll,
    # then auto (io_uring where the kernel allows it, epoll again where not).
    backends=(auto)
    budget=$(ci_seconds "$target")
    if [ "$target" = transport ] || [ "$target" = tls ]; then
      backends=(epoll auto)
      budget=$((budget / 2))
    fi
    for backend in "${backends[@]}"; do
      echo "=== fuzz $target (backend $backend): replaying $seeds/"
      TULIP_BACKEND=$backend "$fuzzer" "${common[@]}" "${own[@]}" "$@" "$seeds"/*
      echo "=== fuzz $target (backend $backend): $budget seconds from $seeds/"
      # A fresh output corpus each time: CI starts from the committed seeds only.
      work=$(mktemp -d)
      TULIP_BACKEND=$backend "$fuzzer" "${common[@]}" "${own[@]}" -max_total_time="$budget" "$@" \
        "$work" "$seeds" || { rm -rf "$work"; exit 1; }
      rm -rf "$work"
    done
  else
    kept=$build/${seeds#fuzz/}
    echo "=== fuzz $target: $seconds seconds, corpus in $kept/"
    mkdir -p "$kept"
    "$fuzzer" "${common[@]}" "${own[@]}" -max_total_time="$seconds" "$@" "$kept" "$seeds"
  fi
done
echo "fuzz: no findings"
