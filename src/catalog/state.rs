//! The replicated state: every table the state machine holds, and the one
//! `apply` that changes it. Deterministic: no IO, no clock, no randomness.

use super::command::{Command, CommandResult};
use super::kv::KvTable;
use super::registry::Registry;
use super::txn;
use serde::{Deserialize, Serialize};

/// Per-table raft indexes: the index of the last write to each table, so
/// list queries report (and block on) the right index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableIndexes {
    pub kvs: u64,
}

/// What an apply changed, so the state machine can wake the right watchers.
#[derive(Debug, Default)]
pub struct Changes {
    pub kv_keys: Vec<String>,
    pub kv_trees: Vec<String>,
    /// Catalog watch topics (see `registry::topic_*`).
    pub topics: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.kv_keys.is_empty() && self.kv_trees.is_empty() && self.topics.is_empty()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub kv: KvTable,
    pub index: TableIndexes,
    pub catalog: Registry,
}

impl State {
    /// Applies one command at raft `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command, changes: &mut Changes) -> CommandResult {
        match cmd {
            Command::KvSet { key, value, flags } => {
                self.kv.set(index, key, value.clone(), *flags);
                self.kv_written(index, key, changes);
                CommandResult::Bool(true)
            }
            Command::KvCas { key, value, flags, index: cas } => {
                let ok = self.kv.cas(index, key, value.clone(), *flags, *cas);
                if ok {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::KvDelete { key } => {
                if self.kv.delete(index, key) {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(true)
            }
            Command::KvDeleteCas { key, index: cas } => {
                let existed = self.kv.get(key).is_some();
                let ok = self.kv.delete_cas(index, key, *cas);
                if ok && existed {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::KvDeleteTree { prefix } => {
                let deleted = self.kv.delete_tree(index, prefix);
                if !deleted.is_empty() {
                    self.index.kvs = index;
                    changes.kv_trees.push(prefix.clone());
                }
                CommandResult::Bool(true)
            }
            Command::Txn { ops } => {
                let mut touched = Vec::new();
                let outcome = txn::apply(&mut self.kv, index, ops, &mut touched, &|_| false);
                if !touched.is_empty() {
                    self.index.kvs = index;
                    changes.kv_keys.extend(touched);
                }
                CommandResult::Txn(outcome)
            }
            Command::TombstoneReap { index: upto } => {
                self.kv.reap_tombstones(*upto);
                CommandResult::Unit
            }
            Command::Register(reg) => match self.catalog.register(index, reg) {
                Ok(topics) => {
                    changes.topics.extend(topics);
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(e),
            },
            Command::Deregister(d) => match self.catalog.deregister(index, d) {
                Ok(topics) => {
                    changes.topics.extend(topics);
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(e),
            },
        }
    }

    fn kv_written(&mut self, index: u64, key: &str, changes: &mut Changes) {
        self.index.kvs = index;
        changes.kv_keys.push(key.to_string());
    }

    /// The index a KV read reports for a missing key or an empty prefix:
    /// the table's, never 0.
    pub fn kvs_index(&self) -> u64 {
        self.index.kvs.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn failed_cas_changes_nothing() {
        let mut s = State::default();
        let mut c = Changes::default();
        s.apply(3, &Command::KvSet { key: "a".into(), value: Bytes::new(), flags: 0 }, &mut c);
        let mut c2 = Changes::default();
        let r = s.apply(4, &Command::KvCas { key: "a".into(), value: Bytes::new(), flags: 0, index: 1 }, &mut c2);
        assert_eq!(r, CommandResult::Bool(false));
        assert!(c2.is_empty());
        assert_eq!(s.index.kvs, 3);
    }
}
