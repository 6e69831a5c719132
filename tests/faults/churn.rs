//! Membership churn (issue 21): one cycle grows the cluster from 3 servers
//! to 5, replaces a follower and then the leader (data dir wiped, started
//! again under the same name and address, so with a new node ID),
//! restarts a follower, and has the leader and then a follower leave, back
//! to 3 — while the workload writes.
//!
//! After each step the Raft configuration must converge, within
//! `CONVERGE_BOUND`, to exactly the running servers (by address and current
//! node ID), all voters. While it converges the checker samples the
//! configuration: the voters never drop below `MIN_QUORUM`, and no running
//! server the step did not touch is ever missing. Afterwards the servers'
//! logs must show each change at most once per step: no server added as a
//! non-voter or promoted twice, and no "removing dead server" for a server
//! that was running. Lost writes are the workload checker's business.

use crate::cluster::State;
use crate::common::wait::wait_blocking;
use crate::faults::Injector;
use crate::http;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long the configuration may take to match the running servers
/// after a step: failure detection by gossip (a few seconds with the
/// default LAN timings), then autopilot's rounds (one a second) and
/// `server_stabilization_time` (1 s in the harness) before a promotion.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(30);
/// The `MinQuorum` the churn runs under.
const MIN_QUORUM: usize = 3;

/// What one check of the configuration found.
struct Seen {
    /// (address, node ID, voter) of every server in it.
    servers: BTreeSet<(String, String, bool)>,
}

