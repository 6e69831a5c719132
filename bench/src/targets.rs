//! The targets of issue 11, judged from the metrics the benchmarks saved.
//! A target whose inputs were not measured says so instead of guessing.
//!
//! Owns: the list of targets and how each is computed.

use crate::results::{median, num, Section, Table};
use std::collections::BTreeMap;

/// The metrics the targets read. `latest` is what the saved sections hold
/// (the last run of each benchmark); `runs` holds one map per repeated run
/// when the suite ran with `--runs N`: a target then takes the median of
/// its per-run values (ratios are formed within each run, so both sides of
/// a comparison always come from the same run) and reports their spread.
pub struct Metrics {
    latest: BTreeMap<String, f64>,
    runs: Vec<BTreeMap<String, f64>>,
}

impl Metrics {
    /// `runs[k]` are the sections saved by run k of a repeated run.
    pub fn with_runs(sections: &[Section], runs: &[Vec<Section>]) -> Metrics {
        Metrics { latest: merge(sections), runs: runs.iter().map(|r| merge(r)).collect() }
    }

    /// The median over the repeated runs that measured `k`, else the latest value.
    fn get(&self, k: &str) -> Option<f64> {
        let per_run: Vec<f64> =
            self.runs.iter().filter_map(|r| r.get(k).copied()).filter(|v| v.is_finite()).collect();
        if !per_run.is_empty() {
            return Some(median(&per_run));
        }
        self.latest.get(k).copied().filter(|v| v.is_finite())
    }

    /// `ours / theirs` in every repeated run that measured both (empty
    /// without repeated runs).
    fn run_ratios(&self, ours: &str, theirs: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| Some(r.get(ours)? / r.get(theirs).filter(|b| **b > 0.0)?))
            .filter(|x| x.is_finite())
            .collect()
    }

    /// `f` of every repeated run where it is defined (empty without
    /// repeated runs): for values formed from several metrics of one run.
    fn per_run(&self, f: impl Fn(&BTreeMap<String, f64>) -> Option<f64>) -> Vec<f64> {
        self.runs.iter().filter_map(&f).filter(|x| x.is_finite()).collect()
    }

    /// The largest value of `k` over the repeated runs (None without
    /// repeated runs).
    fn max_over_runs(&self, k: &str) -> Option<f64> {
        let v = self.per_run(|r| r.get(k).copied());
        (v.len() >= 2).then(|| v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }

    /// The sum of `k` over the repeated runs.
    fn sum_over_runs(&self, k: &str) -> f64 {
        self.per_run(|r| r.get(k).copied()).iter().sum()
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.latest.keys().chain(self.runs.iter().flat_map(|r| r.keys()))
    }
}

fn merge(sections: &[Section]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in sections {
        for (k, v) in &s.metrics {
            m.insert(k.clone(), *v);
        }
    }
    m
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
fn ratio_row(
    m: &Metrics,
    target: String,
    ours: &str,
    theirs: &str,
    want: f64,
    higher_is_better: bool,
    unit: &str,
) -> Row {
    let ratios = m.run_ratios(ours, theirs);
    if ratios.len() >= 2 {
        // Repeated runs: judge the median of the per-run ratios.
        let r = median(&ratios);
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let met = if higher_is_better { r >= want } else { r <= want };
        let (a, b) = (m.get(ours).map(num).unwrap_or_default(), m.get(theirs).map(num).unwrap_or_default());
        return Row {
            target,
            measured: format!(
                "{a} vs {b} {unit} = {r:.2}× (median of {} runs; ratio {lo:.2}–{hi:.2})",
                ratios.len()
            ),
            met: Some(met),
        };
    }
    match (m.get(ours), m.get(theirs)) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let met = if higher_is_better { r >= want } else { r <= want };
            Row { target, measured: format!("{} vs {} {unit} = {:.2}×", num(a), num(b), r), met: Some(met) }
        }
        _ => Row { target, measured: "—".into(), met: None },
    }
}

/// With repeated runs: the slowest join of every trial of every run, each
/// system's, e.g. "; slowest of all 20 trials: 0.41 vs 0.38 s" (the
/// judged figure is the median of the per-run worst-join ratios).
fn worst_of_all_trials(m: &Metrics, n: u64) -> String {
    let ours = m.max_over_runs(&format!("gossip.n{n}.consul.join_worst_s"));
    let theirs = m.max_over_runs(&format!("gossip.n{n}.serf.join_worst_s"));
    let (Some(a), Some(b)) = (ours, theirs) else { return String::new() };
    let trials = m.sum_over_runs(&format!("gossip.n{n}.consul.trials"));
    let of = if trials > 0.0 { format!("all {trials:.0} trials") } else { "all runs".to_string() };
    format!("; slowest of {of}: {} vs {} s", num(a), num(b))
}

