//! `/v1/txn`: a list of KV, Node, Service and Check operations applied
//! atomically. Every op runs against the live tables while undo logs (this
//! file's for KV, the registry's journal for the catalog) record what it
//! changed; the first failure rolls everything back, so a failing op leaves
//! nothing applied. Catalog ops themselves live in `txn_catalog`.

use super::kv::{KvEntry, KvTable};
use super::registry::Registry;
use super::txn_catalog::{self, CatalogVerb, CheckOp, NodeOp, ServiceOp};
pub use super::txn_result::TxnResultItem;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The KV verbs of Consul's transaction API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteTree,
    DeleteCas,
}

impl KvVerb {
    pub fn parse(s: &str) -> Option<KvVerb> {
        Some(match s {
            "set" => KvVerb::Set,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "get" => KvVerb::Get,
            "get-or-empty" => KvVerb::GetOrEmpty,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            "delete" => KvVerb::Delete,
            "delete-tree" => KvVerb::DeleteTree,
            "delete-cas" => KvVerb::DeleteCas,
            _ => return None,
        })
    }

    /// Whether the verb only reads (a transaction of only reads needs no Raft write).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            KvVerb::Get
                | KvVerb::GetOrEmpty
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

/// One KV operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    pub value: Bytes,
    pub flags: u64,
    pub index: u64,
    pub session: String,
}

/// One operation of a transaction. Part of the Raft log format: variants
/// are only appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv(KvOp),
    // Boxed: catalog records are large, KV ops (the common case) small.
    Node(Box<NodeOp>),
    Service(Box<ServiceOp>),
    Check(Box<CheckOp>),
}

/// A transaction's service op as encoded before the mesh fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOpBeforeMesh {
    pub verb: CatalogVerb,
    pub node: String,
    pub service: super::before_mesh::NodeService,
}

/// `TxnOp` as encoded before the mesh fields (same variants, same order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOpBeforeMesh {
    Kv(KvOp),
    Node(Box<NodeOp>),
    Service(Box<ServiceOpBeforeMesh>),
    Check(Box<CheckOp>),
}

impl From<TxnOpBeforeMesh> for TxnOp {
    fn from(op: TxnOpBeforeMesh) -> Self {
        match op {
            TxnOpBeforeMesh::Kv(k) => TxnOp::Kv(k),
            TxnOpBeforeMesh::Node(n) => TxnOp::Node(n),
            TxnOpBeforeMesh::Service(s) => {
                let s = *s;
                TxnOp::Service(Box::new(ServiceOp { verb: s.verb, node: s.node, service: s.service.into() }))
            }
            TxnOpBeforeMesh::Check(c) => TxnOp::Check(c),
        }
    }
}

impl TxnOp {
    pub fn is_read(&self) -> bool {
        match self {
            TxnOp::Kv(op) => op.verb.is_read(),
            TxnOp::Node(op) => op.verb == CatalogVerb::Get,
            TxnOp::Service(op) => op.verb == CatalogVerb::Get,
            TxnOp::Check(op) => op.verb == CatalogVerb::Get,
        }
    }

    /// Whether the op touches the catalog (rather than KV).
    pub fn is_catalog(&self) -> bool {
        !matches!(self, TxnOp::Kv(_))
    }
}

/// What a committed transaction changed, for waking watchers and
/// re-validating sessions.
#[derive(Debug, Default)]
pub struct TxnChanges {
    pub kv_keys: Vec<String>,
    /// Catalog watch topics.
    pub topics: Vec<String>,
    /// Nodes whose catalog rows changed.
    pub nodes: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// The outcome of a transaction: results when applied, errors when rolled back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnOutcome {
    pub results: Vec<TxnResultItem>,
    pub errors: Vec<TxnError>,
}

/// What an op changed, to undo it on failure.
#[derive(Default)]
struct Undo {
    saved: HashMap<String, (Option<KvEntry>, Option<u64>)>,
}

