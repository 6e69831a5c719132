//! The resolved configuration an agent runs with: every default applied,
//! every value checked. Built once per (re)load from the merged sources;
//! never mutated afterwards (a reload builds a new one).

use super::addrs::Network;
use super::file::{CheckDefinition, FileConfig, ServiceDefinition};
use super::tls::TlsSettings;
use super::ConfigError;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Consul's log levels, as accepted by `-log-level` and `log_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "err" | "error" => Some(LogLevel::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ports {
    pub dns: i64,
    pub http: i64,
    /// -1 (Consul's default): no HTTPS listener.
    pub https: i64,
    pub serf_lan: i64,
    pub serf_wan: i64,
    pub server: i64,
    /// `ports.sidecar_min_port`..=`ports.sidecar_max_port`: where a
    /// `connect.sidecar_service` without a port gets one (21000..=21255).
    pub sidecar_min: i64,
    pub sidecar_max: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub http_max_conns_per_client: usize,
    pub kv_max_value_size: u64,
    pub txn_max_req_len: u64,
    pub rpc_max_conns_per_client: usize,
    pub rpc_handshake_timeout: Duration,
    /// How long a client of the HTTPS API may take to finish its TLS
    /// handshake.
    pub https_handshake_timeout: Duration,
    /// How long a client may take to send a request's headers (and how
    /// long a keep-alive connection may stay idle) on the HTTP API.
    pub http_read_header_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DnsSettings {
    pub allow_stale: bool,
    pub max_stale: Duration,
    pub node_ttl: Duration,
    pub service_ttl: BTreeMap<String, Duration>,
    pub enable_truncate: bool,
    pub only_passing: bool,
    pub recursor_timeout: Duration,
    pub recursor_strategy_random: bool,
    pub disable_compression: bool,
    pub udp_answer_limit: usize,
    pub a_record_limit: usize,
    pub enable_additional_node_meta_txt: bool,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub soa_min_ttl: u32,
}

/// SWIM timings for one gossip pool (LAN or WAN).
#[derive(Clone, Debug, PartialEq)]
pub struct GossipSettings {
    pub gossip_nodes: usize,
    pub gossip_interval: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub suspicion_mult: u32,
    pub retransmit_mult: u32,
    pub push_pull_interval: Duration,
}

impl GossipSettings {
    /// memberlist's LAN profile, which Consul uses for the LAN pool.
    pub fn lan() -> Self {
        GossipSettings {
            gossip_nodes: 3,
            gossip_interval: Duration::from_millis(200),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            suspicion_mult: 4,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
        }
    }

    /// memberlist's WAN profile, for the pool of servers across datacenters.
    pub fn wan() -> Self {
        GossipSettings {
            gossip_nodes: 4,
            gossip_interval: Duration::from_millis(500),
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(60),
        }
    }

    /// The WAN profile with `-dev`'s tight timings (Consul's dev mode
    /// overrides the same four settings for both pools).
    pub fn dev_wan() -> Self {
        let dev = GossipSettings::dev();
        GossipSettings {
            gossip_interval: dev.gossip_interval,
            probe_interval: dev.probe_interval,
            probe_timeout: dev.probe_timeout,
            suspicion_mult: dev.suspicion_mult,
            ..GossipSettings::wan()
        }
    }

