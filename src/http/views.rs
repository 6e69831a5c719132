//! Consul's JSON shapes for catalog records (`Node`, `ServiceNode`,
//! `AgentService`, `HealthCheck`, ...). Field order follows Consul's
//! structs; empty lists are `[]` and empty maps `{}`, never `null`.

use crate::catalog::types::{HealthCheck, Node, NodeService, ServiceAddress};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeJson<'a> {
    #[serde(rename = "ID")]
    pub id: &'a str,
    pub node: &'a str,
    pub address: &'a str,
    pub datacenter: &'a str,
    pub tagged_addresses: &'a BTreeMap<String, String>,
    pub meta: &'a BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl<'a> NodeJson<'a> {
    pub fn new(n: &'a Node) -> Self {
        NodeJson {
            id: &n.id,
            node: &n.node,
            address: &n.address,
            datacenter: &n.datacenter,
            tagged_addresses: &n.tagged_addresses,
            meta: &n.meta,
            create_index: n.create_index,
            modify_index: n.modify_index,
        }
    }
}

fn tagged_json(t: &BTreeMap<String, ServiceAddress>) -> Value {
    let mut m = Map::new();
    for (k, a) in t {
        // Consul's `ServiceAddress` has no JSON tags: whatever case the
        // registration used, the answer says `Address` and `Port`.
        m.insert(k.clone(), json!({"Address": a.address, "Port": a.port}));
    }
    Value::Object(m)
}

/// A service's `Proxy` as the catalog shows it (Consul's
/// `ConnectProxyConfig`; a typical service shows the empty one,
/// `{"Mode":"","MeshGateway":{},"Expose":{}}`).
fn catalog_proxy(s: &NodeService) -> Value {
    super::mesh_views::proxy(&s.proxy, super::mesh_views::Flavor::Catalog)
}

/// A service's `Connect` block (`{}` unless Connect-native).
fn connect_json(s: &NodeService) -> Value {
    if s.connect.native {
        json!({"Native": true})
    } else {
        json!({})
    }
}

/// `/v1/catalog/service/<name>` entries (Consul's `ServiceNode`).
pub fn service_node(n: &Node, s: &NodeService) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(n.id));
    m.insert("Node".into(), json!(n.node));
    m.insert("Address".into(), json!(n.address));
    m.insert("Datacenter".into(), json!(n.datacenter));
    m.insert("TaggedAddresses".into(), json!(n.tagged_addresses));
    m.insert("NodeMeta".into(), json!(n.meta));
    m.insert("ServiceKind".into(), json!(s.kind));
    m.insert("ServiceID".into(), json!(s.id));
    m.insert("ServiceName".into(), json!(s.service));
    m.insert("ServiceTags".into(), json!(s.tags));
    m.insert("ServiceAddress".into(), json!(s.address));
    if !s.tagged_addresses.is_empty() {
        m.insert("ServiceTaggedAddresses".into(), tagged_json(&s.tagged_addresses));
    }
    m.insert("ServiceWeights".into(), json!({"Passing": s.weights.passing, "Warning": s.weights.warning}));
    m.insert("ServiceMeta".into(), json!(s.meta));
    m.insert("ServicePort".into(), json!(s.port));
    if !s.socket_path.is_empty() {
        m.insert("ServiceSocketPath".into(), json!(s.socket_path));
    }
    m.insert("ServiceEnableTagOverride".into(), json!(s.enable_tag_override));
    m.insert("ServiceProxy".into(), catalog_proxy(s));
    m.insert("ServiceConnect".into(), connect_json(s));
    if let Some(l) = &s.locality {
        m.insert("ServiceLocality".into(), super::mesh_views::locality(l));
    }
    m.insert("CreateIndex".into(), json!(s.create_index));
    m.insert("ModifyIndex".into(), json!(s.modify_index));
    Value::Object(m)
}

/// A service as the catalog's node views and the health view show it
/// (Consul's `NodeService`), with raft indexes.
pub fn node_service(s: &NodeService) -> Value {
    let mut m = service_common(s);
    m.insert("Proxy".into(), catalog_proxy(s));
    m.insert("Connect".into(), connect_json(s));
    if let Some(l) = &s.locality {
        m.insert("Locality".into(), super::mesh_views::locality(l));
    }
    m.insert("CreateIndex".into(), json!(s.create_index));
    m.insert("ModifyIndex".into(), json!(s.modify_index));
    Value::Object(m)
}

