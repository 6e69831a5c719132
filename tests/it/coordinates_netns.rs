//! Network coordinates on a real network with known delays: every agent
//! runs in a network namespace of its own and reaches its peers only
//! through a userspace delay proxy (`delay_proxy`) that holds each packet
//! of a pair for a known time. Once the agents have probed each other for
//! a while, the coordinates in the catalog (`/v1/coordinate/nodes`) must
//! estimate every pair's round trip (injected delay plus the path's own
//! base) with the same formula as `consul rtt`, and `?near=_agent` must
//! put the truly nearest peer first.
//!
//! - `rtt_estimates_match_injected_delays` (ignored: it observes for 60 s):
//!   five agents, delays from a plane, p90 relative error at most 25 %.
//!   Run it with
//!   `cargo test --test it coordinates_netns -- --ignored --nocapture`.
//! - `two_agents_learn_their_delay`: one pair at 30 ms, in the normal
//!   suite; it passes once the estimate stays within 30 % for 2 s (about
//!   ten seconds in all).
//!
//! Both need root (namespaces) and skip with the reason otherwise.

mod delay_proxy;

use crate::common::netns::{http_get, Netns};
use crate::common::proc::{self, Proc};
use crate::common::wait::wait_blocking;
use crate::harness::BIN;
use crate::need_netns;
use consul::coordinate::Coordinate;
use delay_proxy::{agent_ip, proxy_ip, DelayProxy};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Agents send their coordinate every 0.5–1 s and the server applies them
/// every 100 ms (Consul's own config keys), so the catalog trails the
/// agents by about a second. The Vivaldi side (probe interval 1 s, serf's
/// constants) is left at its defaults: that is what is measured.
const FAST_SYNC: &str =
    r#"sync_coordinate_interval_min = "500ms" consul { coordinate { update_period = "100ms" } }"#;

/// How often waits re-read the catalog (an HTTP request into the hub).
const POLL: Duration = Duration::from_millis(500);

/// One `consul agent` in its own namespace, started with `ip netns exec`
/// (which execs it: the child's pid is the agent's).
struct NsAgent {
    name: String,
    child: Proc,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NsAgent {
    fn start(ns: &Netns, i: usize) -> NsAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("n{i}");
        let log = dir.path().join("agent.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, BIN, "agent"])
            .arg(format!("-node={name}"))
            .arg(format!("-bind={}", agent_ip(i)))
            .arg(format!("-advertise={}", proxy_ip(i)))
            .arg(format!("-client={}", agent_ip(i)))
            .arg(format!("-data-dir={}", dir.path().join("data").display()))
            .arg("-retry-interval=1s")
            .args(["-hcl", FAST_SYNC]);
        if i == 0 {
            cmd.args(["-server", "-bootstrap"]);
        } else {
            cmd.arg(format!("-retry-join={}", proxy_ip(0)));
        }
        let child =
            proc::spawn(cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("dup log")).stderr(out))
                .expect("spawn agent in namespace");
        NsAgent { name, child, log, _dir: dir }
    }

