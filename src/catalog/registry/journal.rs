//! The catalog's undo journal for `/v1/txn`: while a transaction applies,
//! every node, service and check row is remembered as it was before its
//! first change, and index bumps are held back. A failing op restores the
//! rows; a commit bumps the indexes once and names the watch topics.
//!
//! Owns only the journal; the row writes themselves stay in `registry`.

use super::{Registry, Touch};
use crate::catalog::types::{HealthCheck, Node, NodeService};
use std::collections::{BTreeMap, BTreeSet};

type Key = (String, String);

/// Rows as they were before the transaction touched them (`None`: absent).
#[derive(Clone, Debug, Default)]
pub(super) struct Journal {
    nodes: BTreeMap<String, Option<Node>>,
    services: BTreeMap<Key, Option<NodeService>>,
    checks: BTreeMap<Key, Option<HealthCheck>>,
    /// Everything the transaction's ops changed, for the commit.
    touch: Touch,
}

/// What a committed catalog transaction changed.
#[derive(Debug, Default)]
pub struct Committed {
    /// Watch topics to wake.
    pub topics: Vec<String>,
    /// Nodes whose rows changed (their sessions must be re-validated).
    pub nodes: BTreeSet<String>,
}

impl Registry {
    /// Starts journaling: until `commit_txn` or `rollback_txn`, writes are
    /// undoable and indexes stay put.
    pub fn begin_txn(&mut self) {
        self.journal = Some(Box::default());
    }

    /// Ends the transaction keeping its writes: bumps indexes at `idx`.
    pub fn commit_txn(&mut self, idx: u64) -> Committed {
        let Some(j) = self.journal.take() else { return Committed::default() };
        let nodes = j.touch.node_names.clone();
        let topics = self.finish(idx, j.touch);
        Committed { topics, nodes }
    }

    /// Ends the transaction undoing every write it made.
    pub fn rollback_txn(&mut self) {
        let Some(j) = self.journal.take() else { return };
        for (name, old) in j.nodes {
            match old {
                Some(n) => self.put_node(name, n),
                None => {
                    self.take_node(&name);
                }
            };
        }
        for (key, old) in j.services {
            if let Some(cur) = self.services.remove(&key) {
                self.unlink_name(&cur.service, &key);
            }
            if let Some(s) = old {
                self.link_name(&s.service, &key);
                self.services.insert(key, s);
            }
        }
        for (key, old) in j.checks {
            match old {
                Some(c) => self.checks.insert(key, c),
                None => self.checks.remove(&key),
            };
        }
    }

    pub(super) fn note_node(&mut self, name: &str) {
        if let Some(j) = self.journal.as_mut() {
            if !j.nodes.contains_key(name) {
                j.nodes.insert(name.to_string(), self.nodes.get(name).cloned());
            }
        }
    }

    pub(super) fn note_service(&mut self, key: &Key) {
        if let Some(j) = self.journal.as_mut() {
            if !j.services.contains_key(key) {
                j.services.insert(key.clone(), self.services.get(key).cloned());
            }
        }
    }

    pub(super) fn note_check(&mut self, key: &Key) {
        if let Some(j) = self.journal.as_mut() {
            if !j.checks.contains_key(key) {
                j.checks.insert(key.clone(), self.checks.get(key).cloned());
            }
        }
    }

    /// Inside a transaction, folds `touch` into the journal and returns
    /// `None`; otherwise hands it back for `finish` to apply now.
    pub(super) fn defer_touch(&mut self, touch: Touch) -> Option<Touch> {
        let Some(j) = self.journal.as_mut() else { return Some(touch) };
        let t = &mut j.touch;
        t.nodes |= touch.nodes;
        t.services |= touch.services;
        t.checks |= touch.checks;
        t.service_names.extend(touch.service_names);
        t.node_names.extend(touch.node_names);
        None
    }
}
