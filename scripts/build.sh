#!/usr/bin/env bash
# Configures and builds one flavour of tulip into build-<flavour>/.
# Usage: scripts/build.sh release|debug|asan|tsan [cmake-args ...]
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
shift || true
args=(-DTULIP_WERROR=ON)
case "$flavour" in
  release) args+=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug) args+=(-DCMAKE_BUILD_TYPE=Debug) ;;
  asan) args+=(-DCMAKE_BUILD_TYPE=Debug "-DTULIP_SANITIZE=address,undefined" -DTULIP_BUILD_BENCH=OFF) ;;
  tsan) args+=(-DCMAKE_BUILD_TYPE=Debug -DTULIP_SANITIZE=thread -DTULIP_BUILD_BENCH=OFF) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, debug, asan, tsan)" >&2; exit 2 ;;
esac
cmake -S . -B "build-$flavour" "${args[@]}" "$@" >/dev/null
cmake --build "build-$flavour" -j "$(nproc)"
