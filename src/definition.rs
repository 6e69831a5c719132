//! Service and check definitions as an agent receives them — from config
//! files (snake_case) or the agent HTTP API (Consul's JSON, decoded
//! case-insensitively) — turned into one shape, validated as Consul
//! validates them, and rendered into catalog records.

use crate::catalog::types::{
    CheckDefinition as CatalogCheckDef, HealthCheck, Locality, NodeService, ServiceAddress, ServiceConnect,
    ServiceProxy, Weights, CRITICAL,
};
use crate::config::file;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub mod mesh;

/// Where a definition came from: script checks are gated differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A config file (`enable_local_script_checks` suffices for scripts).
    Local,
    /// The HTTP API (scripts need `enable_script_checks`).
    Remote,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDef {
    pub kind: String,
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub socket_path: String,
    pub weights: Option<Weights>,
    pub enable_tag_override: bool,
    pub checks: Vec<CheckDef>,
    pub token: String,
    // The mesh fields (Consul's `Proxy`, `Connect`, `Locality`). Defaults
    // keep service files persisted before them readable.
    #[serde(default)]
    pub proxy: ServiceProxy,
    #[serde(default)]
    pub connect_native: bool,
    /// `connect.sidecar_service`: registration sugar the agent expands
    /// into a second service (`mesh::sidecar_for`); never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_service: Option<Box<ServiceDef>>,
    #[serde(default)]
    pub locality: Option<Locality>,
    /// Registered by the agent for a parent's `sidecar_service` (removed
    /// with the parent).
    #[serde(default)]
    pub locally_registered_as_sidecar: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub id: String,
    pub name: String,
    pub notes: String,
    pub service_id: String,
    pub status: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub ttl: Option<Duration>,
    pub args: Vec<String>,
    /// The handbook-era shell string (`"script"`), run with `/bin/sh -c`.
    pub script: String,
    pub shell: String,
    pub http: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    pub tls_server_name: String,
    pub disable_redirects: bool,
    pub tcp: String,
    pub tcp_use_tls: bool,
    pub udp: String,
    pub grpc: String,
    pub grpc_use_tls: bool,
    pub h2ping: String,
    pub alias_node: String,
    pub alias_service: String,
    pub docker_container_id: String,
    pub deregister_critical_service_after: Option<Duration>,
    pub success_before_passing: u32,
    pub failures_before_critical: u32,
    pub failures_before_warning: u32,
    pub output_max_size: usize,
}

