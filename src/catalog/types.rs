//! The catalog's records: nodes, the services on them, and health checks,
//! as Consul's state store keeps them (field for field, in Rust casing).

pub use super::mesh::{Locality, ServiceConnect, ServiceProxy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PASSING: &str = "passing";
pub const WARNING: &str = "warning";
pub const CRITICAL: &str = "critical";

/// The check every node gets from the leader, critical when gossip says the
/// node failed.
pub const SERF_HEALTH: &str = "serfHealth";
/// The node maintenance check's ID.
pub const NODE_MAINT: &str = "_node_maintenance";
/// Prefix of a service maintenance check's ID.
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";

/// Whether a status string is one a check may have.
pub fn valid_status(s: &str) -> bool {
    matches!(s, PASSING | WARNING | CRITICAL)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// Equal apart from the raft indexes.
    pub fn same_content(&self, other: &Node) -> bool {
        self.id == other.id
            && self.node == other.node
            && self.address == other.address
            && self.datacenter == other.datacenter
            && self.tagged_addresses == other.tagged_addresses
            && self.meta == other.meta
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAddress {
    pub address: String,
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub passing: i64,
    pub warning: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

/// A service instance on a node (Consul's `NodeService`).
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
    // Added with the mesh fields: older encodings of this struct decode
    // through `registry::before_mesh` and the `*BeforeMesh` commands.
    pub proxy: ServiceProxy,
    pub connect: ServiceConnect,
    pub locality: Option<Locality>,
}

impl NodeService {
    pub fn same_content(&self, other: &NodeService) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        a.create_index = 0;
        a.modify_index = 0;
        b.create_index = 0;
        b.modify_index = 0;
        a == b
    }
}

/// The parts of a check's definition Consul shows in the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDefinition {
    pub http: String,
    pub tls_server_name: String,
    pub tls_skip_verify: bool,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    pub tcp: String,
    pub udp: String,
    pub grpc: String,
    pub grpc_use_tls: bool,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub deregister_critical_service_after_ns: u64,
}

/// A health check record (Consul's `HealthCheck`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    /// `ttl`, `http`, `tcp`, `script`, ... or "" for serf and catalog checks.
    pub check_type: String,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub definition: CheckDefinition,
    pub create_index: u64,
    pub modify_index: u64,
}

impl HealthCheck {
    pub fn same_content(&self, other: &HealthCheck) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        a.create_index = 0;
        a.modify_index = 0;
        b.create_index = 0;
        b.modify_index = 0;
        a == b
    }
}

/// A catalog registration (Consul's `RegisterRequest`): a node, optionally
/// one service, and any checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub node: Node,
    pub service: Option<NodeService>,
    pub checks: Vec<HealthCheck>,
    /// Don't touch the node's own fields if the node exists.
    pub skip_node_update: bool,
    /// When the node exists, keep its tagged addresses and meta (the
    /// leader's reconcile sets this: the agent owns those fields).
    pub preserve_node_extras: bool,
}

/// A catalog deregistration: the node and everything on it, or one
/// service (with its checks), or one check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistration {
    pub node: String,
    pub service_id: Option<String>,
    pub check_id: Option<String>,
}

/// Health of a set of checks: the worst status wins.
pub fn aggregate<'a>(statuses: impl Iterator<Item = &'a str>) -> &'static str {
    let mut worst = PASSING;
    for s in statuses {
        match s {
            CRITICAL => return CRITICAL,
            WARNING => worst = WARNING,
            PASSING => {}
            // Unknown statuses count as critical: never report health we don't understand.
            _ => return CRITICAL,
        }
    }
    worst
}
