//! Linearizable reads (Raft's ReadIndex) that never wait for a write in
//! flight.
//!
//! Why reads used to wait for writes: openraft 0.9's core awaits every log
//! append's fsync inline (`RaftCore::append_to_log` waits for the flush
//! callback), and `Raft::ensure_linearizable` is a message to that core. A
//! read that arrived 1 ms after a PUT queued behind the PUT's fsync; by the
//! time the core took the read's commit index the PUT was usually committed
//! too, so the read also waited for it to be applied and returned the new
//! value. Followers answer openraft's heartbeats from their core as well,
//! so they too answer after their own fsync of the same entry.
//!
//! Now nothing here asks the core:
//! - the read index is the commit index at arrival: the larger of the
//!   committed pointer the core saved (before it applies anything) and the
//!   highest commit index this leader ever sent a follower (`lease`), so it
//!   covers every acknowledged write and everything a follower may have
//!   served, and never includes a write still in flight;
//! - a default read confirms leadership with the leader lease (`lease`),
//!   and falls back to a quorum round when the lease lapsed;
//! - a `?consistent` read always runs a quorum round (never the lease, as
//!   Consul documents): `RaftRpc::LeaderCheck` to every voter, answered from
//!   the follower's log store (its saved vote), not its core. Reads that
//!   arrive while a round is in flight share the next one: one round trip
//!   serves any number of concurrent reads.
//!
//! Then the read waits until the state machine has applied its read index:
//! entries already committed, whose apply the core dispatched before it
//! saved the committed pointer.

use super::lease::LeaseTracker;
use super::log_store::LogStore;
use super::read_rounds::Rounds;
use super::state_machine::Store;
use super::typ::{NodeId, Raft, RaftNode, StoredMembership, Vote};
use crate::rpc::client::RpcClient;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, RaftNode)> },
    #[error("raft is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Raft(String),
}

/// How a read confirms that this server still leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Default consistency: the leader lease, else a quorum round.
    Lease,
    /// `?consistent`: always a quorum round.
    Quorum,
}

#[derive(Clone)]
pub struct ReadBarrier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Only its metrics are read (no call into the core).
    raft: Raft,
    me: NodeId,
    log: LogStore,
    store: Arc<Store>,
    lease: Arc<LeaseTracker>,
    /// How long after a quorum's acknowledgement the lease holds.
    lease_for: Duration,
    rpc: RpcClient,
    /// How long a quorum round waits for answers.
    round_timeout: Duration,
    /// `?consistent` reads' quorum rounds, shared (see `read_rounds`).
    rounds: Rounds<Result<u64, ReadError>>,
    /// Cancelled at shutdown: reads waiting for a round then fail.
    stop: tokio_util::sync::CancellationToken,
    /// The term in which this node, as leader, has committed and applied an
    /// entry of its own (`run_term_barriers`). Until that is true for the
    /// current term no read is served: a node restarted as leader of its
    /// old term (openraft restores a committed self-vote without an
    /// election) may not yet know how far its log was committed, and its
    /// read index alone would let it answer from a state machine that has
    /// not re-applied everything acknowledged before the crash. A new
    /// leader's barrier also covers every entry an earlier leader committed.
    ready_term: AtomicU64,
    /// Test hook (`use_core_reads`).
    #[cfg(feature = "test-hooks")]
    core_reads: std::sync::atomic::AtomicBool,
}

/// What a leader needs to know about itself to serve a read.
struct Leading {
    vote: Vote,
    /// Shared with the metrics, not copied: a default read only looks.
    membership: Arc<StoredMembership>,
}

impl Leading {
    fn joint(&self) -> &[BTreeSet<NodeId>] {
        self.membership.membership().get_joint_config()
    }
}

/// What `ReadBarrier::new` needs.
pub struct ReadSetup {
    pub raft: Raft,
    pub me: NodeId,
    pub log: LogStore,
    pub store: Arc<Store>,
    pub lease: Arc<LeaseTracker>,
    pub lease_for: Duration,
    pub rpc: RpcClient,
    pub round_timeout: Duration,
}

