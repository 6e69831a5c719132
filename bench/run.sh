#!/bin/sh
# The full benchmark suite (about 30 minutes on 2 cores): builds the consul
# release binary and the suite, runs every benchmark, writes docs/benchmarks.md,
# its plots in docs/img/benchmarks/ and the raw results in bench/results/.
# Run it on a quiet machine. Extra arguments go to consul-bench, e.g.
# `bench/run.sh --consul PATH --consul-commit REV` to measure a prebuilt binary.
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release --manifest-path bench/Cargo.toml -- all "$@"
