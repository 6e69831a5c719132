//! Request options, response metadata and errors shared by every endpoint,
//! and the typed requests and responses the server RPC port carries
//! (client agents forwarding to servers, followers forwarding to the
//! leader, and Raft's own traffic as opaque bytes).
//!
//! Stable wire format: variants are only appended, never reordered.

use crate::catalog::sessions::Session;
use crate::catalog::txn::{TxnOp, TxnOutcome};
use crate::catalog::types::{Deregistration, HealthCheck, Node, NodeService, Registration};
use crate::catalog::{Command, CommandResult, KvEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOptions {
    /// Block until the result's index exceeds this (0: don't block).
    pub min_index: u64,
    /// How long to block at most (`?wait`); `None` uses the default.
    pub max_wait: Option<Duration>,
    pub consistency: Consistency,
    pub token: Option<String>,
}

/// Metadata every read returns (the `X-Consul-*` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMeta {
    /// Never 0 (Consul rewrites 0 to 1 so clients never busy-loop).
    pub index: u64,
    pub known_leader: bool,
    pub last_contact: Duration,
    pub consistency: Consistency,
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
    #[error("{0}")]
    Internal(String),
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
}

/// One entry of `/v1/health/service/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

/// Which Raft RPC an opaque Raft payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// Everything one agent can ask a server.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Ping,
    /// Raft traffic between servers; the payload is encoded by `consensus::network`.
    /// A Raft RPC for the server whose Raft id is the middle field: a
    /// server that came back with a new ID at the same address must not
    /// answer traffic meant for its old self.
    Raft(RaftRpc, u64, Vec<u8>),
    /// A follower forwards a write to the leader.
    Propose(Command),
    /// A follower asks the leader to confirm leadership and return the index
    /// a linearizable read must wait for.
    ReadIndex,
    KvGet {
        key: String,
        opts: QueryOptions,
    },
    KvList {
        prefix: String,
        opts: QueryOptions,
    },
    KvKeys {
        prefix: String,
        separator: Option<String>,
        opts: QueryOptions,
    },
    KvApply(Command),
    Txn {
        ops: Vec<TxnOp>,
        opts: QueryOptions,
    },
    CatalogRegister(Registration),
    CatalogDeregister(Deregistration),
    CatalogNodes {
        node_meta: Vec<(String, String)>,
        opts: QueryOptions,
    },
    CatalogServices {
        node_meta: Vec<(String, String)>,
        opts: QueryOptions,
    },
    CatalogService {
        name: String,
        filter: ServiceFilter,
        opts: QueryOptions,
    },
    CatalogNode {
        name: String,
        opts: QueryOptions,
    },
    HealthService {
        name: String,
        filter: ServiceFilter,
        opts: QueryOptions,
    },
    HealthNode {
        name: String,
        opts: QueryOptions,
    },
    HealthChecks {
        service: String,
        node_meta: Vec<(String, String)>,
        opts: QueryOptions,
    },
    HealthState {
        state: String,
        node_meta: Vec<(String, String)>,
        opts: QueryOptions,
    },
    StatusLeader,
    StatusPeers,
    SessionCreate(Session),
    SessionDestroy(String),
    SessionInfo {
        id: String,
        opts: QueryOptions,
    },
    SessionNode {
        node: String,
        opts: QueryOptions,
    },
    SessionList {
        opts: QueryOptions,
    },
    SessionRenew(String),
    /// Removes a server from the Raft configuration (sent to the leader).
    RaftRemovePeer {
        id: Option<String>,
        address: Option<String>,
    },
    /// What an IP address belongs to (DNS PTR): a node, else a service.
    CatalogReverse {
        ip: String,
        opts: QueryOptions,
    },
    /// The Raft configuration (`?stale` answers locally).
    OperatorRaftConfiguration {
        opts: QueryOptions,
    },
    /// The stored autopilot configuration, or the leader's file settings.
    AutopilotGetConfig {
        opts: QueryOptions,
    },
    AutopilotSetConfig {
        config: crate::catalog::operator::AutopilotConfig,
        cas: Option<u64>,
    },
    /// Autopilot's health view (answered by the leader).
    AutopilotHealth,
    /// A request one server forwarded to the server it believes leads:
    /// served only if that is still true, and never forwarded again (so
    /// stale views can't bounce a request between servers).
    LeaderOnly(Box<Request>),
    /// A request for another datacenter (`?dc=`): a server relays the inner
    /// request to a server of `dc` found in the WAN pool.
    Forward {
        dc: String,
        req: Box<Request>,
    },
    /// Every datacenter this server knows over the WAN (`Texts`).
    Datacenters,
    /// Broadcast an encoded user event in this server's LAN pool (a
    /// `?dc=` event fired in another datacenter).
    EventFire {
        serf_name: String,
        body: Vec<u8>,
    },
    /// The encoded state at the applied index (`/v1/snapshot` GET).
    SnapshotSave {
        opts: QueryOptions,
    },
    /// Replaces the state with an encoded one (`/v1/snapshot` PUT).
    SnapshotRestore {
        state: bytes::Bytes,
    },
}

