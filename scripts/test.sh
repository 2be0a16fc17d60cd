#!/usr/bin/env bash
# Builds pyco and runs its tests, printing a summary: the full ctest output
# is kept in build/<preset>/test.log, and a failing test's output is shown.
#
#   scripts/test.sh [--unit] [preset...]
#
# With no preset: the primary build (g++-12 -O2, preset "release"). Others:
# release-o3 (g++-12, CMake's default -O3), sanitize (clang-19 ASan+UBSan),
# thread (clang-19 TSan, the tests that use threads).
# --unit skips the packaging tests (ctest label "package"), which build
# small consumer projects against pyco through find_package and
# add_subdirectory.
# Every preset runs the networking suite twice: on the default backend, and
# with PYCO_BACKEND=io_uring (ctest label "uring"; where the kernel or the
# build has no io_uring, those tests are reported as skipped, with the
# reason in their output). `ctest --preset release -L uring` runs that half.
# release and sanitize also rerun it under injected faults (label "faults",
# docs/reliability.md); release-o3, the same code as release at -O3, leaves
# those copies out to keep CI inside its time. Only release runs the soak
# (label "soak": 10,000 connections for 15 s on each backend, tests/soak);
# the other presets leave it out.
#
# On a quiet 2-core machine the first run takes about 3 minutes (everything
# compiles); a re-run rebuilds only what changed, and with nothing changed
# takes under 10 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

presets=()
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --unit) ctest_args+=(-LE package) ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) echo "test.sh: unknown option '$arg' (see scripts/test.sh --help)" >&2; exit 2 ;;
    *) presets+=("$arg") ;;
  esac
done
[ ${#presets[@]} -eq 0 ] && presets=(release)

# ccache, when installed, makes a rebuild from a clean tree cheap.
if [ -z "${CMAKE_CXX_COMPILER_LAUNCHER-}" ] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi

scripts/install-deps.sh "${presets[@]}"

# On a terminal ninja keeps its progress on one line; in a log it would
# print a line per file, so it is told to print only what the compiler says.
build_args=()
[ -t 1 ] || build_args=(-- --quiet)

# ctest's output goes to the log; on a terminal a counter shows progress.
progress() {
  if [ -t 1 ]; then
    local line
    while IFS= read -r line; do
      if [[ $line =~ ^\ *([0-9]+/[0-9]+)\ Test ]]; then
        printf '\r  tests run: %s' "${BASH_REMATCH[1]}"
      fi
    done
    printf '\r\033[K'
  else
    cat >/dev/null
  fi
}

for preset in "${presets[@]}"; do
  echo "=== $preset"
  start=$SECONDS
  configure_log=$(mktemp)
  if ! cmake --preset "$preset" >"$configure_log" 2>&1; then
    cat "$configure_log"; rm -f "$configure_log"
    echo "=== $preset: configure failed" >&2
    exit 1
  fi
  rm -f "$configure_log"
  if ! cmake --build --preset "$preset" -j2 "${build_args[@]}"; then
    echo "=== $preset: build failed" >&2
    exit 1
  fi
  built=$((SECONDS - start))

  log="build/$preset/test.log"
  set +e
  ctest --preset "$preset" -j2 "${ctest_args[@]}" 2>&1 | tee "$log" | progress
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 0 ]; then
    sed -n '/tests passed/,$p' "$log" | sed '/^$/d'
  else
    # Everything but the passing tests: the failures with their output, and
    # the summary.
    grep -Ev '^ *Start +[0-9]+: |Test +#[0-9]+: .* +Passed +[0-9.]+ sec$' "$log" | sed '/^$/d'
  fi
  echo "=== $preset: built in $built s, tested in $((SECONDS - start - built)) s (full output: $log)"
  [ "$rc" -eq 0 ] || exit "$rc"
done
