//! The mesh parts of a service definition (`Proxy`, `Connect`, `Locality`):
//! read from JSON as Consul reads them (CamelCase or snake_case keys, any
//! case; unknown keys ignored as Consul's HTTP decoder does), validated with
//! Consul's rules and texts, and the `connect.sidecar_service` sugar expanded
//! into the `<name>-sidecar-proxy` registration with Consul's defaults.

use super::{CheckDef, ServiceDef};
use crate::catalog::mesh::{
    is_gateway, AccessLogs, Expose, ExposePath, Locality, MeshGateway, ServiceProxy, TransparentProxy,
    Upstream, KIND_API_GATEWAY, KIND_CONNECT_PROXY, KIND_INGRESS_GATEWAY,
};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A JSON object whose keys match ignoring case, `_` and `-`.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn norm(k: &str) -> String {
    k.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str) -> Result<Option<Obj<'a>>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Object(map) => Ok(Some(Obj { map, path: path.to_string() })),
            other => Err(format!("{path}: invalid type: {}, expected an object", type_name(other))),
        }
    }

    fn get(&self, name: &str) -> Option<(&'a Value, String)> {
        let want = norm(name);
        self.map
            .iter()
            .find(|(k, v)| norm(k) == want && !v.is_null())
            .map(|(_, v)| (v, format!("{}.{name}", self.path)))
    }

    fn str(&self, name: &str) -> Result<String, String> {
        match self.get(name) {
            None => Ok(String::new()),
            Some((Value::String(s), _)) => Ok(s.clone()),
            Some((v, p)) => Err(format!("{p}: invalid type: {}, expected a string", type_name(v))),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some((Value::Bool(b), _)) => Ok(*b),
            Some((v, p)) => Err(format!("{p}: invalid type: {}, expected a boolean", type_name(v))),
        }
    }

    /// An integer field that must fit a port (0 = unset).
    fn port(&self, name: &str) -> Result<u16, String> {
        match self.get(name) {
            None => Ok(0),
            Some((Value::Number(n), p)) => match n.as_i64() {
                Some(i) => u16::try_from(i).map_err(|_| format!("{p}: invalid port {i}")),
                None => Err(format!("{p}: invalid type: number {n}, expected an integer")),
            },
            Some((v, p)) => Err(format!("{p}: invalid type: {}, expected an integer", type_name(v))),
        }
    }

    /// An opaque object kept as JSON text ("" when absent).
    fn opaque(&self, name: &str) -> Result<String, String> {
        match self.get(name) {
            None => Ok(String::new()),
            Some((v @ Value::Object(_), _)) => Ok(v.to_string()),
            Some((v, p)) => Err(format!("{p}: invalid type: {}, expected an object", type_name(v))),
        }
    }

    fn obj(&self, name: &str) -> Result<Option<Obj<'a>>, String> {
        match self.get(name) {
            None => Ok(None),
            Some((v, p)) => Obj::new(v, &p),
        }
    }

    fn list(&self, name: &str) -> Result<Vec<(&'a Value, String)>, String> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some((Value::Array(items), p)) => {
                Ok(items.iter().enumerate().map(|(i, v)| (v, format!("{p}[{i}]"))).collect())
            }
            Some((v, p)) => Err(format!("{p}: invalid type: {}, expected an array", type_name(v))),
        }
    }
}

fn mesh_gateway(o: Option<Obj>) -> Result<MeshGateway, String> {
    Ok(match o {
        None => MeshGateway::default(),
        Some(o) => MeshGateway { mode: o.str("Mode")? },
    })
}

fn upstream(v: &Value, path: &str) -> Result<Upstream, String> {
    let Some(o) = Obj::new(v, path)? else { return Ok(Upstream::default()) };
    Ok(Upstream {
        destination_type: o.str("DestinationType")?,
        destination_namespace: o.str("DestinationNamespace")?,
        destination_partition: o.str("DestinationPartition")?,
        destination_peer: o.str("DestinationPeer")?,
        destination_name: o.str("DestinationName")?,
        datacenter: o.str("Datacenter")?,
        local_bind_address: o.str("LocalBindAddress")?,
        local_bind_port: o.port("LocalBindPort")?,
        local_bind_socket_path: o.str("LocalBindSocketPath")?,
        local_bind_socket_mode: o.str("LocalBindSocketMode")?,
        config: o.opaque("Config")?,
        mesh_gateway: mesh_gateway(o.obj("MeshGateway")?)?,
        centrally_configured: o.bool("CentrallyConfigured")?,
    })
}

