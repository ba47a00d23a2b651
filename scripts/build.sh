#!/usr/bin/env bash
# Configures and builds one flavour of tulip into build-<flavour>/.
# Usage: scripts/build.sh release|debug|asan|tsan [cmake-args ...]
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
shift || true
# The Python package is built for Debian's interpreter, named explicitly: another
# python3 earlier on PATH (a pyenv shim, a virtualenv) must not be picked.
args=(-DTULIP_WERROR=ON -DPython3_EXECUTABLE=/usr/bin/python3)
case "$flavour" in
  release) args+=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug) args+=(-DCMAKE_BUILD_TYPE=Debug) ;;
  # The Python package only in plain builds: a sanitized extension needs the
  # sanitizer runtime preloaded into an uninstrumented interpreter.
  # Compiled with clang: the release and TSan builds are GCC's, so the test
  # command builds tulip with both compilers (and their warnings), and clang
  # compiles the sanitized code in about 60% of GCC's time.
  asan) scripts/install-deps.sh clang-14 libclang-rt-14-dev
        export CC=clang-14 CXX=clang++-14
        args+=(-DCMAKE_BUILD_TYPE=Debug "-DTULIP_SANITIZE=address,undefined" -DTULIP_BUILD_BENCH=OFF
              -DTULIP_BUILD_PYTHON=OFF) ;;
  # The TSan build is the cross-thread suite (tests/CMakeLists.txt): no examples.
  tsan) args+=(-DCMAKE_BUILD_TYPE=Debug -DTULIP_SANITIZE=thread -DTULIP_BUILD_BENCH=OFF
              -DTULIP_BUILD_PYTHON=OFF -DTULIP_BUILD_EXAMPLES=OFF) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, debug, asan, tsan)" >&2; exit 2 ;;
esac
# A build directory configured with another compiler (the ASan build was GCC's
# before) is made afresh: CMake does not switch compilers in place.
if [ -n "${CXX:-}" ] && [ -f "build-$flavour/CMakeCache.txt" ] &&
  ! grep -q "^CMAKE_CXX_COMPILER:[A-Z]*=.*$CXX\$" "build-$flavour/CMakeCache.txt"; then
  rm -rf "build-$flavour"
fi
cmake -S . -B "build-$flavour" "${args[@]}" "$@" >/dev/null
cmake --build "build-$flavour" -j "$(nproc)"
