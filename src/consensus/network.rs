//! Raft's network: Raft RPCs between servers over the server RPC port,
//! as opaque payloads inside the `rpc::method::Raft` call (so `rpc` never needs
//! openraft's types). Failing to connect is reported as unreachable, which
//! openraft backs off from; a timeout or broken connection is a network
//! error it retries.

use super::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, NodeId,
    RaftNode, TypeConfig, VoteRequest, VoteResponse,
};
use crate::rpc::client::{CallError, RpcClient};
use crate::rpc::message::RaftRpc;
use crate::rpc::{method, RequestContext};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each peer last answered an AppendEntries (heartbeats included):
/// the leader's view of its followers' "last contact", which autopilot
/// judges against `last_contact_threshold`.
#[derive(Clone, Default)]
pub struct PeerContacts(Arc<Mutex<HashMap<NodeId, Instant>>>);

impl PeerContacts {
    fn touch(&self, id: NodeId) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, Instant::now());
        }
    }

    /// Time since `id` last answered, if it ever has.
    pub fn since(&self, id: NodeId) -> Option<Duration> {
        self.0.lock().ok()?.get(&id).map(|t| t.elapsed())
    }
}

pub struct Network {
    client: RpcClient,
    contacts: PeerContacts,
}

impl Network {
    pub fn new(client: RpcClient, contacts: PeerContacts) -> Network {
        Network { client, contacts }
    }
}

pub struct PeerClient {
    client: RpcClient,
    target: NodeId,
    addr: Result<SocketAddr, String>,
    contacts: PeerContacts,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RaftNode) -> Self::Network {
        let addr =
            node.addr.parse::<SocketAddr>().map_err(|e| format!("bad raft address {:?}: {e}", node.addr));
        PeerClient { client: self.client.clone(), target, addr, contacts: self.contacts.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl PeerClient {
    async fn send<Req: Serialize, Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        kind: RaftRpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, RaftNode, E>> {
        let addr = match &self.addr {
            Ok(a) => *a,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&Msg(e.clone())))),
        };
        let payload = postcard::to_allocvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let call = method::Raft { kind, target: self.target, payload: payload.into() };
        let resp = self.client.call(addr, RequestContext::default(), &call, option.hard_ttl()).await;
        let bytes = match resp {
            Ok(bytes) => bytes,
            Err(e @ CallError::Connect { .. }) => return Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        let result: Result<Resp, E> =
            postcard::from_bytes(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        let resp = self.send(RaftRpc::AppendEntries, &rpc, &option).await;
        if resp.is_ok() {
            self.contacts.touch(self.target);
        }
        resp
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, RaftNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.send(RaftRpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        let resp = self.send(RaftRpc::Vote, &rpc, &option).await;
        // A granted vote is contact too: a leader fresh from its election
        // has heard from its quorum before its first append is answered.
        if resp.as_ref().is_ok_and(|r: &VoteResponse| r.vote_granted) {
            self.contacts.touch(self.target);
        }
        resp
    }
}

/// Why a Raft RPC that arrived over the wire was not served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The payload is not the request its kind names.
    #[error("malformed raft request: {0}")]
    Malformed(postcard::Error),
    #[error("encoding raft response: {0}")]
    Encode(postcard::Error),
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, ServeError> {
    postcard::to_allocvec(v).map_err(ServeError::Encode)
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, ServeError> {
    postcard::from_bytes(b).map_err(ServeError::Malformed)
}

/// Serves a Raft RPC that arrived over the wire (the receiving side of
/// `PeerClient::send`).
pub(super) async fn serve(
    raft: &super::typ::Raft,
    kind: RaftRpc,
    payload: &[u8],
) -> Result<Vec<u8>, ServeError> {
    match kind {
        RaftRpc::AppendEntries => enc(&raft.append_entries(dec::<AppendEntriesRequest>(payload)?).await),
        RaftRpc::Vote => enc(&raft.vote(dec::<VoteRequest>(payload)?).await),
        RaftRpc::InstallSnapshot => {
            enc(&raft.install_snapshot(dec::<InstallSnapshotRequest>(payload)?).await)
        }
    }
}

/// Decodes `payload` as the request `kind` names, as `serve` would, without
/// serving it (for the fuzzing harness).
pub fn check_request(kind: RaftRpc, payload: &[u8]) -> Result<(), ServeError> {
    match kind {
        RaftRpc::AppendEntries => dec::<AppendEntriesRequest>(payload).map(|_| ()),
        RaftRpc::Vote => dec::<VoteRequest>(payload).map(|_| ()),
        RaftRpc::InstallSnapshot => dec::<InstallSnapshotRequest>(payload).map(|_| ()),
    }
}