impl ReadBarrier {
    /// A barrier whose reads fail with `ShuttingDown` once `stop` is
    /// cancelled.
    pub fn new(setup: ReadSetup, stop: tokio_util::sync::CancellationToken) -> ReadBarrier {
        let inner = Arc::new(Inner {
            raft: setup.raft,
            me: setup.me,
            log: setup.log,
            store: setup.store,
            lease: setup.lease,
            lease_for: setup.lease_for,
            rpc: setup.rpc,
            round_timeout: setup.round_timeout,
            rounds: Rounds::default(),
            stop,
            ready_term: AtomicU64::new(0),
            #[cfg(feature = "test-hooks")]
            core_reads: Default::default(),
        });
        ReadBarrier { inner }
    }

    /// Records that an entry proposed by this leader in `term` is applied.
    pub fn set_ready_term(&self, term: u64) {
        self.inner.ready_term.fetch_max(term, Ordering::AcqRel);
    }

    pub fn ready_term(&self) -> u64 {
        self.inner.ready_term.load(Ordering::Acquire)
    }

    /// Test hook: confirm reads through openraft's `ensure_linearizable`
    /// instead, as before issue 22 (behind the core, so behind every log
    /// fsync), so one build can measure and test both.
    #[cfg(feature = "test-hooks")]
    pub fn use_core_reads(&self, on: bool) {
        self.inner.core_reads.store(on, Ordering::Release);
    }

    /// Waits until a read of local state is linearizable; returns the read
    /// index (the state has reached at least that).
    pub async fn confirm(&self, how: Confirm) -> Result<u64, ReadError> {
        let inner = &self.inner;
        #[cfg(feature = "test-hooks")]
        if inner.core_reads.load(Ordering::Acquire) {
            return inner.confirm_via_core().await;
        }
        let leading = inner.leading()?;
        let arrival_index = inner.read_index();
        let index = match how {
            Confirm::Lease if inner.lease_held(&leading) => {
                crate::metrics::incr("consul.raft.read_barrier.lease_reads", 1);
                arrival_index
            }
            _ => {
                crate::metrics::incr("consul.raft.read_barrier.reads", 1);
                let round = inner.rounds.join(|| async {
                    crate::metrics::incr("consul.raft.read_barrier.rounds", 1);
                    inner.quorum_round().await
                });
                tokio::select! {
                    r = round => r?.max(arrival_index),
                    _ = inner.stop.cancelled() => return Err(ReadError::ShuttingDown),
                }
            }
        };
        inner.wait_applied(index).await?;
        Ok(index)
    }
}

impl Inner {
    /// This server's facts as leader, or why it may not serve reads.
    fn leading(&self) -> Result<Leading, ReadError> {
        // The server metrics (role, leader, vote, configuration), borrowed:
        // this runs on every read, and the full metrics are republished on
        // every write and would be cloned whole.
        let m = self.raft.server_metrics();
        let m = m.borrow();
        if m.current_leader != Some(self.me) {
            let leader = m
                .current_leader
                .and_then(|id| m.membership_config.membership().get_node(&id).cloned().map(|n| (id, n)));
            return Err(ReadError::NotLeader { leader });
        }
        // Not yet safe in this term (see `ready_term`): callers retry.
        let current_term = m.vote.leader_id().term;
        if self.ready_term.load(Ordering::Acquire) < current_term {
            return Err(ReadError::NotLeader { leader: None });
        }
        // The saved vote, not the metrics: it changes before this server
        // grants a vote to anyone else.
        let vote = match self.log.vote() {
            Some(v)
                if v.is_committed()
                    && v.leader_id().node_id == self.me
                    && v.leader_id().term == current_term =>
            {
                v
            }
            _ => return Err(ReadError::NotLeader { leader: None }),
        };
        Ok(Leading { vote, membership: m.membership_config.clone() })
    }

    /// The commit index now (see the module doc).
    fn read_index(&self) -> u64 {
        let saved = self.log.committed().map(|l| l.index).unwrap_or(0);
        saved.max(self.lease.max_commit_sent())
    }

    fn lease_held(&self, l: &Leading) -> bool {
        self.lease.held(self.me, &l.vote, l.joint(), self.lease_for, Instant::now())
    }

