#!/usr/bin/env bash
# Runs the whole test suite: a plain build (then, from it, the API reference, the
# install check with consumer projects and a shared build, and the Debian
# packages), then ASan+UBSan, then TSan, then a short fuzzing run (fuzz/run.sh
# --ci) and a smoke check of the benchmark runner.
# Usage: scripts/test.sh [--quick]   (--quick: the plain build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1

flavours=(release)
[ $quick -eq 1 ] || flavours+=(asan tsan)

# Each phase says how long the run has taken so far: the whole command has a
# 20-minute budget on a two-core machine, and this shows where it goes.
# CPU time (of every process the command ran) beside it does not depend on what
# else the machine is doing.
phase() {
  local cpu times_file
  # `times` in this shell (in a command substitution it would time the subshell).
  times_file=$(mktemp)
  times >"$times_file"
  cpu=$(awk 'NR == 2 { gsub(/[ms]/, " "); print int($1 * 60 + $2 + $3 * 60 + $4) }' "$times_file")
  rm -f "$times_file"
  printf '=== %s (at %dm%02ds, %d CPU-s)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)) "$cpu"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for flavour in "${flavours[@]}"; do
  phase "$flavour: build"
  scripts/build.sh "$flavour"
  phase "$flavour: test"
  ctest --test-dir "build-$flavour" --output-on-failure -j "$(nproc)"
  if [ "$flavour" = release ]; then
    phase "release: API reference (Doxygen; any warning, an undocumented API included, fails)"
    cmake --build build-release --target docs
    phase "release: install; find_package and pkg-config consumers; a shared build"
    scripts/check-install.sh --shared build-release
    phase "release: Debian packages (contents, lintian, a consumer against them)"
    scripts/check-deb.sh build-release
  fi
done
if [ $quick -eq 0 ]; then
  phase "fuzz: a short run of the transport and parser fuzzers (clang, ASan+UBSan)"
  fuzz/run.sh --ci
  phase "bench smoke: the peer benchmark runner works (nothing is measured)"
  bench/smoke.sh
  flavours+=(fuzz bench-smoke)
fi
phase "all test runs passed: ${flavours[*]}"
