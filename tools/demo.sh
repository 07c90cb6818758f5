#!/usr/bin/env bash
# Builds everything and runs the main job: the gateway load simulator against the bundled
# local OTLP sink for about 20 seconds, with a progress line each second and a final report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh
# A build directory the user configured by hand keeps its generator and build type (CMake
# refuses to switch generators in place; switching the type would rebuild everything).
if [[ -f build/CMakeCache.txt ]]; then
  cmake -S . -B build >/dev/null
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# Everything: libraries, tools (the simulator and the sink it starts), tests and benchmarks.
cmake --build build -j "$(nproc)"
# 2 gateway threads, 20,000 requests/s over 100 accounts and 150 destinations (fan-out, one
# in five in privacy mode, none/gzip/zstd), every span checked against the sink's count.
# Extra flags pass through, e.g.:  tools/demo.sh --rate 0 --single
#                                  tools/demo.sh --sink-args "--fail-503-fraction 0.1" --retry-initial-ms 200
exec ./build/tools/tracecast-load --duration 20s "$@"
