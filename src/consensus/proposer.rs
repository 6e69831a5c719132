//! Write batching. openraft 0.9 syncs the log once per `client_write`, so
//! one write per entry would cap throughput at one fsync per write. The
//! proposer gathers every command that arrives while earlier batches are in
//! flight into one `Proposal` (one log entry, one fsync), and hands each
//! caller its own result.

use super::typ::{ClientWriteError, NodeId, Raft, RaftError, RaftNode};
use crate::catalog::{Command, CommandResult, Proposal};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most commands in one proposal.
const MAX_BATCH: usize = 1024;
/// Most bytes (roughly) in one proposal.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Proposals in flight at once: while one waits for replication, the next
/// can already be appended.
const MAX_IN_FLIGHT: usize = 2;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, RaftNode)> },
    #[error("raft is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Raft(String),
}

struct Pending {
    cmd: Command,
    reply: oneshot::Sender<Result<CommandResult, ProposeError>>,
}

/// Submits commands to Raft in batches. Cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
    /// The batching loop's end (see `crate::reply`).
    stop: tokio_util::sync::CancellationToken,
}

impl Proposer {
    /// Starts the batching loop; it ends when `stop` is cancelled.
    pub fn spawn(
        raft: Raft,
        tasks: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) -> Proposer {
        let (tx, rx) = mpsc::channel(64 * 1024);
        let ended = stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = drive(raft, rx) => {}
                _ = ended.cancelled() => {}
            }
        });
        Proposer { tx, stop }
    }

    /// Proposes one command and waits until it is committed and applied.
    pub async fn propose(&self, cmd: Command) -> Result<CommandResult, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Pending { cmd, reply }).await.map_err(|_| ProposeError::ShuttingDown)?;
        crate::reply::reply_or_stop(rx, &self.stop, crate::reply::STOP_GRACE)
            .await
            .ok_or(ProposeError::ShuttingDown)?
    }
}

async fn drive(raft: Raft, mut rx: mpsc::Receiver<Pending>) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // Wait for room first, so commands pile up into the next batch
        // while earlier ones are in flight.
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut bytes = first.cmd.approx_size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.cmd.approx_size();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (cmds, replies): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
            let n = cmds.len();
            let outcome = raft.client_write(Proposal::timed(super::unix_ms_now(), cmds)).await;
            drop(permit);
            match outcome {
                Ok(resp) => {
                    let mut results = resp.data.into_iter();
                    for reply in replies {
                        let r = results.next().ok_or_else(|| ProposeError::Raft("missing result".into()));
                        let _ = reply.send(r);
                    }
                }
                Err(e) => {
                    let err = map_error(e);
                    tracing::debug!(target: "agent.server.raft", commands = n, error = %err, "proposal failed");
                    for reply in replies {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

fn map_error(e: RaftError<ClientWriteError>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            ProposeError::NotLeader { leader: f.leader_id.zip(f.leader_node) }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ProposeError::Raft(e.to_string()),
        RaftError::Fatal(openraft::error::Fatal::Stopped) => ProposeError::ShuttingDown,
        RaftError::Fatal(f) => ProposeError::Raft(f.to_string()),
    }
}