    /// One quorum round, started after every read it serves arrived:
    /// succeeds once each configuration has a majority (this server
    /// included) that still follows this leader's vote.
    async fn quorum_round(&self) -> Result<u64, ReadError> {
        let l = self.leading()?;
        let index = self.read_index();
        let mut granted: BTreeSet<NodeId> = BTreeSet::from([self.me]);
        let quorum = |g: &BTreeSet<NodeId>| {
            l.joint().iter().all(|c| c.iter().filter(|id| g.contains(id)).count() * 2 > c.len())
        };
        if quorum(&granted) {
            return Ok(index);
        }
        // Asked from this task, not spawned ones: one hand-over less per
        // answer (see `read_rounds`).
        let membership = l.membership.membership();
        let peers = membership.voter_ids().filter(|id| *id != self.me);
        let mut asks: FuturesUnordered<_> = peers
            .filter_map(|id| Some((id, membership.get_node(&id)?)))
            .map(|(id, node)| async move {
                (
                    id,
                    super::network::leader_check(&self.rpc, id, &node.addr, &l.vote, self.round_timeout)
                        .await,
                )
            })
            .collect();
        while let Some(answer) = asks.next().await {
            if let (id, true) = answer {
                granted.insert(id);
                if quorum(&granted) {
                    return Ok(index);
                }
            }
        }
        // A leader that cannot reach a quorum is no leader for reads.
        Err(ReadError::NotLeader { leader: None })
    }

    /// The pre-issue-22 confirmation (`ReadBarrier::use_core_reads`).
    #[cfg(feature = "test-hooks")]
    async fn confirm_via_core(&self) -> Result<u64, ReadError> {
        use openraft::error::{CheckIsLeaderError, Fatal, RaftError};
        match self.raft.ensure_linearizable().await {
            Ok(_) if self.ready_term.load(Ordering::Acquire) < self.raft.metrics().borrow().current_term => {
                Err(ReadError::NotLeader { leader: None })
            }
            Ok(log_id) => Ok(log_id.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ReadError::NotLeader { leader: f.leader_id.zip(f.leader_node) })
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(ReadError::NotLeader { leader: None })
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(ReadError::ShuttingDown),
            Err(RaftError::Fatal(f)) => Err(ReadError::Raft(f.to_string())),
        }
    }

    async fn wait_applied(&self, index: u64) -> Result<(), ReadError> {
        let mut applied = self.store.subscribe_applied();
        loop {
            if *applied.borrow_and_update() >= index {
                return Ok(());
            }
            if applied.changed().await.is_err() {
                return Err(ReadError::ShuttingDown);
            }
        }
    }
}

/// Whenever this node leads a term whose barrier is not yet applied, commits
/// and applies an empty entry of its own and then lets reads through (see
/// `ReadBarrier::ready_term`). Consul's leader runs the same kind of barrier
/// when it establishes leadership. Retries while it leads without a quorum.
pub async fn run_term_barriers(
    raft: Raft,
    me: NodeId,
    reads: ReadBarrier,
    stop: tokio_util::sync::CancellationToken,
) {
    // Server metrics: they change with leadership and term only, not with
    // every write (see `status::StatusWatch`).
    let mut metrics = raft.server_metrics();
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (m.current_leader == Some(me), m.vote.leader_id().term)
        };
        if leading && reads.ready_term() < term {
            let write = raft.client_write(crate::catalog::Proposal::timed(super::unix_ms_now(), Vec::new()));
            tokio::select! {
                _ = stop.cancelled() => return,
                r = tokio::time::timeout(std::time::Duration::from_secs(5), write) => match r {
                    // The entry's own term: if leadership moved meanwhile this
                    // marks an older term and reads wait for the next barrier.
                    Ok(Ok(resp)) => reads.set_ready_term(resp.log_id.leader_id.term),
                    Ok(Err(e)) => {
                        tracing::debug!(target: "agent.server.raft", error = %e, "leadership barrier failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(_) => tracing::warn!(target: "agent.server.raft", "leadership barrier not committed within 5s (no quorum?); reads wait for it"),
                },
            }
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = metrics.changed() => if r.is_err() { return },
        }
    }
}