impl CheckDef {
    /// The check's type as Consul names it in `HealthCheck.Type`.
    pub fn check_type(&self) -> &'static str {
        if !self.args.is_empty() || !self.script.is_empty() {
            "script"
        } else if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.udp.is_empty() {
            "udp"
        } else if !self.grpc.is_empty() {
            "grpc"
        } else if !self.h2ping.is_empty() {
            "h2ping"
        } else if !self.alias_service.is_empty() {
            "alias"
        } else if !self.docker_container_id.is_empty() {
            "docker"
        } else if self.ttl.is_some() {
            "ttl"
        } else {
            ""
        }
    }

    pub fn is_script(&self) -> bool {
        self.check_type() == "script"
    }

    pub fn is_ttl(&self) -> bool {
        self.check_type() == "ttl"
    }

    /// Consul's `CheckType.Validate`: exactly one kind, with the timing it needs.
    pub fn validate(&self) -> Result<(), String> {
        let kinds = [
            !self.args.is_empty() || !self.script.is_empty(),
            !self.http.is_empty(),
            !self.tcp.is_empty(),
            !self.udp.is_empty(),
            !self.grpc.is_empty(),
            !self.h2ping.is_empty(),
            !self.alias_service.is_empty(),
            !self.docker_container_id.is_empty(),
            self.ttl.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => return Err("Must provide TTL or Script/DockerContainerID/HTTP/TCP/UDP/GRPC/H2PING/AliasService and Interval".into()),
            1 => {}
            _ => return Err("Only one of TTL, Script, DockerContainerID, HTTP, TCP, UDP, GRPC, H2PING or AliasService may be specified".into()),
        }
        let kind = self.check_type();
        if kind == "ttl" && self.ttl.is_none_or(|t| t.is_zero()) {
            return Err("TTL must be > 0 for TTL checks".into());
        }
        if matches!(kind, "script" | "http" | "tcp" | "udp" | "grpc" | "h2ping" | "docker")
            && self.interval.is_none_or(|i| i.is_zero())
        {
            return Err("Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks".into());
        }
        if kind == "docker" {
            return Err("Docker checks are not supported by this agent".into());
        }
        if kind == "h2ping" {
            return Err("H2PING checks are not supported by this agent yet".into());
        }
        if !self.status.is_empty() && !crate::catalog::types::valid_status(&self.status) {
            return Err("Status for checks must 'passing', 'warning', 'critical'".into());
        }
        Ok(())
    }

    /// The catalog record of this check for `node`.
    pub fn to_health_check(&self, node: &str) -> HealthCheck {
        HealthCheck {
            node: node.to_string(),
            check_id: self.id.clone(),
            name: self.name.clone(),
            status: if self.status.is_empty() { CRITICAL.to_string() } else { self.status.clone() },
            notes: self.notes.clone(),
            output: String::new(),
            service_id: self.service_id.clone(),
            service_name: String::new(),
            service_tags: Vec::new(),
            check_type: self.check_type().to_string(),
            interval_ns: self.interval.map(|d| d.as_nanos() as u64).unwrap_or(0),
            timeout_ns: self.timeout.map(|d| d.as_nanos() as u64).unwrap_or(0),
            definition: CatalogCheckDef {
                http: self.http.clone(),
                tls_server_name: self.tls_server_name.clone(),
                tls_skip_verify: self.tls_skip_verify,
                header: self.header.clone(),
                method: self.method.clone(),
                body: self.body.clone(),
                tcp: self.tcp.clone(),
                udp: self.udp.clone(),
                grpc: self.grpc.clone(),
                grpc_use_tls: self.grpc_use_tls,
                interval_ns: self.interval.map(|d| d.as_nanos() as u64).unwrap_or(0),
                timeout_ns: self.timeout.map(|d| d.as_nanos() as u64).unwrap_or(0),
                deregister_critical_service_after_ns: self
                    .deregister_critical_service_after
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0),
            },
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl ServiceDef {
    /// Fills defaults: ID from the name, check IDs and names, weights.
    pub fn normalize(&mut self) {
        if self.id.is_empty() {
            self.id = self.name.clone();
        }
        // Consul's ServiceDefinition.NodeService: upstreams default to services.
        for u in &mut self.proxy.upstreams {
            if u.destination_type.is_empty() {
                u.destination_type = "service".into();
            }
        }
        let n = self.checks.len();
        for (i, c) in self.checks.iter_mut().enumerate() {
            c.service_id = self.id.clone();
            if c.id.is_empty() {
                c.id = if n == 1 {
                    format!("service:{}", self.id)
                } else {
                    format!("service:{}:{}", self.id, i + 1)
                };
            }
            if c.name.is_empty() {
                c.name = format!("Service '{}' check", self.name);
            }
        }
    }

    /// Consul's service validation (agent register endpoint).
    pub fn validate(&self) -> Result<(), ServiceError> {
        if self.name.is_empty() {
            return Err(ServiceError::MissingName);
        }
        if self.address == "0.0.0.0" || self.address == "::" || self.address == "[::]" {
            return Err(ServiceError::Invalid("Invalid service address".into()));
        }
        if let Some(w) = self.weights {
            if w.passing < 1 {
                return Err(ServiceError::Invalid("Invalid Weights: Passing must be greater than 0".into()));
            }
            if w.warning < 0 {
                return Err(ServiceError::Invalid(
                    "Invalid Weights: Warning must be greater or equal than 0".into(),
                ));
            }
        }
        validate_meta(&self.meta).map_err(|e| ServiceError::Invalid(format!("Invalid Service Meta: {e}")))?;
        let mesh_errors = mesh::validate(self);
        if !mesh_errors.is_empty() {
            return Err(ServiceError::Invalid(format!(
                "Validation failed: {}",
                mesh::multierror(&mesh_errors)
            )));
        }
        for c in &self.checks {
            c.validate().map_err(|e| {
                if e.starts_with("Status for checks") {
                    ServiceError::Invalid(e)
                } else {
                    ServiceError::Invalid(format!("Invalid check: {e}"))
                }
            })?;
        }
        Ok(())
    }

    /// The catalog record of this service.
    pub fn to_node_service(&self) -> NodeService {
        NodeService {
            kind: self.kind.clone(),
            id: self.id.clone(),
            service: self.name.clone(),
            tags: self.tags.clone(),
            address: self.address.clone(),
            tagged_addresses: self.tagged_addresses.clone(),
            meta: self.meta.clone(),
            port: self.port,
            socket_path: self.socket_path.clone(),
            weights: self.weights.unwrap_or_default(),
            enable_tag_override: self.enable_tag_override,
            create_index: 0,
            modify_index: 0,
            proxy: self.proxy.clone(),
            connect: ServiceConnect { native: self.connect_native },
            locality: self.locality.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    MissingName,
    Invalid(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::MissingName => f.write_str("Missing service name"),
            ServiceError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Consul's metadata rules: at most 64 pairs, keys ≤ 128 characters of
/// `[A-Za-z0-9_-]`, not starting with `consul-`, values ≤ 512 characters.
pub fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".to_string());
    }
    for (k, v) in meta {
        if k.is_empty() {
            return Err("Key cannot be blank".into());
        }
        if k.len() > 128 {
            return Err("Key is too long (limit: 128 characters)".to_string());
        }
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err("Key contains invalid characters".to_string());
        }
        if k.starts_with("consul-") {
            return Err("Key prefix 'consul-' is reserved for internal use".to_string());
        }
        if v.len() > 512 {
            return Err("Value is too long (limit: 512 characters)".to_string());
        }
    }
    Ok(())
}

fn port_of(v: Option<i64>, what: &str) -> Result<u16, String> {
    match v {
        None => Ok(0),
        Some(p) => u16::try_from(p).map_err(|_| format!("{what}: invalid port {p}")),
    }
}

/// Converts a config-file check block.
pub fn check_from_config(c: &file::CheckDefinition) -> Result<CheckDef, String> {
    Ok(CheckDef {
        id: c.id.clone().unwrap_or_default(),
        name: c.name.clone().unwrap_or_default(),
        notes: c.notes.clone().unwrap_or_default(),
        service_id: c.service_id.clone().unwrap_or_default(),
        status: c.status.clone().unwrap_or_default(),
        interval: c.interval.map(|d| d.0),
        timeout: c.timeout.map(|d| d.0),
        ttl: c.ttl.map(|d| d.0),
        args: c.args.clone().unwrap_or_default(),
        script: c.script.clone().unwrap_or_default(),
        shell: c.shell.clone().unwrap_or_default(),
        http: c.http.clone().unwrap_or_default(),
        method: c.method.clone().unwrap_or_default(),
        header: c.header.clone().unwrap_or_default(),
        body: c.body.clone().unwrap_or_default(),
        tls_skip_verify: c.tls_skip_verify.unwrap_or(false),
        tls_server_name: c.tls_server_name.clone().unwrap_or_default(),
        disable_redirects: c.disable_redirects.unwrap_or(false),
        tcp: c.tcp.clone().unwrap_or_default(),
        tcp_use_tls: c.tcp_use_tls.unwrap_or(false),
        udp: c.udp.clone().unwrap_or_default(),
        grpc: c.grpc.clone().unwrap_or_default(),
        grpc_use_tls: c.grpc_use_tls.unwrap_or(false),
        h2ping: c.h2ping.clone().unwrap_or_default(),
        alias_node: c.alias_node.clone().unwrap_or_default(),
        alias_service: c.alias_service.clone().unwrap_or_default(),
        docker_container_id: c.docker_container_id.clone().unwrap_or_default(),
        deregister_critical_service_after: c.deregister_critical_service_after.map(|d| d.0),
        success_before_passing: nonneg_u32(c.success_before_passing, "success_before_passing")?,
        failures_before_critical: nonneg_u32(c.failures_before_critical, "failures_before_critical")?,
        failures_before_warning: nonneg_u32(c.failures_before_warning, "failures_before_warning")?,
        output_max_size: c.output_max_size.map(|v| v.max(0) as usize).unwrap_or(0),
    })
}

fn nonneg_u32(v: Option<i64>, what: &str) -> Result<u32, String> {
    match v {
        None => Ok(0),
        Some(x) => u32::try_from(x).map_err(|_| format!("{what} must be >= 0")),
    }
}

/// Converts a config-file service block.
pub fn service_from_config(s: &file::ServiceDefinition) -> Result<ServiceDef, String> {
    let mut def = service_from_config_raw(s)?;
    def.normalize();
    Ok(def)
}

/// `service_from_config` without filling defaults (a sidecar's IDs come
/// from its parent).
fn service_from_config_raw(s: &file::ServiceDefinition) -> Result<ServiceDef, String> {
    let mut checks = Vec::new();
    if let Some(c) = &s.check {
        checks.push(check_from_config(c)?);
    }
    for c in s.checks.iter().flatten() {
        checks.push(check_from_config(c)?);
    }
    let mut tagged = BTreeMap::new();
    for (k, a) in s.tagged_addresses.iter().flatten() {
        tagged.insert(
            k.clone(),
            ServiceAddress {
                address: a.address.clone().unwrap_or_default(),
                port: port_of(a.port, "tagged_addresses")?,
            },
        );
    }
    let mut def = ServiceDef {
        kind: s.kind.clone().unwrap_or_default(),
        id: s.id.clone().unwrap_or_default(),
        name: s.name.clone().unwrap_or_default(),
        tags: s.tags.clone().unwrap_or_default(),
        address: s.address.clone().unwrap_or_default(),
        tagged_addresses: tagged,
        meta: s.meta.clone().unwrap_or_default(),
        port: port_of(s.port, "port")?,
        socket_path: s.socket_path.clone().unwrap_or_default(),
        weights: s
            .weights
            .as_ref()
            .map(|w| Weights { passing: w.passing.unwrap_or(1), warning: w.warning.unwrap_or(1) }),
        enable_tag_override: s.enable_tag_override.unwrap_or(false),
        checks,
        token: s.token.clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(p) = &s.proxy {
        def.proxy = mesh::parse_proxy(p).map_err(|e| format!("service {:?}: {e}", def.name))?;
    }
    if let Some(c) = &s.connect {
        let (native, sidecar) = mesh::parse_connect(c).map_err(|e| format!("service {:?}: {e}", def.name))?;
        def.connect_native = native;
        if let Some(sc) = sidecar {
            let sc: file::ServiceDefinition = serde_json::from_value(sc)
                .map_err(|e| format!("service {:?}: connect.sidecar_service: {e}", def.name))?;
            def.sidecar_service = Some(Box::new(service_from_config_raw(&sc)?));
        }
    }
    if let Some(l) = &s.locality {
        def.locality = mesh::parse_locality(l).map_err(|e| format!("service {:?}: {e}", def.name))?;
    }
    Ok(def)
}