    /// The tight timings of `-dev`, as Consul's dev mode uses.
    pub fn dev() -> Self {
        GossipSettings {
            gossip_nodes: 3,
            gossip_interval: Duration::from_millis(100),
            probe_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_millis(100),
            suspicion_mult: 3,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(15),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Autopilot {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: Duration,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: Duration,
}

/// Consul's autopilot defaults.
impl Default for Autopilot {
    fn default() -> Self {
        Autopilot {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
        }
    }
}

/// The web UI (`ui_config`), resolved: served when `enabled` or `dir` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct UiSettings {
    pub enabled: bool,
    /// Serve this directory instead of the UI embedded in the binary.
    pub dir: Option<PathBuf>,
    /// Where the UI lives: `/ui/` unless configured; always with a leading
    /// and a trailing slash.
    pub content_path: String,
}

impl UiSettings {
    pub fn served(&self) -> bool {
        self.enabled || self.dir.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct HttpSettings {
    pub block_endpoints: Vec<String>,
    pub allow_write_http_from: Vec<String>,
    pub response_headers: BTreeMap<String, String>,
}

/// Everything an agent needs to run, resolved.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub dev: bool,
    pub datacenter: String,
    pub primary_datacenter: String,
    /// `None` only with `-dev`, which keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    pub node_name: String,
    pub node_id: Option<String>,
    pub node_meta: BTreeMap<String, String>,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    pub bind_addr: IpAddr,
    pub advertise_addr: IpAddr,
    pub advertise_addr_wan: IpAddr,
    pub serf_bind_lan: IpAddr,
    pub serf_bind_wan: IpAddr,
    pub client_addrs: Vec<IpAddr>,
    pub http_addrs: Vec<IpAddr>,
    pub https_addrs: Vec<IpAddr>,
    pub dns_addrs: Vec<IpAddr>,
    pub ports: Ports,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: bool,
    pub encrypt_verify_outgoing: bool,
    pub disable_keyring_file: bool,
    /// No network coordinates are computed, sent, stored or answered.
    pub disable_coordinates: bool,
    /// How agents send and servers batch network coordinates.
    pub coordinate_sync: CoordinateSync,
    pub log_level: LogLevel,
    pub log_json: bool,
    pub pid_file: Option<PathBuf>,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    pub rejoin_after_leave: bool,
    pub start_join: Vec<String>,
    pub start_join_wan: Vec<String>,
    pub retry_join: Vec<String>,
    pub retry_join_wan: Vec<String>,
    pub retry_interval: Duration,
    pub retry_interval_wan: Duration,
    pub retry_max: u32,
    pub retry_max_wan: u32,
    pub reconnect_timeout: Duration,
    pub reconnect_timeout_wan: Duration,
    pub recursors: Vec<String>,
    pub domain: String,
    pub alt_domain: Option<String>,
    pub dns: DnsSettings,
    pub services: Vec<ServiceDefinition>,
    pub checks: Vec<CheckDefinition>,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    pub disable_remote_exec: bool,
    pub check_update_interval: Duration,
    pub check_output_max_size: usize,
    pub discard_check_output: bool,
    pub session_ttl_min: Duration,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
    pub discovery_max_stale: Duration,
    pub limits: Limits,
    pub raft_multiplier: u32,
    pub leave_drain_time: Duration,
    pub rpc_hold_timeout: Duration,
    pub raft_snapshot_threshold: u64,
    pub raft_snapshot_interval: Duration,
    pub raft_trailing_logs: u64,
    pub autopilot: Autopilot,
    pub gossip_lan: GossipSettings,
    pub gossip_wan: GossipSettings,
    pub watches: Vec<serde_json::Value>,
    pub translate_wan_addrs: bool,
    pub tagged_addresses: BTreeMap<String, String>,
    pub http: HttpSettings,
    pub ui: UiSettings,
    /// Full anti-entropy sync interval.
    pub ae_interval: Duration,
    /// `telemetry.prometheus_retention_time`: > 0 enables the Prometheus
    /// format of `/v1/agent/metrics`.
    pub prometheus_retention_time: Duration,
    pub tls: TlsSettings,
    /// The `acl` block (and its deprecated spellings).
    pub acl: super::acl::AclSettings,
    /// `config_entries.bootstrap`, validated: written by a server's leader
    /// when absent.
    pub config_entry_bootstrap: Vec<crate::config_entry::ConfigEntry>,
}

impl RuntimeConfig {
    pub fn http_socket_addrs(&self) -> Vec<SocketAddr> {
        if self.ports.http < 0 {
            return Vec::new();
        }
        self.http_addrs.iter().map(|ip| SocketAddr::new(*ip, self.ports.http as u16)).collect()
    }

    pub fn https_socket_addrs(&self) -> Vec<SocketAddr> {
        if self.ports.https <= 0 {
            return Vec::new();
        }
        self.https_addrs.iter().map(|ip| SocketAddr::new(*ip, self.ports.https as u16)).collect()
    }

    pub fn dns_socket_addrs(&self) -> Vec<SocketAddr> {
        if self.ports.dns < 0 {
            return Vec::new();
        }
        self.dns_addrs.iter().map(|ip| SocketAddr::new(*ip, self.ports.dns as u16)).collect()
    }

    pub fn server_rpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_addr, self.ports.server as u16)
    }

    pub fn server_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.ports.server as u16)
    }
}