/// Reads a `Proxy` block (`ConnectProxyConfig`).
pub fn parse_proxy(v: &Value) -> Result<ServiceProxy, String> {
    let Some(o) = Obj::new(v, "Proxy")? else { return Ok(ServiceProxy::default()) };
    let mut upstreams = Vec::new();
    for (u, p) in o.list("Upstreams")? {
        upstreams.push(upstream(u, &p)?);
    }
    let expose = match o.obj("Expose")? {
        None => Expose::default(),
        Some(e) => {
            let mut paths = Vec::new();
            for (pv, pp) in e.list("Paths")? {
                let Some(po) = Obj::new(pv, &pp)? else { continue };
                paths.push(ExposePath {
                    listener_port: po.port("ListenerPort")?,
                    path: po.str("Path")?,
                    local_path_port: po.port("LocalPathPort")?,
                    protocol: po.str("Protocol")?,
                    parsed_from_check: po.bool("ParsedFromCheck")?,
                });
            }
            Expose { checks: e.bool("Checks")?, paths }
        }
    };
    let transparent_proxy = match o.obj("TransparentProxy")? {
        None => TransparentProxy::default(),
        Some(t) => TransparentProxy {
            outbound_listener_port: t.port("OutboundListenerPort")?,
            dialed_directly: t.bool("DialedDirectly")?,
        },
    };
    let access_logs = match o.obj("AccessLogs")? {
        None => AccessLogs::default(),
        Some(a) => AccessLogs {
            enabled: a.bool("Enabled")?,
            disable_listener_logs: a.bool("DisableListenerLogs")?,
            sink_type: a.str("Type")?,
            path: a.str("Path")?,
            json_format: a.str("JSONFormat")?,
            text_format: a.str("TextFormat")?,
        },
    };
    Ok(ServiceProxy {
        destination_service_name: o.str("DestinationServiceName")?,
        destination_service_id: o.str("DestinationServiceID")?,
        local_service_address: o.str("LocalServiceAddress")?,
        local_service_port: o.port("LocalServicePort")?,
        local_service_socket_path: o.str("LocalServiceSocketPath")?,
        mode: o.str("Mode")?,
        config: o.opaque("Config")?,
        upstreams,
        mesh_gateway: mesh_gateway(o.obj("MeshGateway")?)?,
        expose,
        transparent_proxy,
        access_logs,
    })
}

/// A `Connect` block: whether the service is Connect-native, and the raw
/// `SidecarService` definition if one is given (each source decodes it
/// with its own service format).
pub fn parse_connect(v: &Value) -> Result<(bool, Option<Value>), String> {
    let Some(o) = Obj::new(v, "Connect")? else { return Ok((false, None)) };
    let sidecar = match o.get("SidecarService") {
        None => None,
        Some((v @ Value::Object(_), _)) => Some(v.clone()),
        Some((v, p)) => return Err(format!("{p}: invalid type: {}, expected an object", type_name(v))),
    };
    Ok((o.bool("Native")?, sidecar))
}

/// A `Locality` block.
pub fn parse_locality(v: &Value) -> Result<Option<Locality>, String> {
    let Some(o) = Obj::new(v, "Locality")? else { return Ok(None) };
    Ok(Some(Locality { region: o.str("Region")?, zone: o.str("Zone")? }))
}

/// Go's multierror text, as Consul's validation errors read.
pub fn multierror(errs: &[String]) -> String {
    if errs.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errs[0]);
    }
    let points: Vec<String> = errs.iter().map(|e| format!("* {e}")).collect();
    format!("{} errors occurred:\n\t{}\n\n", errs.len(), points.join("\n\t"))
}

