//! Autopilot's health view (`/v1/operator/autopilot/health`): every server
//! in the Raft configuration as the leader judges it, by the same rule
//! autopilot promotes with (`autopilot::healthy`: alive in gossip, answered
//! within `last_contact_threshold`, no more than `max_trailing_logs`
//! behind).

use super::autopilot::{healthy, View};
use super::bootstrap::ServerMember;
use super::members::server_members;
use super::Server;
use crate::config::runtime::Autopilot as AutopilotSettings;
use crate::rpc::operator::{AutopilotHealth, ServerHealth};
use crate::rpc::RpcError;
use std::time::Duration;

impl Server {
    /// The health view the leader answers with, computed when asked: it
    /// exists from the moment this server leads (no waiting for a round).
    pub(crate) fn local_autopilot_health(&self) -> Result<AutopilotHealth, RpcError> {
        if !self.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        let servers = match self.pools.get() {
            Some(p) => server_members(&p.lan.members(), &self.settings.datacenter),
            None => Vec::new(),
        };
        Ok(self.autopilot_health(&servers, &self.autopilot_settings()))
    }

    /// Keeps the `StableSince` clocks running between requests (called
    /// every autopilot tick); forgets them on a server that does not lead.
    pub fn track_autopilot_health(&self, servers: &[ServerMember], settings: &AutopilotSettings) {
        if self.consensus.is_leader() {
            self.autopilot_health(servers, settings);
        } else if let Ok(mut clocks) = self.stable_since.lock() {
            clocks.clear();
        }
    }

    /// Health of every server in the Raft configuration, as this server
    /// (the leader) sees it now.
    pub fn autopilot_health(
        &self,
        servers: &[ServerMember],
        settings: &AutopilotSettings,
    ) -> AutopilotHealth {
        let status = self.consensus.status();
        let membership = &status.membership;
        let view = View {
            me: self.consensus.node_id,
            membership,
            servers,
            last_log: self.consensus.last_log().map(|l| l.index).unwrap_or(0),
            matched: status.replication.iter().flatten().map(|(id, m)| (*id, m.unwrap_or(0))).collect(),
            contact: membership
                .nodes
                .keys()
                .filter_map(|id| Some((*id, self.consensus.peer_contacts.since(*id)?)))
                .collect(),
        };
        let now_ms = crate::consensus::unix_ms_now();
        let mut out = Vec::new();
        for (id, n) in &membership.nodes {
            let member = servers.iter().find(|s| s.raft_id() == Some(*id));
            let serf_status = match member {
                Some(s) if s.alive => "alive",
                Some(s) if s.left => "left",
                Some(_) => "failed",
                None => "none",
            };
            let is_leader = Some(*id) == status.leader;
            let (last_index, contact) = if *id == view.me {
                (view.last_log, Some(Duration::ZERO))
            } else {
                (view.matched.get(id).copied().unwrap_or(0), view.contact.get(id).copied())
            };
            let healthy = healthy(&view, *id, member, settings);
            let stable_since_ms = self.stable_since.lock().ok().and_then(|mut clocks| {
                if healthy {
                    Some(*clocks.entry(*id).or_insert(now_ms))
                } else {
                    clocks.remove(id);
                    None
                }
            });
            out.push(ServerHealth {
                id: n.node_id.clone(),
                name: n.name.clone(),
                address: n.addr.clone(),
                serf_status: serf_status.to_string(),
                version: member.map(|m| m.version.clone()).unwrap_or_default(),
                leader: is_leader,
                voter: membership.is_voter(*id),
                healthy,
                last_index,
                last_term: status.term,
                last_contact_ns: contact.map(|c| c.as_nanos() as u64).unwrap_or(u64::MAX),
                stable_since_ms,
            });
        }
        let healthy_voters = out.iter().filter(|s| s.voter && s.healthy).count();
        let quorum = membership.voters.len() / 2 + 1;
        AutopilotHealth {
            healthy: out.iter().all(|s| s.healthy),
            failure_tolerance: healthy_voters.saturating_sub(quorum) as u32,
            servers: out,
        }
    }
}