impl Injector<'_> {
    /// One churn cycle (see the module comment).
    pub fn churn(&mut self) -> Result<(), String> {
        self.set_min_quorum()?;
        while self.cluster.members().len() < 3 {
            self.churn_step("grow", |inj| inj.add_one().map(|i| vec![i]))?;
        }
        while self.cluster.members().len() > 3 {
            self.churn_step("shrink", |inj| inj.leave_one(false).map(|i| vec![i]))?;
        }
        self.churn_step("add-4th", |inj| inj.add_one().map(|i| vec![i]))?;
        self.churn_step("add-5th", |inj| inj.add_one().map(|i| vec![i]))?;
        self.churn_step("replace-follower", |inj| inj.replace(false).map(|i| vec![i]))?;
        self.churn_step("replace-leader", |inj| inj.replace(true).map(|i| vec![i]))?;
        self.churn_step("restart-follower", |inj| inj.restart_follower().map(|i| vec![i]))?;
        self.churn_step("leader-leaves", |inj| inj.leave_one(true).map(|i| vec![i]))?;
        self.churn_step("follower-leaves", |inj| inj.leave_one(false).map(|i| vec![i]))?;
        Ok(())
    }

    fn set_min_quorum(&mut self) -> Result<(), String> {
        let l = self.leader()?;
        let body = format!(
            r#"{{"CleanupDeadServers": true, "LastContactThreshold": "200ms", "MaxTrailingLogs": 250, "MinQuorum": {MIN_QUORUM}, "ServerStabilizationTime": "1s"}}"#
        );
        let r = http::request(
            self.cluster.server(l).http(),
            "PUT",
            "/v1/operator/autopilot/configuration",
            Some(body.as_bytes()),
            Duration::from_secs(5),
        )
        .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("setting MinQuorum: {} {}", r.status, r.text()));
        }
        Ok(())
    }

    /// Runs one step (`act` returns the servers it touched), then waits for
    /// the configuration to converge and checks the step's log lines.
    fn churn_step(
        &mut self,
        name: &'static str,
        act: impl FnOnce(&mut Self) -> Result<Vec<usize>, String>,
    ) -> Result<(), String> {
        let before = self.changes_logged();
        let steady: Vec<usize> = self.cluster.running();
        let started = Instant::now();
        let touched = act(self)?;
        self.sync_targets();
        let untouched: Vec<String> = steady
            .iter()
            .filter(|i| !touched.contains(i))
            .filter(|i| self.cluster.server(**i).state == State::Running)
            .map(|i| self.cluster.server(*i).rpc_addr())
            .collect();
        let mut low_voters = None;
        let mut dropped: BTreeSet<String> = BTreeSet::new();
        let converged = wait_blocking(CONVERGE_BOUND, Duration::from_millis(200), || {
            let Some(seen) = self.configuration() else { return false };
            let voters = seen.servers.iter().filter(|s| s.2).count();
            if voters < MIN_QUORUM {
                low_voters = Some(voters);
            }
            for a in &untouched {
                if !seen.servers.iter().any(|s| s.0 == *a) {
                    dropped.insert(a.clone());
                }
            }
            seen.servers == self.wanted()
        });
        let took = started.elapsed();
        eprintln!("[faults] churn {name}: converged={converged} after {:.1}s", took.as_secs_f64());
        if converged {
            self.tally.convergence.push((name, took));
        } else {
            let now = self.configuration().map(|s| s.servers).unwrap_or_default();
            self.tally.churn_anomalies.push((
                "churn-not-converged",
                format!(
                    "{name}: configuration {now:?} never matched the running servers {:?} within {CONVERGE_BOUND:?}",
                    self.wanted()
                ),
            ));
        }
        if let Some(v) = low_voters {
            self.tally
                .churn_anomalies
                .push(("churn-below-min-quorum", format!("{name}: {v} voters, MinQuorum {MIN_QUORUM}")));
        }
        for a in dropped {
            self.tally.churn_anomalies.push((
                "churn-removed-alive",
                format!("{name}: {a} is running and untouched but left the configuration"),
            ));
        }
        let after = self.changes_logged();
        for (key, n) in &after {
            let was = before.get(key).copied().unwrap_or(0);
            match key.0 {
                "removing dead server" if n > &was && untouched.contains(&key.2) => {
                    self.tally.churn_anomalies.push((
                        "churn-removed-alive",
                        format!("{name}: autopilot removed {} as dead while it was running", key.1),
                    ));
                }
                "removing dead server" => {}
                what if *n > was + 1 => self.tally.churn_anomalies.push((
                    "churn-change-twice",
                    format!("{name}: '{what}' for {} logged {} times in one step", key.1, n - was),
                )),
                _ => {}
            }
        }
        // A calm moment between steps, as between faults.
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }

    /// The configuration as the agreed leader reports it.
    fn configuration(&self) -> Option<Seen> {
        let l = self.cluster.agreed_leader()?;
        let r = http::request(
            self.cluster.server(l).http(),
            "GET",
            "/v1/operator/raft/configuration",
            None,
            Duration::from_secs(2),
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let servers = v["Servers"]
            .as_array()?
            .iter()
            .map(|s| {
                (
                    s["Address"].as_str().unwrap_or_default().to_string(),
                    s["ID"].as_str().unwrap_or_default().to_string(),
                    s["Voter"] == true,
                )
            })
            .collect();
        Some(Seen { servers })
    }

    /// What the configuration should be: every running server, by its
    /// address and current node ID, a voter.
    fn wanted(&self) -> BTreeSet<(String, String, bool)> {
        self.cluster
            .running()
            .into_iter()
            .map(|i| (self.cluster.server(i).rpc_addr(), self.cluster.node_id(i).unwrap_or_default(), true))
            .collect()
    }

    /// (change, server name, server address) → how many lines of all
    /// the logs show it so far.
    fn changes_logged(&self) -> BTreeMap<(&'static str, String, String), usize> {
        const CHANGES: [&str; 3] =
            ["adding server as non-voter", "promoting server to voter", "removing dead server"];
        let lines = self.cluster.log_lines(|l| CHANGES.iter().any(|c| l.contains(c)));
        let mut out = BTreeMap::new();
        for s in &self.cluster.servers {
            let field = format!("server={}", s.name);
            for what in CHANGES {
                let n = lines
                    .iter()
                    .filter(|l| l.contains(what) && l.split_whitespace().any(|w| w == field))
                    .count();
                out.insert((what, s.name.clone(), s.rpc_addr()), n);
            }
        }
        out
    }

    /// Starts a new server joining the others (no `bootstrap_expect`).
    fn add_one(&mut self) -> Result<usize, String> {
        let idx = self.next_server;
        self.next_server += 1;
        let join: Vec<Ipv4Addr> = self.cluster.members().iter().map(|i| self.cluster.server(*i).ip).collect();
        self.cluster.add_server(idx, join, None)?;
        self.tally.members_added += 1;
        Ok(idx)
    }

    /// `consul leave` on the leader or a follower; waits for it to exit.
    fn leave_one(&mut self, leader: bool) -> Result<usize, String> {
        let l = self.leader()?;
        let victim = if leader { l } else { self.follower(l)? };
        self.cluster.cli(victim, &["leave"])?;
        self.cluster.wait_left(victim, Duration::from_secs(30))?;
        if !self.cluster.latest_log_contains(victim, "left the raft configuration") {
            self.tally.churn_anomalies.push((
                "churn-unclean-leave",
                format!("s{victim} left without 'left the raft configuration' in its log"),
            ));
        }
        Ok(victim)
    }

    /// Wipes and restarts the leader or a follower.
    fn replace(&mut self, leader: bool) -> Result<usize, String> {
        let l = self.leader()?;
        let victim = if leader { l } else { self.follower(l)? };
        let join: Vec<Ipv4Addr> = self
            .cluster
            .members()
            .into_iter()
            .filter(|i| *i != victim)
            .map(|i| self.cluster.server(i).ip)
            .collect();
        self.cluster.wipe_and_restart(victim, join)?;
        Ok(victim)
    }

    fn restart_follower(&mut self) -> Result<usize, String> {
        let l = self.leader()?;
        let victim = self.follower(l)?;
        self.cluster.kill9(victim)?;
        self.sync_targets();
        std::thread::sleep(self.hold_for());
        self.cluster.restart(victim)?;
        Ok(victim)
    }
}