impl Undo {
    fn remember(&mut self, kv: &KvTable, key: &str) {
        if !self.saved.contains_key(key) {
            let entry = kv.entries.get(key).cloned();
            let tomb = kv.tombstones.get(key).copied();
            self.saved.insert(key.to_string(), (entry, tomb));
        }
    }

    fn rollback(self, kv: &mut KvTable) {
        for (key, (entry, tomb)) in self.saved {
            match entry {
                Some(e) => {
                    kv.entries.insert(key.clone(), e);
                }
                None => {
                    kv.entries.remove(&key);
                }
            }
            match tomb {
                Some(i) => {
                    kv.tombstones.insert(key, i);
                }
                None => {
                    kv.tombstones.remove(&key);
                }
            }
        }
    }
}

/// Runs a transaction at raft `index`. On success `changed` receives what
/// was written; on failure nothing is applied and nothing is reported.
/// `session_exists` answers whether a session ID is live.
pub fn apply(
    kv: &mut KvTable,
    catalog: &mut Registry,
    index: u64,
    ops: &[TxnOp],
    changed: &mut TxnChanges,
    session_exists: &dyn Fn(&str) -> bool,
) -> TxnOutcome {
    let mut undo = Undo::default();
    let mut results = Vec::new();
    let mut touched = Vec::new();
    let journaled = ops.iter().any(TxnOp::is_catalog);
    if journaled {
        catalog.begin_txn();
    }
    for (i, op) in ops.iter().enumerate() {
        let outcome = match op {
            TxnOp::Kv(op) => apply_kv(kv, index, op, &mut undo, &mut results, &mut touched, session_exists),
            TxnOp::Node(op) => txn_catalog::apply_node(catalog, index, op, &mut results),
            TxnOp::Service(op) => txn_catalog::apply_service(catalog, index, op, &mut results),
            TxnOp::Check(op) => txn_catalog::apply_check(catalog, index, op, &mut results),
        };
        if let Err(what) = outcome {
            undo.rollback(kv);
            if journaled {
                catalog.rollback_txn();
            }
            return TxnOutcome { results: Vec::new(), errors: vec![TxnError { op_index: i, what }] };
        }
    }
    if journaled {
        let committed = catalog.commit_txn(index);
        changed.topics.extend(committed.topics);
        changed.nodes.extend(committed.nodes);
    }
    changed.kv_keys.extend(touched);
    TxnOutcome { results, errors: Vec::new() }
}

/// Runs a read-only transaction (every op `is_read`) without changing anything.
pub fn read(kv: &KvTable, catalog: &Registry, ops: &[TxnOp]) -> TxnOutcome {
    let mut results = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let outcome = match op {
            TxnOp::Kv(op) => read_kv(kv, op, &mut results),
            TxnOp::Node(op) if op.verb == CatalogVerb::Get => {
                txn_catalog::read_node(catalog, op, &mut results)
            }
            TxnOp::Service(op) if op.verb == CatalogVerb::Get => {
                txn_catalog::read_service(catalog, op, &mut results)
            }
            TxnOp::Check(op) if op.verb == CatalogVerb::Get => {
                txn_catalog::read_check(catalog, op, &mut results)
            }
            _ => Err("operation is not a read".to_string()),
        };
        if let Err(what) = outcome {
            return TxnOutcome { results: Vec::new(), errors: vec![TxnError { op_index: i, what }] };
        }
    }
    TxnOutcome { results, errors: Vec::new() }
}

