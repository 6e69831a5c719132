//! The Node, Service and Check operations of `/v1/txn`, applied to the
//! catalog `Registry` one at a time. Atomicity is not handled here: the
//! caller (`txn::apply`) journals the registry and rolls it back when any
//! op of the transaction fails. Session invalidation that follows a
//! catalog change is the state's job, after the commit.

use super::registry::Registry;
use super::txn_result::TxnResultItem;
use super::types::{Deregistration, HealthCheck, Node, NodeService, Registration};
use serde::{Deserialize, Serialize};

/// The verbs shared by Node, Service and Check operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    Set,
    Cas,
    Get,
    Delete,
    DeleteCas,
}

impl CatalogVerb {
    pub fn parse(s: &str) -> Option<CatalogVerb> {
        Some(match s {
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "get" => CatalogVerb::Get,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            _ => return None,
        })
    }
}

/// A Node operation. `node.modify_index` is the CAS index; the node is
/// found by ID when one is given, else by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOp {
    pub verb: CatalogVerb,
    pub node: Node,
}

/// A Service operation on one node. `service.modify_index` is the CAS index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOp {
    pub verb: CatalogVerb,
    pub node: String,
    pub service: NodeService,
}

/// A Check operation; `check.node` names the node, `check.modify_index`
/// is the CAS index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOp {
    pub verb: CatalogVerb,
    pub check: HealthCheck,
}

/// Whether a CAS write may go ahead: index 0 means "only if absent",
/// anything else "only if the current row has this modify index".
fn cas_allows(existing: Option<u64>, want: u64) -> bool {
    match existing {
        None => want == 0,
        Some(current) => want != 0 && current == want,
    }
}

/// The node an op addresses: by ID (any case) when given, else by name.
fn find_node<'a>(reg: &'a Registry, n: &Node) -> Option<&'a Node> {
    if !n.id.is_empty() {
        return reg.node_by_id(&n.id, None);
    }
    reg.node(&n.node)
}

fn node_label(n: &Node) -> &str {
    if n.node.is_empty() {
        &n.id
    } else {
        &n.node
    }
}

/// A Node `get`: the only read verb.
pub fn read_node(reg: &Registry, op: &NodeOp, results: &mut Vec<TxnResultItem>) -> Result<(), String> {
    match find_node(reg, &op.node) {
        Some(n) => {
            results.push(TxnResultItem::Node(Box::new(n.clone())));
            Ok(())
        }
        None => Err(format!("node {:?} doesn't exist", node_label(&op.node))),
    }
}

pub fn apply_node(
    reg: &mut Registry,
    idx: u64,
    op: &NodeOp,
    results: &mut Vec<TxnResultItem>,
) -> Result<(), String> {
    let label = node_label(&op.node).to_string();
    match op.verb {
        CatalogVerb::Get => read_node(reg, op, results),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if op.node.node.is_empty() {
                return Err("Must provide node".into());
            }
            if op.verb == CatalogVerb::Cas {
                let current = reg.node(&op.node.node).map(|n| n.modify_index);
                if !cas_allows(current, op.node.modify_index) {
                    return Err(format!("failed to set node {label:?}, index is stale"));
                }
            }
            let mut node = op.node.clone();
            node.create_index = 0;
            node.modify_index = 0;
            let name = node.node.clone();
            reg.register(idx, &Registration { node, ..Default::default() })?;
            if let Some(n) = reg.node(&name) {
                results.push(TxnResultItem::Node(Box::new(n.clone())));
            }
            Ok(())
        }
        CatalogVerb::Delete => {
            // Deleting a node that is not there is not an error (as Consul).
            if let Some(name) = find_node(reg, &op.node).map(|n| n.node.clone()) {
                reg.deregister(idx, &Deregistration { node: name, ..Default::default() })?;
            }
            Ok(())
        }
        CatalogVerb::DeleteCas => {
            let Some(existing) = find_node(reg, &op.node) else {
                return Err(format!("failed to delete node {label:?}, it doesn't exist"));
            };
            if existing.modify_index != op.node.modify_index {
                return Err(format!("failed to delete node {label:?}, index is stale"));
            }
            let name = existing.node.clone();
            reg.deregister(idx, &Deregistration { node: name, ..Default::default() })?;
            Ok(())
        }
    }
}

pub fn read_service(reg: &Registry, op: &ServiceOp, results: &mut Vec<TxnResultItem>) -> Result<(), String> {
    match reg.service(&op.node, &op.service.id) {
        Some(s) => {
            results.push(TxnResultItem::Service(Box::new(s.clone())));
            Ok(())
        }
        None => Err(format!("service {:?} on node {:?} doesn't exist", op.service.id, op.node)),
    }
}

