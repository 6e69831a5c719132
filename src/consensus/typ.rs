//! openraft's type configuration and short aliases, so the rest of the code
//! never spells out openraft generics.

use crate::catalog::{CommandResult, Proposal};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What Raft knows about a server: where its server-RPC port is, and its
/// Consul identity (for `/v1/operator/raft/configuration`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftNode {
    /// `ip:port` of the server RPC listener.
    pub addr: String,
    /// The Consul node name.
    pub name: String,
    /// The Consul node ID (a UUID string).
    pub node_id: String,
}

impl std::fmt::Display for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

openraft::declare_raft_types!(
    /// consul-rs's Raft types.
    pub TypeConfig:
        D = Proposal,
        R = Vec<CommandResult>,
        NodeId = u64,
        Node = RaftNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, RaftNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, RaftNode>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type LogState = openraft::storage::LogState<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, RaftNode>;
pub type RaftServerMetrics = openraft::metrics::RaftServerMetrics<NodeId, RaftNode>;
pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, RaftNode>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, RaftNode>;
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;

/// Derives the Raft node id from the Consul node ID (a UUID): its first 8
/// bytes, big-endian. openraft needs a `Copy` id; the mapping is stable, so
/// the same node always has the same Raft id, and two random UUIDs collide
/// with negligible probability (2^-64 per pair).
pub fn raft_id(node_uuid: &uuid::Uuid) -> NodeId {
    let b = node_uuid.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_id_is_stable() {
        let u = uuid::Uuid::parse_str("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0").unwrap();
        assert_eq!(raft_id(&u), 0x0b1c2d3e4f506172);
    }
}