pub fn table(m: &Metrics) -> Table {
    let mut rows = Vec::new();
    for n in [1, 3] {
        for (peer, label) in [("etcd_http", "etcd JSON gateway"), ("etcd_grpc", "etcd gRPC")] {
            rows.push(ratio_row(
                m,
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
                m,
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
        for (mode, mode_label, peer_mode) in [
            ("default", "default vs linearizable", "default"),
            ("stale", "`?stale` vs serializable", "stale"),
        ] {
            for (peer, label) in [("etcd_http", "JSON gateway"), ("etcd_grpc", "gRPC")] {
                rows.push(ratio_row(
                    m,
                    format!(
                        "KV GET throughput at 64 clients ≥ 2× etcd ({n} server(s), {mode_label}, vs {label})"
                    ),
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
            m,
            format!("DNS QPS ≥ 50 % of nsd (svc with {svc} instance(s), 4 × 100 outstanding)"),
            &format!("dns.svc{svc}.c4q100.consul_qps"),
            &format!("dns.svc{svc}.c4q100.nsd_qps"),
            0.5,
            true,
            "QPS",
        ));
    }
    let mut gossip_ns: Vec<u64> =
        m.keys().filter_map(|k| k.strip_prefix("gossip.n")?.split('.').next()?.parse().ok()).collect();
    gossip_ns.sort_unstable();
    gossip_ns.dedup();
    for n in gossip_ns {
        for (what, label) in [
            ("join_s", "join seen by all"),
            ("fail_s", "kill -9 → failed everywhere"),
            ("leave_s", "leave → left everywhere"),
        ] {
            rows.push(ratio_row(
                m,
                format!("gossip no slower than serf: {label} (N = {n})"),
                &format!("gossip.n{n}.consul.{what}"),
                &format!("gossip.n{n}.serf.{what}"),
                1.0,
                false,
                "s",
            ));
        }
    }
    rows.push(ratio_row(
        m,
        "idle client agent RSS ≤ serf agent's".into(),
        "footprint.consul_client.rss_mb",
        "footprint.serf.rss_mb",
        1.0,
        false,
        "MB",
    ));
    match m.get("failover.consul.p50_s") {
        Some(v) => rows.push(Row {
            target: "leader failover p50 < 3 s".into(),
            measured: format!(
                "{v:.2} s (etcd {})",
                m.get("failover.etcd.p50_s").map(|e| format!("{e:.2} s")).unwrap_or_else(|| "—".into())
            ),
            met: Some(v < 3.0),
        }),
        None => {
            rows.push(Row { target: "leader failover p50 < 3 s".into(), measured: "—".into(), met: None })
        }
    }
    // Issues 22 and 23.
    rows.push(ratio_row(
        m,
        "leader failover p50 ≤ etcd's (kill -9 → first acknowledged PUT)".into(),
        "failover.consul.p50_s",
        "failover.etcd.p50_s",
        1.0,
        false,
        "s",
    ));
    let mut join_ns: Vec<u64> = m
        .keys()
        .filter(|k| k.ends_with(".consul.join_worst_s"))
        .filter_map(|k| k.strip_prefix("gossip.n")?.split('.').next()?.parse().ok())
        .collect();
    join_ns.sort_unstable();
    join_ns.dedup();
    for n in join_ns {
        let (ours, theirs) =
            (format!("gossip.n{n}.consul.join_worst_s"), format!("gossip.n{n}.serf.join_worst_s"));
        let mut row = ratio_row(
            m,
            format!("worst gossip join ≤ 2× serf's worst (N = {n})"),
            &ours,
            &theirs,
            2.0,
            false,
            "s",
        );
        row.measured.push_str(&worst_of_all_trials(m, n));
        rows.push(row);
    }
    rows.push(watcher_row(m));
    rows.extend(reads_under_writes_rows(m));
    rows.push(ratio_row(
        m,
        "1-entry Raft log append ≤ 1.5× raw write + fdatasync (p50)".into(),
        "disk.wal1.p50_us",
        "disk.raw.p50_us",
        1.5,
        false,
        "µs",
    ));
    let mut t = Table::new(
        "Targets (issues 11, 22 and 23), judged from this run (medians over the runs when repeated)",
        &["target", "measured (consul-rs vs peer)", "verdict"],
    );
    for r in rows {
        t.row(vec![r.target, r.measured, verdict(r.met).into()]);
    }
    t
}

/// Memory per idle blocking query over HTTP/2 over TLS at 100,000 watchers
/// (HTTP/1.1 needs a descriptor per watcher, so the open-file limit keeps
/// it well below that here; its figure stays in the watch section's table):
/// ≤ 4 KiB each, every watcher of the point opened and held. With repeated
/// runs, the median of the per-run figures and their spread.
fn watcher_row(m: &Metrics) -> Row {
    const N: usize = 100_000;
    let target =
        format!("idle blocking query ≤ 4 KiB each, {} held by one server (HTTP/2 over TLS)", num(N as f64));
    let key = |what: &str| format!("watch_h2.{N}.{what}");
    let Some(kib) = m.get(&key("kib_per_watcher")) else {
        return Row {
            target,
            measured: format!("— (no HTTP/2 point at {} watchers)", num(N as f64)),
            met: None,
        };
    };
    let held = m.get(&key("held")).unwrap_or(0.0);
    let failed = m.get(&key("failed")).unwrap_or(f64::NAN);
    let per_run: Vec<f64> = m
        .runs
        .iter()
        .filter_map(|r| r.get(&key("kib_per_watcher")).copied())
        .filter(|x| x.is_finite())
        .collect();
    let spread = if per_run.len() >= 2 {
        let lo = per_run.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("; median of {} runs, {lo:.2}–{hi:.2} KiB", per_run.len())
    } else {
        String::new()
    };
    // The points add up (10,000 then 100,000) and each answers its sampled
    // watchers, so the agent holds slightly fewer than N at the last one.
    let all_held = failed == 0.0 && held >= 0.99 * N as f64;
    Row {
        target,
        measured: format!(
            "{} KiB each over HTTP/2 + TLS, {} parked, {} failed; idle CPU {} %, write → wake-up p99 {} ms{spread}",
            num(kib),
            num(held),
            num(failed),
            v(m, &key("cpu_pct")),
            v(m, &key("wake_p99_ms")),
        ),
        met: Some(kib <= 4.0 && all_held),
    }
}

/// Issue 22's "GET under concurrent writes no slower at p99 than without
/// them by more than one fsync": per consul-rs read kind, reader count and
/// written key, the excess p99 with writes − p99 without − fsync p50 must
/// be ≤ 0, judged under paced writers (a steady write load that leaves the
/// cores room; closed-loop writers saturate 2 shared cores, and those
/// points stay in the kv-get table as a stress measurement, explained in
/// the gaps). All three figures come from the same run; with repeated runs
/// the excess is formed in each run and the median judged, with its
/// spread. etcd's p99s from the same runs are shown for reference.
fn reads_under_writes_rows(m: &Metrics) -> Vec<Row> {
    use crate::benches::kv_mixed::{metric, FSYNC_METRIC, PACED_RATE, WRITERS};
    let mut rows = Vec::new();
    for kind in ["default", "consistent"] {
        for readers in [1usize, 16] {
            for (writes, what) in [("other_paced", "other keys"), ("same_paced", "the key read")] {
                let target = format!(
                    "GET p99 under {WRITERS} writers at {PACED_RATE} PUT/s ({what}) ≤ p99 without + one fsync (p50) \
                     (consul-rs {kind}, {readers} reader(s), 3 servers)"
                );
                let with = metric("consul", kind, readers, writes, "p99_ms");
                let without = metric("consul", kind, readers, "none", "p99_ms");
                let mut row = excess_row(m, target, &with, &without, "without", FSYNC_METRIC);
                let peers: Vec<String> = [("etcd_grpc", "etcd gRPC"), ("etcd_http", "etcd JSON gateway")]
                    .iter()
                    .filter_map(|(api, label)| {
                        let a = m.get(&metric(api, "linearizable", readers, "none", "p99_ms"))?;
                        let b = m.get(&metric(api, "linearizable", readers, writes, "p99_ms"))?;
                        Some(format!("{label} {} → {} ms", num(a), num(b)))
                    })
                    .collect();
                if row.met.is_some() && !peers.is_empty() {
                    row.measured.push_str(&format!("; {}", peers.join(", ")));
                }
                rows.push(row);
            }
        }
    }
    rows.extend(reads_under_writes_control_rows(m));
    rows
}

/// The control for the rows above (not an issue target of its own, shown
/// beside them): the same paced writes sent to another 3-server cluster on
/// the machine load its 2 cores alike but give the cluster read no write
/// work, so p99 with the writes on the cluster read − p99 with them on the
/// other cluster − one fsync is what the cluster's own writes add.
fn reads_under_writes_control_rows(m: &Metrics) -> Vec<Row> {
    use crate::benches::kv_mixed::{metric, FSYNC_METRIC, PACED_RATE, WRITERS};
    let mut rows = Vec::new();
    for kind in ["default", "consistent"] {
        for readers in [1usize, 16] {
            let control = metric("consul", kind, readers, "elsewhere_paced", "p99_ms");
            if m.get(&control).is_none() {
                continue;
            }
            for (writes, what) in [("other_paced", "other keys"), ("same_paced", "the key read")] {
                let target = format!(
                    "control: GET p99 under {WRITERS} writers at {PACED_RATE} PUT/s ({what}) ≤ p99 under the same \
                     writes to another 3-server cluster on the machine + one fsync (p50) (consul-rs {kind}, \
                     {readers} reader(s))"
                );
                let with = metric("consul", kind, readers, writes, "p99_ms");
                rows.push(excess_row(
                    m,
                    target,
                    &with,
                    &control,
                    "with them on the other cluster",
                    FSYNC_METRIC,
                ));
            }
        }
    }
    rows
}

/// Why GETs slow down under concurrent writes, from the run's own figures
/// (1 reader, default reads): whether the read waits for the write (then
/// the key read would suffer more than other keys) or for a CPU the
/// writers keep busy. `paced` picks the judged writes (a paragraph only
/// when they miss) or the closed-loop stress writes (a paragraph whenever
/// their p99 exceeds the bound).
fn reads_under_writes_gap(m: &Metrics, paced: bool) -> Option<String> {
    use crate::benches::kv_mixed::{metric, FSYNC_METRIC, PACED_RATE, WRITERS};
    let (other, same) = if paced { ("other_paced", "same_paced") } else { ("other", "same") };
    let g = |api: &str, kind: &str, writes: &str, what: &str| m.get(&metric(api, kind, 1, writes, what));
    let (p99_none, p99_other) =
        (g("consul", "default", "none", "p99_ms")?, g("consul", "default", other, "p99_ms")?);
    let fsync_ms = m.get(FSYNC_METRIC)? / 1000.0;
    if p99_other - p99_none <= fsync_ms {
        return None;
    }
    let p50_none = g("consul", "default", "none", "p50_ms")?;
    let p50_other = g("consul", "default", other, "p50_ms")?;
    let p50_same = g("consul", "default", same, "p50_ms")?;
    let writes = g("consul", "default", other, "writes_per_s")?;
    let load = if paced {
        format!("{WRITERS} writers at {PACED_RATE} PUT/s")
    } else {
        format!("{WRITERS} closed-loop writers (stress, not the judged load)")
    };
    let mut p = format!(
        "**GET p99 under {load}: +{} ms at 1 reader (default reads, {} → {} ms) against one fsync of {} ms.** The \
         writers ran {} PUT/s. The median read went {} → {} ms when they wrote other keys and → {} ms when they \
         wrote the key being read. ",
        num(p99_other - p99_none),
        num(p99_none),
        num(p99_other),
        num(fsync_ms),
        num(writes),
        num(p50_none),
        num(p50_other),
        num(p50_same),
    );
    if (p50_same - p50_other).abs() <= 0.3 * p50_other.max(p50_same) {
        p.push_str(
            "A read that waited for a write would suffer more on the key being written; it suffers the same, so \
             it waits for a CPU, not for the write: three servers, the writers and the readers share this \
             machine's cores, and the writes keep them busy (`tests/it/reads.rs` holds the leader's fsync and \
             shows reads answering at once). ",
        );
    } else {
        p.push_str("Reads of the key being written suffer differently from reads of other keys: not explained here. ");
    }
    if let (true, Some(control)) = (paced, g("consul", "default", "elsewhere_paced", "p99_ms")) {
        p.push_str(&format!(
            "The control sent the same paced writes to another 3-server cluster on this machine instead: the read \
             p99 was {} ms then, ",
            num(control)
        ));
        if control >= p99_other {
            p.push_str(&format!(
                "no lower than with the writes on the cluster read ({} ms): the whole rise comes with the load on \
                 the machine's cores, none with the cluster's own writes. ",
                num(p99_other)
            ));
        } else {
            p.push_str(&format!(
                "so {} ms of the {} ms rise comes with the load on the machine's cores and {} ms with the \
                 cluster's own writes. ",
                num(control - p99_none),
                num(p99_other - p99_none),
                num(p99_other - control),
            ));
        }
    }
    if let (Some(a), Some(b)) =
        (g("etcd_grpc", "linearizable", "none", "p99_ms"), g("etcd_grpc", "linearizable", other, "p99_ms"))
    {
        p.push_str(&format!(
            "etcd's linearizable reads over gRPC went {} → {} ms under the same load.",
            num(a),
            num(b)
        ));
    }
    Some(p)
}

/// `with − without − fsync` (ms; fsync in µs) must be ≤ 0.
/// `base` names the p99 the excess is over ("without", …).
fn excess_row(m: &Metrics, target: String, with: &str, without: &str, base: &str, fsync_us: &str) -> Row {
    let excess = |w: f64, wo: f64, f: f64| w - wo - f / 1000.0;
    let per_run = m.per_run(|r| Some(excess(*r.get(with)?, *r.get(without)?, *r.get(fsync_us)?)));
    let (Some(w), Some(wo), Some(f)) = (m.get(with), m.get(without), m.get(fsync_us)) else {
        return Row { target, measured: "—".into(), met: None };
    };
    let head =
        format!("p99 {} ms with writes vs {} ms {base} + fsync {} ms", num(w), num(wo), num(f / 1000.0));
    if per_run.len() >= 2 {
        let x = median(&per_run);
        let lo = per_run.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        return Row {
            target,
            measured: format!(
                "{head}: excess {x:+.2} ms (median of {} runs; {lo:+.2} to {hi:+.2})",
                per_run.len()
            ),
            met: Some(x <= 0.0),
        };
    }
    let x = excess(w, wo, f);
    Row { target, measured: format!("{head}: excess {x:+.2} ms"), met: Some(x <= 0.0) }
}

/// A number for prose: "—" when it was not measured.
fn v(m: &Metrics, k: &str) -> String {
    m.get(k).map(num).unwrap_or_else(|| "—".into())
}

/// Which etcd API did better on a metric (higher is better): its key.
fn stronger_etcd(m: &Metrics, fmt: impl Fn(&str) -> String) -> &'static str {
    let h = m.get(&fmt("etcd_http")).unwrap_or(0.0);
    let g = m.get(&fmt("etcd_grpc")).unwrap_or(0.0);
    if g >= h {
        "etcd_grpc"
    } else {
        "etcd_http"
    }
}

fn label(peer: &str) -> &'static str {
    if peer == "etcd_grpc" {
        "etcd over gRPC"
    } else {
        "etcd's JSON gateway"
    }
}

/// The "known gaps" paragraphs: for every target this run did not meet, by
/// how much, and what the run's own measurements say limits it. The
/// reasoning is fixed text; every number comes from the saved metrics, and
/// where the evidence points one way or another the wording follows it.
pub fn gaps(m: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    for paced in [true, false] {
        if let Some(p) = reads_under_writes_gap(m, paced) {
            out.push(p);
        }
    }
    // KV PUT throughput at 64 clients.
    for n in [1, 3] {
        let ours = m.get(&format!("kv_put.n{n}.consul.c64.ops"));
        let peer = stronger_etcd(m, |p| format!("kv_put.n{n}.{p}.c64.ops"));
        let theirs = m.get(&format!("kv_put.n{n}.{peer}.c64.ops"));
        let (Some(a), Some(b)) = (ours, theirs) else { continue };
        if a >= 1.5 * b {
            continue;
        }
        let cpu_c = m.get(&format!("kv_put.n{n}.consul.c64.cpu_ms"));
        let cpu_e = m.get(&format!("kv_put.n{n}.{peer}.c64.cpu_ms"));
        let sy_c = m.get(&format!("kv_put.n{n}.consul.c64.syncs_per_op"));
        let sy_e = m.get(&format!("kv_put.n{n}.etcd_http.c64.syncs_per_op"));
        let mut p = format!(
            "**KV PUT at 64 clients, {n} server(s): {} writes/s vs {} for {} = {:.2}× (target 1.5×).** Per write the \
             consul-rs servers spent {} CPU ms (etcd: {}), made {} sync calls (etcd: {}) taking {} µs each on average \
             (etcd: {} µs). ",
            num(a),
            num(b),
            label(peer),
            a / b,
            v(m, &format!("kv_put.n{n}.consul.c64.cpu_ms")),
            v(m, &format!("kv_put.n{n}.{peer}.c64.cpu_ms")),
            v(m, &format!("kv_put.n{n}.consul.c64.syncs_per_op")),
            v(m, &format!("kv_put.n{n}.etcd_http.c64.syncs_per_op")),
            v(m, &format!("kv_put.n{n}.consul.c64.sync_us")),
            v(m, &format!("kv_put.n{n}.etcd_http.c64.sync_us")),
        );
        match (cpu_c, cpu_e, sy_c, sy_e) {
            (Some(c), Some(e), _, _) if c > 1.2 * e => p.push_str(
                "consul-rs does more CPU work per write than etcd, and on this 2-core machine the servers share the CPUs \
                 with the load generator, so CPU per write caps throughput; the profile section shows where that time \
                 goes. Cutting allocations and copies on the write path (HTTP body → Raft entry → WAL record → state \
                 machine) is the lever.",
            ),
            (_, _, Some(sc), Some(se)) if sc > 1.2 * se => p.push_str(
                "consul-rs batches fewer writes per sync than etcd, so it is bound by sync calls: more commands per \
                 Raft entry (a longer gathering window in the proposer while a sync is in flight) is the lever.",
            ),
            (Some(_), Some(_), Some(_), Some(_)) => p.push_str(
                "consul-rs spends no more CPU and no more syncs per write than etcd, so its servers are waiting rather \
                 than working: the write pipeline limits concurrency. The proposer (`src/consensus/proposer.rs`) keeps \
                 at most 2 proposals in flight, and each is one Raft entry that must be synced and (with 3 servers) \
                 replicated before its writers are answered; letting more batches overlap with the sync and the \
                 replication round trip is the lever.",
            ),
            _ => p.push_str("The CPU or sync evidence for this row was not measured in this run."),
        }
        out.push(p);
    }
    // Single-client PUT latency.
    for n in [1, 3] {
        let ours = m.get(&format!("kv_put.n{n}.consul.c1.p50_ms"));
        let g = m.get(&format!("kv_put.n{n}.etcd_grpc.c1.p50_ms"));
        let h = m.get(&format!("kv_put.n{n}.etcd_http.c1.p50_ms"));
        let (Some(a), Some(g), Some(h)) = (ours, g, h) else { continue };
        if a <= g.min(h) {
            continue;
        }
        let sync_c = m.get(&format!("kv_put.n{n}.consul.c1.sync_us"));
        let sync_e = m.get(&format!("kv_put.n{n}.etcd_http.c1.sync_us"));
        let mut p = format!(
            "**Single-client PUT latency, {n} server(s): p50 {} ms vs {} ms (etcd gRPC) and {} ms (etcd JSON gateway).** \
             With one client nothing can be batched: every write is one Raft entry and one sync on each server ({} sync \
             calls per write measured). A sync call took {} µs on average inside consul-rs and {} µs inside etcd, on the \
             same disk in the same run; the server CPU per write was {} ms (etcd gRPC: {} ms). ",
            num(a),
            num(g),
            num(h),
            v(m, &format!("kv_put.n{n}.consul.c1.syncs_per_op")),
            v(m, &format!("kv_put.n{n}.consul.c1.sync_us")),
            v(m, &format!("kv_put.n{n}.etcd_http.c1.sync_us")),
            v(m, &format!("kv_put.n{n}.consul.c1.cpu_ms")),
            v(m, &format!("kv_put.n{n}.etcd_grpc.c1.cpu_ms")),
        );
        match (sync_c, sync_e) {
            (Some(c), Some(e)) if c > 2.0 * e && c > 0.3 * a * 1000.0 => {
                p.push_str(&format!(
                    "The sync dominates: consul-rs's syncs were {:.1}× slower than etcd's on the same disk. ",
                    c / e
                ));
                match (m.get("disk.raw.p50_us"), m.get("disk.prealloc.p50_us")) {
                    (Some(raw), Some(pre)) if pre < 0.7 * raw => p.push_str(&format!(
                        "The disk probe shows why: an fdatasync after appending to a growing file took {} µs (p50), \
                         one into preallocated space {} µs; consul-rs's WAL grows its segment file with every append \
                         (each sync must also commit the new size through the filesystem journal), while etcd writes \
                         into 64 MB segments preallocated when created. Preallocating WAL segments is the lever.",
                        num(raw),
                        num(pre)
                    )),
                    (Some(raw), Some(pre)) => p.push_str(&format!(
                        "The disk probe does not show a file-growth penalty (append {} µs vs preallocated {} µs p50), so \
                         the difference is in how the sync is issued and waited for, not in the file layout; this needs a \
                         closer look (e.g. `perf trace` of both servers' sync calls).",
                        num(raw),
                        num(pre)
                    )),
                    _ => {}
                }
            }
            (Some(c), e) => p.push_str(&format!(
                "The mean sync is about {:.0} % of consul-rs's p50{}; the rest is CPU and hand-offs between tasks (HTTP → \
                 proposer → openraft → WAL → state machine → reply, plus forwarding to the leader with 3 servers), where \
                 consul-rs spends more per write than etcd over gRPC; the profile \"PUT, 1 client, 1 server\" shows \
                 where the CPU goes ({} % of its samples in the kernel: syscalls, task switches, I/O submission; {} % in \
                 malloc/free). Fewer task hops and less CPU on the single-write path is the lever.",
                (100.0 * c / (a * 1000.0)).min(100.0),
                e.filter(|e| *e > 0.0).map(|e| format!(" and {:.1}× etcd's mean sync", c / e)).unwrap_or_default(),
                v(m, "profile.put_c1_n1.kernel_pct"),
                v(m, "profile.put_c1_n1.alloc_pct"),
            )),
            _ => p.push_str("The evidence for this row (sync timing) was not measured in this run."),
        }
        out.push(p);
    }
    // GET throughput.
    for n in [1, 3] {
        for mode in ["default", "stale"] {
            let ours = m.get(&format!("kv_get.n{n}.{mode}.consul.c64.ops"));
            let peer = stronger_etcd(m, |p| format!("kv_get.n{n}.{mode}.{p}.c64.ops"));
            let theirs = m.get(&format!("kv_get.n{n}.{mode}.{peer}.c64.ops"));
            let (Some(a), Some(b)) = (ours, theirs) else { continue };
            if a >= 2.0 * b {
                continue;
            }
            let cpu_c = m.get(&format!("kv_get.n{n}.{mode}.consul.c64.cpu_ms"));
            let cpu_e = m.get(&format!("kv_get.n{n}.{mode}.{peer}.c64.cpu_ms"));
            let what = if mode == "default" {
                "default consistency vs etcd linearizable"
            } else {
                "`?stale` vs etcd serializable"
            };
            let mut p = format!(
                "**KV GET at 64 clients, {n} server(s), {what}: {} reads/s vs {} for {} = {:.2}× (target 2×).** Server CPU \
                 per read: consul-rs {} ms, etcd {} ms. ",
                num(a),
                num(b),
                label(peer),
                a / b,
                v(m, &format!("kv_get.n{n}.{mode}.consul.c64.cpu_ms")),
                v(m, &format!("kv_get.n{n}.{mode}.{peer}.c64.cpu_ms")),
            );
            match (cpu_c, cpu_e) {
                (Some(c), Some(e)) if c * 2.0 > e => p.push_str(
                    "consul-rs does not spend half of etcd's CPU per read, and on 2 shared cores CPU per read bounds \
                     throughput: reads allocate and copy (state store entry → JSON with base64 value → HTTP body); the \
                     profile section shows the split. Serving reads from shared buffers without copying is the lever.",
                ),
                (Some(_), Some(_)) if mode == "default" && n > 1 => p.push_str(
                    "consul-rs needs less than half of etcd's CPU per read, so it is waiting, not working: a default read \
                     waits for a leadership confirmation round trip to a quorum (shared by all reads that arrive \
                     meanwhile), and the two thirds of clients connected to followers are forwarded to the leader first.",
                ),
                (Some(_), Some(_)) => p.push_str(
                    "consul-rs needs less than half of etcd's CPU per read, so the servers are not the bottleneck: the \
                     load generator and the servers share 2 cores, and the closed-loop clients saturate them.",
                ),
                _ => p.push_str("CPU per read was not measured in this run."),
            }
            out.push(p);
        }
    }
    // DNS.
    let mut dns = Vec::new();
    for svc in [1, 10, 100] {
        if let (Some(a), Some(b)) = (
            m.get(&format!("dns.svc{svc}.c4q100.consul_qps")),
            m.get(&format!("dns.svc{svc}.c4q100.nsd_qps")),
        ) {
            dns.push((svc, a, b));
        }
    }
    if dns.iter().any(|(_, a, b)| *a < 0.5 * b) {
        let rows: Vec<String> = dns
            .iter()
            .map(|(s, a, b)| {
                format!("{s} instance(s): {} vs {} QPS ({:.0} %)", num(*a), num(*b), 100.0 * a / b)
            })
            .collect();
        let mut p = format!(
            "**DNS: below 50 % of nsd** — {}. The consul-rs agent spent {} CPU µs per query (svc100); its profile: \
             {} % of samples in the kernel (UDP receive/send), {} % in malloc/free, {} % in memcpy/memcmp. ",
            rows.join("; "),
            v(m, "dns.svc100.cpu_us_per_query"),
            v(m, "dns.profile.kernel_pct"),
            v(m, "dns.profile.alloc_pct"),
            v(m, "dns.profile.memcpy_pct"),
        );
        let first = dns.first().map(|x| x.1).unwrap_or(f64::NAN);
        let last = dns.last().map(|x| x.1).unwrap_or(f64::NAN);
        if last < 0.7 * first {
            p.push_str(&format!(
                "QPS falls as the service grows ({} → {} QPS from 1 to 100 instances) although every answer holds at \
                 most 3 records: each query does work proportional to all instances of the service (reading, copying \
                 and shuffling every instance before truncating to 3). Precomputing the per-service answer when the \
                 catalog changes (as nsd precompiles its zone), and serving from it without allocation, is the lever.",
                num(first),
                num(last)
            ));
        } else {
            p.push_str(
                "QPS does not depend much on the instance count, so the cost is per packet: the receive/answer loop \
                 (one task per query, allocations per answer); batching receives and reusing buffers is the lever.",
            );
        }
        out.push(p);
    }
    // Gossip.
    let mut gossip_ns: Vec<u64> =
        m.keys().filter_map(|k| k.strip_prefix("gossip.n")?.split('.').next()?.parse().ok()).collect();
    gossip_ns.sort_unstable();
    gossip_ns.dedup();
    let (mut slow, mut slow_leave, mut slow_real) = (Vec::new(), Vec::new(), Vec::new());
    for n in gossip_ns {
        for (what, label) in [("join_s", "join"), ("fail_s", "failure detection"), ("leave_s", "leave")] {
            if let (Some(a), Some(b)) =
                (m.get(&format!("gossip.n{n}.consul.{what}")), m.get(&format!("gossip.n{n}.serf.{what}")))
            {
                if a > b {
                    let text = format!("{label} at N = {n}: {} s vs {} s", num(a), num(b));
                    // Polling every 50 ms: a few polls of difference is noise
                    // for join and leave; failure detection varies by a probe
                    // interval with the victim's place in the probe order.
                    let noise = if what == "fail_s" { 1.0 } else { 0.15 };
                    if a <= b + noise {
                        slow.push(text);
                    } else if what == "leave_s" {
                        slow_leave.push(text);
                    } else {
                        slow_real.push(text);
                    }
                }
            }
        }
    }
    if !slow.is_empty() {
        out.push(format!(
            "**Gossip slower than serf, within noise** — {}. Observers poll every 50 ms, so differences up to about \
             0.15 s (join, leave) or one probe interval (1 s, failure detection: where the victim falls in each \
             member's probe order decides when it is first probed) are within the noise of these few trials; the \
             simulation section gives the protocol's behaviour without that noise.",
            slow.join("; ")
        ));
    }
    if !slow_real.is_empty() {
        out.push(format!(
            "**Gossip slower than serf beyond polling noise** — {}. Not profiled in this pass; with medians of 2–3 \
             trials this needs more trials before it is called a regression.",
            slow_real.join("; ")
        ));
    }
    if !slow_leave.is_empty() {
        out.push(format!(
            "**Graceful leave slower than serf by more than polling noise** — {}. Not profiled in this pass. Where the \
             time goes in consul-rs: the leaving agent first waits until its leave intent is no longer queued for \
             gossip (`LeavePhase::Intent` in `src/gossip/serf/mod.rs`, bounded by `broadcast_timeout`), then \
             broadcasts its own departure and waits for that to drain and for `leave_propagate_delay` (1 s) before it \
             stops; members mark it left when the departure message reaches them. How long the intent stays queued \
             (its retransmit budget is consumed only by gossip rounds that have room for it) is the first thing to \
             measure.",
            slow_leave.join("; ")
        ));
    }
    // Idle client RSS.
    if let (Some(a), Some(b)) = (m.get("footprint.consul_client.rss_mb"), m.get("footprint.serf.rss_mb")) {
        if a > b {
            out.push(format!(
                "**Idle client agent RSS: {} MB vs serf's {} MB ({:.2}×).** Of consul-rs's RSS, {} MB are anonymous \
                 (heap and thread stacks, {} threads) and {} MB file-backed (pages of the {} MB binary and of libc \
                 that were touched); serf: {} MB anonymous, {} MB file-backed, {} threads, {} MB binary. File-backed \
                 pages are clean, shared between processes of the same binary and reclaimable, but they count in RSS. \
                 They are the code and read-only data the process has executed or read since start-up (debug sections \
                 are never loaded, so stripping changes nothing here): a client agent runs the same binary as a server \
                 and touches server start-up code too. Less code on the client's start-up path, or a size-optimised \
                 build (`opt-level = \"s\"`), is the lever; the anonymous part is already small.",
                num(a),
                num(b),
                a / b,
                v(m, "footprint.consul_client.anon_mb"),
                m.get("footprint.consul_client.threads").map(|t| format!("{t:.0}")).unwrap_or_else(|| "—".into()),
                v(m, "footprint.consul_client.file_mb"),
                v(m, "footprint.consul_client.binary_mb"),
                v(m, "footprint.serf.anon_mb"),
                v(m, "footprint.serf.file_mb"),
                m.get("footprint.serf.threads").map(|t| format!("{t:.0}")).unwrap_or_else(|| "—".into()),
                v(m, "footprint.serf.binary_mb"),
            ));
        }
    }
    // Catalog reads at scale: no numeric target, but a listing that takes
    // tens of milliseconds with 10,000 services is a gap users feel.
    if let (Some(p1), Some(p16)) =
        (m.get("catalog.catalog_services.c1.p50_ms"), m.get("catalog.catalog_services.c16.p50_ms"))
    {
        if p1 > 10.0 {
            out.push(format!(
                "**`/v1/catalog/services` is slow with a large catalog: p50 {} ms at 1 client and {} ms at 16** (after \
                 registering the catalog in {} s; `/v1/health/service/<name>?passing` stays at {} ms p50). The answer is \
                 one JSON object of service names and tags, which takes on the order of a millisecond to encode, so \
                 the time goes into per-request work over every registered instance. Not profiled in this pass; the DNS \
                 profile above, which reads the same catalog, is dominated by malloc/free and copies, with \
                 `NodeService` clones and per-node check lookups (`Registry::node_checks`) among the hottest \
                 functions — consistent with reads that clone every instance. An index of services → tags maintained \
                 on write, served without cloning, is the lever.",
                num(p1),
                num(p16),
                v(m, "catalog.register_secs"),
                v(m, "catalog.health_service.c1.p50_ms"),
            ));
        }
    }
    // Idle watchers: the target is judged over HTTP/2 at 100,000; when it is
    // missed (or that point is missing although the benchmark ran), say what
    // the run shows, with HTTP/1.1's figure and its stated cause.
    let mut h1: Vec<u64> = m
        .keys()
        .filter_map(|k| k.strip_prefix("watch.")?.strip_suffix(".kib_per_watcher")?.parse().ok())
        .collect();
    h1.sort_unstable();
    let ran = h1.last().is_some() || m.keys().any(|k| k.starts_with("watch_h2."));
    let row = watcher_row(m);
    if row.met == Some(false) || (row.met.is_none() && ran) {
        let mut p = format!(
            "**Idle blocking queries: {} (target ≤ 4 KiB each at 100,000, over HTTP/2 over TLS).**",
            row.measured
        );
        if let Some(n) = h1.last() {
            p.push_str(&format!(
                " Over HTTP/1.1 each costs {} KiB at {n} watchers: one connection per watcher, and hyper's HTTP/1 \
                 server keeps a fixed 8 KiB read and 8 KiB write buffer per connection; HTTP/2 shares a connection's \
                 buffers among its streams.",
                v(m, &format!("watch.{n}.kib_per_watcher")),
            ));
        }
        if m.get("watch_h2.100000.kib_per_watcher").is_some_and(|k| k > 4.0) {
            p.push_str(
                " Over HTTP/2 what remains is the state each parked query keeps (its request and HTTP/2 stream in \
                 the server, the blocking-query waiter); a heap profile of an agent holding watchers would show which.",
            );
        }
        out.push(p);
    }
    // Failover.
    if let Some(a) = m.get("failover.consul.p50_s") {
        if a >= 3.0 {
            let el = m.get("failover.consul.elected_p50_s");
            let mut p = format!(
                "**Failover p50 {} s (target < 3 s; etcd {} s).** A survivor named a new leader after {} s (p50; etcd: \
                 {} s). ",
                num(a),
                v(m, "failover.etcd.p50_s"),
                v(m, "failover.consul.elected_p50_s"),
                v(m, "failover.etcd.elected_p50_s"),
            );
            match el {
                Some(e) if e > 0.6 * a => p.push_str(
                    "Most of the time is the election itself. With default timings a follower waits its randomised \
                     election timeout ([1 s, 2 s) at `raft_multiplier` 1, in `src/consensus/mod.rs`) after the last \
                     heartbeat before it campaigns, and a split or failed first round costs another timeout. etcd's \
                     election timeout is 1 s too (randomised in [1 s, 2 s)), so its election time above is what these \
                     timings allow; the difference is in consul-rs's election path (failure to notice the missing \
                     heartbeats promptly, or votes that fail and repeat), which is the lever.",
                ),
                Some(e) => p.push_str(&format!(
                    "The election is not the main part: writes succeeded only {} s after a new leader was named, so the \
                     write path recovers slowly — followers keep forwarding to the dead leader until they learn the new \
                     one, or the new leader's first commit of its term is slow. The lever is forwarding: refresh the \
                     leader on a failed forward and retry.",
                    num(a - e)
                )),
                None => p.push_str("The election time was not measured in this run."),
            }
            out.push(p);
        }
    }
    // Disk.
    if let (Some(a), Some(b)) = (m.get("disk.wal1.p50_us"), m.get("disk.raw.p50_us")) {
        if a > 1.5 * b {
            out.push(format!(
                "**1-entry Raft append {} µs vs raw write + fdatasync {} µs (p50, {:.2}×, target 1.5×).** The WAL adds \
                 a CRC, a header and bookkeeping to the same write + fdatasync; a ratio this high points at an extra \
                 sync or write per append.",
                num(a),
                num(b),
                a / b
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(metrics: &[(&str, f64)]) -> Section {
        let mut s = Section::new("failover", "Leader failover");
        for (k, v) in metrics {
            s.metric(*k, *v);
        }
        s
    }

    #[test]
    fn repeated_runs_judge_the_median_of_per_run_ratios() {
        let run = |ours: f64, theirs: f64| {
            vec![section(&[("failover.consul.p50_s", ours), ("failover.etcd.p50_s", theirs)])]
        };
        // Ratios 0.5, 2.0, 0.9: the median ratio (0.9) meets ≤ 1, although
        // the ratio of the medians (1.0 / 1.0) would only just.
        let runs = vec![run(1.0, 2.0), run(2.0, 1.0), run(0.9, 1.0)];
        let m = Metrics::with_runs(&runs[2], &runs);
        let row = ratio_row(&m, "t".into(), "failover.consul.p50_s", "failover.etcd.p50_s", 1.0, false, "s");
        assert_eq!(row.met, Some(true));
        assert!(row.measured.contains("0.90×"), "{}", row.measured);
        assert!(row.measured.contains("median of 3 runs; ratio 0.50–2.00"), "{}", row.measured);
    }

    #[test]
    fn worst_join_rows_also_give_the_slowest_trial_of_all_runs() {
        let run = |ours: f64, theirs: f64| {
            vec![section(&[
                ("gossip.n5.consul.join_worst_s", ours),
                ("gossip.n5.serf.join_worst_s", theirs),
                ("gossip.n5.consul.trials", 4.0),
            ])]
        };
        let runs = vec![run(0.3, 0.3), run(0.9, 0.4), run(0.2, 0.5)];
        let t = table(&Metrics::with_runs(&runs[2], &runs));
        let row = row_for(&t, "worst gossip join ≤ 2× serf's worst (N = 5)");
        assert!(row[1].contains("median of 3 runs"), "{}", row[1]);
        assert!(row[1].contains("slowest of all 12 trials: 0.900 vs 0.500 s"), "{}", row[1]);
        // One run: nothing to add.
        let t = table(&Metrics::with_runs(&runs[0], &[]));
        assert!(!row_for(&t, "worst gossip join").iter().any(|c| c.contains("slowest of")));
    }

    fn mixed(kind: &str, none: f64, other: f64, fsync_us: f64) -> Section {
        use crate::benches::kv_mixed::{metric, FSYNC_METRIC};
        section(&[
            (&metric("consul", kind, 1, "none", "p99_ms"), none),
            (&metric("consul", kind, 1, "other_paced", "p99_ms"), other),
            (FSYNC_METRIC, fsync_us),
        ])
    }

    fn row_for<'a>(t: &'a Table, start: &str) -> &'a Vec<String> {
        t.rows.iter().find(|r| r[0].starts_with(start)).unwrap_or_else(|| panic!("no row {start}"))
    }

    const OTHER_DEFAULT_1: &str =
        "GET p99 under 16 writers at 1000 PUT/s (other keys) ≤ p99 without + one fsync (p50) \
                                   (consul-rs default, 1 reader(s)";

    #[test]
    fn reads_under_writes_gap_tells_cpu_from_write_waits() {
        use crate::benches::kv_mixed::{metric, FSYNC_METRIC};
        let run = |p50_same: f64| {
            vec![section(&[
                (&metric("consul", "default", 1, "none", "p99_ms"), 0.2),
                (&metric("consul", "default", 1, "other", "p99_ms"), 1.3),
                (&metric("consul", "default", 1, "none", "p50_ms"), 0.08),
                (&metric("consul", "default", 1, "other", "p50_ms"), 0.26),
                (&metric("consul", "default", 1, "same", "p50_ms"), p50_same),
                (&metric("consul", "default", 1, "other", "writes_per_s"), 5000.0),
                (FSYNC_METRIC, 150.0),
            ])]
        };
        // Closed-loop (stress) figures only: a stress paragraph, no judged one.
        let gap = reads_under_writes_gap(&Metrics::with_runs(&run(0.27), &[]), false).expect("a gap");
        assert!(gap.contains("waits for a CPU"), "{gap}");
        assert!(gap.contains("stress, not the judged load"), "{gap}");
        assert!(reads_under_writes_gap(&Metrics::with_runs(&run(0.27), &[]), true).is_none());
        let gap = reads_under_writes_gap(&Metrics::with_runs(&run(2.0), &[]), false).expect("a gap");
        assert!(gap.contains("not explained"), "{gap}");
        // Paced writes within one fsync: no paragraph for them.
        let met = vec![mixed("default", 1.0, 1.1, 2000.0)];
        assert!(reads_under_writes_gap(&Metrics::with_runs(&met, &[]), true).is_none());
    }

    #[test]
    fn reads_under_writes_gap_reports_the_control() {
        use crate::benches::kv_mixed::{metric, FSYNC_METRIC};
        let run = |control: f64| {
            vec![section(&[
                (&metric("consul", "default", 1, "none", "p99_ms"), 0.2),
                (&metric("consul", "default", 1, "other_paced", "p99_ms"), 0.6),
                (&metric("consul", "default", 1, "elsewhere_paced", "p99_ms"), control),
                (&metric("consul", "default", 1, "none", "p50_ms"), 0.05),
                (&metric("consul", "default", 1, "other_paced", "p50_ms"), 0.06),
                (&metric("consul", "default", 1, "same_paced", "p50_ms"), 0.06),
                (&metric("consul", "default", 1, "other_paced", "writes_per_s"), 1000.0),
                (FSYNC_METRIC, 150.0),
            ])]
        };
        let gap = reads_under_writes_gap(&Metrics::with_runs(&run(0.7), &[]), true).expect("a gap");
        assert!(gap.contains("the read p99 was 0.700 ms then, no lower than with the writes"), "{gap}");
        assert!(gap.contains("none with the cluster's own writes"), "{gap}");
        let gap = reads_under_writes_gap(&Metrics::with_runs(&run(0.5), &[]), true).expect("a gap");
        assert!(gap.contains("so 0.300 ms of the 0.400 ms rise comes with the load"), "{gap}");
        assert!(gap.contains("0.100 ms with the cluster's own writes"), "{gap}");
    }

    #[test]
    fn reads_under_writes_allow_one_fsync() {
        // 1.0 ms without, 2.9 ms with, fsync 2 ms: within one fsync.
        let latest = vec![mixed("default", 1.0, 2.9, 2000.0)];
        let t = table(&Metrics::with_runs(&latest, &[]));
        let r = row_for(&t, OTHER_DEFAULT_1);
        assert_eq!(r[2], "**met**", "{r:?}");
        assert!(r[1].contains("excess -0.10 ms"), "{r:?}");
        // 3.1 ms with: 0.1 ms more than one fsync.
        let latest = vec![mixed("default", 1.0, 3.1, 2000.0)];
        let t = table(&Metrics::with_runs(&latest, &[]));
        assert_eq!(row_for(&t, OTHER_DEFAULT_1)[2], "**not met**");
        // Not measured: the consistent rows, and the same-key writes.
        let c = "GET p99 under 16 writers at 1000 PUT/s (other keys) ≤ p99 without + one fsync (p50) (consul-rs consistent";
        assert_eq!(row_for(&t, c)[2], "not measured");
    }

    #[test]
    fn reads_under_writes_judge_the_median_of_per_run_excesses() {
        // Excesses +1.0, -0.5, -0.2 ms (each against its own run's fsync):
        // the median (-0.2) meets the target.
        let runs = vec![
            vec![mixed("default", 1.0, 3.0, 1000.0)],
            vec![mixed("default", 2.0, 2.5, 1000.0)],
            vec![mixed("default", 1.0, 1.8, 1000.0)],
        ];
        let t = table(&Metrics::with_runs(&runs[2], &runs));
        let r = row_for(&t, OTHER_DEFAULT_1);
        assert_eq!(r[2], "**met**", "{r:?}");
        assert!(r[1].contains("excess -0.20 ms (median of 3 runs; -0.50 to +1.00)"), "{r:?}");
    }

    #[test]
    fn reads_under_writes_control_rows_compare_with_writes_elsewhere() {
        use crate::benches::kv_mixed::metric;
        let control = "control: GET p99 under 16 writers at 1000 PUT/s (other keys) ≤ p99 under the same writes \
                       to another 3-server cluster on the machine + one fsync (p50) (consul-rs default, 1 reader(s))";
        // No control measured (older results): no control rows.
        let t = table(&Metrics::with_runs(&[mixed("default", 1.0, 3.0, 1000.0)], &[]));
        assert!(!t.rows.iter().any(|r| r[0].starts_with("control:")));
        // 1.0 ms without, 3.0 with, 2.5 with the writes elsewhere, fsync
        // 1 ms: the row is missed by 1.0 ms, the control is met.
        let mut s = mixed("default", 1.0, 3.0, 1000.0);
        s.metric(metric("consul", "default", 1, "elsewhere_paced", "p99_ms"), 2.5);
        let latest = vec![s];
        let t = table(&Metrics::with_runs(&latest, &[]));
        assert_eq!(row_for(&t, OTHER_DEFAULT_1)[2], "**not met**");
        let r = row_for(&t, control);
        assert_eq!(r[2], "**met**", "{r:?}");
        assert!(r[1].contains("vs 2.50 ms with them on the other cluster"), "{r:?}");
        assert!(r[1].contains("excess -0.50 ms"), "{r:?}");
    }

    #[test]
    fn kv_lead_targets_take_the_median_of_repeated_runs() {
        let run = |put: f64, get: f64| {
            vec![section(&[
                ("kv_put.n3.consul.c64.ops", put),
                ("kv_put.n3.etcd_grpc.c64.ops", 1000.0),
                ("kv_get.n3.default.consul.c64.ops", get),
                ("kv_get.n3.default.etcd_grpc.c64.ops", 1000.0),
            ])]
        };
        // PUT ratios 1.4, 2.0, 1.6 (median 1.6 ≥ 1.5); GET ratios 2.5, 1.9, 1.8 (median 1.9 < 2).
        let runs = vec![run(1400.0, 2500.0), run(2000.0, 1900.0), run(1600.0, 1800.0)];
        let t = table(&Metrics::with_runs(&runs[2], &runs));
        let put = row_for(&t, "KV PUT throughput at 64 clients ≥ 1.5× etcd (3 server(s), vs etcd gRPC)");
        assert_eq!(put[2], "**met**", "{put:?}");
        assert!(put[1].contains("= 1.60× (median of 3 runs; ratio 1.40–2.00)"), "{put:?}");
        let get = row_for(
            &t,
            "KV GET throughput at 64 clients ≥ 2× etcd (3 server(s), default vs linearizable, vs gRPC)",
        );
        assert_eq!(get[2], "**not met**", "{get:?}");
        assert!(get[1].contains("= 1.90× (median of 3 runs; ratio 1.80–2.50)"), "{get:?}");
    }

    #[test]
    fn a_single_run_is_judged_as_before() {
        let latest = vec![section(&[("failover.consul.p50_s", 1.5), ("failover.etcd.p50_s", 1.0)])];
        let m = Metrics::with_runs(&latest, &[]);
        let row = ratio_row(&m, "t".into(), "failover.consul.p50_s", "failover.etcd.p50_s", 1.0, false, "s");
        assert_eq!(row.met, Some(false));
        assert_eq!(row.measured, "1.50 vs 1.00 s = 1.50×");
    }

    fn watch_run(kib: f64, held: f64, failed: f64) -> Vec<Section> {
        let mut s = Section::new("watch", "Blocking queries (watchers)");
        s.metric("watch.19000.kib_per_watcher", 21.5);
        s.metric("watch.19000.rss_mb", 420.0);
        s.metric("watch_h2.10000.kib_per_watcher", kib + 1.0);
        s.metric("watch_h2.100000.kib_per_watcher", kib);
        s.metric("watch_h2.100000.held", held);
        s.metric("watch_h2.100000.failed", failed);
        s.metric("watch_h2.100000.cpu_pct", 0.1);
        s.metric("watch_h2.100000.wake_p99_ms", 9.0);
        vec![s]
    }

    #[test]
    fn the_watcher_target_judges_http2_at_100000() {
        let latest = watch_run(2.59, 99_800.0, 0.0);
        let row = watcher_row(&Metrics::with_runs(&latest, &[]));
        assert_eq!(row.met, Some(true), "{}", row.measured);
        assert!(row.target.contains("HTTP/2 over TLS"), "{}", row.target);
        assert!(row.measured.starts_with("2.59 KiB each over HTTP/2 + TLS"), "{}", row.measured);
        assert!(gaps(&Metrics::with_runs(&latest, &[])).iter().all(|g| !g.contains("Idle blocking queries")));

        let heavy = watch_run(4.5, 99_800.0, 0.0);
        let m = Metrics::with_runs(&heavy, &[]);
        assert_eq!(watcher_row(&m).met, Some(false));
        let gap = gaps(&m).into_iter().find(|g| g.contains("Idle blocking queries")).unwrap_or_default();
        assert!(gap.contains("21.5 KiB at 19000 watchers"), "{gap}");

        // Some watchers never opened: not held, whatever the memory.
        let m = Metrics::with_runs(&watch_run(2.0, 60_000.0, 40_000.0), &[]);
        assert_eq!(watcher_row(&m).met, Some(false));
    }

    #[test]
    fn the_watcher_target_is_not_measured_without_the_http2_point() {
        let mut s = Section::new("watch", "Blocking queries (watchers)");
        s.metric("watch.19000.kib_per_watcher", 21.5);
        s.metric("watch_h2.10000.kib_per_watcher", 2.6);
        let m = Metrics::with_runs(&[s], &[]);
        let row = watcher_row(&m);
        assert_eq!(row.met, None);
        assert!(row.measured.contains("no HTTP/2 point"), "{}", row.measured);
        assert!(gaps(&m).iter().any(|g| g.contains("HTTP/1.1 each costs 21.5 KiB")));
        // The benchmark did not run at all: no verdict and no paragraph.
        let none = Metrics::with_runs(&[], &[]);
        assert_eq!(watcher_row(&none).met, None);
        assert!(gaps(&none).iter().all(|g| !g.contains("Idle blocking queries")));
    }

    #[test]
    fn repeated_watch_runs_judge_the_median_figure() {
        let runs =
            vec![watch_run(2.5, 99_800.0, 0.0), watch_run(4.5, 99_800.0, 0.0), watch_run(3.0, 99_800.0, 0.0)];
        let m = Metrics::with_runs(&runs[2], &runs);
        let row = watcher_row(&m);
        assert_eq!(row.met, Some(true), "{}", row.measured);
        assert!(row.measured.starts_with("3.00 KiB each"), "{}", row.measured);
        assert!(row.measured.contains("median of 3 runs, 2.50–4.50 KiB"), "{}", row.measured);
    }
}
