#!/usr/bin/env bash
# Builds and runs the whole suite three ways: normal (warnings as errors), AddressSanitizer +
# UBSan, and the concurrency tests under ThreadSanitizer; then a short libFuzzer run per fuzz
# target. Fails if any step fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh

jobs=$(nproc)
generator() {  # DIR: Ninja for a new build directory; an existing one keeps its generator
  [[ -f "$1/CMakeCache.txt" ]] || echo "-GNinja"
}
build() {  # build DIR [cmake args...]
  local dir=$1; shift
  # shellcheck disable=SC2046  # empty or one word
  cmake -S . -B "$dir" $(generator "$dir") -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRACECAST_DEVELOPER_MODE=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== normal build + full suite"
build build
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

echo "== AddressSanitizer + UBSan build + full suite"
build build-asan -DTRACECAST_SANITIZE=address,undefined -DTRACECAST_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900 -LE no_sanitizer

echo "== ThreadSanitizer build + concurrency tests"
# Only what the `concurrency` tests need is built (each test's executable has its test's name;
# tracecast-sink serves the integration ones).
cmake -S . -B build-tsan $(generator build-tsan) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DTRACECAST_DEVELOPER_MODE=ON \
  -DTRACECAST_SANITIZE=thread -DTRACECAST_BUILD_BENCH=OFF >/dev/null
mapfile -t tsan_targets < <(ctest --test-dir build-tsan -N -L concurrency | sed -n 's/^ *Test *#[0-9]*: *//p')
cmake --build build-tsan -j "$jobs" --target tracecast-sink "${tsan_targets[@]}"
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 900 -L concurrency

echo "== libFuzzer (clang) short runs"
build build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DTRACECAST_BUILD_FUZZ=ON \
  -DTRACECAST_BUILD_TESTS=OFF -DTRACECAST_BUILD_BENCH=OFF -DTRACECAST_BUILD_TOOLS=OFF
ctest --test-dir build-fuzz --output-on-failure --timeout 600 -L fuzz

echo "== plain Release build with the default options (as a user builds it; build only)"
# No developer mode here: a user's build must succeed without -Werror. Its own directory, so the
# cache of the developer builds above never leaks into it.
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$jobs" 2>&1 | tee build-release/build.log
# Not fatal for a user, but a warning here is an error in developer mode at -O3 (GCC 12's false
# -Wrestrict, PR 105329, came in this way three times): the suite fails on one.
if grep -n "warning:" build-release/build.log; then
  echo "test.sh: the plain Release build printed the warnings above (fatal with -DTRACECAST_DEVELOPER_MODE=ON)"
  exit 1
fi

echo "test.sh: all suites passed"
