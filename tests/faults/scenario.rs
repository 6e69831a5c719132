//! One harness run from start to verdict: namespaces and servers up, the
//! workload on, faults on a seeded schedule, heal, final reads, then every
//! check. The outcome separates anomalies (the system misbehaved) from
//! problems (the run itself is not trustworthy: faults that did not take
//! effect, no operations completed, a checker that gave up).

use crate::check;
use crate::cluster::Cluster;
use crate::faults::{Fault, Injector, Tally};
use crate::workload::{Shared, Workload};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum Schedule {
    /// These faults, in this order.
    Fixed(Vec<Fault>),
    /// Faults drawn (seeded) from these kinds until the time is up.
    Random { kinds: Vec<Fault>, total: Duration },
}

pub struct Config {
    pub name: String,
    pub seed: u64,
    pub servers: usize,
    pub bug: Option<&'static str>,
    pub schedule: Schedule,
    pub hold: Duration,
    pub kv_clients: usize,
    pub lock_clients: usize,
    pub keys_per_epoch: usize,
    /// Workload time before the first fault and between faults.
    pub calm: Duration,
    /// Move the workload to fresh keys after each fault (keeps per-key
    /// histories short); off, every fault hits the same keys.
    pub rotate_keys: bool,
}

#[derive(Default, Debug)]
pub struct Outcome {
    pub name: String,
    pub seed: u64,
    pub duration: Duration,
    pub ops_ok: usize,
    pub ops_failed: usize,
    pub ops_indeterminate: usize,
    pub keys: usize,
    pub lock_holds: usize,
    pub leader_changes: u64,
    pub tally: Tally,
    /// Kind → descriptions.
    pub anomalies: BTreeMap<&'static str, Vec<String>>,
    pub problems: Vec<String>,
    pub out_dir: PathBuf,
}

impl Outcome {
    pub fn anomaly_count(&self) -> usize {
        self.anomalies.values().map(Vec::len).sum()
    }