/// Builds the runtime configuration from the merged sources.
pub(super) fn build(
    c: FileConfig,
    dev: bool,
    warnings: &mut Vec<String>,
    net: &Network<'_>,
) -> Result<RuntimeConfig, ConfigError> {
    let invalid = |msg: String| ConfigError::Invalid(msg);
    let coordinate_sync = CoordinateSync::from_file(&c);
    let server = c.server.unwrap_or(dev);
    let mut bootstrap = c.bootstrap.unwrap_or(dev);
    let bootstrap_expect = c.bootstrap_expect.unwrap_or(0);
    if bootstrap_expect < 0 {
        return Err(invalid("bootstrap_expect cannot be negative".into()));
    }
    let mut bootstrap_expect = bootstrap_expect as u32;
    if bootstrap_expect > 0 && !server {
        return Err(invalid("'bootstrap_expect > 0' requires 'server = true'".into()));
    }
    if bootstrap_expect > 0 && bootstrap {
        return Err(invalid("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive".into()));
    }
    if bootstrap && !server {
        return Err(invalid("'bootstrap = true' requires 'server = true'".into()));
    }
    if bootstrap_expect == 1 {
        warnings.push("BootstrapExpect is set to 1; this is the same as Bootstrap mode.".into());
        bootstrap = true;
        bootstrap_expect = 0;
    } else if bootstrap_expect == 2 {
        warnings.push(
            "A cluster with 2 servers will provide no failure tolerance. See https://developer.hashicorp.com/consul/docs/install/performance#deployment-table".into(),
        );
    } else if bootstrap_expect > 0 && bootstrap_expect.is_multiple_of(2) {
        warnings.push(
            "A cluster with an even number of servers does not achieve optimum fault tolerance. See https://developer.hashicorp.com/consul/docs/install/performance#deployment-table".into(),
        );
    }
    if bootstrap && !dev {
        warnings.push("bootstrap = true: do not enable unless necessary".into());
    }

    let data_dir = match (&c.data_dir, dev) {
        (Some(d), _) if !d.is_empty() => Some(PathBuf::from(d)),
        (_, true) => None,
        _ => return Err(invalid("data_dir cannot be empty".into())),
    };

    let datacenter = c.datacenter.clone().unwrap_or_else(|| "dc1".into()).to_ascii_lowercase();
    if !is_dns_label(&datacenter) {
        return Err(invalid(format!("datacenter: invalid name {datacenter:?}: must be a valid DNS label")));
    }
    let node_name = match &c.node_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => hostname()
            .ok_or_else(|| invalid("node_name cannot be empty and the hostname could not be read".into()))?,
    };
    if node_name.chars().any(|ch| ch.is_whitespace() || ch == '"' || ch == '\'') {
        return Err(invalid(format!("node_name {node_name:?} contains whitespace or quotes")));
    }
    if let Some(id) = &c.node_id {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(invalid(format!("node_id: {id:?} is not a valid UUID")));
        }
    }

    // Addresses: bind, advertise, client. Each may be a go-sockaddr template.
    let default_bind: IpAddr = if dev { Ipv4Addr::LOCALHOST.into() } else { Ipv4Addr::UNSPECIFIED.into() };
    let bind_addr = net.single_addr("bind_addr", c.bind_addr.as_deref(), default_bind)?;
    let advertise_addr = match c.advertise_addr.as_deref().or(c.advertise_addr_ipv4.as_deref()) {
        Some(a) => net.single_addr("advertise_addr", Some(a), bind_addr)?,
        None if bind_addr.is_unspecified() => net.private_ipv4()?,
        None => bind_addr,
    };
    if advertise_addr.is_unspecified() {
        return Err(invalid("Advertise address cannot be 0.0.0.0, :: or [::]".into()));
    }
    let advertise_addr_wan = match c.advertise_addr_wan.as_deref().or(c.advertise_addr_wan_ipv4.as_deref()) {
        Some(a) => net.single_addr("advertise_addr_wan", Some(a), advertise_addr)?,
        None => advertise_addr,
    };
    let serf_bind_lan = net.single_addr("serf_lan", c.serf_lan.as_deref(), bind_addr)?;
    let serf_bind_wan = net.single_addr("serf_wan", c.serf_wan.as_deref(), bind_addr)?;
    let client_addrs = net.addr_list("client_addr", c.client_addr.as_deref().unwrap_or("127.0.0.1"))?;
    let addresses = c.addresses.clone().unwrap_or_default();
    let http_addrs = match &addresses.http {
        Some(a) => net.addr_list("addresses.http", a)?,
        None => client_addrs.clone(),
    };
    let https_addrs = match &addresses.https {
        Some(a) => net.addr_list("addresses.https", a)?,
        None => client_addrs.clone(),
    };
    let dns_addrs = match &addresses.dns {
        Some(a) => net.addr_list("addresses.dns", a)?,
        None => client_addrs.clone(),
    };
    let join = |key: &str, list: &Option<Vec<String>>, warnings: &mut Vec<String>| {
        net.join_list(key, list.as_deref().unwrap_or_default(), warnings)
    };
    let start_join = join("start_join", &c.start_join, warnings)?;
    let start_join_wan = join("start_join_wan", &c.start_join_wan, warnings)?;
    let retry_join = join("retry_join", &c.retry_join, warnings)?;
    let retry_join_wan = join("retry_join_wan", &c.retry_join_wan, warnings)?;
    let recursors = net.recursors(c.recursors.as_deref().unwrap_or_default())?;

    let p = c.ports.clone().unwrap_or_default();
    let ports = Ports {
        dns: p.dns.unwrap_or(8600),
        http: p.http.unwrap_or(8500),
        https: p.https.unwrap_or(-1),
        serf_lan: p.serf_lan.unwrap_or(8301),
        // `-dev` keeps Consul's WAN port: a dev server is a one-member WAN
        // pool, so `/v1/coordinate/datacenters` and `members -wan` show it.
        serf_wan: p.serf_wan.unwrap_or(8302),
        server: p.server.unwrap_or(8300),
        sidecar_min: p.sidecar_min_port.unwrap_or(21000),
        sidecar_max: p.sidecar_max_port.unwrap_or(21255),
    };
    for (name, port, may_disable) in [
        ("ports.dns", ports.dns, true),
        ("ports.http", ports.http, true),
        ("ports.https", ports.https, true),
        ("ports.serf_lan", ports.serf_lan, false),
        ("ports.serf_wan", ports.serf_wan, true),
        ("ports.server", ports.server, false),
        ("ports.sidecar_min_port", ports.sidecar_min, false),
        ("ports.sidecar_max_port", ports.sidecar_max, false),
    ] {
        let ok = (0..=65535).contains(&port) || (may_disable && port == -1);
        if !ok {
            return Err(invalid(format!("{name}: invalid port {port}")));
        }
    }

    if ports.sidecar_min > ports.sidecar_max {
        return Err(invalid(
            "ports.sidecar_min_port must be less than or equal to ports.sidecar_max_port".into(),
        ));
    }

    let encrypt = c.encrypt.clone().filter(|s| !s.is_empty());
    if let Some(key) = &encrypt {
        validate_gossip_key(key).map_err(|e| invalid(format!("encrypt: {e}")))?;
    }

    let log_level = match &c.log_level {
        Some(l) => LogLevel::parse(l).ok_or_else(|| invalid(format!("log_level: invalid level {l:?}")))?,
        None if dev => LogLevel::Debug,
        None => LogLevel::Info,
    };

    let d = c.dns_config.clone().unwrap_or_default();
    let soa = d.soa.clone().unwrap_or_default();
    let udp_answer_limit = d.udp_answer_limit.unwrap_or(3);
    if udp_answer_limit < 0 {
        return Err(invalid("dns_config.udp_answer_limit cannot be negative".into()));
    }
    let dns = DnsSettings {
        allow_stale: d.allow_stale.unwrap_or(true),
        max_stale: d.max_stale.map(|x| x.0).unwrap_or(Duration::from_secs(87600 * 3600)),
        node_ttl: d.node_ttl.map(|x| x.0).unwrap_or_default(),
        service_ttl: d.service_ttl.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
        enable_truncate: d.enable_truncate.unwrap_or(false),
        only_passing: d.only_passing.unwrap_or(false),
        recursor_timeout: d.recursor_timeout.map(|x| x.0).unwrap_or(Duration::from_secs(2)),
        recursor_strategy_random: match d.recursor_strategy.as_deref() {
            None | Some("sequential") => false,
            Some("random") => true,
            Some(other) => {
                return Err(invalid(format!("dns_config.recursor_strategy: invalid strategy {other:?}")))
            }
        },
        disable_compression: d.disable_compression.unwrap_or(false),
        udp_answer_limit: udp_answer_limit as usize,
        a_record_limit: d.a_record_limit.unwrap_or(0).max(0) as usize,
        enable_additional_node_meta_txt: d.enable_additional_node_meta_txt.unwrap_or(true),
        soa_refresh: soa.refresh.unwrap_or(3600),
        soa_retry: soa.retry.unwrap_or(600),
        soa_expire: soa.expire.unwrap_or(86400),
        soa_min_ttl: soa.min_ttl.unwrap_or(0),
    };

    let mut domain = c.domain.clone().unwrap_or_else(|| "consul.".into()).to_ascii_lowercase();
    if !domain.ends_with('.') {
        domain.push('.');
    }
    let alt_domain = c.alt_domain.clone().filter(|s| !s.is_empty()).map(|mut d| {
        d.make_ascii_lowercase();
        if !d.ends_with('.') {
            d.push('.');
        }
        d
    });

    let l = c.limits.clone().unwrap_or_default();
    let limits = Limits {
        http_max_conns_per_client: nonneg(
            "limits.http_max_conns_per_client",
            l.http_max_conns_per_client,
            200,
        )?,
        kv_max_value_size: l.kv_max_value_size.unwrap_or(512 * 1024),
        txn_max_req_len: l.txn_max_req_len.unwrap_or(512 * 1024),
        rpc_max_conns_per_client: nonneg("limits.rpc_max_conns_per_client", l.rpc_max_conns_per_client, 100)?,
        rpc_handshake_timeout: l.rpc_handshake_timeout.map(|x| x.0).unwrap_or(Duration::from_secs(5)),
        https_handshake_timeout: l.https_handshake_timeout.map(|x| x.0).unwrap_or(Duration::from_secs(5)),
        http_read_header_timeout: match l.http_read_header_timeout.map(|x| x.0) {
            None => Duration::from_secs(30),
            Some(d) if d.is_zero() => {
                return Err(invalid("limits.http_read_header_timeout must be positive".to_string()))
            }
            Some(d) => d,
        },
    };

    let perf = c.performance.clone().unwrap_or_default();
    let raft_multiplier = perf.raft_multiplier.unwrap_or(1);
    if !(1..=10).contains(&raft_multiplier) {
        return Err(invalid(format!(
            "performance.raft_multiplier cannot be {raft_multiplier}. Must be between 1 and 10"
        )));
    }

    let ap = c.autopilot.clone().unwrap_or_default();
    let autopilot = Autopilot {
        cleanup_dead_servers: ap.cleanup_dead_servers.unwrap_or(true),
        last_contact_threshold: ap.last_contact_threshold.map(|x| x.0).unwrap_or(Duration::from_millis(200)),
        max_trailing_logs: nonneg("autopilot.max_trailing_logs", ap.max_trailing_logs, 250)? as u64,
        min_quorum: nonneg("autopilot.min_quorum", ap.min_quorum, 0)? as u32,
        server_stabilization_time: ap
            .server_stabilization_time
            .map(|x| x.0)
            .unwrap_or(Duration::from_secs(10)),
    };

    let gossip =
        |g: &Option<super::file::Gossip>, mut base: GossipSettings| -> Result<GossipSettings, ConfigError> {
            if let Some(g) = g {
                if let Some(v) = g.gossip_nodes {
                    base.gossip_nodes = nonneg("gossip.gossip_nodes", Some(v), 3)?;
                }
                if let Some(v) = g.gossip_interval {
                    base.gossip_interval = v.0;
                }
                if let Some(v) = g.probe_interval {
                    base.probe_interval = v.0;
                }
                if let Some(v) = g.probe_timeout {
                    base.probe_timeout = v.0;
                }
                if let Some(v) = g.suspicion_mult {
                    base.suspicion_mult = nonneg("gossip.suspicion_mult", Some(v), 4)? as u32;
                }
                if let Some(v) = g.retransmit_mult {
                    base.retransmit_mult = nonneg("gossip.retransmit_mult", Some(v), 4)? as u32;
                }
            }
            Ok(base)
        };
    let gossip_lan = gossip(&c.gossip_lan, if dev { GossipSettings::dev() } else { GossipSettings::lan() })?;
    let gossip_wan =
        gossip(&c.gossip_wan, if dev { GossipSettings::dev_wan() } else { GossipSettings::wan() })?;

    let default_query_time = c.default_query_time.map(|x| x.0).unwrap_or(Duration::from_secs(300));
    let max_query_time = c.max_query_time.map(|x| x.0).unwrap_or(Duration::from_secs(600));

    let mut services = c.services.clone().map(|s| s.0).unwrap_or_default();
    for s in &mut services {
        if s.name.as_deref().unwrap_or("").is_empty() {
            return Err(invalid("service: missing service name".into()));
        }
    }
    let checks = c.checks.clone().map(|s| s.0).unwrap_or_default();

    let reconnect_timeout = c.reconnect_timeout.map(|x| x.0).unwrap_or(Duration::from_secs(72 * 3600));
    if reconnect_timeout < Duration::from_secs(8 * 3600) {
        return Err(invalid("reconnect_timeout must be >= 8h".into()));
    }

    let ui = ui_settings(&c, dev, warnings)?;
    let h = c.http_config.clone().unwrap_or_default();
    if let Some(headers) = &h.response_headers {
        check_response_headers(headers)?;
    }
    let tls = super::tls::build(&c, warnings)?;
    Ok(RuntimeConfig {
        dev,
        primary_datacenter: c
            .primary_datacenter
            .clone()
            .or_else(|| c.acl_datacenter.clone())
            .unwrap_or_else(|| datacenter.clone()),
        datacenter,
        data_dir,
        node_name,
        node_id: c.node_id.clone().map(|s| s.to_ascii_lowercase()),
        node_meta: c.node_meta.clone().unwrap_or_default(),
        server,
        bootstrap,
        bootstrap_expect,
        bind_addr,
        advertise_addr,
        advertise_addr_wan,
        serf_bind_lan,
        serf_bind_wan,
        client_addrs,
        http_addrs,
        https_addrs,
        dns_addrs,
        ports,
        encrypt,
        encrypt_verify_incoming: c.encrypt_verify_incoming.unwrap_or(true),
        encrypt_verify_outgoing: c.encrypt_verify_outgoing.unwrap_or(true),
        disable_keyring_file: c.disable_keyring_file.unwrap_or(dev),
        disable_coordinates: c.disable_coordinates.unwrap_or(false),
        coordinate_sync,
        log_level,
        log_json: c.log_json.unwrap_or(false),
        pid_file: c.pid_file.clone().map(PathBuf::from),
        // Consul 0.7+ defaults: servers stay in the peer set on SIGTERM and
        // SIGINT; clients leave on both.
        leave_on_terminate: c.leave_on_terminate.unwrap_or(!server),
        skip_leave_on_interrupt: c.skip_leave_on_interrupt.unwrap_or(server),
        rejoin_after_leave: c.rejoin_after_leave.unwrap_or(false),
        start_join,
        start_join_wan,
        retry_join,
        retry_join_wan,
        retry_interval: c.retry_interval.map(|x| x.0).unwrap_or(Duration::from_secs(30)),
        retry_interval_wan: c.retry_interval_wan.map(|x| x.0).unwrap_or(Duration::from_secs(30)),
        retry_max: nonneg("retry_max", c.retry_max, 0)? as u32,
        retry_max_wan: nonneg("retry_max_wan", c.retry_max_wan, 0)? as u32,
        reconnect_timeout,
        reconnect_timeout_wan: c.reconnect_timeout_wan.map(|x| x.0).unwrap_or(Duration::from_secs(72 * 3600)),
        recursors,
        domain,
        alt_domain,
        dns,
        services,
        checks,
        enable_script_checks: c.enable_script_checks.unwrap_or(false),
        enable_local_script_checks: c.enable_local_script_checks.unwrap_or(false),
        disable_remote_exec: c.disable_remote_exec.unwrap_or(true),
        check_update_interval: c.check_update_interval.map(|x| x.0).unwrap_or(Duration::from_secs(300)),
        check_output_max_size: nonneg("check_output_max_size", c.check_output_max_size, 4096)?,
        discard_check_output: c.discard_check_output.unwrap_or(false),
        session_ttl_min: c.session_ttl_min.map(|x| x.0).unwrap_or(Duration::from_secs(10)),
        default_query_time,
        max_query_time,
        discovery_max_stale: c.discovery_max_stale.map(|x| x.0).unwrap_or_default(),
        limits,
        raft_multiplier: raft_multiplier as u32,
        leave_drain_time: perf.leave_drain_time.map(|x| x.0).unwrap_or(Duration::from_secs(5)),
        rpc_hold_timeout: perf.rpc_hold_timeout.map(|x| x.0).unwrap_or(Duration::from_secs(7)),
        raft_snapshot_threshold: nonneg("raft_snapshot_threshold", c.raft_snapshot_threshold, 16384)? as u64,
        raft_snapshot_interval: c.raft_snapshot_interval.map(|x| x.0).unwrap_or(Duration::from_secs(30)),
        raft_trailing_logs: nonneg("raft_trailing_logs", c.raft_trailing_logs, 10240)? as u64,
        autopilot,
        gossip_lan,
        gossip_wan,
        watches: c.watches.clone().unwrap_or_default(),
        translate_wan_addrs: c.translate_wan_addrs.unwrap_or(false),
        tagged_addresses: c.tagged_addresses.clone().unwrap_or_default(),
        http: HttpSettings {
            block_endpoints: h.block_endpoints.unwrap_or_default(),
            allow_write_http_from: h.allow_write_http_from.unwrap_or_default(),
            response_headers: h.response_headers.unwrap_or_default(),
        },
        ui,
        ae_interval: c.ae_interval.map(|x| x.0).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60)),
        prometheus_retention_time: telemetry_duration(&c.telemetry, "prometheus_retention_time")?,
        tls,
        acl: super::acl::build(&c, warnings)?,
        config_entry_bootstrap: super::config_entries::bootstrap(c.config_entries.as_ref())?,
    })
}

