#!/usr/bin/env bash
# Builds the libFuzzer target into build-fuzz/ (clang 14, ASan+UBSan) and runs it.
# Usage: fuzz/run.sh [--ci | --seconds N] [extra libFuzzer options ...]
#   --ci         replay every input of fuzz/corpus/, then fuzz for 50 seconds
#                from that corpus; exits non-zero on any finding
#   --seconds N  fuzz for N seconds (default: 600), keeping the growing corpus in
#                build-fuzz/corpus/ so that the next run goes on from it
# Findings are written to build-fuzz/artifacts/ (see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=long
seconds=600
case "${1:-}" in
  --ci) mode=ci; shift ;;
  --seconds)
    [ $# -ge 2 ] || { echo "fuzz/run.sh: --seconds needs a number" >&2; exit 2; }
    seconds=$2
    shift 2
    ;;
esac
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz/run.sh: --seconds needs a number, not '$seconds'" >&2; exit 2 ;;
esac

# Debian's clang-14 ships libFuzzer and the sanitizer runtimes in libclang-rt-14-dev.
scripts/install-deps.sh clang-14 libclang-rt-14-dev

build=build-fuzz
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTULIP_BUILD_FUZZ=ON "-DTULIP_SANITIZE=address,undefined" -DTULIP_WERROR=ON \
  -DTULIP_BUILD_TESTS=OFF -DTULIP_BUILD_BENCH=OFF -DTULIP_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target tulip-fuzz-transport
fuzzer=$build/fuzz/tulip-fuzz-transport

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/artifacts"
# -timeout: an input that runs this long is reported as a hang (a correct one
# takes milliseconds); -max_len: inputs longer than this add nothing, as at
# most 256 events are decoded.
options=(-timeout=30 -rss_limit_mb=2048 -max_len=1024 "-artifact_prefix=$build/artifacts/"
  -print_final_stats=1)

if [ "$mode" = ci ]; then
  echo "=== fuzz: replaying fuzz/corpus/"
  "$fuzzer" "${options[@]}" "$@" fuzz/corpus/*
  echo "=== fuzz: 50 seconds from fuzz/corpus/"
  # A fresh output corpus each time: CI starts from the committed seeds only.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$fuzzer" "${options[@]}" -max_total_time=50 "$@" "$work" fuzz/corpus
else
  echo "=== fuzz: $seconds seconds, corpus in $build/corpus/"
  mkdir -p "$build/corpus"
  "$fuzzer" "${options[@]}" -max_total_time="$seconds" "$@" "$build/corpus" fuzz/corpus
fi
echo "fuzz: no findings"