pub fn apply_service(
    reg: &mut Registry,
    idx: u64,
    op: &ServiceOp,
    results: &mut Vec<TxnResultItem>,
) -> Result<(), String> {
    let (node, id) = (op.node.as_str(), op.service.id.as_str());
    match op.verb {
        CatalogVerb::Get => read_service(reg, op, results),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if reg.node(node).is_none() {
                return Err(format!("failed inserting service: missing node registration for node {node:?}"));
            }
            if op.verb == CatalogVerb::Cas {
                let current = reg.service(node, id).map(|s| s.modify_index);
                if !cas_allows(current, op.service.modify_index) {
                    return Err(format!("failed to set service {id:?} on node {node:?}, index is stale"));
                }
            }
            let mut service = op.service.clone();
            service.create_index = 0;
            service.modify_index = 0;
            let reg_req = Registration {
                node: Node { node: node.to_string(), ..Default::default() },
                service: Some(service),
                skip_node_update: true,
                ..Default::default()
            };
            reg.register(idx, &reg_req)?;
            if let Some(s) = reg.service(node, id) {
                results.push(TxnResultItem::Service(Box::new(s.clone())));
            }
            Ok(())
        }
        CatalogVerb::Delete => {
            reg.deregister(idx, &service_dereg(node, id))?;
            Ok(())
        }
        CatalogVerb::DeleteCas => {
            let Some(existing) = reg.service(node, id) else {
                return Err(format!("failed to delete service {id:?} on node {node:?}, it doesn't exist"));
            };
            if existing.modify_index != op.service.modify_index {
                return Err(format!("failed to delete service {id:?} on node {node:?}, index is stale"));
            }
            reg.deregister(idx, &service_dereg(node, id))?;
            Ok(())
        }
    }
}

fn service_dereg(node: &str, id: &str) -> Deregistration {
    Deregistration { node: node.to_string(), service_id: Some(id.to_string()), check_id: None }
}

fn check_dereg(node: &str, id: &str) -> Deregistration {
    Deregistration { node: node.to_string(), service_id: None, check_id: Some(id.to_string()) }
}

pub fn read_check(reg: &Registry, op: &CheckOp, results: &mut Vec<TxnResultItem>) -> Result<(), String> {
    match reg.check(&op.check.node, &op.check.check_id) {
        Some(c) => {
            results.push(TxnResultItem::Check(Box::new(c.clone())));
            Ok(())
        }
        None => Err(format!("check {:?} on node {:?} doesn't exist", op.check.check_id, op.check.node)),
    }
}

pub fn apply_check(
    reg: &mut Registry,
    idx: u64,
    op: &CheckOp,
    results: &mut Vec<TxnResultItem>,
) -> Result<(), String> {
    let (node, id) = (op.check.node.as_str(), op.check.check_id.as_str());
    match op.verb {
        CatalogVerb::Get => read_check(reg, op, results),
        CatalogVerb::Set | CatalogVerb::Cas => {
            if reg.node(node).is_none() {
                return Err(format!("failed inserting check: missing node registration for node {node:?}"));
            }
            if op.verb == CatalogVerb::Cas {
                let current = reg.check(node, id).map(|c| c.modify_index);
                if !cas_allows(current, op.check.modify_index) {
                    return Err(format!("failed to set check {id:?} on node {node:?}, index is stale"));
                }
            }
            let mut check = op.check.clone();
            check.create_index = 0;
            check.modify_index = 0;
            let reg_req = Registration {
                node: Node { node: node.to_string(), ..Default::default() },
                checks: vec![check],
                skip_node_update: true,
                ..Default::default()
            };
            reg.register(idx, &reg_req)?;
            if let Some(c) = reg.check(node, id) {
                results.push(TxnResultItem::Check(Box::new(c.clone())));
            }
            Ok(())
        }
        CatalogVerb::Delete => {
            reg.deregister(idx, &check_dereg(node, id))?;
            Ok(())
        }
        CatalogVerb::DeleteCas => {
            let Some(existing) = reg.check(node, id) else {
                return Err(format!("failed to delete check {id:?} on node {node:?}, it doesn't exist"));
            };
            if existing.modify_index != op.check.modify_index {
                return Err(format!("failed to delete check {id:?} on node {node:?}, index is stale"));
            }
            reg.deregister(idx, &check_dereg(node, id))?;
            Ok(())
        }
    }
}
