//! The schema of every endpoint that takes `?filter=`: the selectors
//! Consul's API documentation lists for it (its Go field names and types),
//! mapped onto the JSON our `http::views` render. Fields our views omit when
//! empty (`Kind`, `SocketPath`, `ServiceProxy.*`, ...) still resolve: they
//! read as their zero value, as the Go struct field would.

use super::schema::{Field, Kind, Schema};
use std::sync::LazyLock;

fn string(name: &str) -> Field {
    Field::new(name, Kind::String)
}

fn int(name: &str) -> Field {
    Field::new(name, Kind::Int)
}

fn uint(name: &str) -> Field {
    Field::new(name, Kind::Uint)
}

fn boolean(name: &str) -> Field {
    Field::new(name, Kind::Bool)
}

fn string_list(name: &str) -> Field {
    Field::new(name, Kind::List(Box::new(Kind::String)))
}

fn string_map(name: &str) -> Field {
    Field::new(name, Kind::Map(Box::new(Kind::String)))
}

fn object(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, Kind::Struct(fields))
}

/// Consul's `Node` (catalog nodes; `Node` of health entries).
fn node_fields() -> Vec<Field> {
    vec![
        string("ID"),
        string("Node"),
        string("Address"),
        string("Datacenter"),
        string_map("TaggedAddresses"),
        string_map("Meta"),
    ]
}

/// `ServiceAddress`: Go names `Address`/`Port`, JSON keys `address`/`port`.
fn service_tagged_addresses(name: &str) -> Field {
    let addr = Kind::Struct(vec![
        Field::renamed("Address", "address", Kind::String),
        Field::renamed("Port", "port", Kind::Int),
    ]);
    Field::new(name, Kind::Map(Box::new(addr)))
}

fn weights(name: &str) -> Field {
    object(name, vec![int("Passing"), int("Warning")])
}

fn mesh_gateway() -> Field {
    object("MeshGateway", vec![string("Mode")])
}

/// Consul's `ConnectProxyConfig` (its opaque `Config` maps are not
/// filterable in Consul either).
fn proxy(name: &str) -> Field {
    let upstream = Kind::Struct(vec![
        string("DestinationType"),
        string("DestinationNamespace"),
        string("DestinationPartition"),
        string("DestinationPeer"),
        string("DestinationName"),
        string("Datacenter"),
        string("LocalBindAddress"),
        int("LocalBindPort"),
        string("LocalBindSocketPath"),
        string("LocalBindSocketMode"),
        mesh_gateway(),
        boolean("CentrallyConfigured"),
    ]);
    let expose_path = Kind::Struct(vec![
        int("ListenerPort"),
        string("Path"),
        int("LocalPathPort"),
        string("Protocol"),
        boolean("ParsedFromCheck"),
    ]);
    object(
        name,
        vec![
            string("DestinationServiceName"),
            string("DestinationServiceID"),
            string("LocalServiceAddress"),
            int("LocalServicePort"),
            string("LocalServiceSocketPath"),
            string("Mode"),
            object("TransparentProxy", vec![int("OutboundListenerPort"), boolean("DialedDirectly")]),
            mesh_gateway(),
            Field::new("Upstreams", Kind::List(Box::new(upstream))),
            object("Expose", vec![boolean("Checks"), Field::new("Paths", Kind::List(Box::new(expose_path)))]),
        ],
    )
}

/// Consul's `Locality`.
fn locality(name: &str) -> Field {
    object(name, vec![string("Region"), string("Zone")])
}

fn connect(name: &str) -> Field {
    object(name, vec![boolean("Native")])
}

/// Consul's `NodeService` (catalog node views; `Service` of health entries).
fn node_service_fields() -> Vec<Field> {
    vec![
        string("Kind"),
        string("ID"),
        string("Service"),
        string_list("Tags"),
        string("Address"),
        service_tagged_addresses("TaggedAddresses"),
        string_map("Meta"),
        int("Port"),
        string("SocketPath"),
        weights("Weights"),
        boolean("EnableTagOverride"),
        proxy("Proxy"),
        connect("Connect"),
        locality("Locality"),
    ]
}

