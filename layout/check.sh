#!/usr/bin/env bash
# How much of layout/startup-symbols.txt a release binary still defines.
# build.rs links the listed functions first; names the code no longer has are
# skipped, so the layout rots quietly as code changes: this says how far.
# Below about 80%, re-record the list (layout/record.sh).
#
#   bash layout/check.sh [release binary]   (default: target/release/consul)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/consul}
list=layout/startup-symbols.txt
total=$(wc -l < "$list")
found=$(nm --defined-only "$bin" | awk '{print $3}' | sort -u | comm -12 - <(sort -u "$list") | wc -l)
echo "startup layout: $found of $total listed functions found in $bin ($((100 * found / total))%)"
