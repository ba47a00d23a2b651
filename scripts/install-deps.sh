#!/usr/bin/env bash
# Installs the Debian packages tulip needs to build and test, if any are missing.
# Usage: scripts/install-deps.sh [extra-package ...]   (as root, or with sudo available)
set -euo pipefail

# pkg-config: the pkg-config consumer; help2man: the tools' man pages; dpkg-dev,
# file and lintian: the Debian packages; doxygen: the API reference;
# redis-server, redis-tools, nginx-light, curl and wrk: the examples' servers and clients;
# python3-dev: the Python package's extension; libpython3.11-testsuite: CPython's
# own asyncio tests, run against tulip's loop; libssl-dev: TLS (optional for the
# library, wanted for the tests); openssl: the TLS tests' certificates and their
# interoperability peer (s_server, s_client); liburing-dev: the io_uring backend
# (optional for the library, wanted for the tests and the liburing benchmark floor).
packages=(cmake g++ make libgtest-dev libbenchmark-dev python3 valgrind
          pkg-config help2man dpkg-dev file lintian doxygen
          redis-server redis-tools nginx-light curl wrk python3-dev
          libpython3.11-testsuite libssl-dev openssl liburing-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
run_as_root=()
[ "$(id -u)" -eq 0 ] || run_as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -q
"${run_as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
