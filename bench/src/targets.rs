//! The targets of issue 11, judged from the metrics the benchmarks saved.
//! A target whose inputs were not measured says so instead of guessing.
//!
//! Owns: the list of targets and how each is computed.

use crate::results::{num, Section, Table};
use std::collections::BTreeMap;

pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    pub fn from_sections(sections: &[Section]) -> Metrics {
        let mut m = BTreeMap::new();
        for s in sections {
            for (k, v) in &s.metrics {
                m.insert(k.clone(), *v);
            }
        }
        Metrics(m)
    }

    fn get(&self, k: &str) -> Option<f64> {
        self.0.get(k).copied().filter(|v| v.is_finite())
    }
}

struct Row {
    target: String,
    measured: String,
    met: Option<bool>,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

/// ours / theirs must be ≥ `want` (throughput) or ≤ `want` (latency, time).
fn ratio_row(m: &Metrics, target: String, ours: &str, theirs: &str, want: f64, higher_is_better: bool, unit: &str) -> Row {
    match (m.get(ours), m.get(theirs)) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let met = if higher_is_better { r >= want } else { r <= want };
            Row { target, measured: format!("{} vs {} {unit} = {:.2}×", num(a), num(b), r), met: Some(met) }
        }
        _ => Row { target, measured: "—".into(), met: None },
    }
}

pub fn table(sections: &[Section]) -> Table {
    let m = Metrics::from_sections(sections);
    let mut rows = Vec::new();
    for n in [1, 3] {
        for (peer, label) in [("etcd_http", "etcd JSON gateway"), ("etcd_grpc", "etcd gRPC")] {
            rows.push(ratio_row(
                &m,
                format!("KV PUT throughput at 64 clients ≥ 1.5× etcd ({n} server(s), vs {label})"),
                &format!("kv_put.n{n}.consul.c64.ops"),
                &format!("kv_put.n{n}.{peer}.c64.ops"),
                1.5,
                true,
                "ops/s",
            ));
        }
    }
    for n in [1, 3] {
        for (peer, label) in [("etcd_http", "etcd JSON gateway"), ("etcd_grpc", "etcd gRPC")] {
            rows.push(ratio_row(
                &m,
                format!("single-client PUT latency (p50) ≤ etcd ({n} server(s), vs {label})"),
                &format!("kv_put.n{n}.consul.c1.p50_ms"),
                &format!("kv_put.n{n}.{peer}.c1.p50_ms"),
                1.0,
                false,
                "ms",
            ));
        }
    }
    for n in [1, 3] {
        for (mode, mode_label, peer_mode) in [("default", "default vs linearizable", "default"), ("stale", "`?stale` vs serializable", "stale")] {
            for (peer, label) in [("etcd_http", "JSON gateway"), ("etcd_grpc", "gRPC")] {
                rows.push(ratio_row(
                    &m,
                    format!("KV GET throughput at 64 clients ≥ 2× etcd ({n} server(s), {mode_label}, vs {label})"),
                    &format!("kv_get.n{n}.{mode}.consul.c64.ops"),
                    &format!("kv_get.n{n}.{peer_mode}.{peer}.c64.ops"),
                    2.0,
                    true,
                    "ops/s",
                ));
            }
        }
    }
    for svc in [1, 10, 100] {
        rows.push(ratio_row(
            &m,
            format!("DNS QPS ≥ 50 % of nsd (svc with {svc} instance(s), 4 × 100 outstanding)"),
            &format!("dns.svc{svc}.c4q100.consul_qps"),
            &format!("dns.svc{svc}.c4q100.nsd_qps"),
            0.5,
            true,
            "QPS",
        ));
    }
    let mut gossip_ns: Vec<u64> = m.0.keys().filter_map(|k| k.strip_prefix("gossip.n")?.split('.').next()?.parse().ok()).collect();
    gossip_ns.sort_unstable();
    gossip_ns.dedup();
    for n in gossip_ns {
        for (what, label) in [("join_s", "join seen by all"), ("fail_s", "kill -9 → failed everywhere"), ("leave_s", "leave → left everywhere")] {
            rows.push(ratio_row(&m, format!("gossip no slower than serf: {label} (N = {n})"), &format!("gossip.n{n}.consul.{what}"), &format!("gossip.n{n}.serf.{what}"), 1.0, false, "s"));
        }
    }
    rows.push(ratio_row(&m, "idle client agent RSS ≤ serf agent's".into(), "footprint.consul_client.rss_mb", "footprint.serf.rss_mb", 1.0, false, "MB"));
    match m.get("failover.consul.p50_s") {
        Some(v) => rows.push(Row { target: "leader failover p50 < 3 s".into(), measured: format!("{v:.2} s (etcd {})", m.get("failover.etcd.p50_s").map(|e| format!("{e:.2} s")).unwrap_or_else(|| "—".into())), met: Some(v < 3.0) }),
        None => rows.push(Row { target: "leader failover p50 < 3 s".into(), measured: "—".into(), met: None }),
    }
    rows.push(ratio_row(&m, "1-entry Raft log append ≤ 1.5× raw write + fdatasync (p50)".into(), "disk.wal1.p50_us", "disk.raw.p50_us", 1.5, false, "µs"));
    let mut t = Table::new("Targets (issue 11), judged from this run", &["target", "measured (consul-rs vs peer)", "verdict"]);
    for r in rows {
        t.row(vec![r.target, r.measured, verdict(r.met).into()]);
    }
    t
}
