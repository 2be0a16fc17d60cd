#!/usr/bin/env bash
# Builds and runs the showcase, examples/tour.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh tour
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target tour >/dev/null
exec build/release/examples/tour/tour
