#!/usr/bin/env bash
# Proves that tulip can be adopted: installs a build into a temporary prefix,
# then builds and runs, outside the source tree, a consumer project that finds
# it with find_package (tests/consumer/cmake/) and another that finds it with
# pkg-config (tests/consumer/pkgconfig/); each runs an echo round trip over
# loopback and a protocol test over tulip::testing's MemoryTransport. Also
# checks that find_package reports a missing component or an incompatible
# version clearly, and (with --shared) builds a shared libtulip and
# checks its SONAME and that it exports tulip's API only.
#
# Usage: scripts/check-install.sh [--shared] [build-dir]   (default build-release)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD

shared=0
if [ "${1:-}" = "--shared" ]; then
  shared=1
  shift
fi
build=${1:-build-release}

fail() {
  echo "check-install: $*" >&2
  exit 1
}
[ -f "$build/CMakeCache.txt" ] || fail "no configured build in '$build' (run scripts/build.sh release first)"

version=$(sed -n 's/^project(tulip VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || fail "cannot read the version from the project() line of CMakeLists.txt"
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}

work=$(mktemp -d "${TMPDIR:-/tmp}/tulip-check-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The consumers are built from a copy outside the source tree, as a user's would be.
cp -r tests/consumer "$work/consumer"

# install_into <build> <prefix>: installs and checks that nothing but the library,
# its development files, the two tools and the docs were installed.
install_into() {
  cmake --install "$1" --prefix "$2" >/dev/null
  local unexpected
  unexpected=$(cd "$2" && find . -type f | grep -Ev \
    '^\./(include/tulip/.*\.hpp|lib(64)?/(.*/)?(libtulip\.(a|so[.0-9]*)|libtulip-testing\.a|cmake/tulip/tulip[A-Za-z-]*\.cmake|pkgconfig/tulip(-testing)?\.pc)|bin/tulip-echo-(client|server)|share/man/man1/tulip-echo-(client|server)\.1\.gz|share/doc/tulip/.*)$' || true)
  [ -z "$unexpected" ] || fail "unexpected files installed from $1: $unexpected"
  [ -f "$2/include/tulip/version.hpp" ] || fail "include/tulip/version.hpp was not installed"
}

# check_consumers <prefix> <label>: builds and runs both consumers against <prefix>.
check_consumers() {
  local prefix=$1 label=$2 out="$work/$2"
  local libdir
  libdir=$(dirname "$(find "$prefix" -name tulip.pc -print -quit)")
  mkdir -p "$out"
  export LD_LIBRARY_PATH="$(dirname "$libdir")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

  echo "check-install: [$label] find_package(tulip $major.$minor CONFIG) consumer"
  cmake -S "$work/consumer/cmake" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DTULIP_CONSUMER_VERSION="$major.$minor" -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 ||
    { cat "$out/configure.log" >&2; fail "[$label] the find_package consumer does not configure"; }
  cmake --build "$out/cmake" >"$out/build.log" 2>&1 ||
    { cat "$out/build.log" >&2; fail "[$label] the find_package consumer does not build"; }
  "$out/cmake/consumer" || fail "[$label] the find_package consumer failed"
  "$out/cmake/consumer_testing" || fail "[$label] the find_package tulip::testing consumer failed"

  echo "check-install: [$label] pkg-config consumer"
  local pc_version
  pc_version=$(PKG_CONFIG_PATH="$libdir" pkg-config --modversion tulip) ||
    fail "[$label] pkg-config does not find tulip.pc in $libdir"
  [ "$pc_version" = "$version" ] || fail "[$label] tulip.pc says version $pc_version, not $version"
  PKG_CONFIG_PATH="$libdir" make -s -C "$work/consumer/pkgconfig" >"$out/make.log" 2>&1 ||
    { cat "$out/make.log" >&2; fail "[$label] the pkg-config consumer does not build"; }
  "$work/consumer/pkgconfig/consumer" || fail "[$label] the pkg-config consumer failed"
  "$work/consumer/pkgconfig/consumer_testing" || fail "[$label] the pkg-config tulip-testing consumer failed"
  make -s -C "$work/consumer/pkgconfig" clean >/dev/null
}

# expect_configure_failure <prefix> <message> <cmake args...>: the find_package
# consumer must fail to configure, saying <message>.
expect_configure_failure() {
  local prefix=$1 message=$2
  shift 2
  local log="$work/failure.log"
  if cmake -S "$work/consumer/cmake" -B "$work/failing" -DCMAKE_PREFIX_PATH="$prefix" \
    -DTULIP_CONSUMER_VERSION="$major.$minor" -DTULIP_CONSUMER_COMPONENTS= "$@" \
    >"$log" 2>&1; then
    fail "find_package accepted $*; expected: $message"
  fi
  # CMake wraps its messages: compare with the line breaks folded into spaces.
  tr -s ' \n' '  ' <"$log" | grep -qF "$message" || { cat "$log" >&2; fail "find_package with $* did not say: $message"; }
  echo "check-install: find_package with $* fails: $message"
}

prefix="$work/prefix"
echo "check-install: installing $build into a temporary prefix"
install_into "$build" "$prefix"
[ -f "$(find "$prefix" -name libtulip.a -print -quit)" ] || fail "the static libtulip.a was not installed"
check_consumers "$prefix" static

# The TLS component is there exactly when the build has it (TULIP_WITH_TLS).
if grep -q '^TULIP_WITH_TLS:BOOL=ON' "$build/CMakeCache.txt"; then
  cmake -S "$work/consumer/cmake" -B "$work/with-tls" -DCMAKE_PREFIX_PATH="$prefix" \
    -DTULIP_CONSUMER_VERSION="$major.$minor" -DTULIP_CONSUMER_COMPONENTS=TLS \
    >"$work/with-tls.log" 2>&1 ||
    { cat "$work/with-tls.log" >&2; fail "find_package(tulip COMPONENTS TLS) fails on a TLS build"; }
  grep -q '#define TULIP_HAS_TLS 1' "$prefix/include/tulip/config.hpp" ||
    fail "the installed tulip/config.hpp does not say TULIP_HAS_TLS 1"
  echo "check-install: find_package(tulip COMPONENTS TLS) finds the TLS component"
else
  expect_configure_failure "$prefix" "tulip was built without TLS (OpenSSL)" \
    -DTULIP_CONSUMER_COMPONENTS=TLS
fi
expect_configure_failure "$prefix" "tulip has no component 'Bogus'" \
  "-DTULIP_CONSUMER_COMPONENTS=io_uring;Bogus"
# In 0.x a new minor version may break the API: 0.1 must not satisfy 0.2.
expect_configure_failure "$prefix" "compatible with requested version \"$major.$((minor + 1))\"" \
  -DTULIP_CONSUMER_VERSION="$major.$((minor + 1))"

if [ $shared -eq 1 ]; then
  shared_build=build-shared
  echo "check-install: building a shared libtulip in $shared_build"
  cmake -S . -B "$shared_build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DTULIP_WERROR=ON -DTULIP_BUILD_TESTS=OFF -DTULIP_BUILD_BENCH=OFF >/dev/null
  # Only what is installed: the examples are built and tested in the static tree.
  shared_targets=(tulip tulip-testing tulip-echo-client tulip-echo-server)
  # (The listing is read whole first: grep -q would stop reading early, and under
  # pipefail the writer's SIGPIPE would fail the test.)
  build_targets=$(cmake --build "$shared_build" --target help)
  grep -q '\.\.\. tulip-man-pages$' <<<"$build_targets" && shared_targets+=(tulip-man-pages)
  cmake --build "$shared_build" -j "$(nproc)" --target "${shared_targets[@]}" >"$work/shared-build.log" 2>&1 ||
    { tail -40 "$work/shared-build.log" >&2; fail "the shared build failed"; }
  shared_prefix="$work/prefix-shared"
  install_into "$shared_build" "$shared_prefix"
  so=$(find "$shared_prefix" -name "libtulip.so.$version" -print -quit)
  [ -n "$so" ] || fail "libtulip.so.$version was not installed"
  soname=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
  expected_soname="libtulip.so.$major"
  [ "$major" -eq 0 ] && expected_soname="libtulip.so.$major.$minor"
  [ "$soname" = "$expected_soname" ] || fail "SONAME is '$soname', expected $expected_soname"
  echo "check-install: SONAME $soname"
  # Every exported symbol must belong to tulip's API (its classes' vtables and
  # type information included); anything else leaked past -fvisibility=hidden.
  leaked=$(nm -D --defined-only "$so" | awk '{ print $3 }' | c++filt |
    grep -Ev '^((vtable|typeinfo|typeinfo name|VTT|construction vtable for .*-in-) (for )?)?tulip::' || true)
  [ -z "$leaked" ] || fail "the shared library exports symbols outside tulip's API: $(echo "$leaked" | head -20)"
  echo "check-install: the shared library exports $(nm -D --defined-only "$so" | wc -l) symbols, all tulip::"
  check_consumers "$shared_prefix" shared
  LD_LIBRARY_PATH="$(dirname "$so")" "$shared_prefix/bin/tulip-echo-server" --help >/dev/null ||
    fail "the installed tulip-echo-server does not run against the shared library"
fi
echo "check-install: passed"
