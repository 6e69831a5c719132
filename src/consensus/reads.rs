//! Linearizable reads, grouped. A read is linearizable once the leader has
//! confirmed (with a heartbeat round to a quorum) that it is still leader
//! after the read arrived, and has applied everything committed so far.
//! Reads that arrive while a confirmation is in flight wait for the next
//! one (the one in flight started before they arrived), and all of them
//! share it: one round trip serves any number of concurrent reads.

use super::typ::{NodeId, Raft, RaftNode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, RaftNode)> },
    #[error("raft is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Raft(String),
}

#[derive(Clone)]
pub struct ReadBarrier {
    tx: mpsc::UnboundedSender<oneshot::Sender<Result<u64, ReadError>>>,
    /// The term in which this node, as leader, has committed and applied an
    /// entry of its own (`Consensus::term_barrier`). Until that is true for
    /// the current term no read is served: a node restarted as leader of its
    /// old term (openraft restores a committed self-vote without an
    /// election) may not yet know how far its log was committed, and its
    /// read index alone would let it answer from a state machine that has
    /// not re-applied everything acknowledged before the crash.
    ready_term: Arc<AtomicU64>,
}

impl ReadBarrier {
    /// Starts the grouping loop; it ends when `stop` is cancelled.
    pub fn spawn(
        raft: Raft,
        tasks: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) -> ReadBarrier {
        let (tx, rx) = mpsc::unbounded_channel();
        let ready_term = Arc::new(AtomicU64::new(0));
        let ready = ready_term.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = drive(raft, rx, ready) => {}
                _ = stop.cancelled() => {}
            }
        });
        ReadBarrier { tx, ready_term }
    }

    /// Records that an entry proposed by this leader in `term` is applied.
    pub fn set_ready_term(&self, term: u64) {
        self.ready_term.fetch_max(term, Ordering::AcqRel);
    }

    pub fn ready_term(&self) -> u64 {
        self.ready_term.load(Ordering::Acquire)
    }

    /// Waits until a read of local state is linearizable; returns the
    /// index the state has reached.
    pub async fn confirm(&self) -> Result<u64, ReadError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(reply).map_err(|_| ReadError::ShuttingDown)?;
        rx.await.map_err(|_| ReadError::ShuttingDown)?
    }
}

async fn drive(
    raft: Raft,
    mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<u64, ReadError>>>,
    ready_term: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = match raft.ensure_linearizable().await {
            // Not yet safe in this term (see `ready_term`): callers retry.
            Ok(_) if ready_term.load(Ordering::Acquire) < raft.metrics().borrow().current_term => {
                Err(ReadError::NotLeader { leader: None })
            }
            Ok(log_id) => Ok(log_id.map(|l| l.index).unwrap_or(0)),
            Err(openraft::error::RaftError::APIError(
                openraft::error::CheckIsLeaderError::ForwardToLeader(f),
            )) => Err(ReadError::NotLeader { leader: f.leader_id.zip(f.leader_node) }),
            // A leader that cannot reach a quorum is no leader for reads.
            Err(openraft::error::RaftError::APIError(
                openraft::error::CheckIsLeaderError::QuorumNotEnough(_),
            )) => Err(ReadError::NotLeader { leader: None }),
            Err(openraft::error::RaftError::Fatal(openraft::error::Fatal::Stopped)) => {
                Err(ReadError::ShuttingDown)
            }
            Err(openraft::error::RaftError::Fatal(f)) => Err(ReadError::Raft(f.to_string())),
        };
        crate::metrics::incr("consul.raft.read_barrier.rounds", 1);
        crate::metrics::incr("consul.raft.read_barrier.reads", waiters.len() as u64);
        for w in waiters {
            let _ = w.send(result.clone());
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
    let mut metrics = raft.metrics();
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (m.current_leader == Some(me), m.current_term)
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
