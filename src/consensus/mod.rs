//! Consensus: openraft wired to our storage and state machine.
//!
//! Owns: the Raft type configuration (`typ`), the on-disk log (`wal`,
//! `log_store`), the state machine and snapshots (`state_machine`,
//! `snapshot`), write batching (`proposer`), grouped linearizable reads
//! (`reads`), the Raft transport (`network`), sending a leader's entries
//! ahead of its own fsync (`speculate`) and the commit index with them
//! (`commit_notice`), and campaigning early when the leader's process is
//! gone (`leader_gone`). Must not define what commands mean: that is
//! `catalog::State::apply`.
//!
//! The only door to openraft: the rest of the crate sees Raft through
//! `Consensus`'s methods, in our own types (`status`, `membership`).

mod commit_notice;
pub mod disk_full;
mod leader_gone;
pub mod lease;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod proposer;
mod read_rounds;
pub mod reads;
pub mod recovery;
pub mod snapshot;
mod speculate;
pub mod state_machine;
pub mod status;
pub mod typ;
pub mod wal;

use log_store::LogStore;
use network::ServeError;
use proposer::Proposer;
use reads::ReadBarrier;
use state_machine::{StateMachine, Store};
use status::{LogPosition, Membership, RaftStatus, StatusWatch};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use typ::{NodeId, Raft, RaftNode};

/// What the consensus layer needs to start.
#[derive(Clone, Debug)]
pub struct ConsensusConfig {
    /// `data_dir/raft`, or `None` to keep everything in memory (`-dev`).
    pub raft_dir: Option<PathBuf>,
    pub node_id: NodeId,
    pub node: RaftNode,
    pub datacenter: String,
    /// Consul's `performance.raft_multiplier`; scales every Raft timeout.
    pub raft_multiplier: u32,
    /// Tighter timings for `-dev`.
    pub dev: bool,
    pub snapshot_threshold: u64,
    pub trailing_logs: u64,
    /// Form a single-voter cluster of this server if none exists yet.
    pub bootstrap: bool,
}

impl ConsensusConfig {
    /// An in-memory (`-dev`) single server that bootstraps itself, with
    /// Consul's default log settings: the unit tests' consensus.
    #[cfg(test)]
    pub fn dev_single(node_id: NodeId, node: RaftNode) -> ConsensusConfig {
        ConsensusConfig {
            raft_dir: None,
            node_id,
            node,
            datacenter: "dc1".into(),
            raft_multiplier: 1,
            dev: true,
            snapshot_threshold: 16384,
            trailing_logs: 10240,
            bootstrap: true,
        }
    }

    /// Raft timings. HashiCorp Raft at Consul's multiplier 1 lets a
    /// follower campaign after a randomised [1 s, 2 s) without hearing from
    /// the leader, with heartbeats at a tenth of that. openraft 0.9 waits
    /// longer: while a leader is known it adds a leader lease (=
    /// `election_timeout_max`) to its randomised election timeout, and it
    /// refuses votes during that lease. With [0.5 s, 1 s) × multiplier the
    /// silence before a follower campaigns is [1.5 s, 2 s) × multiplier;
    /// [1 s, 2 s) gave [3 s, 4 s), which is what leader failover measured.
    pub fn raft_config(&self) -> Result<openraft::Config, String> {
        let m = u64::from(self.raft_multiplier.max(1));
        let (heartbeat, elect_min) = if self.dev { (50, 150) } else { (100 * m, 500 * m) };
        let cfg = openraft::Config {
            cluster_name: self.datacenter.clone(),
            heartbeat_interval: heartbeat,
            election_timeout_min: elect_min,
            election_timeout_max: elect_min * 2,
            install_snapshot_timeout: 10_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_threshold.max(1)),
            max_in_snapshot_log_to_keep: self.trailing_logs,
            ..Default::default()
        };
        cfg.validate().map_err(|e| e.to_string())
    }
}

/// A running Raft node with its stores.
#[derive(Clone)]
pub struct Consensus {
    /// Private: everything else reaches Raft through the methods below.
    raft: Raft,
    pub store: Arc<Store>,
    pub log: LogStore,
    pub proposer: Proposer,
    pub reads: ReadBarrier,
    /// Commit indexes waiting to ride on the next early request.
    notices: Arc<commit_notice::CommitNotices>,
    pub node_id: NodeId,
    pub node: RaftNode,
    /// When a leader's append last reached this server (unix ms; 0 = never).
    last_contact_ms: Arc<AtomicU64>,
    /// When each follower last answered this server's appends (as leader).
    pub peer_contacts: network::PeerContacts,
    /// How long a leader may go without hearing from a quorum before it
    /// stops naming itself leader (`quorum_contact`).
    lease: Duration,
    /// Until when this server refuses votes after a restart (see `start`).
    votes_held_until: Option<std::time::Instant>,
    /// Ends the proposer and read-barrier loops at shutdown.
    stop: tokio_util::sync::CancellationToken,
}

