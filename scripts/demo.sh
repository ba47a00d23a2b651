#!/usr/bin/env bash
# The main job: builds tulip and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
./build-release/tulip-loop-demo