/// `ui_config`, with the deprecated top-level `ui`, `ui_dir` and
/// `ui_content_path` filling in what `ui_config` leaves unset (Consul's
/// warnings). `-dev` turns the UI on unless told otherwise.
fn ui_settings(c: &FileConfig, dev: bool, warnings: &mut Vec<String>) -> Result<UiSettings, ConfigError> {
    let u = c.ui_config.clone().unwrap_or_default();
    if c.ui.is_some() {
        warnings.push("The 'ui' field is deprecated. Use the 'ui_config.enabled' field instead.".into());
    }
    if c.ui_dir.is_some() {
        warnings.push("The 'ui_dir' field is deprecated. Use the 'ui_config.dir' field instead.".into());
    }
    if c.ui_content_path.is_some() {
        warnings.push(
            "The 'ui_content_path' field is deprecated. Use the 'ui_config.content_path' field instead."
                .into(),
        );
    }
    let enabled = u.enabled.or(c.ui).unwrap_or(dev);
    let dir = u.dir.or_else(|| c.ui_dir.clone()).filter(|d| !d.is_empty()).map(PathBuf::from);
    // Dev mode turns the UI on by itself, so a directory given there is no
    // contradiction.
    if !dev && enabled && dir.is_some() {
        return Err(ConfigError::Invalid(
            "Both the ui_config.enabled and ui_config.dir (or -ui and -ui-dir) were specified, please provide only one.\n\
             If trying to use your own web UI resources, use ui_config.dir or the -ui-dir flag.\n\
             The web UI is included in the binary so use ui_config.enabled or the -ui flag to enable it"
                .into(),
        ));
    }
    let path = u.content_path.or_else(|| c.ui_content_path.clone()).unwrap_or_default();
    let content_path = content_path(&path)?;
    Ok(UiSettings { enabled, dir, content_path })
}

