//! The catalog as the DNS server sees it: a trait the agent implements.
//!
//! Owns: the data shapes the DNS layer reads (instances, nodes, reverse hits)
//! and the error kinds that decide the response code. Must not know how the
//! catalog is stored or replicated; the DNS layer never writes through it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A boxed, sendable future: keeps the trait object-safe without a macro.
pub type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Aggregate health of one service instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Passing,
    Warning,
    Critical,
}

/// One registered instance of a service, joined with its node.
#[derive(Clone, Debug)]
pub struct ServiceInstance {
    pub node: String,
    pub node_address: String,
    pub datacenter: String,
    pub node_meta: BTreeMap<String, String>,
    pub node_tagged_addresses: BTreeMap<String, String>,
    pub service_id: String,
    pub service_name: String,
    /// "" = use `node_address`; may be an IP or a hostname.
    pub service_address: String,
    pub service_port: u16,
    pub service_tags: Vec<String>,
    pub weight_passing: u32,
    pub weight_warning: u32,
    /// Aggregate of the node's and the service's checks.
    pub health: Health,
}

/// A catalog node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub meta: BTreeMap<String, String>,
    pub tagged_addresses: BTreeMap<String, String>,
}

/// Why the catalog could not answer. Decides the DNS response code:
/// `NoPathToDatacenter` → NXDOMAIN, everything else → SERVFAIL.
#[derive(Clone, Debug)]
pub enum BackendError {
    NoPathToDatacenter,
    NoLeader,
    Other(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::NoPathToDatacenter => f.write_str("No path to datacenter"),
            BackendError::NoLeader => f.write_str("No cluster leader"),
            BackendError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for BackendError {}

/// What an address maps back to, for PTR answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReverseHit {
    Node { node: String, datacenter: String },
    Service { service: String, datacenter: String },
}

/// The catalog reads the DNS server needs.
///
/// Names arrive lowercased (DNS is case-insensitive); implementations should
/// match service, node and datacenter names case-insensitively.
pub trait DnsBackend: Send + Sync + 'static {
    /// The agent's own datacenter, used when a name carries none.
    fn local_datacenter(&self) -> String;

    /// All instances of `service` in `dc` (None = local), any health; `index`
    /// is the catalog index of the result, used to cache built answers: it
    /// must change whenever any instance, its node or its checks change
    /// (the DNS layer re-renders only when the index differs). Tag
    /// filtering is done by the DNS layer.
    #[allow(clippy::type_complexity)]
    fn service_instances<'a>(
        &'a self,
        service: &'a str,
        dc: Option<&'a str>,
        allow_stale: bool,
    ) -> BoxFut<'a, Result<(u64, Arc<Vec<ServiceInstance>>), BackendError>>;

    /// The index `service_instances` would report right now, if it can be
    /// had without fetching the instances (a server reading its own state
    /// for a stale-allowed lookup). Lets the DNS layer answer from a cached
    /// answer set without copying every instance per query. `None`: unknown,
    /// fetch the instances.
    fn service_index(&self, _service: &str, _dc: Option<&str>, _allow_stale: bool) -> Option<u64> {
        None
    }

    /// Changes whenever what the lookups' token may read could have changed
    /// (another token, another ACL state); cached answers are kept per value.
    fn acl_generation(&self) -> u64 {
        0
    }

    /// One node by name in `dc` (None = local); `Ok(None)` when unknown.
    fn node<'a>(
        &'a self,
        name: &'a str,
        dc: Option<&'a str>,
        allow_stale: bool,
    ) -> BoxFut<'a, Result<Option<NodeInfo>, BackendError>>;

    /// Reverse lookup: the first node whose address is `ip`, else the first
    /// service instance whose service address is `ip`.
    fn reverse<'a>(&'a self, ip: IpAddr) -> BoxFut<'a, Result<Option<ReverseHit>, BackendError>>;

    /// Server nodes of the local datacenter (for NS records and the SOA's glue).
    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<NodeInfo>, BackendError>>;

    /// Executes the prepared query `name` (name or ID) as asked from `dc`
    /// (None = local); `Ok(None)` when no such query exists. `source` is
    /// the DNS client's address (its EDNS client subnet when it sent one),
    /// which a query with `Near = "_ip"` sorts by.
    fn prepared_query<'a>(
        &'a self,
        _name: &'a str,
        _dc: Option<&'a str>,
        _allow_stale: bool,
        _source: Option<IpAddr>,
    ) -> BoxFut<'a, Result<Option<PreparedAnswer>, BackendError>> {
        Box::pin(async { Ok(None) })
    }
}

/// What a prepared query answered, for DNS.
#[derive(Clone, Debug, Default)]
pub struct PreparedAnswer {
    pub service: String,
    /// Where the instances came from (after any failover).
    pub datacenter: String,
    /// Healthy instances, already ordered by the query (near or shuffled):
    /// DNS keeps this order.
    pub instances: Vec<ServiceInstance>,
    /// The query's `DNS.TTL`, if it sets one.
    pub ttl: Option<std::time::Duration>,
}