/// The read verbs, shared by read-only and read-write transactions.
fn read_kv(kv: &KvTable, op: &KvOp, results: &mut Vec<TxnResultItem>) -> Result<(), String> {
    let key = op.key.as_str();
    match op.verb {
        KvVerb::Get => match kv.get(key) {
            Some(e) => results.push(TxnResultItem::Kv { entry: e.clone(), with_value: true }),
            None => return Err(format!("key {key:?} doesn't exist")),
        },
        KvVerb::GetOrEmpty => {
            if let Some(e) = kv.get(key) {
                results.push(TxnResultItem::Kv { entry: e.clone(), with_value: true });
            }
        }
        KvVerb::GetTree => {
            for e in kv.list(key) {
                results.push(TxnResultItem::Kv { entry: e.clone(), with_value: true });
            }
        }
        KvVerb::CheckIndex => match kv.get(key) {
            Some(e) if e.modify_index == op.index => {
                results.push(TxnResultItem::Kv { entry: e.clone(), with_value: false })
            }
            Some(e) => return Err(format!("current modify index {} != {}", e.modify_index, op.index)),
            None => return Err(format!("key {key:?} doesn't exist")),
        },
        KvVerb::CheckSession => match kv.get(key) {
            Some(e) if e.session.as_deref() == Some(op.session.as_str()) => {
                results.push(TxnResultItem::Kv { entry: e.clone(), with_value: false })
            }
            Some(e) => {
                return Err(format!(
                    "current session {:?} != {:?}",
                    e.session.clone().unwrap_or_default(),
                    op.session
                ))
            }
            None => return Err(format!("key {key:?} doesn't exist")),
        },
        KvVerb::CheckNotExists => {
            if kv.get(key).is_some() {
                return Err(format!("key {key:?} exists"));
            }
        }
        _ => return Err(format!("verb {:?} is not a read", op.verb)),
    }
    Ok(())
}

