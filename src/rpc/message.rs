//! Read options, response metadata, errors and the small shared types the
//! RPC methods (`method`) carry.
//!
//! Stable wire format: enum variants are only appended, never reordered.

use crate::catalog::types::{HealthCheck, Node, NodeService};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which read guarantee a query asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Consul's default mode. Here it is linearizable (see docs/ARCHITECTURE.md).
    #[default]
    Default,
    /// Any server may answer from its local state.
    Stale,
    /// The leader confirms leadership with a quorum before answering.
    Consistent,
}

impl Consistency {
    /// The value of `X-Consul-Effective-Consistency`.
    pub fn header_value(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

/// Options every read accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOptions {
    /// Block until the result's index exceeds this (0: don't block).
    pub min_index: u64,
    /// How long to block at most (`?wait`); `None` uses the default.
    pub max_wait: Option<Duration>,
    pub consistency: Consistency,
}

/// Metadata every read returns (the `X-Consul-*` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMeta {
    /// Never 0 (Consul rewrites 0 to 1 so clients never busy-loop).
    pub index: u64,
    pub known_leader: bool,
    pub last_contact: Duration,
    pub consistency: Consistency,
    /// The caller's token hid some results (`X-Consul-Results-Filtered-By-Acls`).
    pub filtered_by_acls: bool,
}

/// What can go wrong serving a request. The HTTP layer maps each to
/// Consul's status code and text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RpcError {
    #[error("No cluster leader")]
    NoLeader,
    #[error("No path to datacenter")]
    NoPathToDatacenter,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("agent is shutting down")]
    ShuttingDown,
    /// An ACL endpoint on a cluster without ACLs.
    #[error("ACL support disabled")]
    AclDisabled,
    #[error("{0}")]
    Internal(String),
    /// `disable_coordinates` is set on the server that answered.
    #[error("Coordinate support disabled")]
    CoordinatesDisabled,
    /// A blocking query served in process left its wait to the request's
    /// outermost layer (`server::blocking::serve_parking`), which runs the
    /// request again; never an answer.
    #[error("blocking query parked")]
    Parked,
}

/// Filters shared by catalog and health reads (`?tag`, `?node-meta`, `?passing`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFilter {
    /// Every tag must be present (repeated `?tag=`).
    pub tags: Vec<String>,
    /// Every `key:value` must match the node's meta.
    pub node_meta: Vec<(String, String)>,
    /// Only instances whose every check passes.
    pub passing_only: bool,
    /// The Connect-capable instances for the name (proxies whose
    /// destination it is, Connect-native instances) instead of the
    /// instances named so (`/v1/catalog/connect`, `/v1/health/connect`).
    pub connect: bool,
}

/// One entry of `/v1/health/service/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

/// A prepared query's answer: healthy instances from the datacenter that
/// had some (`failovers`: how many other datacenters were tried).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryExecution {
    pub service: String,
    pub nodes: Vec<ServiceHealth>,
    pub dns_ttl: String,
    pub datacenter: String,
    pub failovers: u32,
}

/// Which Raft RPC an opaque Raft payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    /// Does the receiver still follow the sender's vote? Answered from the
    /// log store without openraft's core (`consensus::reads`), so a
    /// confirmation round never queues behind a log write.
    LeaderCheck,
}

/// One node with everything registered on it: Consul's `NodeInfo`, the
/// entries of `/v1/internal/ui/nodes` (and, summarised per service name,
/// of `/v1/internal/ui/services`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDump {
    pub node: Node,
    pub services: Vec<NodeService>,
    pub checks: Vec<HealthCheck>,
}