/// Consul's normalisation of `ui_config.content_path`: trimmed of slashes,
/// then one leading and one trailing; empty means `/ui/`. We also refuse
/// paths the HTTP API owns or that cannot appear in a URL path as written,
/// which Consul would accept and then never serve.
fn content_path(raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok("/ui/".into());
    }
    let path = format!("/{trimmed}/");
    let bad = |why: &str| ConfigError::Invalid(format!("ui_config.content_path {raw:?}: {why}"));
    if path == "/v1/" || path.starts_with("/v1/") {
        return Err(bad("the HTTP API owns /v1/"));
    }
    if trimmed.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(bad("must not contain empty, '.' or '..' segments"));
    }
    if !path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b)) {
        return Err(bad("may only contain letters, digits, '/', '-', '.', '_' and '~'"));
    }
    Ok(path)
}

fn nonneg(key: &str, v: Option<i64>, default: usize) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if v >= 0 => Ok(v as usize),
        Some(v) => Err(ConfigError::Invalid(format!("{key} cannot be negative (got {v})"))),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !s.starts_with('-')
}

pub use super::addrs::is_private_ipv4;

/// Checks a gossip key: base64 of 16, 24 or 32 bytes.
pub fn validate_gossip_key(key: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|e| format!("Invalid key: failed to decode base64: {e}"))?;
    match bytes.len() {
        16 | 24 | 32 => Ok(bytes),
        n => Err(format!("Invalid key: key size must be 16, 24 or 32 bytes (got {n})")),
    }
}

