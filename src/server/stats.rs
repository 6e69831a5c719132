//! The `raft` and `consul` sections of `/v1/agent/self` Stats and
//! `consul info`, with Consul's keys.

use super::Server;
use crate::consensus::status::Role;
use std::collections::BTreeMap;

impl Server {
    pub fn raft_stats(&self) -> BTreeMap<String, String> {
        let m = self.consensus.status();
        let last = self.consensus.last_log();
        let membership = &m.membership;
        let voters = &membership.voters;
        let config: Vec<String> = membership
            .nodes
            .iter()
            .map(|(id, n)| {
                let suffrage = if voters.contains(id) { "Voter" } else { "Nonvoter" };
                format!("{{Suffrage:{suffrage} ID:{} Address:{}}}", n.node_id, n.addr)
            })
            .collect();
        let state = match m.role {
            Role::Leader => "Leader",
            Role::Follower => "Follower",
            Role::Candidate => "Candidate",
            Role::Learner => "Follower",
            Role::Shutdown => "Shutdown",
        };
        let applied = m.applied_index.unwrap_or(0);
        let mut s = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            s.insert(k.to_string(), v);
        };
        put("applied_index", applied.to_string());
        put("commit_index", self.consensus.committed_index().unwrap_or(applied).max(applied).to_string());
        put("fsm_pending", "0".into());
        let last_contact = match (m.role, self.consensus.last_contact()) {
            (Role::Leader, _) => "0".to_string(),
            (_, Some(d)) => crate::duration::format(d),
            (_, None) => "never".to_string(),
        };
        put("last_contact", last_contact);
        put("last_log_index", last.map(|l| l.index).unwrap_or(0).to_string());
        put("last_log_term", last.map(|l| l.term).unwrap_or(0).to_string());
        put("last_snapshot_index", m.snapshot.map(|l| l.index).unwrap_or(0).to_string());
        put("last_snapshot_term", m.snapshot.map(|l| l.term).unwrap_or(0).to_string());
        put("latest_configuration", format!("[{}]", config.join(" ")));
        put("latest_configuration_index", membership.index.unwrap_or(0).to_string());
        put("num_peers", voters.len().saturating_sub(1).to_string());
        put("protocol_version", "3".into());
        put("protocol_version_max", "3".into());
        put("protocol_version_min", "0".into());
        put("snapshot_version_max", "1".into());
        put("snapshot_version_min", "0".into());
        put("state", state.into());
        put("term", m.term.to_string());
        s
    }

    pub fn consul_stats(&self, bootstrap: bool) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        s.insert("acl".into(), "disabled".into());
        s.insert("bootstrap".into(), bootstrap.to_string());
        s.insert("known_datacenters".into(), self.datacenters().len().to_string());
        s.insert("leader".into(), self.consensus.is_leader().to_string());
        s.insert("leader_addr".into(), self.leader_addr());
        s.insert("server".into(), "true".into());
        s
    }
}