fn apply_kv(
    kv: &mut KvTable,
    index: u64,
    op: &KvOp,
    undo: &mut Undo,
    results: &mut Vec<TxnResultItem>,
    touched: &mut Vec<String>,
    session_exists: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let key = op.key.as_str();
    let push_written = |kv: &KvTable, results: &mut Vec<TxnResultItem>| {
        if let Some(e) = kv.get(key) {
            results.push(TxnResultItem::Kv { entry: e.clone(), with_value: false });
        }
    };
    match op.verb {
        KvVerb::Set => {
            undo.remember(kv, key);
            kv.set(index, key, op.value.clone(), op.flags);
            touched.push(key.to_string());
            push_written(kv, results);
        }
        KvVerb::Cas => {
            undo.remember(kv, key);
            if !kv.cas(index, key, op.value.clone(), op.flags, op.index) {
                return Err(format!("failed to set key {key:?}, index is stale"));
            }
            touched.push(key.to_string());
            push_written(kv, results);
        }
        KvVerb::Lock => {
            if !session_exists(&op.session) {
                return Err(format!("failed to lock key {key:?}: invalid session {:?}", op.session));
            }
            undo.remember(kv, key);
            if !kv.lock(index, key, op.value.clone(), op.flags, &op.session) {
                return Err(format!("failed to lock key {key:?}, lock is already held"));
            }
            touched.push(key.to_string());
            push_written(kv, results);
        }
        KvVerb::Unlock => {
            undo.remember(kv, key);
            if !kv.unlock(index, key, op.value.clone(), op.flags, &op.session) {
                return Err(format!(
                    "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                ));
            }
            touched.push(key.to_string());
            push_written(kv, results);
        }
        KvVerb::Get
        | KvVerb::GetOrEmpty
        | KvVerb::GetTree
        | KvVerb::CheckIndex
        | KvVerb::CheckSession
        | KvVerb::CheckNotExists => read_kv(kv, op, results)?,
        KvVerb::Delete => {
            undo.remember(kv, key);
            if kv.delete(index, key) {
                touched.push(key.to_string());
            }
        }
        KvVerb::DeleteTree => {
            let keys: Vec<String> = kv.list(key).map(|e| e.key.clone()).collect();
            for k in &keys {
                undo.remember(kv, k);
            }
            for k in kv.delete_tree(index, key) {
                touched.push(k);
            }
        }
        KvVerb::DeleteCas => {
            undo.remember(kv, key);
            if !kv.delete_cas(index, key, op.index) {
                return Err(format!("failed to delete key {key:?}, index is stale"));
            }
            touched.push(key.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::{Node, NodeService};

    fn op(verb: KvVerb, key: &str, value: &str, index: u64) -> TxnOp {
        TxnOp::Kv(KvOp {
            verb,
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            flags: 0,
            index,
            session: String::new(),
        })
    }

    #[test]
    fn failing_op_rolls_back_everything() {
        let mut kv = KvTable::default();
        kv.set(1, "keep", Bytes::from_static(b"v"), 0);
        let mut changed = TxnChanges::default();
        let out = apply(
            &mut kv,
            &mut Registry::default(),
            2,
            &[op(KvVerb::Set, "a", "1", 0), op(KvVerb::Delete, "keep", "", 0), op(KvVerb::Cas, "b", "2", 99)],
            &mut changed,
            &|_| false,
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].op_index, 2);
        assert!(kv.get("a").is_none());
        assert_eq!(kv.get("keep").unwrap().modify_index, 1);
        assert!(kv.tombstones.is_empty());
        assert!(changed.kv_keys.is_empty());
    }

    #[test]
    fn successful_txn_reports_results() {
        let mut kv = KvTable::default();
        let mut changed = TxnChanges::default();
        let out = apply(
            &mut kv,
            &mut Registry::default(),
            3,
            &[
                op(KvVerb::Set, "a", "1", 0),
                op(KvVerb::Get, "a", "", 0),
                op(KvVerb::CheckNotExists, "zz", "", 0),
            ],
            &mut changed,
            &|_| false,
        );
        assert!(out.errors.is_empty());
        assert_eq!(out.results.len(), 2);
        assert_eq!(changed.kv_keys, vec!["a"]);
    }

    fn node_op(verb: CatalogVerb, name: &str, modify_index: u64) -> TxnOp {
        let node = Node { node: name.into(), address: "10.0.0.1".into(), modify_index, ..Default::default() };
        TxnOp::Node(Box::new(NodeOp { verb, node }))
    }

    fn service_op(verb: CatalogVerb, node: &str, id: &str, name: &str) -> TxnOp {
        let service = NodeService { id: id.into(), service: name.into(), port: 80, ..Default::default() };
        TxnOp::Service(Box::new(ServiceOp { verb, node: node.into(), service }))
    }

    #[test]
    fn failing_catalog_op_restores_rows_names_and_indexes() {
        let mut kv = KvTable::default();
        let mut cat = Registry::default();
        let mut changed = TxnChanges::default();
        let setup = [node_op(CatalogVerb::Set, "n1", 0), service_op(CatalogVerb::Set, "n1", "s1", "web")];
        let out = apply(&mut kv, &mut cat, 5, &setup, &mut changed, &|_| false);
        assert!(out.errors.is_empty(), "{out:?}");
        assert_eq!(out.results.len(), 2);
        assert!(changed.topics.contains(&"svc:web".to_string()));
        assert!(changed.nodes.contains("n1"));
        let before_index = cat.index.clone();

        // Rename s1 to "api", add n2, delete nothing... then a stale cas.
        let mut changed = TxnChanges::default();
        let ops = [
            service_op(CatalogVerb::Set, "n1", "s1", "api"),
            node_op(CatalogVerb::Set, "n2", 0),
            service_op(CatalogVerb::Set, "n2", "s2", "api"),
            node_op(CatalogVerb::Delete, "n1", 0),
            node_op(CatalogVerb::Cas, "n2", 0),
        ];
        let out = apply(&mut kv, &mut cat, 6, &ops, &mut changed, &|_| false);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].op_index, 4);
        assert!(changed.topics.is_empty() && changed.nodes.is_empty());
        assert_eq!(cat.index, before_index);
        assert!(cat.node("n2").is_none());
        assert_eq!(cat.service("n1", "s1").map(|s| s.service.as_str()), Some("web"));
        assert_eq!(cat.service_instances("web").len(), 1, "name index restored");
        assert!(cat.service_instances("api").is_empty());

        // After a rollback, plain writes index normally again.
        let mut moved = node_op(CatalogVerb::Cas, "n1", 5);
        if let TxnOp::Node(op) = &mut moved {
            op.node.address = "10.0.0.2".into();
        }
        let out = apply(&mut kv, &mut cat, 7, &[moved], &mut TxnChanges::default(), &|_| false);
        assert!(out.errors.is_empty(), "{out:?}");
        assert_eq!(cat.index.nodes, 7);
    }
}
