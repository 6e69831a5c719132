#!/bin/sh
# The full benchmark suite (about an hour on 2 cores): builds the consul release
# binary and the suite, runs every benchmark, writes docs/benchmarks.md plus its
# data and plots in docs/benchmarks/. Run it on a quiet machine.
# Extra arguments go to consul-bench (e.g. `bench/run.sh --consul PATH`).
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release --manifest-path bench/Cargo.toml -- all "$@"