/// Consul's `NodeService.Validate` for the mesh fields (the agent assigns a
/// sidecar's port before this runs). Returns every problem found.
pub fn validate(s: &ServiceDef) -> Vec<String> {
    let mut errs = Vec::new();
    let p = &s.proxy;
    if s.kind == KIND_CONNECT_PROXY {
        if s.port == 0 && s.socket_path.is_empty() {
            errs.push(format!("Port or SocketPath must be set for a {}", s.kind));
        }
        if p.destination_service_name.trim().is_empty() {
            errs.push("Proxy.DestinationServiceName must be non-empty for Connect proxy services".into());
        }
        if p.destination_service_name == "*" {
            errs.push(
                "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services".into(),
            );
        }
        if s.connect_native {
            errs.push("A Proxy cannot also be Connect Native, only typical services".into());
        }
        let mut keys = BTreeSet::new();
        let mut binds = BTreeSet::new();
        for u in &p.upstreams {
            if let Err(e) = validate_upstream(u) {
                errs.push(e);
                continue;
            }
            let key = (
                u.destination_type.clone(),
                u.destination_name.clone(),
                u.destination_partition.clone(),
                u.destination_namespace.clone(),
                u.destination_peer.clone(),
                u.datacenter.clone(),
            );
            if !keys.insert(key) {
                errs.push(format!(
                    "upstreams cannot contain duplicates of [type={:?}, name={:?}, partition={:?}, namespace={:?}, peer={:?}, datacenter={:?}]",
                    u.destination_type, u.destination_name, u.destination_partition, u.destination_namespace,
                    u.destination_peer, u.datacenter
                ));
                continue;
            }
            let addr = bind_address(u);
            if !binds.insert(addr.clone()) && !u.centrally_configured {
                errs.push(format!(
                    "upstreams cannot contain duplicates by local bind address and port or unix path; {addr:?} is specified twice"
                ));
            }
        }
        let mut listeners = BTreeSet::new();
        for path in &p.expose.paths {
            if path.path.is_empty() {
                errs.push("expose.paths: empty path exposed".into());
            }
            if !listeners.insert(path.listener_port) {
                errs.push("expose.paths: duplicate listener ports exposed".into());
            }
            if path.listener_port == 0 {
                errs.push(format!("expose.paths: invalid listener port: {}", path.listener_port));
            }
            let proto = path.protocol.to_ascii_lowercase();
            if !proto.is_empty() && proto != "http" && proto != "http2" {
                errs.push(format!(
                    "protocol '{proto}' not supported for path: {}, must be in: [http http2]",
                    path.path
                ));
            }
        }
    }
    if is_gateway(&s.kind) {
        if s.port == 0 && s.kind != KIND_INGRESS_GATEWAY && s.kind != KIND_API_GATEWAY {
            errs.push(format!("Port must be non-zero for a {}", s.kind));
        }
        if s.sidecar_service.is_some() {
            errs.push(format!("A {} cannot have a sidecar service defined", s.kind));
        }
        for (set, field) in [
            (!p.destination_service_name.is_empty(), "DestinationServiceName"),
            (!p.destination_service_id.is_empty(), "DestinationServiceID"),
            (!p.local_service_address.is_empty(), "LocalServiceAddress"),
            (p.local_service_port != 0, "LocalServicePort"),
            (!p.local_service_socket_path.is_empty(), "LocalServiceSocketPath"),
            (!p.upstreams.is_empty(), "Upstreams"),
        ] {
            if set {
                errs.push(format!("The Proxy.{field} configuration is invalid for a {}", s.kind));
            }
        }
    }
    if let Some(sc) = &s.sidecar_service {
        if !sc.id.is_empty() {
            errs.push("A SidecarService cannot specify an ID as this is managed by the agent".into());
        }
        if sc.sidecar_service.is_some() {
            errs.push("A SidecarService cannot have a nested SidecarService".into());
        }
    }
    if s.connect_native && s.port == 0 && s.socket_path.is_empty() {
        errs.push("Port or SocketPath must be set for a Connect native service.".into());
    }
    errs
}

fn validate_upstream(u: &Upstream) -> Result<(), String> {
    if !matches!(u.destination_type.as_str(), "" | "service" | "prepared_query") {
        return Err(format!("unknown upstream destination type: {:?}", u.destination_type));
    }
    if u.destination_name.is_empty() {
        return Err("upstream destination name cannot be empty".into());
    }
    if u.destination_name == "*" && !u.centrally_configured {
        return Err("upstream destination name cannot be a wildcard".into());
    }
    if !u.destination_peer.is_empty() && !u.datacenter.is_empty() {
        return Err("upstream cannot specify both destination peer and datacenter".into());
    }
    if u.local_bind_port == 0 && u.local_bind_socket_path.is_empty() && !u.centrally_configured {
        return Err("upstream local bind port or local socket path must be defined and nonzero".into());
    }
    if u.local_bind_port != 0 && !u.local_bind_socket_path.is_empty() && !u.centrally_configured {
        return Err(
            "only one of upstream local bind port or local socket path can be defined and nonzero".into()
        );
    }
    Ok(())
}

