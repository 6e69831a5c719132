//! Consul's JSON shapes of the mesh fields of a service: `Proxy`
//! (`ConnectProxyConfig` in catalog answers, `AgentServiceConnectProxyConfig`
//! in agent answers: they differ in which empty fields they omit), its
//! upstreams, and `Locality`.

use crate::catalog::mesh::{AccessLogs, Locality, MeshGateway, ServiceProxy, Upstream};
use serde_json::{json, Map, Value};

/// Which of Consul's two proxy structs to imitate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `structs.ConnectProxyConfig` (catalog, health): `Mode` always present,
    /// upstreams with `DestinationType`, `DestinationName`, `Datacenter`.
    Catalog,
    /// `api.AgentServiceConnectProxyConfig` (`/v1/agent/services`): `Mode`
    /// omitted when empty, upstream `Datacenter` too.
    Agent,
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: &str) {
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

fn put_port(m: &mut Map<String, Value>, k: &str, v: u16) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

/// An opaque config object stored as JSON text.
fn opaque(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    serde_json::from_str(text).ok()
}

fn mesh_gateway(g: &MeshGateway) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "Mode", &g.mode);
    Value::Object(m)
}

fn access_logs(a: &AccessLogs) -> Value {
    let mut m = Map::new();
    if a.enabled {
        m.insert("Enabled".into(), json!(true));
    }
    if a.disable_listener_logs {
        m.insert("DisableListenerLogs".into(), json!(true));
    }
    put_str(&mut m, "Type", &a.sink_type);
    put_str(&mut m, "Path", &a.path);
    put_str(&mut m, "JSONFormat", &a.json_format);
    put_str(&mut m, "TextFormat", &a.text_format);
    Value::Object(m)
}

fn transparent_proxy(p: &ServiceProxy) -> Value {
    let mut m = Map::new();
    put_port(&mut m, "OutboundListenerPort", p.transparent_proxy.outbound_listener_port);
    if p.transparent_proxy.dialed_directly {
        m.insert("DialedDirectly".into(), json!(true));
    }
    Value::Object(m)
}

pub fn upstream(u: &Upstream, flavor: Flavor) -> Value {
    let mut m = Map::new();
    match flavor {
        Flavor::Catalog => {
            m.insert("DestinationType".into(), json!(u.destination_type));
        }
        Flavor::Agent => put_str(&mut m, "DestinationType", &u.destination_type),
    }
    put_str(&mut m, "DestinationNamespace", &u.destination_namespace);
    put_str(&mut m, "DestinationPartition", &u.destination_partition);
    put_str(&mut m, "DestinationPeer", &u.destination_peer);
    m.insert("DestinationName".into(), json!(u.destination_name));
    match flavor {
        Flavor::Catalog => {
            m.insert("Datacenter".into(), json!(u.datacenter));
        }
        Flavor::Agent => put_str(&mut m, "Datacenter", &u.datacenter),
    }
    put_str(&mut m, "LocalBindAddress", &u.local_bind_address);
    put_port(&mut m, "LocalBindPort", u.local_bind_port);
    put_str(&mut m, "LocalBindSocketPath", &u.local_bind_socket_path);
    put_str(&mut m, "LocalBindSocketMode", &u.local_bind_socket_mode);
    if let Some(c) = opaque(&u.config) {
        m.insert("Config".into(), c);
    }
    m.insert("MeshGateway".into(), mesh_gateway(&u.mesh_gateway));
    if u.centrally_configured {
        m.insert("CentrallyConfigured".into(), json!(true));
    }
    Value::Object(m)
}

fn expose(p: &ServiceProxy) -> Value {
    let mut m = Map::new();
    if p.expose.checks {
        m.insert("Checks".into(), json!(true));
    }
    if !p.expose.paths.is_empty() {
        let paths: Vec<Value> = p
            .expose
            .paths
            .iter()
            .map(|x| {
                let mut pm = Map::new();
                put_port(&mut pm, "ListenerPort", x.listener_port);
                put_str(&mut pm, "Path", &x.path);
                put_port(&mut pm, "LocalPathPort", x.local_path_port);
                put_str(&mut pm, "Protocol", &x.protocol);
                if x.parsed_from_check {
                    pm.insert("ParsedFromCheck".into(), json!(true));
                }
                Value::Object(pm)
            })
            .collect();
        m.insert("Paths".into(), Value::Array(paths));
    }
    Value::Object(m)
}

/// A service's `Proxy` block.
pub fn proxy(p: &ServiceProxy, flavor: Flavor) -> Value {
    let mut m = Map::new();
    // Consul's catalog struct marshals these two first (they are fields of
    // its MarshalJSON wrapper), and only when set.
    if flavor == Flavor::Catalog {
        if !p.transparent_proxy.is_zero() {
            m.insert("TransparentProxy".into(), transparent_proxy(p));
        }
        if !p.access_logs.is_zero() {
            m.insert("AccessLogs".into(), access_logs(&p.access_logs));
        }
    }
    put_str(&mut m, "DestinationServiceName", &p.destination_service_name);
    put_str(&mut m, "DestinationServiceID", &p.destination_service_id);
    put_str(&mut m, "LocalServiceAddress", &p.local_service_address);
    put_port(&mut m, "LocalServicePort", p.local_service_port);
    put_str(&mut m, "LocalServiceSocketPath", &p.local_service_socket_path);
    match flavor {
        Flavor::Catalog => {
            m.insert("Mode".into(), json!(p.mode));
        }
        Flavor::Agent => {
            put_str(&mut m, "Mode", &p.mode);
            if !p.transparent_proxy.is_zero() {
                m.insert("TransparentProxy".into(), transparent_proxy(p));
            }
        }
    }
    if let Some(c) = opaque(&p.config) {
        m.insert("Config".into(), c);
    }
    if !p.upstreams.is_empty() {
        m.insert("Upstreams".into(), p.upstreams.iter().map(|u| upstream(u, flavor)).collect());
    }
    m.insert("MeshGateway".into(), mesh_gateway(&p.mesh_gateway));
    m.insert("Expose".into(), expose(p));
    if flavor == Flavor::Agent && !p.access_logs.is_zero() {
        m.insert("AccessLogs".into(), access_logs(&p.access_logs));
    }
    Value::Object(m)
}

pub fn locality(l: &Locality) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "Region", &l.region);
    put_str(&mut m, "Zone", &l.zone);
    Value::Object(m)
}
