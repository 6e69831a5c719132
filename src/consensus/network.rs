//! Raft's network: Raft RPCs between servers over the server RPC port,
//! as opaque payloads inside the `rpc::method::Raft` call (so `rpc` never needs
//! openraft's types). Failing to connect is reported as unreachable, which
//! openraft backs off from; a timeout or broken connection is a network
//! error it retries.

use super::commit_notice::Ride;
use super::lease::LeaseTracker;
use super::log_store::LogStore;
use super::speculate::Speculator;
use super::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, NodeId,
    RaftNode, TypeConfig, Vote, VoteRequest, VoteResponse,
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
    lease: Arc<LeaseTracker>,
    speculator: Arc<Speculator>,
}

impl Network {
    pub fn new(
        client: RpcClient,
        contacts: PeerContacts,
        lease: Arc<LeaseTracker>,
        speculator: Arc<Speculator>,
    ) -> Network {
        Network { client, contacts, lease, speculator }
    }
}

#[derive(Clone)]
pub struct PeerClient {
    client: RpcClient,
    target: NodeId,
    addr: Result<SocketAddr, String>,
    contacts: PeerContacts,
    lease: Arc<LeaseTracker>,
    speculator: Arc<Speculator>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RaftNode) -> Self::Network {
        let addr =
            node.addr.parse::<SocketAddr>().map_err(|e| format!("bad raft address {:?}: {e}", node.addr));
        PeerClient {
            client: self.client.clone(),
            target,
            addr,
            contacts: self.contacts.clone(),
            lease: self.lease.clone(),
            speculator: self.speculator.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl PeerClient {
    /// The voter accepted `vote` in a request sent at `sent_at`.
    fn accepted(&self, vote: Vote, sent_at: Instant) {
        self.contacts.touch(self.target);
        self.lease.accepted(self.target, vote, sent_at);
    }

    async fn send_append(
        &self,
        rpc: AppendEntriesRequest,
        timeout: Duration,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        let (vote, commit) = (rpc.vote, commit_index(&rpc));
        crate::metrics::incr(
            if rpc.entries.is_empty() {
                "consul.raft.append.sent_empty"
            } else {
                "consul.raft.append.sent_entries"
            },
            1,
        );
        let sent_at = Instant::now();
        let resp = self.send(RaftRpc::AppendEntries, &rpc, timeout).await;
        match &resp {
            Ok(AppendEntriesResponse::HigherVote(_)) => self.lease.higher_vote_seen(),
            Ok(r) => {
                self.contacts.touch(self.target);
                if vote.is_committed() {
                    self.lease.accepted(self.target, vote, sent_at);
                }
                if matches!(r, AppendEntriesResponse::Success) {
                    self.speculator.notices().told(self.target, commit);
                }
            }
            Err(_) => {}
        }
        resp
    }

    /// The voter follows this leader but has not been told `rpc`'s commit
    /// index (an early request stored `rpc`'s entries, or stood in for a
    /// commit notice, with an older one): tells it with a later early
    /// request if one comes before `deadline`, else with `rpc` itself
    /// stripped of its entries (it holds them).
    fn tell_commit_later(&self, rpc: AppendEntriesRequest, deadline: Instant) {
        let this = self.clone();
        let commit = commit_index(&rpc);
        tokio::spawn(async move {
            if this.speculator.notices().carried(this.target, commit, deadline).await {
                crate::metrics::incr("consul.raft.commit_notice.carried", 1);
                return;
            }
            crate::metrics::incr("consul.raft.commit_notice.sent", 1);
            let prev_log_id = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id);
            let notice = AppendEntriesRequest {
                vote: rpc.vote,
                prev_log_id,
                entries: Vec::new(),
                leader_commit: rpc.leader_commit,
            };
            // An answer changes nothing here: a refusal reaches openraft
            // with its next request.
            let _ = this.send_append(notice, this.speculator.timeout()).await;
        });
    }

    async fn send<Req: Serialize, Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        kind: RaftRpc,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, RaftNode, E>> {
        let addr = match &self.addr {
            Ok(a) => *a,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&Msg(e.clone())))),
        };
        let payload = postcard::to_allocvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let call = method::Raft { kind, target: self.target, payload: payload.into() };
        let resp = self.client.call(addr, RequestContext::default(), &call, timeout).await;
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
        // Before sending: a follower may apply up to this commit index as
        // soon as it arrives, so reads on this leader must start from it.
        if let Some(c) = rpc.leader_commit {
            self.lease.commit_sent(c.index);
        }
        let vote = rpc.vote;
        let commit = commit_index(&rpc);
        // The same entries already went out ahead of the leader's sync
        // (`speculate`): their answer is this request's answer.
        let early = self.speculator.take_matching(self.target, &vote, rpc.prev_log_id, &rpc.entries);
        if let Some(early) = early {
            let told = early.commit();
            if let Some(sent_at) = early.stored(option.soft_ttl()).await {
                self.accepted(vote, sent_at);
                // openraft must learn at once that the voter holds the
                // entries (the leader may commit them); a newer commit index
                // than the early request carried still has to reach it.
                if commit > told {
                    self.tell_commit_later(rpc, self.speculator.notices().deadline());
                }
                return Ok(AppendEntriesResponse::Success);
            }
        }
        // Only a commit index to tell (and a follower to keep following):
        // the next early request may carry it (`commit_notice`).
        if rpc.entries.is_empty() && vote.is_committed() {
            let notices = self.speculator.notices();
            let deadline = notices.deadline();
            match notices.stand_in(self.target, commit, deadline).await {
                Ride::Carried(sent_at) => {
                    crate::metrics::incr("consul.raft.commit_notice.carried", 1);
                    self.accepted(vote, sent_at);
                    return Ok(AppendEntriesResponse::Success);
                }
                Ride::Behind(sent_at) => {
                    self.accepted(vote, sent_at);
                    self.tell_commit_later(rpc, deadline);
                    return Ok(AppendEntriesResponse::Success);
                }
                Ride::Send => {}
            }
        }
        self.send_append(rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, RaftNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.send(RaftRpc::InstallSnapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        let resp = self.send(RaftRpc::Vote, &rpc, option.hard_ttl()).await;
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

/// The commit index a request tells (0 for none).
fn commit_index(rpc: &AppendEntriesRequest) -> u64 {
    rpc.leader_commit.map_or(0, |c| c.index)
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, ServeError> {
    postcard::to_allocvec(v).map_err(ServeError::Encode)
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, ServeError> {
    postcard::from_bytes(b).map_err(ServeError::Malformed)
}

/// Asks `target` at `addr` whether it still follows `vote` (the sending
/// leader's): the quorum round of `reads`. Any failure is "no".
pub(super) async fn leader_check(
    client: &RpcClient,
    target: NodeId,
    addr: &str,
    vote: &Vote,
    timeout: Duration,
) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else { return false };
    let Ok(payload) = postcard::to_allocvec(vote) else { return false };
    let call = method::Raft { kind: RaftRpc::LeaderCheck, target, payload: payload.into() };
    match client.call(addr, RequestContext::default(), &call, timeout).await {
        Ok(bytes) => postcard::from_bytes::<bool>(&bytes).unwrap_or(false),
        Err(_) => false,
    }
}

/// Serves a Raft RPC that arrived over the wire (the receiving side of
/// `PeerClient::send` and `leader_check`). `votes_held` refuses every vote
/// (see `Consensus::start`: a restarted server keeps the lease it may have
/// given before the restart).
pub(super) async fn serve(
    raft: &super::typ::Raft,
    log: &LogStore,
    votes_held: bool,
    kind: RaftRpc,
    payload: &[u8],
) -> Result<Vec<u8>, ServeError> {
    match kind {
        RaftRpc::AppendEntries => enc(&raft.append_entries(dec::<AppendEntriesRequest>(payload)?).await),
        RaftRpc::Vote => {
            let req = dec::<VoteRequest>(payload)?;
            if votes_held {
                let current = log.vote().unwrap_or_default();
                tracing::debug!(target: "agent.server.raft", candidate = %req.vote, "refusing a vote: restarted within the lease this server may have given before");
                return enc(&Ok::<_, RaftError<NodeId>>(VoteResponse::new(
                    current,
                    log.last_log_id(),
                    false,
                )));
            }
            enc(&raft.vote(req).await)
        }
        RaftRpc::InstallSnapshot => {
            enc(&raft.install_snapshot(dec::<InstallSnapshotRequest>(payload)?).await)
        }
        // From the log store, never through openraft's core: the stored
        // vote changes before any vote for another candidate is granted.
        RaftRpc::LeaderCheck => {
            let vote = dec::<Vote>(payload)?;
            enc(&log.vote().is_some_and(|mine| mine.leader_id() == vote.leader_id()))
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
        RaftRpc::LeaderCheck => dec::<Vote>(payload).map(|_| ()),
    }
}
