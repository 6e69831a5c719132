//! The `raft` and `consul` sections of `/v1/agent/self` Stats and
//! `consul info`, with Consul's keys.

use super::Server;
use openraft::ServerState;
use std::collections::BTreeMap;

impl Server {
    pub fn raft_stats(&self) -> BTreeMap<String, String> {
        let m = self.consensus.raft.metrics().borrow().clone();
        let log = &self.consensus.log;
        let last = log.last_log_id();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let config: Vec<String> = membership
            .nodes()
            .map(|(id, n)| {
                let suffrage = if voters.contains(id) { "Voter" } else { "Nonvoter" };
                format!("{{Suffrage:{suffrage} ID:{} Address:{}}}", n.node_id, n.addr)
            })
            .collect();
        let state = match m.state {
            ServerState::Leader => "Leader",
            ServerState::Follower => "Follower",
            ServerState::Candidate => "Candidate",
            ServerState::Learner => "Follower",
            ServerState::Shutdown => "Shutdown",
        };
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        let mut s = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            s.insert(k.to_string(), v);
        };
        put("applied_index", applied.to_string());
        put("commit_index", log.committed().map(|l| l.index).unwrap_or(applied).max(applied).to_string());
        put("fsm_pending", "0".into());
        let last_contact = match (m.state, self.consensus.last_contact()) {
            (ServerState::Leader, _) => "0".to_string(),
            (_, Some(d)) => crate::duration::format(d),
            (_, None) => "never".to_string(),
        };
        put("last_contact", last_contact);
        put("last_log_index", last.map(|l| l.index).unwrap_or(0).to_string());
        put("last_log_term", last.map(|l| l.leader_id.term).unwrap_or(0).to_string());
        put("last_snapshot_index", m.snapshot.map(|l| l.index).unwrap_or(0).to_string());
        put("last_snapshot_term", m.snapshot.map(|l| l.leader_id.term).unwrap_or(0).to_string());
        put("latest_configuration", format!("[{}]", config.join(" ")));
        put(
            "latest_configuration_index",
            m.membership_config.log_id().map(|l| l.index).unwrap_or(0).to_string(),
        );
        put("num_peers", voters.len().saturating_sub(1).to_string());
        put("protocol_version", "3".into());
        put("protocol_version_max", "3".into());
        put("protocol_version_min", "0".into());
        put("snapshot_version_max", "1".into());
        put("snapshot_version_min", "0".into());
        put("state", state.into());
        put("term", m.current_term.to_string());
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