/// The machine's host name, as Consul's default node name.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// This machine's interface addresses (names, prefixes, flags); the
/// default interface list for `load`.
pub use super::netif::interface_addrs;

/// A duration inside the `telemetry` block (an object, or the list of
/// objects an HCL block decodes to); zero when unset.
fn telemetry_duration(t: &Option<serde_json::Value>, key: &str) -> Result<Duration, ConfigError> {
    let obj = match t {
        Some(serde_json::Value::Array(items)) => items.iter().rev().find_map(|i| i.get(key)),
        Some(v) => v.get(key),
        None => None,
    };
    match obj {
        None => Ok(Duration::ZERO),
        Some(serde_json::Value::String(s)) => crate::duration::parse(s)
            .map_err(|e| ConfigError::Invalid(format!("telemetry.{key}: invalid duration {s:?}: {e}"))),
        Some(serde_json::Value::Number(n)) => Ok(Duration::from_nanos(n.as_u64().unwrap_or(0))),
        Some(other) => {
            Err(ConfigError::Invalid(format!("telemetry.{key}: expected a duration, got {other}")))
        }
    }
}

/// `http_config.response_headers` are added to every HTTP answer, so a name
/// or value the HTTP layer could not send is refused at load time.
fn check_response_headers(headers: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (name, value) in headers {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::Invalid(format!(
                "http_config.response_headers: invalid header name {name:?}"
            )));
        }
        if axum::http::HeaderValue::from_str(value).is_err() {
            return Err(ConfigError::Invalid(format!(
                "http_config.response_headers: invalid value for header {name:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_keys() {
        assert!(validate_gossip_key("EXz7LFN8hpQ4id8EDYiFoQ==").is_ok());
        assert!(validate_gossip_key("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=").is_ok());
        assert!(validate_gossip_key("YWJj").unwrap_err().contains("16, 24 or 32"));
        assert!(validate_gossip_key("!!").is_err());
    }
}

/// Consul's coordinate-sync constants: an agent sends its LAN coordinate
/// every max(`interval_min`, members / `rate_target` s) plus a random
/// stagger; a server applies what it received every `update_period`, in
/// batches of `batch_size`, at most `max_batches` per period (the rest is
/// dropped: the next round brings fresher values anyway).
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinateSync {
    pub rate_target: f64,
    pub interval_min: Duration,
    pub update_period: Duration,
    pub batch_size: usize,
    pub max_batches: usize,
}

impl Default for CoordinateSync {
    fn default() -> Self {
        CoordinateSync {
            rate_target: 64.0,
            interval_min: Duration::from_secs(15),
            update_period: Duration::from_secs(5),
            batch_size: 128,
            max_batches: 5,
        }
    }
}

impl CoordinateSync {
    fn from_file(c: &super::file::FileConfig) -> Self {
        let d = CoordinateSync::default();
        let tuning = c.consul.as_ref().and_then(|x| x.coordinate.as_ref());
        let positive = |v: Option<i64>, def: usize| v.filter(|n| *n > 0).map_or(def, |n| n as usize);
        CoordinateSync {
            rate_target: c
                .sync_coordinate_rate_target
                .filter(|r| r.is_finite() && *r > 0.0)
                .unwrap_or(d.rate_target),
            interval_min: c
                .sync_coordinate_interval_min
                .map(|x| x.0)
                .filter(|x| !x.is_zero())
                .unwrap_or(d.interval_min),
            update_period: tuning
                .and_then(|t| t.update_period.map(|x| x.0))
                .filter(|x| !x.is_zero())
                .unwrap_or(d.update_period),
            batch_size: positive(tuning.and_then(|t| t.update_batch_size), d.batch_size),
            max_batches: positive(tuning.and_then(|t| t.update_max_batches), d.max_batches),
        }
    }

    /// How long an agent waits between two coordinate updates in a pool of
    /// `members` (Consul's rate-scaled interval).
    pub fn interval(&self, members: usize) -> Duration {
        let scaled = Duration::from_secs_f64(members as f64 / self.rate_target);
        scaled.max(self.interval_min)
    }
}
