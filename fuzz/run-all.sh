#!/bin/sh
# Runs every fuzz target for a while, then merges what it found into the
# committed corpus (only inputs that add coverage). Usage:
#   fuzz/run-all.sh [seconds-per-target] [target...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); works on the stable
# toolchain through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
set -eu
cd "$(dirname "$0")"
secs=${1:-240}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo fuzz list)}
export RUSTC_BOOTSTRAP=1
# FUZZ_TARGET_DIR: where to build (default fuzz/target).
td=${FUZZ_TARGET_DIR:+--target-dir=$FUZZ_TARGET_DIR}
for t in $targets; do
    mkdir -p "work/$t" "corpus/$t" logs
    cargo fuzz run $td "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"logs/$t.log" 2>&1 || echo "$t: fuzzer stopped (see logs/$t.log)"
    # Keep only what adds coverage.
    cargo fuzz run $td "$t" "corpus/$t" "work/$t" -- -merge=1 >>"logs/$t.log" 2>&1 || true
done
