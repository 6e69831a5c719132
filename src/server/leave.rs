//! Servers leaving the Raft configuration: a server's own graceful leave
//! (Consul's "server starting leave") and the removal of a peer by the
//! leader (`consul operator raft remove-peer`, and what a leaving server
//! asks of the leader).
//!
//! A leaving server first tells gossip it is leaving (the agent does that
//! before calling `leave_raft`), so the leader's autopilot stops counting
//! it as a server to add back; then it asks the leader to remove it, and
//! the leader answers once its configuration no longer holds it (removed
//! now, or already by autopilot when gossip showed it left). Its own copy
//! of the configuration cannot tell: a removed server may never be sent
//! the entry that removes it.

use super::Server;
use crate::consensus::membership::MembershipError;
use crate::consensus::typ::raft_id;
use crate::rpc::method;
use crate::rpc::{RequestContext, RpcError};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Why a server was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("No cluster leader")]
    NotLeader,
    #[error("id {0:016x} was not found in the Raft configuration")]
    NotFound(u64),
    #[error(transparent)]
    Raft(#[from] MembershipError),
}

/// How a leave ended, when it ended well.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// This server was the only voter: there is no one to leave.
    Alone,
    /// It is not in the configuration (never added, or already removed).
    NotAMember,
    /// The leader removed it (or it removed itself as leader).
    Removed,
}

impl Server {
    /// Marks this server as leaving: its autopilot stops changing the
    /// configuration (the new leader's will take over).
    pub fn start_leaving(&self) {
        self.leaving.store(true, Ordering::Relaxed);
    }

    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Relaxed)
    }

    /// Takes this server out of the Raft configuration: directly when it
    /// leads (Raft's leader then steps down once the change is committed),
    /// else by asking the leader (`RaftLeave`, which answers once the
    /// leader's configuration no longer holds it). The request goes to the
    /// leader if this server knows one, else to each other server in turn,
    /// which passes it on: a server already removed by the leader (gossip
    /// told it that this one is leaving) hears from the leader no more, and
    /// soon knows no leader.
    pub async fn leave_raft(&self, timeout: Duration) -> Result<Left, String> {
        let me = self.consensus.node_id;
        let mine = self.consensus.status().membership;
        if !mine.contains(me) {
            return Ok(Left::NotAMember);
        }
        if mine.voters.len() <= 1 && mine.is_voter(me) {
            return Ok(Left::Alone);
        }
        let ask = method::RaftLeave { id: self.consensus.node.node_id.clone() };
        let deadline = Instant::now() + timeout;
        loop {
            if self.consensus.is_leader() {
                match self.leave_as_leader(&ask.id).await {
                    Ok(()) => return Ok(Left::Removed),
                    Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
                    Err(_) => {}
                }
            }
            // With ACLs on, servers take this only from a server.
            let secret = self.consensus.store.read(|s| s.acl.server_secret.clone());
            let ctx = RequestContext { token: Some(secret).filter(|s| !s.is_empty()), ..Default::default() };
            let leader = self.consensus.leader().filter(|(id, _)| *id != me).map(|(_, n)| n.addr);
            let others = mine.nodes.iter().filter(|(id, _)| **id != me).map(|(_, n)| n.addr.clone());
            let mut last_error = "no other server to ask".to_string();
            for addr in leader.into_iter().chain(others) {
                let Ok(addr) = addr.parse() else { continue };
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(500));
                match self.rpc.call(addr, ctx.clone(), &ask, left.min(Duration::from_secs(3))).await {
                    Ok(()) => return Ok(Left::Removed),
                    Err(e) => last_error = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(last_error);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `RaftLeave` on any server: passed on to the leader, or done here
    /// when this server leads.
    pub(crate) async fn leave_via_leader(&self, ctx: &RequestContext, id: &str) -> Result<(), RpcError> {
        match self.forward_to_leader(ctx, &method::RaftLeave { id: id.to_string() }).await? {
            Some(()) => Ok(()),
            None => self.leave_as_leader(id).await,
        }
    }

    /// The leader's half of `RaftLeave`: removes the server with node ID
    /// `id` unless it is already out.
    pub(crate) async fn leave_as_leader(&self, id: &str) -> Result<(), RpcError> {
        let rid = match uuid::Uuid::parse_str(id) {
            Ok(u) => raft_id(&u),
            Err(e) => return Err(RpcError::BadRequest(format!("invalid node ID {id:?}: {e}"))),
        };
        match self.remove_peer(rid).await {
            Ok(()) | Err(RemoveError::NotFound(_)) => Ok(()),
            Err(RemoveError::NotLeader) => Err(RpcError::NoLeader),
            Err(e) => Err(RpcError::Internal(e.to_string())),
        }
    }

    /// Removes a server from the Raft configuration (leader only), as one
    /// committed change, serialised with autopilot's rounds.
    pub async fn remove_peer(&self, id: u64) -> Result<(), RemoveError> {
        if !self.consensus.is_leader() {
            return Err(RemoveError::NotLeader);
        }
        let _changing = self.membership_changes.lock().await;
        let m = self.consensus.status().membership;
        let name = m.nodes.get(&id).map(|n| n.name.clone()).unwrap_or_default();
        if m.is_voter(id) {
            tracing::info!(target: "agent.server", server = %name, "removing server from the raft configuration");
            let remaining: BTreeSet<u64> = m.voters.into_iter().filter(|v| *v != id).collect();
            self.consensus.set_voters(remaining).await?;
        } else if m.contains(id) {
            tracing::info!(target: "agent.server", server = %name, "removing non-voter from the raft configuration");
            self.consensus.remove_nonvoters([id].into_iter().collect()).await?;
        } else {
            return Err(RemoveError::NotFound(id));
        }
        Ok(())
    }

    /// Resolves a peer given by Consul's `-id` (node UUID) or `-address`.
    pub fn find_peer(&self, id: Option<&str>, address: Option<&str>) -> Result<u64, String> {
        let membership = self.consensus.status().membership;
        let wanted = id.and_then(|i| uuid::Uuid::parse_str(i).ok()).map(|u| raft_id(&u));
        for (rid, node) in &membership.nodes {
            if id.is_some_and(|i| i.eq_ignore_ascii_case(&node.node_id))
                || wanted == Some(*rid)
                || address.is_some_and(|a| a == node.addr)
            {
                return Ok(*rid);
            }
        }
        match (id, address) {
            (Some(i), _) => Err(format!("id {i:?} was not found in the Raft configuration")),
            (_, Some(a)) => Err(format!("address {a:?} was not found in the Raft configuration")),
            _ => {
                Err("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
                    .into())
            }
        }
    }
}