impl Consensus {
    pub async fn start(
        cfg: ConsensusConfig,
        rpc: crate::rpc::client::RpcClient,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Result<Consensus, String> {
        let mut raft_config = cfg.raft_config()?;
        // Twice the followers' lease: by then they have surely campaigned.
        let lease = Duration::from_millis(2 * raft_config.election_timeout_max);
        let (log, snapshot_dir) = match &cfg.raft_dir {
            Some(dir) => {
                let (log, torn) = LogStore::open(dir)?;
                if torn > 0 {
                    tracing::warn!(target: "agent.server.raft", bytes = torn, "discarded a torn tail of the raft log (an unacknowledged write cut short by a crash)");
                }
                (log, Some(dir.join("snapshots")))
            }
            None => (LogStore::memory(), None),
        };
        // A server restarted while it followed a leader forgot when it last
        // heard from it, so it may not grant votes or campaign until the
        // lease it gave before the restart (`election_timeout_max` after
        // the last heartbeat) is surely over: leaders serve default reads
        // on that lease (`lease`). Counted from the start, which is later.
        let follower_lease = Duration::from_millis(raft_config.election_timeout_max);
        let votes_held_until =
            log.vote().filter(|v| v.is_committed()).map(|_| std::time::Instant::now() + follower_lease);
        if votes_held_until.is_some() {
            raft_config.enable_elect = false;
        }
        let raft_config = Arc::new(raft_config);
        let (sm, store) = StateMachine::open(snapshot_dir, log.disk_full().clone())?;
        let peer_contacts = network::PeerContacts::default();
        let lease_tracker = Arc::new(lease::LeaseTracker::default());
        let notices = Arc::new(commit_notice::CommitNotices::new(commit_notice::WAIT));
        let speculator = Arc::new(speculate::Speculator::new(
            cfg.node_id,
            rpc.clone(),
            Duration::from_millis(raft_config.election_timeout_min),
            notices.clone(),
        ));
        let raft = Raft::new(
            cfg.node_id,
            raft_config.clone(),
            network::Network::new(
                rpc.clone(),
                peer_contacts.clone(),
                lease_tracker.clone(),
                speculator.clone(),
            ),
            log.clone(),
            sm,
        )
        .await
        .map_err(|e| format!("starting raft: {e}"))?;
        speculator.attach(raft.clone());
        log.set_speculator(speculator);
        let mut votes_held_until = votes_held_until;
        if votes_held_until.is_some() {
            let voters = raft.metrics().borrow().membership_config.membership().voter_ids().count();
            if voters <= 1 {
                // Alone, nobody else can lead: no lease to keep.
                raft.runtime_config().elect(true);
                votes_held_until = None;
            } else {
                tracing::info!(target: "agent.server.raft", hold = ?follower_lease, "restarted while following a leader: not voting or campaigning until its lease is over");
            }
        }
        if cfg.bootstrap {
            let initialized = membership::is_initialized(&raft).await.map_err(|e| e.to_string())?;
            if !initialized {
                let mut members = BTreeMap::new();
                members.insert(cfg.node_id, cfg.node.clone());
                tracing::info!(target: "agent.server.raft", node = %cfg.node, "bootstrapping a single-server raft cluster");
                if let Err(e) = membership::initialize(&raft, members).await {
                    return Err(format!("bootstrapping raft: {e}"));
                }
            }
        }
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(until) = votes_held_until {
            let (r, stop) = (raft.clone(), stop.clone());
            tasks.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => r.runtime_config().elect(true),
                    _ = stop.cancelled() => {}
                }
            });
        }
        let proposer = Proposer::spawn(raft.clone(), tasks, stop.clone());
        let reads = ReadBarrier::new(
            reads::ReadSetup {
                raft: raft.clone(),
                me: cfg.node_id,
                log: log.clone(),
                store: store.clone(),
                lease: lease_tracker,
                lease_for: lease::leader_lease(raft_config.election_timeout_max),
                rpc,
                round_timeout: Duration::from_millis(raft_config.election_timeout_min),
            },
            stop.clone(),
        );
        tasks.spawn(reads::run_term_barriers(raft.clone(), cfg.node_id, reads.clone(), stop.clone()));
        let last_contact_ms = Arc::new(AtomicU64::new(0));
        let watch = leader_gone::Watch {
            raft: raft.clone(),
            me: cfg.node_id,
            last_contact_ms: last_contact_ms.clone(),
            heartbeat: Duration::from_millis(raft_config.heartbeat_interval),
            follower_lease,
            votes_held_until,
        };
        tasks.spawn(watch.run(stop.clone()));
        Ok(Consensus {
            raft,
            store,
            log,
            proposer,
            reads,
            notices,
            node_id: cfg.node_id,
            node: cfg.node,
            last_contact_ms,
            peer_contacts,
            lease,
            votes_held_until,
            stop,
        })
    }

    /// A read index for a follower's read (`confirm` as for a read here);
    /// the follower waits to apply it, so it is told the commit index now
    /// rather than with the next write (`commit_notice`).
    pub async fn read_index_for_follower(&self, confirm: reads::Confirm) -> Result<u64, reads::ReadError> {
        let index = self.reads.confirm(confirm).await?;
        self.notices.read_index_given(index);
        Ok(index)
    }

    /// Records that the leader just reached us (an AppendEntries arrived).
    pub fn touch_contact(&self) {
        self.last_contact_ms.store(unix_ms_now(), Ordering::Relaxed);
    }

    /// Time since the leader last reached this server: zero on the leader,
    /// `None` if it never has.
    pub fn last_contact(&self) -> Option<Duration> {
        if self.is_leader() {
            return Some(Duration::ZERO);
        }
        let at = self.last_contact_ms.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        Some(Duration::from_millis(unix_ms_now().saturating_sub(at)))
    }

    /// The current leader's id as this node knows it (no copy of its node
    /// record: this runs several times per request).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.server_metrics().borrow().current_leader
    }

    /// The current leader's id and RPC address, read in place.
    pub fn leader_rpc_addr(&self) -> Option<(NodeId, std::net::SocketAddr)> {
        let m = self.raft.server_metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.parse().ok()?;
        Some((id, addr))
    }

    /// The current leader as this node knows it.
    pub fn leader(&self) -> Option<(NodeId, RaftNode)> {
        // Server metrics, not the full ones: consistent with `watch_status`
        // and not cloned whole (this runs on every write).
        let m = self.raft.server_metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id).cloned()?;
        Some((id, node))
    }

    /// False for a leader that has not heard from a quorum of voters
    /// (itself included) within twice the followers' lease: it is cut
    /// off, and the others have likely elected someone else. HashiCorp Raft
    /// steps down then; openraft 0.9 keeps the role, so callers use this to
    /// stop reporting it (its reads and writes fail on their own).
    pub fn quorum_contact(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.node_id) {
            return true;
        }
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        let heard = voters
            .iter()
            .filter(|id| {
                **id == self.node_id || self.peer_contacts.since(**id).is_some_and(|d| d < self.lease)
            })
            .count();
        heard * 2 > voters.len()
    }

    /// Raft's status now (role, term, leader, configuration, replication).
    pub fn status(&self) -> RaftStatus {
        RaftStatus::from(&*self.raft.metrics().borrow())
    }

    /// Wakes when the role, leader, term or configuration in `status()`
    /// changes (see `StatusWatch`); `is_leader` reads the same source, so a
    /// woken loop never sees the leadership from before the change.
    pub fn watch_status(&self) -> StatusWatch {
        StatusWatch(self.raft.server_metrics())
    }

    /// The configuration the state machine has applied (committed), as
    /// opposed to `status().membership`, the latest one in the log.
    pub fn applied_membership(&self) -> Membership {
        Membership::from_stored(&self.store.membership())
    }

    /// The last entry in this server's log.
    pub fn last_log(&self) -> Option<LogPosition> {
        self.log.last_log_id().map(LogPosition::from)
    }

    /// The highest index this server knows to be committed.
    pub fn committed_index(&self) -> Option<u64> {
        self.log.committed().map(|l| l.index)
    }

    /// Serves a Raft RPC from another server (`kind` and its encoded
    /// request, as `rpc::Request::Raft` carries them); returns the encoded
    /// response.
    pub async fn serve_raft(
        &self,
        kind: crate::rpc::message::RaftRpc,
        payload: &[u8],
    ) -> Result<Vec<u8>, ServeError> {
        let votes_held = self.votes_held_until.is_some_and(|t| std::time::Instant::now() < t);
        network::serve(&self.raft, &self.log, votes_held, kind, payload).await
    }

    pub fn is_leader(&self) -> bool {
        self.raft.server_metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Waits (up to `timeout`) for a leader to be known.
    pub async fn wait_for_leader(&self, timeout: Duration) -> bool {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if rx.borrow().current_leader.is_some() {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return false,
            }
        }
    }

    /// Waits up to `max` until a leader other than `seen` is known (a
    /// caller that found no leader, or an unreachable one, retries as soon
    /// as an election ends instead of after a fixed pause).
    pub async fn leader_changed(&self, seen: Option<NodeId>, max: Duration) {
        let mut rx = self.raft.metrics();
        let _ = tokio::time::timeout(
            max,
            rx.wait_for(|m| m.current_leader.is_some() && m.current_leader != seen),
        )
        .await;
    }

    pub async fn shutdown(&self) {
        self.stop.cancel();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(target: "agent.server.raft", error = %e, "raft shutdown");
        }
    }
}

/// Wall-clock Unix milliseconds (0 if the clock reads before 1970). The
/// leader's reading stamps each `Proposal`: the catalog reads no clock.
pub(crate) fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
