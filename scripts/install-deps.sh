#!/usr/bin/env bash
# Installs the Debian packages a build needs, and only those missing.
#   scripts/install-deps.sh [release|release-o3|sanitize|thread|debug|bench|bench-run|tour]...
# Every build's tests need curl and python3 (the network examples are
# driven by clients nobody here wrote: curl and CPython's asyncio), and
# every build has the io_uring backend (liburing-dev, found by pkg-config)
# and TLS (pyco::ssl: libssl-dev; its interop tests drive the openssl CLI).
# bench-run adds the peers and tools bench/net/run.py uses.
set -euo pipefail

packages=(cmake ninja-build g++-12 libgtest-dev libgmock-dev python3 curl pkg-config liburing-dev libssl-dev openssl)
for preset in "$@"; do
  case "$preset" in
    release|release-o3|debug|tour) ;;
    sanitize|thread) packages+=(clang-19 libclang-rt-19-dev) ;;
    bench) packages+=(libbenchmark-dev libboost1.81-dev) ;;
    bench-run) packages+=(libbenchmark-dev libboost1.81-dev python3-uvloop nginx-light wrk strace python3-matplotlib util-linux) ;;
    *) echo "install-deps: unknown preset '$preset'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
