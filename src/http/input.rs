//! Request bodies of the catalog and agent endpoints, as Consul's JSON
//! (field names matched case-insensitively, snake_case accepted), and their
//! conversion into our definitions.

use crate::catalog::types::ServiceConnect;
use crate::catalog::types::{
    CheckDefinition, Deregistration, HealthCheck, Node, NodeService, Registration, ServiceAddress, Weights,
    CRITICAL,
};
use crate::definition::{mesh, CheckDef, ServiceDef};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration field: `"10s"`, or integer nanoseconds.
fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"10s\"")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(crate::duration::serde_go::DurationVisitor).map(Some)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            crate::duration::parse(v).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Duration::from_nanos(v)))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(|n| Some(Duration::from_nanos(n)))
                .map_err(|_| E::custom("negative duration"))
        }
    }
    d.deserialize_option(V)
}

fn port(v: Option<i64>) -> Result<u16, String> {
    match v {
        None => Ok(0),
        Some(p) => u16::try_from(p).map_err(|_| format!("invalid port {p}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddressIn {
    pub address: Option<String>,
    pub port: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct WeightsIn {
    pub passing: Option<i64>,
    pub warning: Option<i64>,
}

fn tagged(t: Option<BTreeMap<String, ServiceAddressIn>>) -> Result<BTreeMap<String, ServiceAddress>, String> {
    let mut out = BTreeMap::new();
    for (k, a) in t.unwrap_or_default() {
        out.insert(k, ServiceAddress { address: a.address.unwrap_or_default(), port: port(a.port)? });
    }
    Ok(out)
}

/// An agent check definition (`AgentServiceCheck` / `AgentCheckRegistration`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CheckIn {
    #[serde(rename = "ID", alias = "CheckID")]
    pub id: Option<String>,
    pub name: Option<String>,
    pub notes: Option<String>,
    #[serde(rename = "ServiceID")]
    pub service_id: Option<String>,
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(rename = "TTL", default, deserialize_with = "opt_duration")]
    pub ttl: Option<Duration>,
    #[serde(alias = "ScriptArgs")]
    pub args: Option<Vec<String>>,
    pub script: Option<String>,
    pub shell: Option<String>,
    #[serde(rename = "HTTP")]
    pub http: Option<String>,
    pub method: Option<String>,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub body: Option<String>,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: Option<bool>,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: Option<String>,
    pub disable_redirects: Option<bool>,
    #[serde(rename = "TCP")]
    pub tcp: Option<String>,
    #[serde(rename = "TCPUseTLS")]
    pub tcp_use_tls: Option<bool>,
    #[serde(rename = "UDP")]
    pub udp: Option<String>,
    #[serde(rename = "GRPC")]
    pub grpc: Option<String>,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: Option<bool>,
    #[serde(rename = "H2PING")]
    pub h2ping: Option<String>,
    pub alias_node: Option<String>,
    pub alias_service: Option<String>,
    #[serde(rename = "DockerContainerID")]
    pub docker_container_id: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub deregister_critical_service_after: Option<Duration>,
    pub success_before_passing: Option<u32>,
    pub failures_before_critical: Option<u32>,
    pub failures_before_warning: Option<u32>,
    pub output_max_size: Option<u64>,
}

impl CheckIn {
    pub fn into_def(self) -> CheckDef {
        CheckDef {
            id: self.id.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            notes: self.notes.unwrap_or_default(),
            service_id: self.service_id.unwrap_or_default(),
            status: self.status.unwrap_or_default(),
            interval: self.interval,
            timeout: self.timeout,
            ttl: self.ttl,
            args: self.args.unwrap_or_default(),
            script: self.script.unwrap_or_default(),
            shell: self.shell.unwrap_or_default(),
            http: self.http.unwrap_or_default(),
            method: self.method.unwrap_or_default(),
            header: self.header.unwrap_or_default(),
            body: self.body.unwrap_or_default(),
            tls_skip_verify: self.tls_skip_verify.unwrap_or(false),
            tls_server_name: self.tls_server_name.unwrap_or_default(),
            disable_redirects: self.disable_redirects.unwrap_or(false),
            tcp: self.tcp.unwrap_or_default(),
            tcp_use_tls: self.tcp_use_tls.unwrap_or(false),
            udp: self.udp.unwrap_or_default(),
            grpc: self.grpc.unwrap_or_default(),
            grpc_use_tls: self.grpc_use_tls.unwrap_or(false),
            h2ping: self.h2ping.unwrap_or_default(),
            alias_node: self.alias_node.unwrap_or_default(),
            alias_service: self.alias_service.unwrap_or_default(),
            docker_container_id: self.docker_container_id.unwrap_or_default(),
            deregister_critical_service_after: self.deregister_critical_service_after,
            success_before_passing: self.success_before_passing.unwrap_or(0),
            failures_before_critical: self.failures_before_critical.unwrap_or(0),
            failures_before_warning: self.failures_before_warning.unwrap_or(0),
            output_max_size: self.output_max_size.map(|v| v as usize).unwrap_or(0),
        }
    }
}

/// `/v1/agent/service/register` body (`AgentServiceRegistration`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AgentServiceIn {
    pub kind: Option<String>,
    #[serde(rename = "ID")]
    pub id: Option<String>,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub tagged_addresses: Option<BTreeMap<String, ServiceAddressIn>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub port: Option<i64>,
    pub socket_path: Option<String>,
    pub weights: Option<WeightsIn>,
    pub enable_tag_override: Option<bool>,
    pub check: Option<CheckIn>,
    pub checks: Option<Vec<CheckIn>>,
    pub token: Option<String>,
    pub proxy: Option<serde_json::Value>,
    pub connect: Option<serde_json::Value>,
    pub locality: Option<serde_json::Value>,
}

impl AgentServiceIn {
    pub fn into_def(self) -> Result<ServiceDef, String> {
        let mut checks: Vec<CheckDef> = Vec::new();
        if let Some(c) = self.check {
            checks.push(c.into_def());
        }
        for c in self.checks.unwrap_or_default() {
            checks.push(c.into_def());
        }
        let mut def = ServiceDef {
            kind: self.kind.unwrap_or_default(),
            id: self.id.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            address: self.address.unwrap_or_default(),
            tagged_addresses: tagged(self.tagged_addresses)?,
            meta: self.meta.unwrap_or_default(),
            port: port(self.port)?,
            socket_path: self.socket_path.unwrap_or_default(),
            weights: self
                .weights
                .map(|w| Weights { passing: w.passing.unwrap_or(1), warning: w.warning.unwrap_or(1) }),
            enable_tag_override: self.enable_tag_override.unwrap_or(false),
            checks,
            token: self.token.unwrap_or_default(),
            ..Default::default()
        };
        if let Some(p) = &self.proxy {
            def.proxy = mesh::parse_proxy(p)?;
        }
        if let Some(c) = &self.connect {
            let (native, sidecar) = mesh::parse_connect(c)?;
            def.connect_native = native;
            if let Some(sc) = sidecar {
                let sc: AgentServiceIn =
                    super::decode::from_value(sc).map_err(|e| format!("Connect.SidecarService: {e}"))?;
                def.sidecar_service = Some(Box::new(sc.into_def()?));
            }
        }
        if let Some(l) = &self.locality {
            def.locality = mesh::parse_locality(l)?;
        }
        Ok(def)
    }
}

/// A catalog service in `/v1/catalog/register`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogServiceIn {
    pub kind: Option<String>,
    #[serde(rename = "ID")]
    pub id: Option<String>,
    pub service: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub tagged_addresses: Option<BTreeMap<String, ServiceAddressIn>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub port: Option<i64>,
    pub socket_path: Option<String>,
    pub weights: Option<WeightsIn>,
    pub enable_tag_override: Option<bool>,
    pub proxy: Option<serde_json::Value>,
    pub connect: Option<serde_json::Value>,
    pub locality: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogCheckDefinitionIn {
    #[serde(rename = "HTTP")]
    pub http: Option<String>,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: Option<String>,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: Option<bool>,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub method: Option<String>,
    pub body: Option<String>,
    #[serde(rename = "TCP")]
    pub tcp: Option<String>,
    #[serde(rename = "UDP")]
    pub udp: Option<String>,
    #[serde(rename = "GRPC")]
    pub grpc: Option<String>,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: Option<bool>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub deregister_critical_service_after: Option<Duration>,
}

/// A catalog check in `/v1/catalog/register` (Consul's `HealthCheck`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogCheckIn {
    pub node: Option<String>,
    #[serde(rename = "CheckID")]
    pub check_id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub notes: Option<String>,
    pub output: Option<String>,
    #[serde(rename = "ServiceID")]
    pub service_id: Option<String>,
    #[serde(rename = "Type")]
    pub check_type: Option<String>,
    pub definition: Option<CatalogCheckDefinitionIn>,
}

