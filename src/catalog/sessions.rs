//! Sessions: a binding between a node (and some of its health checks) and
//! the KV locks taken in its name. A session dies when it is destroyed, its
//! node goes away, or one of its checks turns critical; its locks are then
//! released or deleted according to its behavior.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Behavior {
    #[default]
    Release,
    Delete,
}

impl Behavior {
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Release => "release",
            Behavior::Delete => "delete",
        }
    }
}

/// A service check a session is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCheckRef {
    pub id: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay_ns: u64,
    pub behavior: Behavior,
    /// Go duration string as given (e.g. "30s"), or "".
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRef>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Session {
    /// Every check ID the session depends on.
    pub fn check_ids(&self) -> impl Iterator<Item = &str> {
        self.node_checks.iter().map(String::as_str).chain(self.service_checks.iter().map(|c| c.id.as_str()))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionTable {
    sessions: BTreeMap<String, Session>,
    by_node: BTreeMap<String, BTreeSet<String>>,
    /// Raft index of the last change to any session.
    pub index: u64,
}

impl SessionTable {
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn on_node(&self, node: &str) -> Vec<&Session> {
        self.by_node
            .get(node)
            .map(|ids| ids.iter().filter_map(|id| self.sessions.get(id)).collect())
            .unwrap_or_default()
    }

    pub fn insert(&mut self, idx: u64, mut s: Session) {
        s.create_index = idx;
        s.modify_index = idx;
        self.by_node.entry(s.node.clone()).or_default().insert(s.id.clone());
        self.sessions.insert(s.id.clone(), s);
        self.index = idx;
    }

    pub fn remove(&mut self, idx: u64, id: &str) -> Option<Session> {
        let s = self.sessions.remove(id)?;
        if let Some(set) = self.by_node.get_mut(&s.node) {
            set.remove(id);
            if set.is_empty() {
                self.by_node.remove(&s.node);
            }
        }
        self.index = idx;
        Some(s)
    }
}

/// Topics blocking session queries wait on.
pub const TOPIC_SESSIONS: &str = "sessions";
pub fn topic_session(id: &str) -> String {
    format!("session:{id}")
}
pub fn topic_node_sessions(node: &str) -> String {
    format!("node-sessions:{node}")
}
