#!/usr/bin/env bash
# Builds tulip's Debian packages from a build directory with CPack
# (cmake/TulipPackaging.cmake), checks what each one holds (dpkg-deb -c), fails
# on any lintian error, and proves the packages work: unpacked into a temporary
# root, the find_package consumer (tests/consumer/cmake/) builds and runs
# against them and the packaged tools start.
#
# Usage: scripts/check-deb.sh [build-dir]   (default build-release, already built)
# The packages are left in <build-dir>/packages/.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-release}
fail() {
  echo "check-deb: $*" >&2
  exit 1
}
[ -f "$build/CMakeCache.txt" ] || fail "no configured build in '$build' (run scripts/build.sh release first)"
for tool in cpack dpkg-deb dpkg-architecture lintian; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

# Debian puts libraries, CMake packages and .pc files in the multiarch directory.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
cmake -S . -B "$build" -DCMAKE_INSTALL_LIBDIR="lib/$multiarch" >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/tulip-check-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }

version=$(sed -n 's/^project(tulip VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

# expect_contents <package> <path regex>...: each regex must match a file of the
# package, and every file must match one of them.
expect_contents() {
  local package=$1
  shift
  local deb="$build/packages/${package}_${version}-1_${arch}.deb"
  [ -f "$deb" ] || fail "cpack did not make $(basename "$deb")"
  dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./||' >"$work/$package.files"
  local pattern all=""
  for pattern in "$@"; do
    grep -Eq "^($pattern)\$" "$work/$package.files" || fail "$package has no file matching $pattern"
    all="$all${all:+|}$pattern"
  done
  local extra
  extra=$(grep -Ev "^($all)\$" "$work/$package.files" || true)
  [ -z "$extra" ] || fail "$package holds unexpected files: $extra"
  echo "check-deb: $(basename "$deb"): $(wc -l <"$work/$package.files") files as expected"
}

lib="usr/lib/$multiarch"
expect_contents libtulip-dev \
  'usr/include/tulip/tulip\.hpp' 'usr/include/tulip/version\.hpp' 'usr/include/tulip/(detail/|testing/)?[a-z_]+\.hpp' \
  "$lib/libtulip\\.a" "$lib/libtulip-testing\\.a" "$lib/cmake/tulip/tulipConfig\\.cmake" "$lib/cmake/tulip/tulipConfigVersion\\.cmake" \
  "$lib/cmake/tulip/tulipTargets(-release)?\\.cmake" "$lib/pkgconfig/tulip\\.pc" "$lib/pkgconfig/tulip-testing\\.pc" \
  'usr/share/doc/tulip/[a-z-]+\.md' 'usr/share/doc/tulip/README\.md' \
  'usr/share/doc/libtulip-dev/copyright' 'usr/share/doc/libtulip-dev/changelog\.Debian\.gz'
expect_contents tulip-tools \
  'usr/bin/tulip-echo-client' 'usr/bin/tulip-echo-server' \
  'usr/share/man/man1/tulip-echo-client\.1\.gz' 'usr/share/man/man1/tulip-echo-server\.1\.gz' \
  'usr/share/doc/tulip-tools/copyright' 'usr/share/doc/tulip-tools/changelog\.Debian\.gz'

# lintian: errors fail the check; warnings are shown.
lintian_status=0
lintian --tag-display-limit 0 "$build"/packages/*.deb >"$work/lintian.log" 2>&1 || lintian_status=$?
# 0: clean, 1: tags at error level; anything else: lintian itself failed.
[ $lintian_status -le 1 ] || { cat "$work/lintian.log" >&2; fail "lintian could not check the packages"; }
grep -E '^[EW]: ' "$work/lintian.log" || true
if grep -q '^E: ' "$work/lintian.log"; then
  fail "lintian reports errors on the packages"
fi
echo "check-deb: lintian reports no errors"

# The packages work: unpacked into a root of their own, a user's project finds
# tulip in them and the tools run.
root="$work/root"
for deb in "$build"/packages/*.deb; do dpkg-deb -x "$deb" "$root"; done
cp -r tests/consumer "$work/consumer"
cmake -S "$work/consumer/cmake" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$root/usr" \
  -DTULIP_CONSUMER_VERSION="${version%.*}" -DCMAKE_BUILD_TYPE=Release >"$work/consumer.log" 2>&1 &&
  cmake --build "$work/consumer-build" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "the find_package consumer does not build against the packages"; }
"$work/consumer-build/consumer" || fail "the find_package consumer failed against the packages"
"$work/consumer-build/consumer_testing" || fail "the tulip::testing consumer failed against the packages"
"$root/usr/bin/tulip-echo-client" --help >/dev/null || fail "the packaged tulip-echo-client does not run"
"$root/usr/bin/tulip-echo-server" --help >/dev/null || fail "the packaged tulip-echo-server does not run"
echo "check-deb: passed"
