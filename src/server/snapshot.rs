//! Snapshot save and restore on the server side. A save encodes the state
//! this server has applied (after the usual consistency check, so without
//! `?stale` it includes every write acknowledged before the request); a
//! restore goes through Raft as one command, so every server replaces its
//! state at the same log index.

use super::Server;
use crate::catalog::{Command, CommandResult, State};
use crate::rpc::{QueryMeta, QueryOptions, RpcError};
use bytes::Bytes;

impl Server {
    pub async fn snapshot_save(&self, opts: &QueryOptions) -> Result<(QueryMeta, u64, u64, Bytes), RpcError> {
        let mut meta = self.check_consistency(opts).await?;
        let (index, term, state) = self.consensus.store.read_with_applied(|s, applied| {
            let (index, term) = applied.map(|l| (l.index, l.leader_id.term)).unwrap_or((0, 0));
            (index, term, postcard::to_allocvec(s))
        });
        let state = state.map_err(|e| RpcError::Internal(format!("encoding state: {e}")))?;
        meta.index = index;
        Ok((meta, index, term, Bytes::from(state)))
    }

    pub async fn snapshot_restore(&self, state: Bytes) -> Result<(), RpcError> {
        // Decode here first so a bad snapshot is refused before it reaches the log.
        State::decode(&state)
            .map_err(|e| RpcError::BadRequest(format!("snapshot state does not decode: {e}")))?;
        match self.apply(Command::Restore { state }).await? {
            CommandResult::Unit => {
                tracing::info!(target: "agent.server.fsm", "restored state from a snapshot");
                Ok(())
            }
            CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }
}
