//! Gossip under real faults, with real `consul` agents inside a network
//! namespace of their own (so nftables rules touch nothing else): ten
//! agents under 5% random packet loss never declare a live member failed;
//! an agent paused with SIGSTOP for less than the suspicion timeout is
//! never declared failed; an agent killed with SIGKILL is declared failed
//! by every other member within the bound docs/gossip.md gives.
//!
//! `GOSSIP_LOSS_SECS` sets how long the loss phase lasts (default 120).

use crate::common::netns::{http_get, Netns};
use crate::common::proc::{self, Proc};
use crate::common::wait::wait_blocking;
use crate::harness::BIN;
use crate::need_netns;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a wait re-checks the members: each check is an HTTP request
/// into the namespace per agent.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// A `consul agent` run inside the namespace by `ip netns exec` (which
/// execs it, so the child's pid is the agent's).
struct NsAgent {
    name: String,
    addr: String,
    child: Proc,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NsAgent {
    fn start(ns: &Netns, i: u8, server: bool, join: Option<&str>) -> NsAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = format!("127.0.0.{}", 10 + i);
        let name = format!("g{i}");
        let log = dir.path().join("agent.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, BIN, "agent"])
            .arg(format!("-node={name}"))
            .arg(format!("-bind={ip}"))
            .arg(format!("-client={ip}"))
            .arg(format!("-data-dir={}", dir.path().join("data").display()))
            .arg("-retry-interval=1s");
        if server {
            cmd.args(["-server", "-bootstrap"]);
        }
        if let Some(j) = join {
            cmd.arg(format!("-retry-join={j}"));
        }
        let child =
            proc::spawn(cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("dup log")).stderr(out))
                .expect("spawn agent in namespace");
        NsAgent { name, addr: format!("{ip}:8500"), child, log, _dir: dir }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        self.child.kill_and_reap();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}", self.name, self.output());
        }
    }
}

/// Each member's status (1 alive, 3 left, 4 failed) as `agent` sees it;
/// `None` when the agent did not answer (loss can eat a TCP handshake).
fn view(ns: &Netns, agent: &NsAgent) -> Option<BTreeMap<String, u64>> {
    let body = ns.run(|| http_get(&agent.addr, "/v1/agent/members"))?;
    let members: Vec<Value> = serde_json::from_str(&body).ok()?;
    Some(
        members
            .iter()
            .map(|m| (m["Name"].as_str().unwrap_or_default().to_string(), m["Status"].as_u64().unwrap_or(0)))
            .collect(),
    )
}

fn all_alive(ns: &Netns, agents: &[NsAgent], n: usize) -> bool {
    agents.iter().all(|a| view(ns, a).is_some_and(|v| v.len() == n && v.values().all(|s| *s == 1)))
}

fn failed_seen(ns: &Netns, agents: &[NsAgent]) -> Vec<String> {
    let mut out = Vec::new();
    for a in agents {
        if let Some(v) = view(ns, a) {
            out.extend(
                v.iter().filter(|(_, s)| **s == 4).map(|(m, _)| format!("{} sees {m} failed", a.name)),
            );
        }
    }
    out
}

fn nft(ns: &Netns, rule: &str) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", rule])
        .output()
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft {rule:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[test]
fn ten_agents_under_packet_loss_pause_and_kill() {
    need_netns!();
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("skipping: nft not found (apt-get install -y nftables)");
        return;
    }
    let ns = Netns::create().expect("namespace");
    let mut agents = vec![NsAgent::start(&ns, 1, true, None)];
    for i in 2..=10 {
        agents.push(NsAgent::start(&ns, i, false, Some("127.0.0.11")));
    }
    assert!(
        wait_blocking(Duration::from_secs(60), POLL_EVERY, || all_alive(&ns, &agents, 10)),
        "the ten agents never all saw each other alive"
    );

    // 5% of every packet inside the namespace (UDP probes and gossip, TCP
    // push-pull and fallback probes alike) is dropped at random.
    nft(&ns, "add table inet loss").expect("nft table");
    nft(&ns, "add chain inet loss input { type filter hook input priority 0; policy accept; }")
        .expect("nft chain");
    nft(&ns, "add rule inet loss input numgen random mod 100 < 5 counter drop").expect("nft rule");
    let secs: u64 = std::env::var("GOSSIP_LOSS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut polls = 0;
    while Instant::now() < end {
        let failed = failed_seen(&ns, &agents);
        assert!(failed.is_empty(), "false failure under 5% loss after {polls} polls: {failed:?}");
        polls += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let counters = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "list", "table", "inet", "loss"])
        .output()
        .expect("nft list");
    let listing = String::from_utf8_lossy(&counters.stdout).to_string();
    let dropped: u64 = listing
        .split("packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "the loss rule dropped nothing, so the phase proved nothing:\n{listing}");
    eprintln!("loss phase: {secs}s, {polls} polls of 10 views, {dropped} packets dropped, no false failure");
    nft(&ns, "delete table inet loss").expect("nft delete");
    for a in &agents {
        assert!(!a.output().contains("member failed"), "{} logged a failure during the loss phase", a.name);
    }

    // SIGSTOP shorter than the suspicion timeout (4 s at N = 10): suspected
    // at most, refuted on waking, never failed.
    let paused = &agents[5];
    paused.signal(libc::SIGSTOP);
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        let failed = failed_seen(&ns, &agents[..5]);
        assert!(failed.is_empty(), "paused agent declared failed: {failed:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    paused.signal(libc::SIGCONT);
    let settle = Instant::now() + Duration::from_secs(8);
    while Instant::now() < settle {
        let failed = failed_seen(&ns, &agents);
        assert!(failed.is_empty(), "paused agent declared failed after waking: {failed:?}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // SIGKILL: every other member declares it failed within the bound.
    let victim = agents.remove(9);
    let victim_name = victim.name.clone();
    let t0 = Instant::now();
    drop(victim);
    let all_see = wait_blocking(Duration::from_secs(40), POLL_EVERY, || {
        agents.iter().all(|a| view(&ns, a).is_some_and(|v| v.get(&victim_name) == Some(&4)))
    });
    assert!(all_see, "not every member declared the killed agent failed within 40 s");
    eprintln!("kill -9 → failed on all 9 survivors after {:?}", t0.elapsed());
}
