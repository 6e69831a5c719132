//! The faults: each one is applied, held, healed, and followed by a wait for
//! the cluster to agree on a leader again (timed, and bounded). Tallies what
//! actually happened so a run can prove its faults took effect.

use crate::cluster::{Cluster, State};
use crate::common::wait::wait_blocking;
use crate::http;
use crate::net::Rules;
use crate::workload::{create_session, Shared, TIMEOUT};
use lincheck::locks::LockEvent;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a wait re-checks the cluster: each check costs HTTP requests
/// to every server.
const POLL_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    IsolateLeader,
    IsolateMinority,
    BridgePartition,
    PacketDrop,
    Delay,
    TornTail,
    CrashAll,
    PowerLoss,
    PowerLossLaggingFollower,
    Membership,
    Snapshot,
    LockDelayProbe,
    /// A membership churn cycle (`churn.rs`); not among `ALL`, it has its
    /// own run (`churn_run`).
    Churn,
}

impl Fault {
    pub const ALL: [Fault; 15] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::IsolateLeader,
        Fault::IsolateMinority,
        Fault::BridgePartition,
        Fault::PacketDrop,
        Fault::Delay,
        Fault::TornTail,
        Fault::CrashAll,
        Fault::PowerLoss,
        Fault::Membership,
        Fault::Snapshot,
        Fault::LockDelayProbe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-9-leader",
            Fault::KillFollower => "kill-9-follower",
            Fault::PauseLeader => "sigstop-leader",
            Fault::PauseFollower => "sigstop-follower",
            Fault::IsolateLeader => "partition-isolate-leader",
            Fault::IsolateMinority => "partition-majority-minority",
            Fault::BridgePartition => "partition-bridge",
            Fault::PacketDrop => "packet-drop",
            Fault::Delay => "rpc-delay-proxy",
            Fault::TornTail => "torn-tail-restart",
            Fault::CrashAll => "kill-9-all-torn-tails",
            Fault::PowerLoss => "power-loss-all",
            Fault::PowerLossLaggingFollower => "power-loss-lagging-follower",
            Fault::Membership => "membership-add-leave",
            Fault::Snapshot => "snapshot-save",
            Fault::LockDelayProbe => "lock-delay-probe",
            Fault::Churn => "membership-churn",
        }
    }

    pub fn is_partition(self) -> bool {
        matches!(self, Fault::IsolateLeader | Fault::IsolateMinority | Fault::BridgePartition)
    }

    /// Faults after which a new leader must have been elected at least once over the run.
    pub fn moves_leader(self) -> bool {
        matches!(self, Fault::KillLeader | Fault::PauseLeader | Fault::IsolateLeader)
    }
}