/// The answer to a `Request`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Pong,
    Raft(Vec<u8>),
    Result(CommandResult),
    ReadIndex(u64),
    KvEntry(QueryMeta, Option<KvEntry>),
    KvEntries(QueryMeta, Vec<KvEntry>),
    Keys(QueryMeta, Vec<String>),
    Bool(bool),
    Txn(Option<QueryMeta>, TxnOutcome),
    Unit,
    Nodes(QueryMeta, Vec<Node>),
    /// Shared: the server caches it per services-table index.
    Services(QueryMeta, std::sync::Arc<BTreeMap<String, Vec<String>>>),
    ServiceNodes(QueryMeta, Vec<(Node, NodeService)>),
    NodeServices(QueryMeta, Option<(Node, Vec<NodeService>)>),
    ServiceHealth(QueryMeta, Vec<ServiceHealth>),
    Checks(QueryMeta, Vec<HealthCheck>),
    Text(String),
    Texts(Vec<String>),
    Error(RpcError),
    Sessions(QueryMeta, Vec<Session>),
    /// `(is_node, name, datacenter)` of a reverse lookup.
    Reverse(Option<(bool, String, String)>),
    RaftConfiguration(super::operator::RaftConfiguration),
    AutopilotConfig(crate::catalog::operator::AutopilotConfig),
    AutopilotHealth(super::operator::AutopilotHealth),
    /// `(meta, raft index, raft term, encoded state)` of a snapshot.
    Snapshot(QueryMeta, u64, u64, bytes::Bytes),
}

impl Response {
    /// A response of an unexpected kind, as an error.
    pub fn unexpected(self) -> RpcError {
        match self {
            Response::Error(e) => e,
            other => RpcError::Internal(format!("unexpected RPC response {}", other.kind_name())),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Response::Pong => "Pong",
            Response::Raft(_) => "Raft",
            Response::Result(_) => "Result",
            Response::ReadIndex(_) => "ReadIndex",
            Response::KvEntry(..) => "KvEntry",
            Response::KvEntries(..) => "KvEntries",
            Response::Keys(..) => "Keys",
            Response::Bool(_) => "Bool",
            Response::Txn(..) => "Txn",
            Response::Unit => "Unit",
            Response::Nodes(..) => "Nodes",
            Response::Services(..) => "Services",
            Response::ServiceNodes(..) => "ServiceNodes",
            Response::NodeServices(..) => "NodeServices",
            Response::ServiceHealth(..) => "ServiceHealth",
            Response::Checks(..) => "Checks",
            Response::Text(_) => "Text",
            Response::Texts(_) => "Texts",
            Response::Error(_) => "Error",
            Response::Sessions(..) => "Sessions",
            Response::Reverse(..) => "Reverse",
            Response::RaftConfiguration(..) => "RaftConfiguration",
            Response::AutopilotConfig(..) => "AutopilotConfig",
            Response::AutopilotHealth(..) => "AutopilotHealth",
            Response::Snapshot(..) => "Snapshot",
        }
    }
}