    pub fn anomaly(&mut self, kind: &'static str, what: String) {
        self.anomalies.entry(kind).or_default().push(what);
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "run {} (seed {}): {:.0}s, ops ok {} / failed {} / indeterminate {}, {} keys, {} lock holds, leader changes {}, partitions applied {}\n",
            self.name,
            self.seed,
            self.duration.as_secs_f64(),
            self.ops_ok,
            self.ops_failed,
            self.ops_indeterminate,
            self.keys,
            self.lock_holds,
            self.leader_changes,
            self.tally.partitions_applied
        );
        s += &format!("  faults applied: {:?}\n", self.tally.applied);
        let regain: Vec<f64> = self.tally.leader_regain.iter().map(|(_, d)| d.as_secs_f64()).collect();
        let worst = regain.iter().copied().fold(0.0, f64::max);
        s += &format!("  leader regained after every heal: {} heals, worst {:.1}s\n", regain.len(), worst);
        s += &format!(
            "  torn tails discarded {}, unsynced bytes cut {}, snapshots saved {}, servers added {}, delayed RPC connections {} ({} bytes), lock-delay waits {:?}\n",
            self.tally.torn_tails_discarded,
            self.tally.unsynced_bytes_cut,
            self.tally.snapshots_saved,
            self.tally.members_added,
            self.tally.delayed_connections,
            self.tally.delayed_bytes,
            self.tally.lock_waits.iter().map(|d| format!("{:.2}s", d.as_secs_f64())).collect::<Vec<_>>()
        );
        if !self.tally.convergence.is_empty() {
            let mut took: Vec<f64> = self.tally.convergence.iter().map(|(_, d)| d.as_secs_f64()).collect();
            took.sort_by(f64::total_cmp);
            let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
            for (step, d) in &self.tally.convergence {
                let w = worst.entry(step).or_default();
                *w = w.max(d.as_secs_f64());
            }
            s += &format!(
                "  churn: {} steps converged, median {:.1}s, p95 {:.1}s, worst {:.1}s; worst by step {:?}\n",
                took.len(),
                took[took.len() / 2],
                took[(took.len() * 95 / 100).min(took.len() - 1)],
                took[took.len() - 1],
                worst.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect::<Vec<_>>()
            );
        }
        s += &format!("  anomalies: {}\n", self.anomaly_count());
        for (kind, list) in &self.anomalies {
            s += &format!("  [{kind}] {} found\n", list.len());
            for a in list.iter().take(3) {
                s += &format!("{}\n", indent(a));
            }
        }
        for p in &self.problems {
            s += &format!("  PROBLEM: {p}\n");
        }
        s += &format!("  history and logs: {}\n", self.out_dir.display());
        s
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// Watches the servers' Raft terms and leaders; counts leader changes: a
/// new (term, leader) pair that every answering server agrees on, after the
/// first. A leader re-elected in a new term (after a power loss) counts.
fn leader_monitor(
    sh: Arc<Shared>,
    ns: String,
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if crate::common::netns::enter(&ns).is_err() {
            return;
        }
        let mut last: Option<(String, String)> = None;
        while !stop.load(Ordering::Relaxed) {
            let targets = sh.targets.read().unwrap_or_else(|e| e.into_inner()).clone();
            let mut seen: Vec<(String, String)> = Vec::new();
            for t in targets {
                let get = |path: &str| -> Option<serde_json::Value> {
                    let r = crate::http::request(t, "GET", path, None, Duration::from_millis(800)).ok()?;
                    serde_json::from_slice(&r.body).ok()
                };
                let term = get("/v1/agent/self")
                    .and_then(|v| v["Stats"]["raft"]["term"].as_str().map(str::to_string));
                let leader = get("/v1/status/leader")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .filter(|l| !l.is_empty());
                if let (Some(term), Some(leader)) = (term, leader) {
                    seen.push((term, leader));
                }
            }
            if let Some(first) = seen.first() {
                if seen.len() >= 2 && seen.iter().all(|l| l == first) && last.as_ref() != Some(first) {
                    if last.is_some() {
                        changes.fetch_add(1, Ordering::Relaxed);
                    }
                    last = Some(first.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

pub fn out_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("FAULTS_OUT").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("consul-faults-{name}-{}", std::process::id()))
}

/// Runs one scenario on a thread inside the client namespace.
pub fn run(cfg: Config) -> Outcome {
    let out = out_dir(&cfg.name);
    let _ = std::fs::remove_dir_all(&out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        return Outcome { problems: vec![format!("{}: {e}", out.display())], ..Outcome::default() };
    }
    let started = Instant::now();
    let mut outcome = match Cluster::start(cfg.servers, cfg.bug, &out) {
        Ok(mut cluster) => {
            let ns = cluster.net.client_ns.clone();
            let res = std::thread::scope(|s| {
                s.spawn(|| -> Result<Outcome, String> {
                    crate::common::netns::enter(&ns)?;
                    drive(&cfg, &mut cluster)
                })
                .join()
            });
            match res {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => Outcome { problems: vec![e], ..Outcome::default() },
                Err(_) => {
                    Outcome { problems: vec!["the scenario thread panicked".into()], ..Outcome::default() }
                }
            }
        }
        Err(e) => Outcome { problems: vec![format!("cannot build the cluster: {e}")], ..Outcome::default() },
    };
    outcome.name = cfg.name.clone();
    outcome.seed = cfg.seed;
    outcome.duration = started.elapsed();
    outcome.out_dir = out;
    outcome
}

fn drive(cfg: &Config, cluster: &mut Cluster) -> Result<Outcome, String> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    if cluster.wait_leader(Duration::from_secs(60)).is_none() {
        return Err(format!("the cluster never elected a leader; logs in {}", cluster.out_dir.display()));
    }
    let sh = Shared::new(cluster.targets(), cfg.keys_per_epoch);
    let workload = Workload::start(&sh, &cluster.net.client_ns, cfg.kv_clients, cfg.lock_clients, cfg.seed)?;
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let monitor =
        leader_monitor(sh.clone(), cluster.net.client_ns.clone(), stop_monitor.clone(), changes.clone());
    let fault_rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed);
    let tally = {
        let mut inj = Injector::new(cluster, sh.clone(), fault_rng, cfg.hold);
        std::thread::sleep(cfg.calm);
        match &cfg.schedule {
            Schedule::Fixed(list) => {
                for f in list {
                    inj.inject(*f);
                    if cfg.rotate_keys {
                        inj.next_epoch();
                    }
                    std::thread::sleep(cfg.calm);
                }
            }
            Schedule::Random { kinds, total } => {
                let end = Instant::now() + *total;
                while Instant::now() < end {
                    let Some(f) = kinds.choose(&mut rng).copied() else { break };
                    inj.inject(f);
                    if cfg.rotate_keys {
                        inj.next_epoch();
                    }
                    std::thread::sleep(cfg.calm);
                }
            }
        }
        std::mem::take(&mut inj.tally)
    };
    workload.stop(&sh);
    stop_monitor.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    let mut outcome =
        Outcome { tally, leader_changes: changes.load(Ordering::Relaxed), ..Outcome::default() };
    for (kind, what) in std::mem::take(&mut outcome.tally.churn_anomalies) {
        outcome.anomaly(kind, what);
    }
    check::finish(cfg, cluster, sh, &mut outcome);
    Ok(outcome)
}
