#!/usr/bin/env bash
# Installs every Debian package tracecast needs to build, test, benchmark and run its tools.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libconcurrentqueue-dev libsimdjson-dev libcurl4-openssl-dev libzstd-dev zlib1g-dev
  libdeflate-dev libxxhash-dev libmicrohttpd-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  nginx-light openssl ca-certificates curl zstd
  prometheus  # promtool: tests check the Prometheus exposition with `promtool check metrics`
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The nginx package starts a system service on port 80; tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true; fi
"${sudo_cmd[@]}" service nginx stop >/dev/null 2>&1 || true
# Likewise the prometheus package (installed for promtool) may start a server on 9090.
if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
"${sudo_cmd[@]}" service prometheus stop >/dev/null 2>&1 || true