/// What the faults did.
#[derive(Default, Debug)]
pub struct Tally {
    pub applied: BTreeMap<&'static str, usize>,
    pub partitions_applied: usize,
    pub leader_regain: Vec<(&'static str, Duration)>,
    pub torn_bytes_added: u64,
    pub unsynced_bytes_cut: u64,
    pub torn_tails_discarded: usize,
    pub snapshots_saved: usize,
    pub members_added: usize,
    /// Connections and bytes that went through the delaying proxy.
    pub delayed_connections: u64,
    pub delayed_bytes: u64,
    /// Faults that could not be applied, or a leader not regained in time.
    pub problems: Vec<String>,
    /// Lock-delay probe: how long the second holder waited after the first
    /// holder's session was destroyed.
    pub lock_waits: Vec<Duration>,
    /// Churn: how long the Raft configuration took to match the running
    /// servers after each step.
    pub convergence: Vec<(&'static str, Duration)>,
    /// Churn: what its checker found (kind, description).
    pub churn_anomalies: Vec<(&'static str, String)>,
}

pub struct Injector<'a> {
    pub cluster: &'a mut Cluster,
    pub sh: Arc<Shared>,
    pub rng: StdRng,
    pub tally: Tally,
    /// How long a fault is held before it is healed.
    pub hold: Duration,
    /// Bound on leader recovery after each heal.
    pub regain_bound: Duration,
    pub(crate) next_server: usize,
    probe_round: u64,
}

/// A partial WAL record: a header announcing 4 KiB of payload and only a
/// few bytes of it, as a write cut short by a crash leaves.
const TORN: [u8; 24] =
    [0, 16, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

impl<'a> Injector<'a> {
    pub fn new(cluster: &'a mut Cluster, sh: Arc<Shared>, rng: StdRng, hold: Duration) -> Injector<'a> {
        let next_server = cluster.servers.len();
        Injector {
            cluster,
            sh,
            rng,
            tally: Tally::default(),
            hold,
            regain_bound: Duration::from_secs(20),
            next_server,
            probe_round: 0,
        }
    }

    pub(crate) fn sync_targets(&self) {
        self.sh.set_targets(self.cluster.targets());
    }

    pub(crate) fn hold_for(&mut self) -> Duration {
        let ms = self.hold.as_millis() as u64;
        Duration::from_millis(self.rng.random_range(ms..=ms + ms / 2))
    }

    pub(crate) fn leader(&mut self) -> Result<usize, String> {
        self.cluster
            .wait_leader(self.regain_bound)
            .map(|(l, _)| l)
            .ok_or_else(|| "no agreed leader before the fault".to_string())
    }

    pub(crate) fn follower(&mut self, leader: usize) -> Result<usize, String> {
        let f: Vec<usize> = self.cluster.running().into_iter().filter(|i| *i != leader).collect();
        f.choose(&mut self.rng).copied().ok_or_else(|| "no follower running".to_string())
    }

    /// Applies `fault`, holds it, heals, and waits for a leader.
    pub fn inject(&mut self, fault: Fault) {
        let started = Instant::now();
        eprintln!("[faults] {:>6.1}s inject {}", self.sh.rec.now() as f64 / 1e9, fault.name());
        match self.apply(fault) {
            Ok(()) => *self.tally.applied.entry(fault.name()).or_default() += 1,
            Err(e) => self.tally.problems.push(format!("{}: could not be applied: {e}", fault.name())),
        }
        // Whatever happened, leave the cluster whole.
        if let Err(e) = self.cluster.heal_network() {
            self.tally.problems.push(format!("healing the network after {}: {e}", fault.name()));
        }
        for i in self.cluster.members() {
            let res = match self.cluster.server(i).state {
                State::Paused => self.cluster.resume(i),
                State::Killed => self.cluster.restart(i),
                _ => Ok(()),
            };
            if let Err(e) = res {
                self.tally.problems.push(format!("restoring s{i} after {}: {e}", fault.name()));
            }
        }
        self.sync_targets();
        match self.cluster.wait_leader(self.regain_bound) {
            Some((_, took)) => self.tally.leader_regain.push((fault.name(), took)),
            None => self.tally.problems.push(format!(
                "no leader agreed within {:?} after healing {}",
                self.regain_bound,
                fault.name()
            )),
        }
        self.cluster.check_exits();
        eprintln!(
            "[faults] {:>6.1}s healed {} after {:.1}s",
            self.sh.rec.now() as f64 / 1e9,
            fault.name(),
            started.elapsed().as_secs_f64()
        );
    }

    fn apply(&mut self, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::KillLeader | Fault::KillFollower => {
                let l = self.leader()?;
                let victim = if fault == Fault::KillLeader { l } else { self.follower(l)? };
                self.cluster.kill9(victim)?;
                self.sync_targets();
                std::thread::sleep(self.hold_for());
                self.cluster.restart(victim)
            }
            Fault::PauseLeader | Fault::PauseFollower => {
                let l = self.leader()?;
                let victim = if fault == Fault::PauseLeader { l } else { self.follower(l)? };
                self.cluster.pause(victim)?;
                self.sync_targets();
                // Longer than the 2 s a follower waits before campaigning.
                std::thread::sleep(self.hold_for().max(Duration::from_secs(4)));
                self.cluster.resume(victim)
            }
            Fault::IsolateLeader | Fault::IsolateMinority => {
                let l = self.leader()?;
                let mut members = self.cluster.members();
                members.shuffle(&mut self.rng);
                let minority_size = (members.len() - 1) / 2;
                let mut minority: Vec<usize> = Vec::new();
                if fault == Fault::IsolateLeader {
                    minority.push(l);
                }
                for m in &members {
                    if minority.len() >= minority_size.max(1) {
                        break;
                    }
                    if *m != l && !minority.contains(m) {
                        minority.push(*m);
                    }
                }
                let majority: Vec<usize> =
                    members.iter().copied().filter(|m| !minority.contains(m)).collect();
                self.cut(&minority, &majority)?;
                std::thread::sleep(self.hold_for());
                Ok(())
            }
            Fault::BridgePartition => {
                let mut members = self.cluster.members();
                members.shuffle(&mut self.rng);
                let bridge = members.remove(0);
                let half = members.len() / 2;
                let (a, c) = members.split_at(half.max(1));
                eprintln!("[faults] bridge s{bridge} between {a:?} and {c:?}");
                self.cut(a, c)?;
                std::thread::sleep(self.hold_for());
                Ok(())
            }
            Fault::PacketDrop => {
                let pct = self.rng.random_range(20..=40);
                for i in self.cluster.members() {
                    self.cluster.set_rules(i, &Rules { drop_percent: pct, ..Rules::default() })?;
                }
                eprintln!("[faults] dropping {pct}% of server-to-server packets");
                std::thread::sleep(self.hold_for());
                Ok(())
            }
            Fault::Delay => self.delay(),
            Fault::TornTail => {
                let l = self.leader()?;
                let victim = self.follower(l)?;
                self.crash_and_tear(&[victim], false)
            }
            Fault::CrashAll => {
                let all = self.cluster.members();
                self.crash_and_tear(&all, false)
            }
            Fault::PowerLoss => {
                let all = self.cluster.members();
                self.crash_and_tear(&all, true)
            }
            Fault::PowerLossLaggingFollower => self.power_loss_lagging_follower(),
            Fault::Membership => self.membership(),
            Fault::Snapshot => {
                let l = self.leader()?;
                let path = self.cluster.out_dir.join(format!("snap-{}.snap", self.tally.snapshots_saved));
                let p = path.display().to_string();
                self.cluster.cli(l, &["snapshot", "save", &p])?;
                let size = std::fs::metadata(&path).map_err(|e| format!("{p}: {e}"))?.len();
                if size == 0 {
                    return Err(format!("{p} is empty"));
                }
                self.cluster.cli(l, &["snapshot", "inspect", &p])?;
                self.tally.snapshots_saved += 1;
                Ok(())
            }
            Fault::LockDelayProbe => self.lock_delay_probe(),
            Fault::Churn => self.churn(),
        }
    }

    /// Raft RPC between all servers through the delaying proxy: 75 ms ± 50 ms
    /// per chunk and direction (etcd's robustness tests use the same figures).
    fn delay(&mut self) -> Result<(), String> {
        let members = self.cluster.members();
        let port = |i: usize| 9300 + i as u16;
        let routes: Vec<(std::net::SocketAddr, std::net::SocketAddr)> = members
            .iter()
            .map(|i| {
                (
                    std::net::SocketAddr::from((crate::net::CLIENT_IP, port(*i))),
                    std::net::SocketAddr::from((self.cluster.server(*i).ip, 8300)),
                )
            })
            .collect();
        let seed = self.rng.random();
        let proxy = crate::delay::DelayProxy::start(
            &self.cluster.net.client_ns,
            &routes,
            Duration::from_millis(75),
            Duration::from_millis(50),
            seed,
        )?;
        let mut applied = Ok(());
        for i in &members {
            let via =
                members.iter().filter(|j| *j != i).map(|j| (self.cluster.server(*j).ip, port(*j))).collect();
            if let Err(e) = self.cluster.set_rules(*i, &Rules { delay_via: via, ..Rules::default() }) {
                applied = Err(e);
                break;
            }
        }
        if applied.is_ok() {
            std::thread::sleep(self.hold_for());
        }
        // Remove the redirect before the proxy goes, so reconnects go direct.
        let healed = self.cluster.heal_network();
        let (conns, bytes) = (proxy.connections.load(Ordering::Relaxed), proxy.bytes.load(Ordering::Relaxed));
        proxy.stop();
        applied?;
        healed?;
        eprintln!("[faults] delay proxy carried {conns} connections, {bytes} bytes");
        self.tally.delayed_connections += conns;
        self.tally.delayed_bytes += bytes;
        if conns == 0 || bytes == 0 {
            return Err("no Raft traffic went through the delaying proxy".into());
        }
        Ok(())
    }

    /// Blocks traffic between every server of `a` and every server of `b`.
    fn cut(&mut self, a: &[usize], b: &[usize]) -> Result<(), String> {
        let ips = |set: &[usize]| -> BTreeSet<Ipv4Addr> {
            set.iter().map(|i| self.cluster.server(*i).ip).collect()
        };
        let (ia, ib) = (ips(a), ips(b));
        for i in a {
            self.cluster.set_rules(*i, &Rules { blocked: ib.clone(), ..Rules::default() })?;
        }
        for i in b {
            self.cluster.set_rules(*i, &Rules { blocked: ia.clone(), ..Rules::default() })?;
        }
        eprintln!("[faults] partition {a:?} | {b:?}");
        self.tally.partitions_applied += 1;
        Ok(())
    }

    /// kill -9 `victims` at once, cut what their disks never synced, tear
    /// the last WAL write, and restart them. `power_loss` also drops what
    /// only the page cache held: the committed-index hint, which the agent
    /// writes without fsync.
    fn crash_and_tear(&mut self, victims: &[usize], power_loss: bool) -> Result<(), String> {
        let leader = self.cluster.agreed_leader();
        for v in victims {
            self.cluster.kill9(*v)?;
        }
        self.sync_targets();
        for v in victims {
            let (cut, added) = self.cluster.lose_unsynced(*v, &TORN, power_loss)?;
            self.tally.unsynced_bytes_cut += cut;
            self.tally.torn_bytes_added += added;
        }
        std::thread::sleep(Duration::from_millis(500));
        // After a power loss machines come back at different speeds: the
        // old leader first, the others a little later.
        let mut order: Vec<usize> = victims.to_vec();
        order.sort_by_key(|v| Some(*v) != leader);
        for (n, v) in order.iter().enumerate() {
            if power_loss && n == 1 {
                std::thread::sleep(Duration::from_millis(1500));
            }
            self.cluster.restart(*v)?;
            self.sync_targets();
        }
        self.sync_targets();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pending: Vec<usize> = victims
                .iter()
                .copied()
                .filter(|v| !self.cluster.latest_log_contains(*v, "discarded a torn tail"))
                .collect();
            if pending.is_empty() {
                self.tally.torn_tails_discarded += victims.len();
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("restarted servers {pending:?} never reported discarding the torn tail"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A follower falls behind while paused (so it never starts an
    /// election and keeps the leader's term), then every server loses power
    /// and only the old leader and the lagging follower come back, over a
    /// lossy link. The leader resumes its term without an election and must
    /// not answer reads before it has re-applied everything it had
    /// committed. Not in `Fault::ALL`: see docs/reliability.md, findings.
    fn power_loss_lagging_follower(&mut self) -> Result<(), String> {
        let l = self.leader()?;
        let lagging = self.follower(l)?;
        self.cluster.pause(lagging)?;
        self.sync_targets();
        std::thread::sleep(Duration::from_secs(4));
        let all = self.cluster.members();
        for v in &all {
            self.cluster.kill9(*v)?;
        }
        self.sync_targets();
        for v in &all {
            let (cut, added) = self.cluster.lose_unsynced(*v, &TORN, true)?;
            self.tally.unsynced_bytes_cut += cut;
            self.tally.torn_bytes_added += added;
        }
        for v in [l, lagging] {
            self.cluster.set_rules(v, &Rules { drop_percent: 50, ..Rules::default() })?;
            self.cluster.restart(v)?;
        }
        self.sync_targets();
        std::thread::sleep(self.hold_for());
        Ok(())
    }

    /// Adds a server under load, waits for it to become a voter, then has it
    /// leave gracefully and waits for the configuration to shrink back.
    fn membership(&mut self) -> Result<(), String> {
        // Autopilot removes dead servers and re-adds them when they come
        // back; start from a configuration with every member a voter.
        let before = self.cluster.members().len();
        let settled = wait_blocking(Duration::from_secs(40), POLL_EVERY, || {
            self.cluster.agreed_leader().and_then(|l| self.cluster.voters(l)) == Some(before)
        });
        if !settled {
            return Err(format!("the configuration never settled at {before} voters before the change"));
        }
        let idx = self.next_server;
        self.next_server += 1;
        let join: Vec<Ipv4Addr> = self.cluster.members().iter().map(|i| self.cluster.server(*i).ip).collect();
        self.cluster.add_server(idx, join, None)?;
        self.sync_targets();
        let grown = wait_blocking(Duration::from_secs(40), POLL_EVERY, || {
            self.cluster.agreed_leader().and_then(|l| self.cluster.voters(l)) == Some(before + 1)
        });
        if !grown {
            return Err(format!("s{idx} never became a voter ({before} voters before)"));
        }
        self.tally.members_added += 1;
        eprintln!("[faults] s{idx} joined as a voter; leaving");
        std::thread::sleep(self.hold_for());
        self.cluster.cli(idx, &["leave"])?;
        self.cluster.wait_left(idx, Duration::from_secs(30))?;
        self.sync_targets();
        let shrunk = wait_blocking(Duration::from_secs(30), POLL_EVERY, || {
            self.cluster.agreed_leader().and_then(|l| self.cluster.voters(l)) == Some(before)
        });
        if !shrunk {
            return Err(format!("configuration never shrank back to {before} voters after s{idx} left"));
        }
        Ok(())
    }

    /// Holder A takes a lock with a 3 s lock-delay session, then its session
    /// is destroyed behind its back; A notices on its next poll, 1 s later.
    /// Holder B tries to take the lock from the moment of the destroy. With
    /// lock-delay honoured B must wait about 3 s, after A noticed; without
    /// it the two holds overlap.
    fn lock_delay_probe(&mut self) -> Result<(), String> {
        self.probe_round += 1;
        let lock = format!("faults-probe/r{}", self.probe_round);
        let running = self.cluster.running();
        let a_srv = *running.choose(&mut self.rng).ok_or("no server running")?;
        let b_srv = *running.choose(&mut self.rng).ok_or("no server running")?;
        let (a, b) = (self.cluster.server(a_srv).http(), self.cluster.server(b_srv).http());
        let sid_a = create_session(a, "3s")?;
        let sid_b = create_session(b, "3s")?;
        let r = http::request(a, "PUT", &format!("/v1/kv/{lock}?acquire={sid_a}"), Some(b"A"), TIMEOUT)
            .map_err(|e| e.to_string())?;
        if r.status != 200 || r.text().trim() != "true" {
            return Err(format!("holder A could not take {lock}: {} {}", r.status, r.text()));
        }
        let rec = &self.sh.rec;
        self.sh.lock_event(LockEvent::Acquired {
            lock: lock.clone(),
            holder: sid_a.clone(),
            at: rec.now(),
            lock_index: None,
        });
        let r = http::request(b, "PUT", &format!("/v1/session/destroy/{sid_a}"), None, TIMEOUT)
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("destroying A's session: {} {}", r.status, r.text()));
        }
        let destroyed = Instant::now();
        let sh = self.sh.clone();
        let ns = self.cluster.net.client_ns.clone();
        let (lock_b, sid_b2) = (lock.clone(), sid_b.clone());
        let b_thread = std::thread::spawn(move || -> Result<Duration, String> {
            crate::common::netns::enter(&ns)?;
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                let r = http::request(
                    b,
                    "PUT",
                    &format!("/v1/kv/{lock_b}?acquire={sid_b2}"),
                    Some(b"B"),
                    TIMEOUT,
                );
                if let Ok(r) = r {
                    if r.status == 200 && r.text().trim() == "true" {
                        let waited = destroyed.elapsed();
                        sh.lock_event(LockEvent::Acquired {
                            lock: lock_b.clone(),
                            holder: sid_b2.clone(),
                            at: sh.rec.now(),
                            lock_index: None,
                        });
                        std::thread::sleep(Duration::from_millis(100));
                        sh.lock_event(LockEvent::ReleaseInvoked {
                            lock: lock_b.clone(),
                            holder: sid_b2.clone(),
                            at: sh.rec.now(),
                        });
                        let _ = http::request(
                            b,
                            "PUT",
                            &format!("/v1/kv/{lock_b}?release={sid_b2}"),
                            None,
                            TIMEOUT,
                        );
                        return Ok(waited);
                    }
                }
                if Instant::now() > deadline {
                    return Err("holder B never got the lock within 8 s".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Holder A polls once a second; it believes it holds the lock until a poll shows otherwise.
        std::thread::sleep(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = http::request(a, "GET", &format!("/v1/kv/{lock}?consistent"), None, TIMEOUT) {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let holder = v.get(0).and_then(|e| e["Session"].as_str()).unwrap_or("");
                if (r.status == 200 || r.status == 404) && holder != sid_a {
                    self.sh.lock_event(LockEvent::SessionInvalidated {
                        holder: sid_a.clone(),
                        at: self.sh.rec.now(),
                    });
                    break;
                }
            }
            if Instant::now() > deadline {
                self.sh.lock_event(LockEvent::SessionInvalidated {
                    holder: sid_a.clone(),
                    at: self.sh.rec.now(),
                });
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let waited = b_thread.join().map_err(|_| "holder B panicked".to_string())??;
        eprintln!(
            "[faults] lock-delay probe: B took the lock {:.2}s after A's session was destroyed",
            waited.as_secs_f64()
        );
        self.tally.lock_waits.push(waited);
        let _ = http::request(b, "PUT", &format!("/v1/session/destroy/{sid_b}"), None, TIMEOUT);
        Ok(())
    }

    /// Moves the workload to fresh keys.
    pub fn next_epoch(&self) {
        self.sh.epoch.fetch_add(1, Ordering::Relaxed);
    }
}