fn bind_address(u: &Upstream) -> String {
    if u.local_bind_port == 0 && u.local_bind_address.is_empty() && !u.local_bind_socket_path.is_empty() {
        return u.local_bind_socket_path.clone();
    }
    let host = if u.local_bind_address.is_empty() { "127.0.0.1" } else { &u.local_bind_address };
    if host.contains(':') {
        format!("[{host}]:{}", u.local_bind_port)
    } else {
        format!("{host}:{}", u.local_bind_port)
    }
}

/// The ID of the sidecar registered for service `id`.
pub fn sidecar_id(id: &str) -> String {
    format!("{id}-sidecar-proxy")
}

/// Where a sidecar's port comes from when its definition names none.
pub struct SidecarPorts {
    /// `ports.sidecar_min_port`..=`ports.sidecar_max_port` (0, 0: disabled).
    pub min: u16,
    pub max: u16,
    /// The port of this sidecar's earlier registration, kept on re-register.
    pub previous: Option<u16>,
    /// Ports other local services already use.
    pub taken: BTreeSet<u16>,
}

/// Expands `parent.sidecar_service` into the sidecar's own definition with
/// Consul's defaults (ID and name `<parent>-sidecar-proxy`, kind
/// `connect-proxy`, the parent's tags, meta, address and locality, the
/// proxy pointing at the parent, a port from the sidecar range, and the
/// `Connect Sidecar Listening` TCP and `Connect Sidecar Aliasing` checks
/// when none are given). `None` when the parent has no sidecar.
pub fn sidecar_for(parent: &ServiceDef, ports: &SidecarPorts) -> Result<Option<ServiceDef>, String> {
    let Some(sc) = &parent.sidecar_service else { return Ok(None) };
    let mut s = (**sc).clone();
    s.id = sidecar_id(&parent.id);
    s.locally_registered_as_sidecar = true;
    if s.kind.is_empty() {
        s.kind = KIND_CONNECT_PROXY.into();
    }
    if s.name.is_empty() {
        s.name = format!("{}-sidecar-proxy", parent.name);
    }
    if s.tags.is_empty() {
        s.tags = parent.tags.clone();
    }
    if s.meta.is_empty() {
        s.meta = parent.meta.clone();
    }
    if s.address.is_empty() {
        s.address = parent.address.clone();
    }
    if s.locality.is_none() {
        s.locality = parent.locality.clone();
    }
    if s.token.is_empty() {
        s.token = parent.token.clone();
    }
    if s.proxy.destination_service_name.is_empty() {
        s.proxy.destination_service_name = parent.name.clone();
    }
    if s.proxy.destination_service_id.is_empty() {
        s.proxy.destination_service_id = parent.id.clone();
    }
    if s.proxy.local_service_address.is_empty()
        && s.proxy.local_service_port == 0
        && s.proxy.local_service_socket_path.is_empty()
    {
        if !parent.socket_path.is_empty() {
            s.proxy.local_service_socket_path = parent.socket_path.clone();
        } else {
            s.proxy.local_service_address = "127.0.0.1".into();
            s.proxy.local_service_port = parent.port;
        }
    }
    if s.port == 0 {
        s.port = match ports.previous {
            Some(p) if p != 0 => p,
            _ => {
                if ports.min == 0 || ports.max == 0 || ports.min > ports.max {
                    return Err("no port provided for sidecar and auto-assignment disabled in config".into());
                }
                (ports.min..=ports.max)
                    .find(|p| !ports.taken.contains(p))
                    .ok_or("no port provided for sidecar and none left in the configured range")?
            }
        };
    }
    if s.checks.is_empty() {
        let addr = if s.address.is_empty() { &s.proxy.local_service_address } else { &s.address };
        let tcp =
            if addr.contains(':') { format!("[{addr}]:{}", s.port) } else { format!("{addr}:{}", s.port) };
        s.checks = vec![
            CheckDef {
                name: "Connect Sidecar Listening".into(),
                tcp,
                interval: Some(Duration::from_secs(10)),
                ..Default::default()
            },
            CheckDef {
                name: format!("Connect Sidecar Aliasing {}", parent.id),
                alias_service: parent.id.clone(),
                ..Default::default()
            },
        ];
    }
    s.normalize();
    Ok(Some(s))
}
