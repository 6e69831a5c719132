//! `?dc=` routing between datacenters: a server relays a request for
//! another datacenter to a server of that datacenter it sees alive in the
//! WAN pool, as a client agent would talk to its own servers. The remote
//! server answers as for any local caller (forwarding to its leader, or
//! blocking, as the request asks), so the relay is one hop and stateless.
//!
//! Owns: choosing the remote server and the relay call. Knows nothing of
//! HTTP or of what the inner request means.

use super::Server;
use crate::rpc::client::CallError;
use crate::rpc::{RpcError, WireCall, WireReply};
use rand::seq::SliceRandom;
use std::collections::BTreeSet;
use std::time::Duration;

/// Longer than the longest blocking query the inner request may carry.
const RELAY_TIMEOUT: Duration = Duration::from_secs(11 * 60);

impl Server {
    /// Gives the server its gossip pools (the WAN one exists unless
    /// `ports.serf_wan` is disabled).
    pub fn attach_gossip(&self, pools: crate::gossip::Pools) {
        let _ = self.pools.set(pools);
    }

    pub(super) fn wan(&self) -> Option<&crate::gossip::Gossip> {
        self.pools.get().and_then(|p| p.wan.as_ref())
    }

    /// Serves `EventFire`: a user event another datacenter's agent asked
    /// to broadcast here.
    pub(crate) async fn fire_relayed_event(&self, serf_name: &str, body: &[u8]) -> Result<(), RpcError> {
        let Some(pools) = self.pools.get() else {
            return Err(RpcError::Internal("gossip is not running".into()));
        };
        pools
            .lan
            .user_event(serf_name, body, false)
            .await
            .map_err(|e| RpcError::Internal(format!("failed to broadcast user event: {e}")))
    }

    /// This datacenter first, then every other one seen in the WAN pool
    /// with at least one server not gone, by name.
    pub fn datacenters(&self) -> Vec<String> {
        let local = self.settings.datacenter.clone();
        let mut others = BTreeSet::new();
        if let Some(wan) = self.wan() {
            for m in wan.members() {
                if let Some(dc) = m.tags.get("dc") {
                    if *dc != local && m.tags.get("role").map(String::as_str) == Some("consul") {
                        others.insert(dc.clone());
                    }
                }
            }
        }
        let all = std::iter::once(local).chain(others).collect();
        self.datacenters_by_distance(all)
    }

    /// Relays a call for datacenter `dc` (not this one) to one of its
    /// servers, without decoding it.
    pub(crate) async fn relay_to_dc(&self, dc: &str, mut call: WireCall) -> WireReply {
        // A relayed call is never relayed again, so two servers with
        // different views cannot bounce it between them.
        if call.ctx.relayed {
            return Err(RpcError::BadRequest("a forwarded request cannot be forwarded again".into()));
        }
        call.ctx.relayed = true;
        let Some(wan) = self.wan() else { return Err(RpcError::NoPathToDatacenter) };
        let mut servers: Vec<_> = super::members::server_members(&wan.members(), dc)
            .into_iter()
            .filter(|s| s.alive)
            .map(|s| s.rpc_addr)
            .collect();
        if servers.is_empty() {
            return Err(RpcError::NoPathToDatacenter);
        }
        servers.shuffle(&mut rand::rng());
        let mut last = String::new();
        for addr in servers {
            match self.rpc.call_wire(addr, &call, RELAY_TIMEOUT).await {
                Ok(reply) => return reply,
                Err(e @ (CallError::Connect { .. } | CallError::Closed(_))) => {
                    tracing::debug!(target: "agent.server.rpc", datacenter = %dc, server = %addr, error = %e, "remote server unreachable; trying another");
                    last = e.to_string();
                }
                Err(e) => {
                    return Err(RpcError::Internal(format!("rpc error forwarding to datacenter {dc}: {e}")))
                }
            }
        }
        Err(RpcError::Internal(format!("rpc error: no server of datacenter {dc} could be reached: {last}")))
    }
}
