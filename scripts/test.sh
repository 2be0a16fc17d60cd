#!/usr/bin/env bash
# Builds and runs every test. With no argument: the primary build (g++-12
# -O2). Name presets to run others: scripts/test.sh sanitize thread
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(release)

scripts/install-deps.sh "${presets[@]}"
for preset in "${presets[@]}"; do
  echo "=== $preset: configure, build, test"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j2
  ctest --preset "$preset" -j2
done
