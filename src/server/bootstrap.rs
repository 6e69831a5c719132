//! `bootstrap_expect`: once the expected number of servers of this
//! datacenter are alive in the gossip pool and agree on that number, form
//! one Raft configuration of exactly those servers — unless any of them
//! already belongs to a cluster, in which case this server waits to be
//! added instead (so a server whose data dir was wiped never starts a
//! second cluster beside the old one).

use super::Server;
use crate::consensus::membership::MembershipError;
use crate::consensus::typ::{raft_id, RaftNode};
use crate::rpc::method;
use crate::rpc::RequestContext;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A server as gossip shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMember {
    pub name: String,
    /// The node UUID (the `id` tag).
    pub id: String,
    /// Server RPC address (member address + `port` tag).
    pub rpc_addr: SocketAddr,
    pub alive: bool,
    /// The `expect` tag, if any.
    pub expect: Option<u32>,
    /// Whether the member left gracefully (as opposed to failed).
    pub left: bool,
    /// Whether it has announced that it is leaving (still `alive` until it
    /// has gone): autopilot must not add it back while it goes.
    pub leaving: bool,
    /// The Consul version it runs (its `build` tag up to the first ':').
    pub version: String,
}

impl ServerMember {
    pub fn raft_node(&self) -> RaftNode {
        RaftNode { addr: self.rpc_addr.to_string(), name: self.name.clone(), node_id: self.id.clone() }
    }

    pub fn raft_id(&self) -> Option<u64> {
        uuid::Uuid::parse_str(&self.id).ok().map(|u| raft_id(&u))
    }
}

/// What a bootstrap attempt decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// This server already has (or has joined) a Raft configuration.
    AlreadyInCluster,
    /// Not enough servers yet.
    Waiting { have: usize, want: u32 },
    /// Servers disagree on the expected count; never bootstraps.
    Conflict(String),
    /// Another server already has peers: wait to be added to that cluster.
    ExistingCluster(String),
    /// Formed the cluster with these servers.
    Bootstrapped(Vec<String>),
}

impl Server {
    /// One bootstrap attempt, given the alive servers of this datacenter.
    pub async fn maybe_bootstrap(&self, expect: u32, servers: &[ServerMember]) -> Result<Bootstrap, String> {
        if self.consensus.is_initialized().await.map_err(|e| e.to_string())? {
            return Ok(Bootstrap::AlreadyInCluster);
        }
        let alive: Vec<&ServerMember> = servers.iter().filter(|s| s.alive).collect();
        for s in &alive {
            if let Some(e) = s.expect {
                if e != expect {
                    return Ok(Bootstrap::Conflict(format!(
                        "Member {} has a conflicting expect value ({e} != {expect}). All nodes should expect the same number.",
                        s.name
                    )));
                }
            }
        }
        let voters: Vec<&&ServerMember> = alive.iter().filter(|s| s.expect.is_some()).collect();
        if voters.len() < expect as usize {
            return Ok(Bootstrap::Waiting { have: voters.len(), want: expect });
        }
        // Ask every server whether it already has Raft peers.
        for s in &alive {
            if s.id == self.consensus.node.node_id {
                continue;
            }
            let ctx = RequestContext::default();
            match self.rpc.call(s.rpc_addr, ctx, &method::StatusPeers {}, Duration::from_secs(5)).await {
                Ok(peers) if !peers.is_empty() => {
                    return Ok(Bootstrap::ExistingCluster(format!(
                        "Existing Raft peers reported by server {}, disabling bootstrap mode",
                        s.name
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("failed to confirm peers of server {}: {e}", s.name)),
            }
        }
        let mut members = BTreeMap::new();
        let mut names = Vec::new();
        // Like Consul, the configuration is every server that expects the
        // same count (normally exactly `expect` of them).
        for s in &voters {
            let Some(id) = s.raft_id() else {
                return Err(format!("server {} has an invalid id tag {:?}", s.name, s.id));
            };
            members.insert(id, s.raft_node());
            names.push(s.name.clone());
        }
        // Every server computes the same set and may initialize with it:
        // initializing twice with the same configuration is harmless.
        match self.consensus.initialize(members).await {
            Ok(()) => Ok(Bootstrap::Bootstrapped(names)),
            Err(MembershipError::AlreadyInitialized(_)) => Ok(Bootstrap::AlreadyInCluster),
            Err(e) => Err(format!("bootstrapping raft: {e}")),
        }
    }
}
