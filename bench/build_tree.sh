# Sourced by the benchmark runners: which tree they build in, and how they
# configure it.

# bench_choose_build RUNNER: sets `build` to TULIP_BENCH_BUILD when that is set,
# an existing Release tree (scripts/build.sh release) to add the peers to: the
# test command's smoke check reuses build-release, so that the library is not
# compiled once more. Exits 2 if it is not a configured Release tree.
bench_choose_build() {
  [ -n "${TULIP_BENCH_BUILD:-}" ] || return 0
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$TULIP_BENCH_BUILD/CMakeCache.txt" 2>/dev/null || {
    echo "$1: TULIP_BENCH_BUILD=$TULIP_BENCH_BUILD is not a configured Release build" >&2
    exit 2
  }
  build=$TULIP_BENCH_BUILD
}

# bench_configure SOURCE BUILD [CMAKE-ARGS...]: a tree configured already keeps
# its options and gets the peers; a new one is a Release tree without tests.
bench_configure() {
  if [ -f "$2/CMakeCache.txt" ]; then
    cmake -S "$1" -B "$2" -DTULIP_BENCH_PEERS=ON
  else
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DTULIP_BUILD_TESTS=OFF -DTULIP_BENCH_PEERS=ON "${@:3}"
  fi
}
