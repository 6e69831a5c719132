//! The service-mesh fields a service instance carries (Consul's
//! `ConnectProxyConfig`, `ServiceConnect`, `Locality`). Data only: nothing
//! here issues certificates or configures a proxy; the catalog stores what
//! was registered and the HTTP layer shows it in Consul's shapes.
//!
//! Free-form `Config` maps are kept as their JSON text: the replicated state
//! is postcard-encoded, which cannot carry self-describing values.

use serde::{Deserialize, Serialize};

/// Service kinds Consul knows besides a typical service ("").
pub const KIND_CONNECT_PROXY: &str = "connect-proxy";
pub const KIND_MESH_GATEWAY: &str = "mesh-gateway";
pub const KIND_INGRESS_GATEWAY: &str = "ingress-gateway";
pub const KIND_TERMINATING_GATEWAY: &str = "terminating-gateway";
pub const KIND_API_GATEWAY: &str = "api-gateway";

/// Whether `kind` is one of Consul's service kinds.
pub fn valid_kind(kind: &str) -> bool {
    matches!(
        kind,
        "" | KIND_CONNECT_PROXY
            | KIND_MESH_GATEWAY
            | KIND_INGRESS_GATEWAY
            | KIND_TERMINATING_GATEWAY
            | KIND_API_GATEWAY
    )
}

/// Whether `kind` is a gateway (Consul's `NodeService.IsGateway`).
pub fn is_gateway(kind: &str) -> bool {
    matches!(kind, KIND_MESH_GATEWAY | KIND_INGRESS_GATEWAY | KIND_TERMINATING_GATEWAY | KIND_API_GATEWAY)
}

/// Consul's `ConnectProxyConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceProxy {
    pub destination_service_name: String,
    pub destination_service_id: String,
    pub local_service_address: String,
    pub local_service_port: u16,
    pub local_service_socket_path: String,
    /// "", "direct" or "transparent".
    pub mode: String,
    /// The opaque `Config` object as JSON text ("" when absent).
    pub config: String,
    pub upstreams: Vec<Upstream>,
    pub mesh_gateway: MeshGateway,
    pub expose: Expose,
    pub transparent_proxy: TransparentProxy,
    pub access_logs: AccessLogs,
}

/// Consul's `Upstream`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Upstream {
    /// "service" (also when empty) or "prepared_query".
    pub destination_type: String,
    pub destination_namespace: String,
    pub destination_partition: String,
    pub destination_peer: String,
    pub destination_name: String,
    pub datacenter: String,
    pub local_bind_address: String,
    pub local_bind_port: u16,
    pub local_bind_socket_path: String,
    pub local_bind_socket_mode: String,
    /// The opaque `Config` object as JSON text ("" when absent).
    pub config: String,
    pub mesh_gateway: MeshGateway,
    pub centrally_configured: bool,
}

/// Consul's `MeshGatewayConfig`: "", "none", "local" or "remote".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeshGateway {
    pub mode: String,
}

/// Consul's `ExposeConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Expose {
    pub checks: bool,
    pub paths: Vec<ExposePath>,
}

/// Consul's `ExposePath`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExposePath {
    pub listener_port: u16,
    pub path: String,
    pub local_path_port: u16,
    pub protocol: String,
    pub parsed_from_check: bool,
}

/// Consul's `TransparentProxyConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransparentProxy {
    pub outbound_listener_port: u16,
    pub dialed_directly: bool,
}

impl TransparentProxy {
    pub fn is_zero(&self) -> bool {
        *self == TransparentProxy::default()
    }
}

/// Consul's `AccessLogsConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessLogs {
    pub enabled: bool,
    pub disable_listener_logs: bool,
    /// "", "file", "stderr" or "stdout".
    pub sink_type: String,
    pub path: String,
    pub json_format: String,
    pub text_format: String,
}

impl AccessLogs {
    pub fn is_zero(&self) -> bool {
        *self == AccessLogs::default()
    }
}

/// Consul's `ServiceConnect` as the catalog keeps it (the
/// `SidecarService` part is registration sugar the agent expands; it is
/// never stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceConnect {
    pub native: bool,
}

/// Consul's `Locality`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Locality {
    pub region: String,
    pub zone: String,
}
