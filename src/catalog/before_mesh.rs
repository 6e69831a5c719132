//! The encodings written before services carried mesh fields (`Proxy`,
//! `Connect`, `Locality`). postcard has no field tags, so a struct that grew
//! fields cannot read its old bytes; these mirrors of the old layouts can,
//! and convert into today's types (the new fields empty). Used for Raft log
//! entries (`Command::RegisterBeforeMesh`; `txn::TxnOpBeforeMesh` for
//! `Command::TxnBeforeMesh`) and snapshots (`registry::before_mesh`). Never
//! written any more.

use super::types::{self, HealthCheck, Node, ServiceAddress, Weights};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `NodeService` as encoded before the mesh fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeService {
    pub kind: String,
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub socket_path: String,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

impl From<NodeService> for types::NodeService {
    fn from(s: NodeService) -> Self {
        types::NodeService {
            kind: s.kind,
            id: s.id,
            service: s.service,
            tags: s.tags,
            address: s.address,
            tagged_addresses: s.tagged_addresses,
            meta: s.meta,
            port: s.port,
            socket_path: s.socket_path,
            weights: s.weights,
            enable_tag_override: s.enable_tag_override,
            create_index: s.create_index,
            modify_index: s.modify_index,
            ..Default::default()
        }
    }
}

/// `Registration` as encoded before the mesh fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub node: Node,
    pub service: Option<NodeService>,
    pub checks: Vec<HealthCheck>,
    pub skip_node_update: bool,
    pub preserve_node_extras: bool,
}

impl From<Registration> for types::Registration {
    fn from(r: Registration) -> Self {
        types::Registration {
            node: r.node,
            service: r.service.map(Into::into),
            checks: r.checks,
            skip_node_update: r.skip_node_update,
            preserve_node_extras: r.preserve_node_extras,
        }
    }
}
