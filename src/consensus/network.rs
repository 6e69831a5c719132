//! Raft's network: how this server reaches the other servers.
//!
//! A single-server cluster never calls it. Multi-server Raft over the
//! server RPC port arrives with the servers work; until then every peer is
//! reported unreachable, which openraft treats as a retryable failure.

use super::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, NodeId, RaftNode,
    TypeConfig, VoteRequest, VoteResponse,
};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};

pub struct Network;

pub struct PeerClient {
    target: NodeId,
}

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, RaftNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
        "raft peer {target:016x}: multi-server raft transport is not available yet"
    ))))
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &RaftNode) -> Self::Network {
        PeerClient { target }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        Err(unreachable(self.target))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, RaftNode, RaftError<NodeId, InstallSnapshotError>>> {
        Err(unreachable(self.target))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest,
        _option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        Err(unreachable(self.target))
    }
}
