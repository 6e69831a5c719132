//! The shape of one configuration source (a JSON file, an HCL file, or the
//! command-line flags), mirroring Consul's own config file format key for
//! key. Every field is optional so sources can be merged; defaults live in
//! `runtime.rs`. Unknown keys are refused by `deny_unknown_fields`.
//!
//! Keys fall into three groups (see `Support`): the ones we implement, the
//! ones Consul documents that are harmless to ignore for now (accepted with
//! a warning), and the ones whose silent absence would weaken security or
//! change semantics (refused with "not supported yet").

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration field: a Go duration string such as `"10s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::duration::parse(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// Accepts either one object or a list of them, as Consul does for
/// `service`/`services` and `check`/`checks` (and HCL produces either shape:
/// one block is an object, a repeated block a list).
#[derive(Clone, Debug, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor (rather than decoding through a Value) keeps the
        // deserializer's position and path, so errors inside a block name
        // the full key (`service[1].check.interval`) and the line.
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object or a list of objects")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(out)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|t| vec![t])
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData)).map(OneOrMany)
    }
}

/// For list fields of objects (`watches`, a service's `checks`): also
/// accepts a single object, which is what one HCL block gives.
fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    Ok(Option::<OneOrMany<T>>::deserialize(d)?.map(|x| x.0))
}

/// One configuration source. Field names are Consul's config keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    // --- Implemented ---------------------------------------------------
    pub datacenter: Option<String>,
    pub data_dir: Option<String>,
    pub node_name: Option<String>,
    pub node_id: Option<String>,
    pub node_meta: Option<BTreeMap<String, String>>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<i64>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub advertise_addr_wan: Option<String>,
    pub advertise_addr_ipv4: Option<String>,
    pub advertise_addr_ipv6: Option<String>,
    pub advertise_addr_wan_ipv4: Option<String>,
    pub advertise_addr_wan_ipv6: Option<String>,
    pub serf_lan: Option<String>,
    pub serf_wan: Option<String>,
    pub client_addr: Option<String>,
    pub addresses: Option<Addresses>,
    pub ports: Option<Ports>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    pub disable_keyring_file: Option<bool>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub pid_file: Option<String>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub rejoin_after_leave: Option<bool>,
    pub start_join: Option<Vec<String>>,
    pub start_join_wan: Option<Vec<String>>,
    pub retry_join: Option<Vec<String>>,
    pub retry_join_wan: Option<Vec<String>>,
    pub retry_interval: Option<Dur>,
    pub retry_interval_wan: Option<Dur>,
    pub retry_max: Option<i64>,
    pub retry_max_wan: Option<i64>,
    pub reconnect_timeout: Option<Dur>,
    pub reconnect_timeout_wan: Option<Dur>,
    pub recursors: Option<Vec<String>>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub dns_config: Option<DnsConfig>,
    pub service: Option<OneOrMany<ServiceDefinition>>,
    pub services: Option<OneOrMany<ServiceDefinition>>,
    pub check: Option<OneOrMany<CheckDefinition>>,
    pub checks: Option<OneOrMany<CheckDefinition>>,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub disable_remote_exec: Option<bool>,
    pub check_update_interval: Option<Dur>,
    pub check_output_max_size: Option<i64>,
    pub discard_check_output: Option<bool>,
    pub session_ttl_min: Option<Dur>,
    pub default_query_time: Option<Dur>,
    pub max_query_time: Option<Dur>,
    pub discovery_max_stale: Option<Dur>,
    pub limits: Option<Limits>,
    pub performance: Option<Performance>,
    pub raft_snapshot_threshold: Option<i64>,
    pub raft_snapshot_interval: Option<Dur>,
    pub raft_trailing_logs: Option<i64>,
    pub raft_protocol: Option<i64>,
    pub protocol: Option<i64>,
    pub autopilot: Option<Autopilot>,
    pub gossip_lan: Option<Gossip>,
    pub gossip_wan: Option<Gossip>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub watches: Option<Vec<Value>>,
    pub translate_wan_addrs: Option<bool>,
    pub tagged_addresses: Option<BTreeMap<String, String>>,
    pub http_config: Option<HttpConfig>,
    pub disable_host_node_id: Option<bool>,
    pub primary_datacenter: Option<String>,
    /// Consul's internal (undocumented) anti-entropy interval; tests use it.
    pub ae_interval: Option<Dur>,
    /// Consul's internal coordinate-sync tuning (non-user keys; tests
    /// shorten them): an agent sends its coordinate every
    /// max(interval_min, members / rate_target seconds).
    pub sync_coordinate_rate_target: Option<f64>,
    pub sync_coordinate_interval_min: Option<Dur>,
    /// Consul's internal server tuning; only `coordinate` is read.
    pub consul: Option<ConsulInternal>,
    pub ui_config: Option<UiConfig>,
    /// Deprecated spellings of `ui_config.enabled`, `.dir` and
    /// `.content_path`: honoured with Consul's deprecation warning.
    pub ui: Option<bool>,
    pub ui_dir: Option<String>,
    pub ui_content_path: Option<String>,
    pub tls: Option<TlsBlock>,
    pub server_name: Option<String>,
    pub enable_agent_tls_for_checks: Option<bool>,
    /// Refused when enabled (see `tls::build`): they need a Connect CA.
    pub auto_encrypt: Option<Value>,
    pub auto_config: Option<Value>,

    // --- Deprecated TLS keys: folded into `tls` per source, with a warning
    // (see `tls::fold_deprecated`), so the merged config never has them ---
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub tls_prefer_server_cipher_suites: Option<bool>,
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub verify_incoming: Option<bool>,
    pub verify_incoming_rpc: Option<bool>,
    pub verify_incoming_https: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,

    // --- Documented, harmless to ignore for now (warned) ----------------
    pub enable_syslog: Option<bool>,
    pub syslog_facility: Option<String>,
    pub enable_debug: Option<bool>,
    pub telemetry: Option<Value>,
    pub log_file: Option<String>,
    pub log_rotate_duration: Option<String>,
    pub log_rotate_bytes: Option<i64>,
    pub log_rotate_max_files: Option<i64>,
    pub disable_update_check: Option<bool>,
    pub disable_anonymous_signature: Option<bool>,
    pub disable_coordinates: Option<bool>,
    pub disable_http_unprintable_char_filter: Option<bool>,
    pub snapshot_agent: Option<Value>,
    pub connect: Option<Value>,
    pub config_entries: Option<Value>,
    pub cache: Option<Value>,
    pub unix_sockets: Option<Value>,
    pub serf_lan_allowed_cidrs: Option<Vec<String>>,
    pub serf_wan_allowed_cidrs: Option<Vec<String>>,
    pub advertise_addrs: Option<Value>,
    pub enable_central_service_config: Option<bool>,
    pub auto_reload_config: Option<bool>,
    pub segment: Option<String>,
    pub segments: Option<Value>,
    pub non_voting_server: Option<bool>,
    pub read_replica: Option<bool>,
    pub experiments: Option<Vec<String>>,
    pub peering: Option<Value>,
    pub raft_logstore: Option<Value>,
    pub raft_boltdb: Option<Value>,
    pub rpc: Option<Value>,
    pub reporting: Option<Value>,
    pub license_path: Option<String>,
    pub locality: Option<Value>,
    pub primary_gateways: Option<Vec<String>>,
    pub primary_gateways_interval: Option<String>,
    pub disable_kv_key_validation: Option<bool>,
    pub audit: Option<Value>,
    pub acl_ttl: Option<String>,
    pub acl_down_policy: Option<String>,
    pub acl_disabled_ttl: Option<String>,
    pub acl_token: Option<String>,
    pub acl_agent_token: Option<String>,
    pub acl_agent_master_token: Option<String>,
    pub acl_replication_token: Option<String>,
    pub enable_acl_replication: Option<bool>,
    pub acl_enable_key_list_policy: Option<bool>,

    // --- Documented, refused when set in a way we cannot honour ---------
    pub acl: Option<Acl>,
    pub acl_datacenter: Option<String>,
    pub acl_default_policy: Option<String>,
    pub acl_master_token: Option<String>,
}

/// `tls { defaults {..} internal_rpc {..} https {..} grpc {..} }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsBlock {
    pub defaults: Option<TlsProtocolBlock>,
    pub internal_rpc: Option<TlsProtocolBlock>,
    pub https: Option<TlsProtocolBlock>,
    pub grpc: Option<TlsProtocolBlock>,
}

