#!/usr/bin/env python3
"""What one acknowledged KV PUT costs the servers: CPU ms and context
switches per write (from /proc, summed over the server processes and all
their threads), plus hey's p50/p99, for a few write loads.

    bench/write_cost.py [--consul PATH] [--secs N] [--base 127.66.1] [SCENARIO...]

Where the binary counts them, also the AppendEntries requests openraft's
replication sent per write (early requests not included) and the commit
notices that rode on a later write instead ("rode").

Scenarios: s1c1 (1 server, 1 client), s3c1 (3 servers, 1 client on the
leader), s3paced (3 servers, ~1,000 PUT/s paced over 3 hey's, 5 clients
each), s3c64 (3 servers, 64 clients spread over them, throughput).
Needs `hey`. Counts of switches are robust to other load on the machine;
times are not: compare builds back to back, several runs each. Threads
that exit during a run take their switch counts with them (tokio's blocking
threads live 10 s idle, so keep runs at or under that). Kills every agent
it starts.
"""
import argparse, glob, json, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def proc_cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS  # utime, stime


def proc_switches(pid):
    total = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(st) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def snapshot(pids):
    return sum(proc_cpu_ms(p) for p in pids), sum(proc_switches(p) for p in pids)


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def http_put(url, body, timeout=5):
    req = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


class Cluster:
    def __init__(self, consul, ips, work):
        self.ips, self.procs = ips, []
        cfg = os.path.join(work, "limits.json")
        with open(cfg, "w") as f:
            f.write('{"limits":{"http_max_conns_per_client":1000000}}')
        for i, ip in enumerate(ips):
            data = os.path.join(work, f"s{i + 1}")
            os.makedirs(data)
            args = [consul, "agent", "-server", f"-data-dir={data}", f"-bind={ip}", f"-client={ip}",
                    f"-node=s{i + 1}", "-log-level=warn", f"-config-file={cfg}"]
            if len(ips) == 1:
                args.append("-bootstrap")
            else:
                args += [f"-bootstrap-expect={len(ips)}", f"-retry-join={ips[0]}", "-retry-interval=1s"]
            log = open(os.path.join(work, f"s{i + 1}.log"), "w")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, secs=60):
        deadline = time.time() + secs
        while time.time() < deadline:
            try:
                leaders = {http_get(f"http://{ip}:8500/v1/status/leader").strip('"\n') for ip in self.ips}
                peers = json.loads(http_get(f"http://{self.ips[0]}:8500/v1/status/peers"))
                if len(leaders) == 1 and "" not in leaders and len(peers) == len(self.ips):
                    for ip in self.ips:
                        http_put(f"http://{ip}:8500/v1/kv/warm", b"x")
                    self.leader = next(iter(leaders)).split(":")[0]
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise SystemExit("cluster did not become ready")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# Counters (where the binary has them): AppendEntries sent for real besides
# the early requests (commit notices sent after waiting included), and
# commit notices that rode on a later early request instead.
APPEND_SENT = ("consul.raft.append.sent_entries", "consul.raft.append.sent_empty")
CARRIED = "consul.raft.commit_notice.carried"


def raft_counters(cluster):
    sent = carried = 0
    for ip in cluster.ips:
        try:
            counters = json.loads(http_get(f"http://{ip}:8500/v1/agent/metrics")).get("Counters") or []
        except Exception:
            continue
        by_name = {c.get("Name"): c.get("Count", 0) for c in counters}
        sent += sum(by_name.get(n, 0) for n in APPEND_SENT)
        carried += by_name.get(CARRIED, 0)
    return sent, carried


def parse_hey(out):
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
    pct = dict(re.findall(r"\s(\d+)%% in ([\d.]+) secs".replace("%%", "%"), out))
    lat = {k: float(v) * 1000 for k, v in pct.items()}
    return ok, lat


def run_load(cluster, body, loads, secs):
    """loads: [(ip, clients, qps_per_client or 0)]; returns (acked, p50, p99, cpu_ms, switches,
    appends sent, commit notices carried)."""
    pids = [p.pid for p in cluster.procs]
    sent0, carried0 = raft_counters(cluster)
    cpu0, sw0 = snapshot(pids)
    heys = []
    for n, (ip, c, q) in enumerate(loads):
        args = ["hey", "-z", f"{secs}s", "-c", str(c), "-m", "PUT", "-D", body]
        if q:
            args += ["-q", str(q)]
        args.append(f"http://{ip}:8500/v1/kv/bench/k{n}")
        heys.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [h.communicate()[0] for h in heys]
    cpu1, sw1 = snapshot(pids)
    sent1, carried1 = raft_counters(cluster)
    acked, p50s, p99s = 0, [], []
    for o in outs:
        ok, lat = parse_hey(o)
        acked += ok
        p50s.append(lat.get("50", float("nan")))
        p99s.append(lat.get("99", float("nan")))
    return acked, max(p50s), max(p99s), cpu1 - cpu0, sw1 - sw0, sent1 - sent0, carried1 - carried0


SCENARIOS = {
    # name: (servers, loads as function of cluster)
    "s1c1": (1, lambda c: [(c.leader, 1, 0)]),
    "s3c1": (3, lambda c: [(c.leader, 1, 0)]),
    "s3paced": (3, lambda c: [(ip, 5, 67) for ip in c.ips]),
    "s3c64": (3, lambda c: [(ip, n, 0) for ip, n in zip(c.ips, (22, 21, 21))]),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--consul", default="target/release/consul")
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--base", default="127.66.1")
    ap.add_argument("--label", default="")
    ap.add_argument("scenarios", nargs="*", default=["s1c1", "s3c1", "s3paced", "s3c64"])
    a = ap.parse_args()
    body = os.path.join(tempfile.gettempdir(), "write_cost_body")
    with open(body, "wb") as f:
        f.write(b"v" * 256)
    print(f"{'label':8} {'scenario':8} {'acked':>7} {'w/s':>7} {'cpu ms/w':>9} {'csw/w':>7} {'p50 ms':>7} {'p99 ms':>7} {'AE/w':>6} {'rode/w':>6}")
    for i, name in enumerate(a.scenarios):
        servers, loads = SCENARIOS[name]
        work = tempfile.mkdtemp(prefix="write_cost.")
        ips = [f"{a.base}.{i * 3 + k + 1}" for k in range(servers)]
        cluster = Cluster(os.path.abspath(a.consul), ips, work)
        try:
            acked, p50, p99, cpu, sw, sent, carried = run_load(cluster, body, loads(cluster), a.secs)
        finally:
            cluster.stop()
            shutil.rmtree(work, ignore_errors=True)
        per = max(acked, 1)
        print(f"{a.label:8} {name:8} {acked:7} {acked / a.secs:7.0f} {cpu / per:9.3f} {sw / per:7.2f} {p50:7.2f} {p99:7.2f} {sent / per:6.2f} {carried / per:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
