//! Servers leaving the Raft configuration: a server's own graceful leave
//! (Consul's "server starting leave") and the removal of a peer by the
//! leader (`consul operator raft remove-peer`, and what a leaving server
//! asks of the leader).
//!
//! A leaving server first tells gossip it is leaving (the agent does that
//! before calling `leave_raft`), so the leader's autopilot stops counting
//! it as a server to add back; then it asks the leader to remove it and
//! waits until the *leader's* configuration no longer holds it. Its own
//! copy of the configuration cannot tell: a removed server may never be
//! sent the entry that removes it.

use super::Server;
use crate::consensus::typ::raft_id;
use crate::rpc::{RequestContext, RpcError};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// else by asking the leader until the leader's configuration no
    /// longer holds it.
    pub async fn leave_raft(&self, timeout: Duration) -> Result<Left, String> {
        let me = self.consensus.node_id;
        let mine = self.consensus.status().membership;
        if !mine.contains(me) {
            return Ok(Left::NotAMember);
        }
        if mine.voters.len() <= 1 && mine.is_voter(me) {
            return Ok(Left::Alone);
        }
        let deadline = Instant::now() + timeout;
        let mut last_error;
        loop {
            if self.consensus.is_leader() {
                match self.remove_peer(me).await {
                    Ok(()) => return Ok(Left::Removed),
                    Err(e) => last_error = e,
                }
            } else {
                match self.still_a_member().await {
                    Ok(false) => return Ok(Left::Removed),
                    // Asked (or not) this pass, confirmed on the next.
                    Ok(true) => {
                        last_error = match self.ask_leader_to_remove_me().await {
                            Ok(()) => "the leader still lists this server".into(),
                            Err(e) => e.to_string(),
                        }
                    }
                    Err(e) => last_error = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(last_error);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the leader's configuration still holds this server.
    async fn still_a_member(&self) -> Result<bool, RpcError> {
        let c = self.raft_configuration(&RequestContext::default()).await?;
        let me = &self.consensus.node.node_id;
        Ok(c.servers.iter().any(|s| s.id.eq_ignore_ascii_case(me)))
    }

    async fn ask_leader_to_remove_me(&self) -> Result<(), RpcError> {
        let id = Some(self.consensus.node.node_id.clone());
        match self.operator_remove_peer(&RequestContext::default(), id, None).await {
            // Gone between our look and the leader's (autopilot saw us leave).
            Err(RpcError::BadRequest(e)) if e.contains("was not found") => Ok(()),
            other => other,
        }
    }

    /// Removes a server from the Raft configuration (leader only), as one
    /// committed change, serialised with autopilot's rounds.
    pub async fn remove_peer(&self, id: u64) -> Result<(), String> {
        if !self.consensus.is_leader() {
            return Err("No cluster leader".into());
        }
        let _changing = self.membership_changes.lock().await;
        let m = self.consensus.status().membership;
        let name = m.nodes.get(&id).map(|n| n.name.clone()).unwrap_or_default();
        if m.is_voter(id) {
            tracing::info!(target: "agent.server", server = %name, "removing server from the raft configuration");
            let remaining: BTreeSet<u64> = m.voters.into_iter().filter(|v| *v != id).collect();
            self.consensus.set_voters(remaining).await.map_err(|e| e.to_string())?;
        } else if m.contains(id) {
            tracing::info!(target: "agent.server", server = %name, "removing non-voter from the raft configuration");
            self.consensus.remove_nonvoters([id].into_iter().collect()).await.map_err(|e| e.to_string())?;
        } else {
            return Err(format!("id {id:016x} was not found in the Raft configuration"));
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
