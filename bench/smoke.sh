#!/bin/sh
# Quick mode of the benchmark suite, a smoke test (about 3 minutes once built):
# every benchmark runs for about a second at reduced sizes; the report goes to
# bench/.work/quick/benchmarks.md (or --out DIR). Exits non-zero when a
# benchmark failed or a peer tool is missing.
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release --manifest-path bench/Cargo.toml -- all --quick "$@"
