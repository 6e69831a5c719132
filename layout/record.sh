#!/usr/bin/env bash
# Re-records layout/startup-symbols.txt: the functions a client agent and a
# server run while they start, join, idle and leave, as callgrind sees them
# execute. build.rs hands the list to the linker (why: its
# order_startup_code). Run it after a change of toolchain, of a dependency's
# version or of the start-up path, when layout/check.sh reports many names
# missing; then commit the list.
#
#   bash layout/record.sh [release binary [list]]
#   (defaults: target/release/consul, layout/startup-symbols.txt)
#
# Needs valgrind. Starts two agents on 127.211.0.1 and .2 (loopback only)
# and stops them; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/consul}")
out=${2:-layout/startup-symbols.txt}
command -v valgrind >/dev/null || { echo "record.sh needs valgrind" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A traced agent: callgrind with the linker's (mangled) names.
# Configured the ways deployments do: an HCL file, a JSON file and flags
# (each parser's code is part of every start-up).
traced() { # name, HCL config, flags...
  local name=$1 hcl=$2; shift 2
  mkdir -p "$work/$name/data"
  printf '%s\n' "$hcl" > "$work/$name/agent.hcl"
  printf '{"limits": {"http_max_conns_per_client": 1000}}\n' > "$work/$name/limits.json"
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$name/callgrind.out" \
    "$bin" agent -config-file "$work/$name/agent.hcl" -config-file "$work/$name/limits.json" \
    -log-level=warn "$@" > "$work/$name/log" 2>&1 &
  pids+=($!)
}
# Until a command succeeds, for at most $1 seconds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; tail -20 "$work"/*/log >&2; exit 1; }
    sleep 0.5
  done
}
joined() { [ "$("$bin" members -http-addr=127.211.0.2:8500 | grep -c ' alive ')" -ge 2 ]; }

traced server "data_dir = \"$work/server/data\"
bind_addr = \"127.211.0.1\"
client_addr = \"127.211.0.1\"
node_name = \"layout-server\"
server = true
bootstrap_expect = 1"
wait_for 120 "$bin" kv put -http-addr=127.211.0.1:8500 layout/ready 1
traced client "data_dir = \"$work/client/data\"
bind_addr = \"127.211.0.2\"
client_addr = \"127.211.0.2\"
node_name = \"layout-client\"
retry_join = [\"127.211.0.1\"]" -retry-interval=1s
wait_for 120 joined
# What operators and tools ask an agent most: its own view, the catalog
# and the KV store (through the client, forwarded to the server).
at=-http-addr=127.211.0.2:8500
"$bin" info $at >/dev/null
"$bin" catalog nodes $at >/dev/null
"$bin" catalog services $at >/dev/null
"$bin" kv get $at layout/ready >/dev/null
"$bin" members $at >/dev/null
# Idle long enough for every periodic task (anti-entropy, coordinates,
# gossip probes and push-pull) to have run at least once.
sleep 45
kill -INT "${pids[1]}"; wait "${pids[1]}" || true
kill -INT "${pids[0]}"; wait "${pids[0]}" || true
pids=()

# The client's functions first (the agent whose footprint this is for), then
# the server's others; only names the binary defines.
nm --defined-only "$bin" | awk '{print $3}' | sort -u > "$work/defined"
py=layout/callgrind_symbols.py
python3 $py "$work/client/callgrind.out" "$bin" | sort -u > "$work/client.syms"
python3 $py "$work/server/callgrind.out" "$bin" | sort -u > "$work/server.syms"
{
  comm -12 "$work/client.syms" "$work/defined"
  comm -23 "$work/server.syms" "$work/client.syms" | comm -12 - "$work/defined"
} > "$out"
echo "$out: $(wc -l < "$out") functions" \
  "($(comm -12 "$work/client.syms" "$work/defined" | wc -l) from the client)"