/// `/v1/catalog/register` body (Consul's `RegisterRequest`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogRegisterIn {
    #[serde(rename = "ID")]
    pub id: Option<String>,
    pub node: Option<String>,
    pub address: Option<String>,
    pub datacenter: Option<String>,
    pub tagged_addresses: Option<BTreeMap<String, String>>,
    pub node_meta: Option<BTreeMap<String, String>>,
    pub service: Option<CatalogServiceIn>,
    pub check: Option<CatalogCheckIn>,
    pub checks: Option<Vec<CatalogCheckIn>>,
    pub skip_node_update: Option<bool>,
}

impl CatalogRegisterIn {
    pub fn into_registration(self, default_dc: &str) -> Result<Registration, String> {
        let node_name = self.node.unwrap_or_default();
        if node_name.is_empty() {
            return Err("Must provide node".into());
        }
        let address = self.address.unwrap_or_default();
        if address.is_empty() && !self.skip_node_update.unwrap_or(false) {
            return Err("Must provide address if SkipNodeUpdate is not set".into());
        }
        if let Some(id) = &self.id {
            if !id.is_empty() && uuid::Uuid::parse_str(id).is_err() {
                return Err(format!("Invalid node ID: {id:?}"));
            }
        }
        let meta = self.node_meta.unwrap_or_default();
        crate::definition::validate_meta(&meta).map_err(|e| format!("Invalid node metadata: {e}"))?;
        let node = Node {
            id: self.id.unwrap_or_default().to_ascii_lowercase(),
            node: node_name.clone(),
            address,
            datacenter: self.datacenter.filter(|d| !d.is_empty()).unwrap_or_else(|| default_dc.to_string()),
            tagged_addresses: self.tagged_addresses.unwrap_or_default(),
            meta,
            create_index: 0,
            modify_index: 0,
        };
        let service = match self.service {
            None => None,
            Some(s) => {
                let name = s.service.unwrap_or_default();
                if name.is_empty() {
                    return Err("Must provide service name".into());
                }
                Some(NodeService {
                    kind: s.kind.unwrap_or_default(),
                    id: s.id.filter(|i| !i.is_empty()).unwrap_or_else(|| name.clone()),
                    service: name,
                    tags: s.tags.unwrap_or_default(),
                    address: s.address.unwrap_or_default(),
                    tagged_addresses: tagged(s.tagged_addresses)?,
                    meta: s.meta.unwrap_or_default(),
                    port: port(s.port)?,
                    socket_path: s.socket_path.unwrap_or_default(),
                    weights: s
                        .weights
                        .map(|w| Weights { passing: w.passing.unwrap_or(1), warning: w.warning.unwrap_or(1) })
                        .unwrap_or_default(),
                    enable_tag_override: s.enable_tag_override.unwrap_or(false),
                    create_index: 0,
                    modify_index: 0,
                    proxy: match &s.proxy {
                        Some(p) => mesh::parse_proxy(p)?,
                        None => Default::default(),
                    },
                    connect: ServiceConnect {
                        native: match &s.connect {
                            Some(c) => mesh::parse_connect(c)?.0,
                            None => false,
                        },
                    },
                    locality: match &s.locality {
                        Some(l) => mesh::parse_locality(l)?,
                        None => None,
                    },
                })
            }
        };
        if let Some(svc) = &service {
            // Consul's Catalog.Register runs NodeService.Validate.
            let probe = ServiceDef {
                kind: svc.kind.clone(),
                port: svc.port,
                socket_path: svc.socket_path.clone(),
                proxy: svc.proxy.clone(),
                connect_native: svc.connect.native,
                ..Default::default()
            };
            let errs = mesh::validate(&probe);
            if !errs.is_empty() {
                return Err(mesh::multierror(&errs));
            }
        }
        let mut checks = Vec::new();
        for c in self.check.into_iter().chain(self.checks.unwrap_or_default()) {
            let name = c.name.unwrap_or_default();
            let id = c.check_id.filter(|i| !i.is_empty()).unwrap_or_else(|| name.clone());
            let status = c.status.filter(|s| !s.is_empty()).unwrap_or_else(|| CRITICAL.to_string());
            let d = c.definition.unwrap_or_default();
            checks.push(HealthCheck {
                node: node_name.clone(),
                check_id: id,
                name,
                status,
                notes: c.notes.unwrap_or_default(),
                output: c.output.unwrap_or_default(),
                service_id: c.service_id.unwrap_or_default(),
                check_type: c.check_type.unwrap_or_default(),
                definition: CheckDefinition {
                    http: d.http.unwrap_or_default(),
                    tls_server_name: d.tls_server_name.unwrap_or_default(),
                    tls_skip_verify: d.tls_skip_verify.unwrap_or(false),
                    header: d.header.unwrap_or_default(),
                    method: d.method.unwrap_or_default(),
                    body: d.body.unwrap_or_default(),
                    tcp: d.tcp.unwrap_or_default(),
                    udp: d.udp.unwrap_or_default(),
                    grpc: d.grpc.unwrap_or_default(),
                    grpc_use_tls: d.grpc_use_tls.unwrap_or(false),
                    interval_ns: d.interval.map(|x| x.as_nanos() as u64).unwrap_or(0),
                    timeout_ns: d.timeout.map(|x| x.as_nanos() as u64).unwrap_or(0),
                    deregister_critical_service_after_ns: d
                        .deregister_critical_service_after
                        .map(|x| x.as_nanos() as u64)
                        .unwrap_or(0),
                },
                ..Default::default()
            });
        }
        Ok(Registration {
            node,
            service,
            checks,
            skip_node_update: self.skip_node_update.unwrap_or(false),
            preserve_node_extras: false,
        })
    }
}

/// `/v1/catalog/deregister` body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogDeregisterIn {
    pub node: Option<String>,
    pub datacenter: Option<String>,
    #[serde(rename = "ServiceID")]
    pub service_id: Option<String>,
    #[serde(rename = "CheckID")]
    pub check_id: Option<String>,
}

impl CatalogDeregisterIn {
    pub fn into_deregistration(self) -> Result<Deregistration, String> {
        let node = self.node.unwrap_or_default();
        if node.is_empty() {
            return Err("Must provide node".into());
        }
        Ok(Deregistration {
            node,
            service_id: self.service_id.filter(|s| !s.is_empty()),
            check_id: self.check_id.filter(|s| !s.is_empty()),
        })
    }
}

/// `/v1/agent/check/update/<id>` body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CheckUpdateIn {
    pub status: Option<String>,
    pub output: Option<String>,
}
