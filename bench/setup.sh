#!/bin/sh
# Installs the Debian packages the benchmark suite runs against or uses:
# etcd (server + client), serf, dnsperf, nsd, matplotlib for the plots, strace
# for counting fsyncs, perf for the CPU profiles. Run once as root; the suite itself never installs anything.
set -eu
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client serf dnsperf nsd python3-matplotlib strace linux-perf
