#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then configures, builds and runs a tiny
# consumer project that uses find_package(tracecast). When the tools were built, the installed
# ones are complete: tracecast-load's default mode finds the installed tracecast-sink next to
# itself (no TRACECAST_SINK_BIN).
set -euo pipefail
build_dir=$1
source_dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
cmake -S "$source_dir/tests/install_consumer" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
"$tmp/build/consumer"

bin="$tmp/prefix/bin"
if [[ -e "$bin/tracecast-load" ]]; then
  for tool in tracecast-check tracecast-load tracecast-sink; do
    [[ -x "$bin/$tool" ]] || { echo "install_test: $tool was not installed in $bin" >&2; exit 1; }
  done
  env -u TRACECAST_SINK_BIN "$bin/tracecast-load" --count 200 --rate 0 >"$tmp/load.out" 2>&1 || {
    echo "install_test: the installed tracecast-load's default mode failed:" >&2
    cat "$tmp/load.out" >&2
    exit 1
  }
  # Alone (no sink next to it): it says where it looked, with no empty path quoted.
  mkdir "$tmp/alone"
  cp "$bin/tracecast-load" "$tmp/alone/"
  if env -u TRACECAST_SINK_BIN "$tmp/alone/tracecast-load" --count 10 --rate 0 >"$tmp/alone.out" 2>&1; then
    echo "install_test: tracecast-load without a sink next to it succeeded" >&2
    exit 1
  fi
  if ! grep -q "tracecast-sink not found (looked next to this binary; set TRACECAST_SINK_BIN)" "$tmp/alone.out" ||
     grep -q "''" "$tmp/alone.out"; then
    echo "install_test: unexpected message from tracecast-load without a sink:" >&2
    cat "$tmp/alone.out" >&2
    exit 1
  fi
fi
