//! Autopilot (leader only): keeps the Raft configuration equal to the
//! healthy servers gossip knows. A new server joins as a non-voter and is
//! promoted once it has caught up and stayed healthy for
//! `server_stabilization_time`; servers that left are removed; failed
//! servers are removed with `cleanup_dead_servers` only while the healthy
//! voters keep a quorum; a stale entry (a server that came back with a new
//! ID at the same address) is removed.

use super::bootstrap::ServerMember;
use super::Server;
use crate::config::runtime::Autopilot as AutopilotSettings;
use crate::rpc::operator::{AutopilotHealth, ServerHealth};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Autopilot's memory between rounds.
#[derive(Default)]
pub struct AutopilotState {
    /// When each non-voter was first seen caught up (for stabilization).
    healthy_since: BTreeMap<u64, Instant>,
    /// Since when (unix ms) each server has been continuously healthy, for
    /// the operator API's `StableSince`.
    stable_since_ms: BTreeMap<u64, u64>,
}

impl Server {
    /// One reconcile round; a no-op unless this server is the leader.
    pub async fn autopilot_round(
        &self,
        servers: &[ServerMember],
        settings: &AutopilotSettings,
        state: &mut AutopilotState,
    ) -> Result<(), String> {
        if !self.consensus.is_leader() {
            state.healthy_since.clear();
            return Ok(());
        }
        let status = self.consensus.status();
        let voters: BTreeSet<u64> = status.membership.voters.clone();
        let nodes: BTreeMap<u64, _> = status.membership.nodes.clone();
        let my_id = self.consensus.node_id;
        let by_id: BTreeMap<u64, &ServerMember> =
            servers.iter().filter_map(|s| Some((s.raft_id()?, s))).collect();

        // 1. Servers gossip knows and Raft doesn't: add as non-voters.
        for (id, s) in &by_id {
            if s.alive && !nodes.contains_key(id) {
                tracing::info!(target: "agent.server.autopilot", server = %s.name, address = %s.rpc_addr, "adding server as non-voter");
                self.consensus.add_nonvoter(*id, s.raft_node()).await.map_err(|e| e.to_string())?;
            }
        }

        // 2. Removals: left servers, stale entries, and (optionally) failed ones.
        let mut remove: BTreeSet<u64> = BTreeSet::new();
        for (id, node) in &nodes {
            if *id == my_id {
                continue;
            }
            match by_id.get(id) {
                Some(s) if s.left => {
                    tracing::info!(target: "agent.server.autopilot", server = %s.name, "removing server that left");
                    remove.insert(*id);
                }
                Some(_) => {}
                None => {
                    // Same address now held by another live server ID: stale.
                    if servers.iter().any(|s| s.alive && s.rpc_addr.to_string() == node.addr) {
                        tracing::info!(target: "agent.server.autopilot", server = %node.name, address = %node.addr, "removing stale server entry (its address now belongs to another server ID)");
                        remove.insert(*id);
                    }
                }
            }
        }
        if settings.cleanup_dead_servers {
            let failed: Vec<u64> = voters
                .iter()
                .filter(|id| **id != my_id && !remove.contains(id))
                .filter(|id| by_id.get(id).is_some_and(|s| !s.alive && !s.left))
                .copied()
                .collect();
            let healthy_voters =
                voters.iter().filter(|id| !remove.contains(id) && !failed.contains(id)).count();
            let remaining = voters.len() - voters.iter().filter(|id| remove.contains(id)).count();
            // Only while the healthy voters alone are a majority, and never below min_quorum.
            if !failed.is_empty()
                && healthy_voters * 2 > remaining
                && healthy_voters >= settings.min_quorum as usize
            {
                for id in failed {
                    if let Some(s) = by_id.get(&id) {
                        tracing::info!(target: "agent.server.autopilot", server = %s.name, "removing dead server");
                    }
                    remove.insert(id);
                }
            }
        }

        // 3. Promotions: caught-up non-voters that stayed healthy long enough.
        let last_log = self.consensus.last_log().map(|l| l.index).unwrap_or(0);
        let matched: BTreeMap<u64, u64> = status
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, m)| (*id, m.unwrap_or(0))).collect())
            .unwrap_or_default();
        let now = Instant::now();
        let mut promote = BTreeSet::new();
        for id in nodes.keys().filter(|id| !voters.contains(id) && !remove.contains(id)) {
            let alive = by_id.get(id).is_some_and(|s| s.alive);
            let caught_up =
                matched.get(id).is_some_and(|m| last_log.saturating_sub(*m) <= settings.max_trailing_logs);
            if alive && caught_up {
                let since = *state.healthy_since.entry(*id).or_insert(now);
                if now.duration_since(since) >= settings.server_stabilization_time {
                    promote.insert(*id);
                }
            } else {
                state.healthy_since.remove(id);
            }
        }
        for id in &promote {
            if let Some(n) = nodes.get(id) {
                tracing::info!(target: "agent.server.autopilot", server = %n.name, "promoting server to voter");
            }
            state.healthy_since.remove(id);
        }

        let learner_removals: BTreeSet<u64> =
            remove.iter().filter(|id| !voters.contains(id)).copied().collect();
        let new_voters: BTreeSet<u64> =
            voters.iter().filter(|id| !remove.contains(id)).chain(promote.iter()).copied().collect();
        if new_voters != voters {
            self.consensus.set_voters(new_voters).await.map_err(|e| e.to_string())?;
        }
        if !learner_removals.is_empty() {
            self.consensus.remove_nonvoters(learner_removals).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Health of every server in the Raft configuration, as the leader
    /// judges it (Consul's rules: alive in gossip, answered appends within
    /// `last_contact_threshold`, no more than `max_trailing_logs` behind).
    pub fn autopilot_health(
        &self,
        servers: &[ServerMember],
        settings: &AutopilotSettings,
        state: &mut AutopilotState,
    ) -> AutopilotHealth {
        let status = self.consensus.status();
        let membership = &status.membership;
        let voters = &membership.voters;
        let leader = status.leader;
        let last_log = self.consensus.last_log();
        let leader_last = last_log.map(|l| l.index).unwrap_or(0);
        let matched: BTreeMap<u64, u64> = status
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, m)| (*id, m.unwrap_or(0))).collect())
            .unwrap_or_default();
        let now_ms = unix_ms();
        let mut out = Vec::new();
        for (id, n) in &membership.nodes {
            let member = servers.iter().find(|s| s.raft_id() == Some(*id));
            let serf_status = match member {
                Some(s) if s.alive => "alive",
                Some(s) if s.left => "left",
                Some(_) => "failed",
                None => "none",
            };
            let is_leader = Some(*id) == leader;
            let (last_index, contact) = if is_leader {
                (leader_last, Some(Duration::ZERO))
            } else {
                (matched.get(id).copied().unwrap_or(0), self.consensus.peer_contacts.since(*id))
            };
            let healthy = serf_status == "alive"
                && contact.is_some_and(|c| c <= settings.last_contact_threshold)
                && leader_last.saturating_sub(last_index) <= settings.max_trailing_logs;
            let stable_since_ms = if healthy {
                Some(*state.stable_since_ms.entry(*id).or_insert(now_ms))
            } else {
                state.stable_since_ms.remove(id);
                None
            };
            out.push(ServerHealth {
                id: n.node_id.clone(),
                name: n.name.clone(),
                address: n.addr.clone(),
                serf_status: serf_status.to_string(),
                version: member.map(|m| m.version.clone()).unwrap_or_default(),
                leader: is_leader,
                voter: voters.contains(id),
                healthy,
                last_index,
                last_term: status.term,
                last_contact_ns: contact.map(|c| c.as_nanos() as u64).unwrap_or(u64::MAX),
                stable_since_ms,
            });
        }
        let healthy_voters = out.iter().filter(|s| s.voter && s.healthy).count();
        let quorum = voters.len() / 2 + 1;
        AutopilotHealth {
            healthy: out.iter().all(|s| s.healthy),
            failure_tolerance: healthy_voters.saturating_sub(quorum) as u32,
            servers: out,
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Server {
    /// Takes this server out of the Raft configuration before it leaves
    /// (Consul's "server starting leave"): directly when it leads, else by
    /// asking the leader. Waits until the configuration no longer holds it.
    pub async fn remove_self_from_raft(&self, timeout: Duration) -> Result<(), String> {
        let me = self.consensus.node_id;
        let membership = self.consensus.applied_membership();
        if !membership.contains(me) || membership.voters.len() <= 1 {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let attempt = match self.consensus.leader() {
                Some((lid, _)) if lid == me => self.remove_peer(me).await,
                Some((_, node)) => match node.addr.parse() {
                    Ok(addr) => match self
                        .rpc
                        .call(
                            addr,
                            crate::rpc::RequestContext::default(),
                            &crate::rpc::method::RaftRemovePeer {
                                id: Some(self.consensus.node.node_id.clone()),
                                address: None,
                            },
                            Duration::from_secs(5),
                        )
                        .await
                    {
                        Ok(()) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(_) => Err("bad leader address".into()),
                },
                None => Err("no leader".into()),
            };
            let gone = !self.consensus.applied_membership().contains(me);
            if gone || (attempt.is_ok() && self.consensus.is_leader()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return attempt.and(Err("timed out waiting to leave the raft configuration".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes a server from the Raft configuration (leader only).
    pub async fn remove_peer(&self, id: u64) -> Result<(), String> {
        if !self.consensus.is_leader() {
            return Err("No cluster leader".into());
        }
        let m = self.consensus.applied_membership();
        if m.is_voter(id) {
            let remaining: BTreeSet<u64> = m.voters.into_iter().filter(|v| *v != id).collect();
            self.consensus.set_voters(remaining).await.map_err(|e| e.to_string())?;
        } else if m.contains(id) {
            self.consensus.remove_nonvoters([id].into_iter().collect()).await.map_err(|e| e.to_string())?;
        } else {
            return Err(format!("id {id:016x} was not found in the Raft configuration"));
        }
        Ok(())
    }

    /// Resolves a peer given by Consul's `-id` (node UUID) or `-address`.
    pub fn find_peer(&self, id: Option<&str>, address: Option<&str>) -> Result<u64, String> {
        let membership = self.consensus.applied_membership();
        for (rid, node) in &membership.nodes {
            if id.is_some_and(|i| i.eq_ignore_ascii_case(&node.node_id))
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
