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

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for flavour in "${flavours[@]}"; do
  echo "=== $flavour: build"
  scripts/build.sh "$flavour"
  echo "=== $flavour: test"
  ctest --test-dir "build-$flavour" --output-on-failure -j "$(nproc)"
  if [ "$flavour" = release ]; then
    echo "=== release: API reference (Doxygen; any warning, an undocumented API included, fails)"
    cmake --build build-release --target docs
    echo "=== release: install; find_package and pkg-config consumers; a shared build"
    scripts/check-install.sh --shared build-release
    echo "=== release: Debian packages (contents, lintian, a consumer against them)"
    scripts/check-deb.sh build-release
  fi
done
if [ $quick -eq 0 ]; then
  echo "=== fuzz: a short run of the transport and parser fuzzers (clang, ASan+UBSan)"
  fuzz/run.sh --ci
  echo "=== bench smoke: the peer benchmark runner works (nothing is measured)"
  bench/smoke.sh
  flavours+=(fuzz bench-smoke)
fi
echo "all test runs passed: ${flavours[*]}"
