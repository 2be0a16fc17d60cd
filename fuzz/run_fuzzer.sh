#!/bin/sh
# run_fuzzer.sh FUZZER CORPUS WORKDIR SECONDS [libFuzzer flags...]
# The test fuzz.<name>.run: fuzzes for SECONDS on a copy of CORPUS made in
# WORKDIR (the source tree is never written), each input bounded in time
# (-timeout) and memory (-rss_limit_mb). A crash, timeout, leak or
# out-of-memory fails the test and leaves the input in WORKDIR/artifacts/;
# make it a regression input by copying it into the source corpus under a
# name that says what it found, e.g.
#   cp WORKDIR/artifacts/crash-1a2b... fuzz/corpus/<name>/tls-double-connection-lost
# (every build then replays it as fuzz.<name>.corpus).
set -eu
fuzzer=$1 corpus=$2 work=$3 seconds=$4
shift 4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$corpus"/* "$work/corpus/"
set +e
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  for f in "$work"/artifacts/*; do
    [ -e "$f" ] || continue
    echo "run_fuzzer: found $f"
    echo "run_fuzzer: reproduce with: $fuzzer $f"
    echo "run_fuzzer: keep it as a regression input: cp $f $corpus/<what-it-found>"
  done
fi
exit "$rc"
