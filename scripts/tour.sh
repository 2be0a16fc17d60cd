#!/usr/bin/env bash
# Builds and runs the showcase, examples/tour: a guided trace of pyco's
# whole model. A failed configure or build shows the compiler's messages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh tour
if [ -z "${CMAKE_CXX_COMPILER_LAUNCHER-}" ] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake --preset release >"$log" 2>&1; then
  cat "$log" >&2
  echo "tour.sh: configuring failed (cmake --preset release)" >&2
  exit 1
fi
echo "building the tour (examples/tour; the first build takes a minute or two)..." >&2
if ! cmake --build --preset release -j2 --target tour >"$log" 2>&1; then
  # ninja's "FAILED:" line and the compiler's messages, without the progress.
  grep -v '^\[[0-9]*/[0-9]*\] ' "$log" >&2
  echo "tour.sh: building the tour failed (cmake --build --preset release --target tour)" >&2
  exit 1
fi
exec build/release/examples/tour/tour
