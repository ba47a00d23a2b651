#!/usr/bin/env bash
# The main job: builds tulip in Release, starts tulip-echo-server on a free port,
# runs tulip-echo-client against it and prints the seed's transcript (both
# programs log on stderr, as the seed does).
# Usage: scripts/demo.sh [client options...]   e.g. scripts/demo.sh --message 'hi there'
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null

bin=build-release
workdir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

mkfifo "$workdir/server.log"
"$bin/tulip-echo-server" --port 0 2>"$workdir/server.log" &
server_pid=$!

# The server's first line names the port it bound: "Serving on ('127.0.0.1', P)".
# Everything it logs afterwards is relayed, prefixed, to this script's stdout.
exec 3<"$workdir/server.log"
if ! read -r -t 10 first_line <&3; then
  echo "demo: tulip-echo-server did not start" >&2
  exit 1
fi
port=$(sed -n "s/.*Serving on ('127\.0\.0\.1', \([0-9]*\)).*/\1/p" <<<"$first_line")
if [ -z "$port" ]; then
  echo "demo: unexpected first line from tulip-echo-server: $first_line" >&2
  exit 1
fi
echo "server| $first_line"
sed -u 's/^/server| /' <&3 &
relay_pid=$!

echo "\$ tulip-echo-client --port $port $*"
set +e
"$bin/tulip-echo-client" --port "$port" "$@" 2>&1 | sed -u 's/^/client| /'
status=${PIPESTATUS[0]}
set -e

kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
wait "$relay_pid" 2>/dev/null || true
echo "demo: client exited with status $status"
exit "$status"
