#!/usr/bin/env bash
# Builds everything and runs the main job: the gateway load simulator against the bundled
# local OTLP sink for about 20 seconds, with a progress line each second and a final report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
exec ./build/tools/tracecast-load --duration 20s "$@"
