//! Linearizable reads, grouped. A read is linearizable once the leader has
//! confirmed (with a heartbeat round to a quorum) that it is still leader
//! after the read arrived, and has applied everything committed so far.
//! Reads that arrive while a confirmation is in flight wait for the next
//! one (the one in flight started before they arrived), and all of them
//! share it: one round trip serves any number of concurrent reads.

use super::typ::{NodeId, Raft, RaftNode};
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
}

impl ReadBarrier {
    /// Starts the grouping loop; it ends when `stop` is cancelled.
    pub fn spawn(raft: Raft, tasks: &tokio_util::task::TaskTracker, stop: tokio_util::sync::CancellationToken) -> ReadBarrier {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn(async move {
            tokio::select! {
                _ = drive(raft, rx) => {}
                _ = stop.cancelled() => {}
            }
        });
        ReadBarrier { tx }
    }

    /// Waits until a read of local state is linearizable; returns the
    /// index the state has reached.
    pub async fn confirm(&self) -> Result<u64, ReadError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(reply).map_err(|_| ReadError::ShuttingDown)?;
        rx.await.map_err(|_| ReadError::ShuttingDown)?
    }
}

async fn drive(raft: Raft, mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<u64, ReadError>>>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = match raft.ensure_linearizable().await {
            Ok(log_id) => Ok(log_id.map(|l| l.index).unwrap_or(0)),
            Err(openraft::error::RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ReadError::NotLeader { leader: f.leader_id.zip(f.leader_node) })
            }
            // A leader that cannot reach a quorum is no leader for reads.
            Err(openraft::error::RaftError::APIError(openraft::error::CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(ReadError::NotLeader { leader: None })
            }
            Err(openraft::error::RaftError::Fatal(openraft::error::Fatal::Stopped)) => Err(ReadError::ShuttingDown),
            Err(openraft::error::RaftError::Fatal(f)) => Err(ReadError::Raft(f.to_string())),
        };
        crate::metrics::incr("consul.raft.read_barrier.rounds", 1);
        crate::metrics::incr("consul.raft.read_barrier.reads", waiters.len() as u64);
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