/// One level of the `tls` block. The levels share this shape; keys Consul
/// has only at some levels are refused at the others by `tls::build`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsProtocolBlock {
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    pub use_auto_cert: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addresses {
    pub dns: Option<String>,
    pub http: Option<String>,
    pub https: Option<String>,
    pub grpc: Option<String>,
    pub grpc_tls: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub dns: Option<i64>,
    pub http: Option<i64>,
    pub https: Option<i64>,
    pub serf_lan: Option<i64>,
    pub serf_wan: Option<i64>,
    pub server: Option<i64>,
    pub grpc: Option<i64>,
    pub grpc_tls: Option<i64>,
    pub proxy_min_port: Option<i64>,
    pub proxy_max_port: Option<i64>,
    pub sidecar_min_port: Option<i64>,
    pub sidecar_max_port: Option<i64>,
    pub expose_min_port: Option<i64>,
    pub expose_max_port: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    pub allow_stale: Option<bool>,
    pub max_stale: Option<Dur>,
    pub node_ttl: Option<Dur>,
    pub service_ttl: Option<BTreeMap<String, Dur>>,
    pub enable_truncate: Option<bool>,
    pub only_passing: Option<bool>,
    pub recursor_timeout: Option<Dur>,
    pub recursor_strategy: Option<String>,
    pub disable_compression: Option<bool>,
    pub udp_answer_limit: Option<i64>,
    pub a_record_limit: Option<i64>,
    pub enable_additional_node_meta_txt: Option<bool>,
    pub soa: Option<Soa>,
    pub use_cache: Option<bool>,
    pub cache_max_age: Option<Dur>,
    pub prefer_namespace: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soa {
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
    pub expire: Option<u32>,
    pub min_ttl: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub http_max_conns_per_client: Option<i64>,
    /// consul-rs extension: see `runtime::Limits::http_read_header_timeout`.
    pub http_read_header_timeout: Option<Dur>,
    pub https_handshake_timeout: Option<Dur>,
    pub rpc_handshake_timeout: Option<Dur>,
    pub rpc_client_timeout: Option<Dur>,
    pub rpc_max_burst: Option<i64>,
    pub rpc_max_conns_per_client: Option<i64>,
    pub rpc_rate: Option<f64>,
    pub kv_max_value_size: Option<u64>,
    pub txn_max_req_len: Option<u64>,
    pub request_limits: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulInternal {
    pub coordinate: Option<CoordinateTuning>,
}

/// How servers batch coordinate updates into Raft.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinateTuning {
    pub update_period: Option<Dur>,
    pub update_batch_size: Option<i64>,
    pub update_max_batches: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Performance {
    pub raft_multiplier: Option<i64>,
    pub leave_drain_time: Option<Dur>,
    pub rpc_hold_timeout: Option<Dur>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autopilot {
    pub cleanup_dead_servers: Option<bool>,
    pub last_contact_threshold: Option<Dur>,
    pub max_trailing_logs: Option<i64>,
    pub min_quorum: Option<i64>,
    pub server_stabilization_time: Option<Dur>,
    pub redundancy_zone_tag: Option<String>,
    pub disable_upgrade_migration: Option<bool>,
    pub upgrade_version_tag: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gossip {
    pub gossip_nodes: Option<i64>,
    pub gossip_interval: Option<Dur>,
    pub probe_interval: Option<Dur>,
    pub probe_timeout: Option<Dur>,
    pub suspicion_mult: Option<i64>,
    pub retransmit_mult: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub block_endpoints: Option<Vec<String>>,
    pub allow_write_http_from: Option<Vec<String>>,
    pub response_headers: Option<BTreeMap<String, String>>,
    pub use_cache: Option<bool>,
    pub max_header_bytes: Option<i64>,
}

/// `ui_config`: the web UI. Only `enabled`, `dir` and `content_path` are
/// implemented; the metrics and dashboard keys feed panels our UI does not
/// have, so they are accepted with a warning.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    pub enabled: Option<bool>,
    pub dir: Option<String>,
    pub content_path: Option<String>,
    pub metrics_provider: Option<Value>,
    pub metrics_provider_files: Option<Value>,
    pub metrics_provider_options_json: Option<Value>,
    pub metrics_proxy: Option<Value>,
    pub dashboard_url_templates: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    pub enabled: Option<bool>,
    pub default_policy: Option<String>,
    pub down_policy: Option<String>,
    pub policy_ttl: Option<String>,
    pub role_ttl: Option<String>,
    pub token_ttl: Option<String>,
    pub enable_key_list_policy: Option<bool>,
    pub enable_token_persistence: Option<bool>,
    pub enable_token_replication: Option<bool>,
    pub disabled_ttl: Option<String>,
    pub tokens: Option<Value>,
}

/// A service block in a config file (snake_case keys, as Consul's files).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    pub kind: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub tagged_addresses: Option<BTreeMap<String, ServiceAddress>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub port: Option<i64>,
    pub socket_path: Option<String>,
    pub check: Option<CheckDefinition>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub checks: Option<Vec<CheckDefinition>>,
    pub token: Option<String>,
    pub weights: Option<Weights>,
    pub enable_tag_override: Option<bool>,
    pub proxy: Option<Value>,
    pub connect: Option<Value>,
    pub namespace: Option<String>,
    pub partition: Option<String>,
    pub locality: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAddress {
    pub address: Option<String>,
    pub port: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub passing: Option<i64>,
    pub warning: Option<i64>,
}

/// A check block in a config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckDefinition {
    #[serde(alias = "check_id")]
    pub id: Option<String>,
    pub name: Option<String>,
    pub notes: Option<String>,
    #[serde(alias = "serviceid")]
    pub service_id: Option<String>,
    pub token: Option<String>,
    pub status: Option<String>,
    #[serde(alias = "scriptargs")]
    pub args: Option<Vec<String>>,
    /// The handbook-era shell string, run with `/bin/sh -c`.
    pub script: Option<String>,
    pub http: Option<String>,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub method: Option<String>,
    pub body: Option<String>,
    pub disable_redirects: Option<bool>,
    pub output_max_size: Option<i64>,
    pub tcp: Option<String>,
    pub tcp_use_tls: Option<bool>,
    pub udp: Option<String>,
    pub interval: Option<Dur>,
    pub docker_container_id: Option<String>,
    pub shell: Option<String>,
    pub grpc: Option<String>,
    pub grpc_use_tls: Option<bool>,
    pub h2ping: Option<String>,
    pub h2ping_use_tls: Option<bool>,
    #[serde(alias = "tlsskipverify")]
    pub tls_skip_verify: Option<bool>,
    pub tls_server_name: Option<String>,
    pub alias_node: Option<String>,
    pub alias_service: Option<String>,
    pub timeout: Option<Dur>,
    pub ttl: Option<Dur>,
    pub success_before_passing: Option<i64>,
    pub failures_before_critical: Option<i64>,
    pub failures_before_warning: Option<i64>,
    #[serde(alias = "deregistercriticalserviceafter")]
    pub deregister_critical_service_after: Option<Dur>,
    pub namespace: Option<String>,
    pub partition: Option<String>,
}

/// How far we support a key that was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Accepted with a warning naming the key: ignoring it changes nothing
    /// a user relies on for safety or correctness.
    IgnoredWithWarning,
    /// Refused at start: silently ignoring it would weaken security or change
    /// what the cluster promises.
    Refused,
}

impl FileConfig {
    /// Lists the keys set in this source that we do not implement, and how
    /// each is treated. Refusals depend on the value (e.g. `acl.enabled=false`
    /// is harmless, `true` is not).
    pub fn unsupported_keys(&self) -> Vec<(String, Support)> {
        use Support::*;
        let mut out = Vec::new();
        let mut warn = |set: bool, key: &str| {
            if set {
                out.push((key.to_string(), IgnoredWithWarning));
            }
        };
        warn(self.enable_syslog.is_some(), "enable_syslog");
        warn(self.syslog_facility.is_some(), "syslog_facility");
        warn(self.enable_debug.is_some(), "enable_debug");
        if let Some(ui) = &self.ui_config {
            warn(ui.metrics_provider.is_some(), "ui_config.metrics_provider");
            warn(ui.metrics_provider_files.is_some(), "ui_config.metrics_provider_files");
            warn(ui.metrics_provider_options_json.is_some(), "ui_config.metrics_provider_options_json");
            warn(ui.metrics_proxy.is_some(), "ui_config.metrics_proxy");
            warn(ui.dashboard_url_templates.is_some(), "ui_config.dashboard_url_templates");
        }
        // Only `prometheus_retention_time` is read; anything else is ignored.
        warn(self.telemetry.as_ref().is_some_and(telemetry_beyond_prometheus), "telemetry");
        warn(self.log_file.is_some(), "log_file");
        warn(self.log_rotate_duration.is_some(), "log_rotate_duration");
        warn(self.log_rotate_bytes.is_some(), "log_rotate_bytes");
        warn(self.log_rotate_max_files.is_some(), "log_rotate_max_files");
        warn(self.disable_update_check.is_some(), "disable_update_check");
        warn(self.disable_anonymous_signature.is_some(), "disable_anonymous_signature");
        warn(self.disable_http_unprintable_char_filter.is_some(), "disable_http_unprintable_char_filter");
        warn(self.snapshot_agent.is_some(), "snapshot_agent");
        warn(self.connect.is_some(), "connect");
        warn(self.cache.is_some(), "cache");
        warn(self.unix_sockets.is_some(), "unix_sockets");
        warn(self.serf_lan_allowed_cidrs.is_some(), "serf_lan_allowed_cidrs");
        warn(self.serf_wan_allowed_cidrs.is_some(), "serf_wan_allowed_cidrs");
        warn(self.advertise_addrs.is_some(), "advertise_addrs");
        warn(self.enable_central_service_config.is_some(), "enable_central_service_config");
        warn(self.auto_reload_config.is_some(), "auto_reload_config");
        warn(self.segment.is_some(), "segment");
        warn(self.segments.is_some(), "segments");
        warn(self.non_voting_server.is_some(), "non_voting_server");
        warn(self.read_replica.is_some(), "read_replica");
        warn(self.experiments.is_some(), "experiments");
        warn(self.peering.is_some(), "peering");
        warn(self.raft_logstore.is_some(), "raft_logstore");
        warn(self.raft_boltdb.is_some(), "raft_boltdb");
        warn(self.rpc.is_some(), "rpc");
        warn(self.reporting.is_some(), "reporting");
        warn(self.license_path.is_some(), "license_path");
        warn(self.locality.is_some(), "locality");
        warn(self.primary_gateways.is_some(), "primary_gateways");
        warn(self.primary_gateways_interval.is_some(), "primary_gateways_interval");
        warn(self.disable_kv_key_validation.is_some(), "disable_kv_key_validation");
        warn(self.audit.is_some(), "audit");
        warn(self.acl_disabled_ttl.is_some(), "acl_disabled_ttl");
        if let Some(ports) = &self.ports {
            warn(ports.grpc.is_some(), "ports.grpc");
            warn(ports.grpc_tls.is_some(), "ports.grpc_tls");
            warn(ports.proxy_min_port.is_some() || ports.proxy_max_port.is_some(), "ports.proxy_*_port");
            warn(ports.expose_min_port.is_some() || ports.expose_max_port.is_some(), "ports.expose_*_port");
        }
        if let Some(addresses) = &self.addresses {
            warn(addresses.grpc.is_some() || addresses.grpc_tls.is_some(), "addresses.grpc");
        }

        // Refusals (`Support::Refused`): none today. TLS settings that
        // cannot work are refused with their own reasons by `tls::build`.
        out
    }
}

/// Whether a `telemetry` block (an object, or the list of objects an HCL
/// block becomes) sets anything besides `prometheus_retention_time`.
fn telemetry_beyond_prometheus(t: &Value) -> bool {
    let objects: Vec<&Value> = match t {
        Value::Array(items) => items.iter().collect(),
        v => vec![v],
    };
    objects.iter().any(|o| match o.as_object() {
        Some(m) => m.keys().any(|k| k != "prometheus_retention_time"),
        None => true,
    })
}