/// Consul's `HealthCheck`.
fn health_check_fields() -> Vec<Field> {
    vec![
        string("Node"),
        string("CheckID"),
        string("Name"),
        string("Status"),
        string("Notes"),
        string("Output"),
        string("ServiceID"),
        string("ServiceName"),
        string_list("ServiceTags"),
        string("Type"),
        string("Interval"),
        string("Timeout"),
        int("ExposedPort"),
    ]
}

static NODE: LazyLock<Schema> = LazyLock::new(|| Schema::new(node_fields()));

static SERVICE_NODE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        string("ID"),
        string("Node"),
        string("Address"),
        string("Datacenter"),
        string_map("TaggedAddresses"),
        string_map("NodeMeta"),
        string("ServiceKind"),
        string("ServiceID"),
        string("ServiceName"),
        string_list("ServiceTags"),
        string("ServiceAddress"),
        service_tagged_addresses("ServiceTaggedAddresses"),
        weights("ServiceWeights"),
        string_map("ServiceMeta"),
        int("ServicePort"),
        string("ServiceSocketPath"),
        boolean("ServiceEnableTagOverride"),
        proxy("ServiceProxy"),
        connect("ServiceConnect"),
        locality("ServiceLocality"),
    ])
});

static NODE_SERVICE: LazyLock<Schema> = LazyLock::new(|| Schema::new(node_service_fields()));

static AGENT_SERVICE: LazyLock<Schema> = LazyLock::new(|| {
    let mut fields = node_service_fields();
    fields.push(string("Datacenter"));
    Schema::new(fields)
});

static HEALTH_CHECK: LazyLock<Schema> = LazyLock::new(|| Schema::new(health_check_fields()));

static SERVICE_HEALTH: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        object("Node", node_fields()),
        object("Service", node_service_fields()),
        Field::new("Checks", Kind::List(Box::new(Kind::Struct(health_check_fields())))),
    ])
});

static MEMBER: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        string("Name"),
        string("Addr"),
        uint("Port"),
        string_map("Tags"),
        int("Status"),
        uint("ProtocolMin"),
        uint("ProtocolMax"),
        uint("ProtocolCur"),
        uint("DelegateMin"),
        uint("DelegateMax"),
        uint("DelegateCur"),
    ])
});

static INTENTION: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        string("ID"),
        string("Description"),
        string("SourceNS"),
        string("SourceName"),
        string("DestinationNS"),
        string("DestinationName"),
        string("SourcePartition"),
        string("DestinationPartition"),
        string("SourcePeer"),
        string("SourceType"),
        string("Action"),
        int("Precedence"),
        string_map("Meta"),
        uint("CreateIndex"),
        uint("ModifyIndex"),
    ])
});

/// `/v1/connect/intentions`: each intention (Consul's `Intention`).
pub fn intention() -> &'static Schema {
    &INTENTION
}

/// `/v1/catalog/nodes`: each node.
pub fn node() -> &'static Schema {
    &NODE
}

/// `/v1/catalog/service/<name>` and `/v1/catalog/services`: each
/// `ServiceNode` (services are filtered per instance, then grouped).
pub fn service_node() -> &'static Schema {
    &SERVICE_NODE
}

/// `/v1/catalog/node/<node>` and `/v1/catalog/node-services/<node>`: each
/// service of the node.
pub fn node_service() -> &'static Schema {
    &NODE_SERVICE
}

/// `/v1/agent/services`: each local service.
pub fn agent_service() -> &'static Schema {
    &AGENT_SERVICE
}

/// `/v1/health/node`, `/v1/health/checks`, `/v1/health/state`,
/// `/v1/agent/checks`: each check.
pub fn health_check() -> &'static Schema {
    &HEALTH_CHECK
}

/// `/v1/health/service/<name>`: each `{Node, Service, Checks}` entry.
pub fn service_health() -> &'static Schema {
    &SERVICE_HEALTH
}

/// `/v1/agent/members`: each gossip member.
pub fn member() -> &'static Schema {
    &MEMBER
}