    fn http(&self, i: usize) -> String {
        format!("{}:8500", agent_ip(i))
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        self.child.kill_and_reap();
        if std::thread::panicking() {
            let out = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = out.lines().rev().take(60).collect();
            eprintln!("----- last lines of {} -----", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Agents, proxy and namespaces, torn down in that order (fields drop in
/// declaration order): no process is left in a namespace being deleted.
struct Lab {
    agents: Vec<NsAgent>,
    proxy: DelayProxy,
    /// The injected round trip of each pair, in seconds.
    injected: Vec<Vec<f64>>,
    hub: Netns,
    _agent_ns: Vec<Netns>,
}

impl Lab {
    /// `n` agents (n0 the server) whose pair (i, j) sees `rtt_ms[i][j]` of
    /// extra round trip, half each way.
    fn start(rtt_ms: Vec<Vec<f64>>) -> Lab {
        let n = rtt_ms.len();
        let hub = Netns::create().expect("hub namespace");
        let agent_ns: Vec<Netns> = (0..n).map(|_| Netns::create().expect("agent namespace")).collect();
        let one_way = rtt_ms
            .iter()
            .map(|row| row.iter().map(|ms| Duration::from_secs_f64(ms / 2000.0)).collect())
            .collect();
        let names: Vec<String> = agent_ns.iter().map(|ns| ns.name.clone()).collect();
        let proxy = DelayProxy::start(&hub.name, &names, one_way).expect("delay proxy");
        let agents = agent_ns.iter().enumerate().map(|(i, ns)| NsAgent::start(ns, i)).collect();
        let injected = rtt_ms.iter().map(|r| r.iter().map(|ms| ms / 1000.0).collect()).collect();
        Lab { agents, proxy, injected, hub, _agent_ns: agent_ns }
    }

    fn n(&self) -> usize {
        self.agents.len()
    }

    fn get(&self, i: usize, path: &str) -> Option<Value> {
        let addr = self.agents[i].http(i);
        let body = self.hub.run(|| http_get(&addr, path))?;
        serde_json::from_str(&body).ok()
    }

    /// The catalog's coordinates (read from the server), by node name.
    fn coordinates(&self) -> BTreeMap<String, Coordinate> {
        let Some(Value::Array(list)) = self.get(0, "/v1/coordinate/nodes") else { return BTreeMap::new() };
        list.iter()
            .filter_map(|e| {
                let node = e["Node"].as_str()?.to_string();
                let coord: Coordinate = serde_json::from_value(e["Coord"].clone()).ok()?;
                Some((node, coord))
            })
            .collect()
    }

    /// Waits until the server sees every agent alive, each at the address
    /// of its link in the hub (so their gossip goes through the proxy),
    /// and the catalog holds a coordinate for each.
    fn wait_joined(&self, timeout: Duration) {
        let n = self.n();
        let joined = wait_blocking(timeout, POLL, || {
            let Some(Value::Array(members)) = self.get(0, "/v1/agent/members") else { return false };
            let through_proxy = (0..n).all(|i| {
                members.iter().any(|m| {
                    m["Name"] == format!("n{i}") && m["Addr"] == proxy_ip(i).to_string() && m["Status"] == 1
                })
            });
            through_proxy && self.coordinates().len() == n
        });
        assert!(
            joined,
            "agents never all joined through the proxy: members {:?}, coordinates {:?}",
            self.get(0, "/v1/agent/members"),
            self.coordinates().keys().collect::<Vec<_>>()
        );
    }

    /// What the path adds to the injected delay: the proxy's lateness on
    /// the answer leg (the request leg's is paid back on it) and the
    /// responder's turnaround (medians), in seconds. The initiator's own
    /// waits for the CPU are invisible here and not counted.
    fn base_rtt(&self) -> f64 {
        let (late, turnaround) = self.base_parts();
        late + turnaround
    }

    /// Median lateness of a held datagram and median turnaround, seconds.
    fn base_parts(&self) -> (f64, f64) {
        let st = self.proxy.stats();
        let med = |v: &[Duration]| -> f64 {
            let mut v: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
            consul::coordinate::median(&mut v).unwrap_or(0.0)
        };
        (med(&st.late_answer), med(&st.turnaround))
    }

    /// The base and its parts, for reports, with the tail of the proxy's
    /// lateness: how noisy scheduling on this machine is (the agents wait
    /// for the CPU as the proxy does, and their RTT samples carry it).
    fn base_report(&self) -> String {
        let (late, turnaround) = self.base_parts();
        let mut l: Vec<Duration> = self.proxy.stats().late_request;
        l.sort();
        let q = |f: f64| l.get(((l.len() as f64 - 1.0) * f) as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let st = self.proxy.stats();
        let mean =
            |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / v.len().max(1) as f64;
        format!(
            "base {:.2} ms = {:.2} ms proxy lateness + {:.2} ms responder turnaround (medians; \
             means {:.2} + {:.2} ms); request-leg lateness p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.base_rtt() * 1e3,
            late * 1e3,
            turnaround * 1e3,
            mean(&st.late_answer),
            mean(&st.turnaround),
            q(0.9),
            q(0.99),
            q(1.0)
        )
    }

    /// Every pair's estimate from the catalog, against injected + base.
    fn errors(&self) -> Vec<PairError> {
        let coords = self.coordinates();
        let base = self.base_rtt();
        let mut out = Vec::new();
        for i in 0..self.n() {
            for j in (i + 1)..self.n() {
                let (Some(a), Some(b)) = (coords.get(&format!("n{i}")), coords.get(&format!("n{j}"))) else {
                    continue;
                };
                let Some(estimate) = a.distance_secs(b) else { continue };
                let truth = self.injected[i][j] + base;
                out.push(PairError { i, j, estimate, truth, rel: (estimate - truth).abs() / truth });
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
struct PairError {
    i: usize,
    j: usize,
    estimate: f64,
    truth: f64,
    rel: f64,
}

/// Median and 90th percentile (nearest rank) of the relative errors.
fn percentiles(errors: &[PairError]) -> (f64, f64) {
    let mut rel: Vec<f64> = errors.iter().map(|e| e.rel).collect();
    rel.sort_by(f64::total_cmp);
    if rel.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let rank = |q: f64| rel[((q * rel.len() as f64).ceil() as usize).clamp(1, rel.len()) - 1];
    (rank(0.5), rank(0.9))
}

fn report(errors: &[PairError]) -> String {
    errors
        .iter()
        .map(|e| {
            format!(
                "n{}-n{}: estimated {:.2} ms, injected+base {:.2} ms, error {:.1} %",
                e.i,
                e.j,
                e.estimate * 1e3,
                e.truth * 1e3,
                e.rel * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Round trips from positions on a plane (ms): a metric Vivaldi can embed,
/// as real networks roughly are, between 12 and 40 ms.
fn plane_rtts(points: &[(f64, f64)]) -> Vec<Vec<f64>> {
    points
        .iter()
        .map(|a| points.iter().map(|b| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()).collect())
        .collect()
}

#[test]
#[ignore = "observes coordinates for 60 s; run on demand (docs/queries.md)"]
fn rtt_estimates_match_injected_delays() {
    need_netns!();
    let points = [(0.0, 0.0), (12.0, 0.0), (4.0, 26.0), (30.0, 26.0), (34.0, 8.0)];
    let lab = Lab::start(plane_rtts(&points));
    lab.wait_joined(Duration::from_secs(30));

    // Observe for 60 s of probing from the moment all have joined (longer
    // with COORD_NETNS_SECS, to see how far more samples go); the
    // trajectory goes to the report. Nothing is awaited: this is the
    // observation period itself.
    let observe = std::env::var("COORD_NETNS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs);
    let start = Instant::now();
    let mut trajectory = Vec::new();
    let mut next = Duration::from_secs(10);
    wait_blocking(observe, POLL, || {
        if start.elapsed() >= next {
            let (m, p) = percentiles(&lab.errors());
            trajectory.push(format!(
                "t={:>2}s median {:.1} % p90 {:.1} %",
                next.as_secs(),
                m * 100.0,
                p * 100.0
            ));
            next += Duration::from_secs(10);
        }
        false
    });
    let errors = lab.errors();
    let (median, p90) = percentiles(&errors);
    let st = lab.proxy.stats();
    eprintln!(
        "coordinates vs injected RTT, {} agents, {} s: median {:.1} %, p90 {:.1} % ({})\n{}\n{}",
        lab.n(),
        observe.as_secs(),
        median * 100.0,
        p90 * 100.0,
        lab.base_report(),
        trajectory.join("\n"),
        report(&errors)
    );
    assert_eq!(errors.len(), lab.n() * (lab.n() - 1) / 2, "a pair has no estimate");
    // Every ordered pair's probes went through the proxy.
    for i in 0..lab.n() {
        for j in 0..lab.n() {
            if i != j {
                assert!(st.udp.get(&(i, j)).copied().unwrap_or(0) > 0, "no datagrams n{i} -> n{j}: {st:?}");
            }
        }
    }

    // `?near=_agent` on each agent lists its truly nearest peer before the
    // other peers, wherever that peer is clearly nearest (the next is at
    // least 40 % farther: closer calls are within the estimates' error).
    // The agent's own node is left out of the check: its distance to
    // itself is twice its height (plus adjustments), which a noisy run can
    // inflate past a near peer's, in Consul's formula as in ours.
    // Failures are collected so one run reports on every check.
    let mut failed = Vec::new();
    let mut checked = 0;
    for i in 0..lab.n() {
        let mut by_truth: Vec<(f64, usize)> =
            (0..lab.n()).filter(|j| *j != i).map(|j| (lab.injected[i][j], j)).collect();
        by_truth.sort_by(|a, b| a.0.total_cmp(&b.0));
        if by_truth[1].0 < 1.4 * by_truth[0].0 {
            continue;
        }
        checked += 1;
        let order: Vec<String> = match lab.get(i, "/v1/catalog/nodes?near=_agent") {
            Some(Value::Array(nodes)) => {
                nodes.iter().filter_map(|n| n["Node"].as_str().map(str::to_string)).collect()
            }
            other => {
                failed.push(format!("n{i}: /v1/catalog/nodes?near=_agent answered {other:?}"));
                continue;
            }
        };
        let want = format!("n{}", by_truth[0].1);
        let first_peer = order.iter().find(|n| **n != format!("n{i}"));
        if order.len() != lab.n() || first_peer != Some(&want) {
            failed.push(format!("n{i}: ?near=_agent gave {order:?}, want {want} as the first peer"));
        }
    }
    assert!(checked >= 2, "the layout leaves too few clear nearest peers");

    // `consul rtt` answers what the formula above gives (the coordinates
    // may move a little between the two reads).
    let expected = lab.errors().iter().find(|e| (e.i, e.j) == (0, 1)).map(|e| e.estimate * 1e3);
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.hub.name, BIN, "rtt"])
        .arg(format!("-http-addr={}", lab.agents[0].http(0)))
        .args(["n0", "n1"])
        .output()
        .expect("consul rtt");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let said: Option<f64> = text
        .strip_prefix("Estimated n0 <-> n1 rtt: ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|ms| ms.parse().ok());
    match (said, expected) {
        (Some(s), Some(e)) if (s - e).abs() <= 0.15 * e => {}
        _ => failed.push(format!("consul rtt n0 n1 said {text:?}, the coordinates give {expected:?} ms")),
    }

    if p90 > 0.25 {
        failed.push(format!("p90 relative error {:.1} % over 25 %", p90 * 100.0));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The estimate must come within 30 % and stay there for `STEADY` reads in
/// a row (a few seconds of catalog updates), not just cross the band on
/// its way up from the origin.
#[test]
fn two_agents_learn_their_delay() {
    const STEADY: usize = 4;
    need_netns!();
    let rtt = 30.0;
    let lab = Lab::start(vec![vec![0.0, rtt], vec![rtt, 0.0]]);
    lab.wait_joined(Duration::from_secs(20));
    let start = Instant::now();
    let mut in_band = 0;
    let steady = wait_blocking(Duration::from_secs(25), POLL, || {
        let ok = lab.errors().first().is_some_and(|e| e.rel <= 0.30);
        in_band = if ok { in_band + 1 } else { 0 };
        in_band >= STEADY
    });
    let errors = lab.errors();
    eprintln!(
        "two agents, steady after {:.1} s ({}):\n{}",
        start.elapsed().as_secs_f64(),
        lab.base_report(),
        report(&errors)
    );
    assert!(steady, "the estimate never stayed within 30 %:\n{}", report(&errors));
}