fn service_common(s: &NodeService) -> Map<String, Value> {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), json!(s.kind));
    }
    m.insert("ID".into(), json!(s.id));
    m.insert("Service".into(), json!(s.service));
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Address".into(), json!(s.address));
    if !s.tagged_addresses.is_empty() {
        m.insert("TaggedAddresses".into(), tagged_json(&s.tagged_addresses));
    }
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), json!(s.port));
    if !s.socket_path.is_empty() {
        m.insert("SocketPath".into(), json!(s.socket_path));
    }
    m.insert("Weights".into(), json!({"Passing": s.weights.passing, "Warning": s.weights.warning}));
    m.insert("EnableTagOverride".into(), json!(s.enable_tag_override));
    m
}

/// A service as `/v1/agent/services` shows it (Consul's `AgentService`).
pub fn agent_service(s: &NodeService, datacenter: &str) -> Value {
    let mut m = service_common(s);
    // Consul attaches Proxy only to proxies and gateways, Connect only to
    // native services.
    if s.kind == crate::catalog::mesh::KIND_CONNECT_PROXY || crate::catalog::mesh::is_gateway(&s.kind) {
        m.insert("Proxy".into(), super::mesh_views::proxy(&s.proxy, super::mesh_views::Flavor::Agent));
    }
    if s.connect.native {
        m.insert("Connect".into(), json!({"Native": true}));
    }
    m.insert("Datacenter".into(), json!(datacenter));
    if let Some(l) = &s.locality {
        m.insert("Locality".into(), super::mesh_views::locality(l));
    }
    Value::Object(m)
}

/// A health check (Consul's `HealthCheck`).
pub fn health_check(c: &HealthCheck) -> Value {
    let mut m = Map::new();
    m.insert("Node".into(), json!(c.node));
    m.insert("CheckID".into(), json!(c.check_id));
    m.insert("Name".into(), json!(c.name));
    m.insert("Status".into(), json!(c.status));
    m.insert("Notes".into(), json!(c.notes));
    m.insert("Output".into(), json!(c.output));
    m.insert("ServiceID".into(), json!(c.service_id));
    m.insert("ServiceName".into(), json!(c.service_name));
    m.insert("ServiceTags".into(), json!(c.service_tags));
    m.insert("Type".into(), json!(c.check_type));
    // Consul's `HealthCheck` always has these two strings (no `omitempty`).
    // Checks the agent runs (they have a type) get them from the check
    // definition's durations, so an unset one reads Go's `"0s"`; serf and
    // catalog-registered checks leave them `""`.
    let agent_run = !c.check_type.is_empty();
    let duration = |ns: u64| match ns {
        0 if agent_run => "0s".to_string(),
        0 => String::new(),
        ns => crate::duration::format_nanos(ns as i128),
    };
    m.insert("Interval".into(), json!(duration(c.interval_ns)));
    m.insert("Timeout".into(), json!(duration(c.timeout_ns)));
    m.insert("ExposedPort".into(), json!(0));
    m.insert("Definition".into(), definition(c));
    m.insert("CreateIndex".into(), json!(c.create_index));
    m.insert("ModifyIndex".into(), json!(c.modify_index));
    Value::Object(m)
}

fn definition(c: &HealthCheck) -> Value {
    let d = &c.definition;
    let mut m = Map::new();
    let mut put_str = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    put_str("HTTP", &d.http);
    put_str("TLSServerName", &d.tls_server_name);
    put_str("Method", &d.method);
    put_str("Body", &d.body);
    put_str("TCP", &d.tcp);
    put_str("UDP", &d.udp);
    put_str("GRPC", &d.grpc);
    if d.tls_skip_verify {
        m.insert("TLSSkipVerify".into(), json!(true));
    }
    if !d.header.is_empty() {
        m.insert("Header".into(), json!(d.header));
    }
    if d.grpc_use_tls {
        m.insert("GRPCUseTLS".into(), json!(true));
    }
    for (k, ns) in [
        ("Interval", d.interval_ns),
        ("Timeout", d.timeout_ns),
        ("DeregisterCriticalServiceAfter", d.deregister_critical_service_after_ns),
    ] {
        if ns > 0 {
            m.insert(k.into(), json!(crate::duration::format_nanos(ns as i128)));
        }
    }
    Value::Object(m)
}
