//! The DNS server's resolved settings, derived from `RuntimeConfig`.
//!
//! Owns: domain names as parsed DNS names, recursor socket addresses, TTL
//! lookup rules (`service_ttl` exact / `prefix*` / `*`). Must not read files,
//! open sockets, or change `RuntimeConfig` itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;
use hickory_proto::ProtoError;

use crate::config::runtime::DnsSettings;
use crate::config::RuntimeConfig;

/// How long an idle TCP client may hold a connection open between queries.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(8);
/// UDP queries answered concurrently; past this, packets are dropped (the
/// client retries) instead of queueing without bound.
pub const DEFAULT_MAX_INFLIGHT_UDP: usize = 4096;
/// Simultaneous TCP connections; past this, new connections are closed.
pub const DEFAULT_MAX_TCP_CONNECTIONS: usize = 512;
/// Answer sets cached (one per service, tag, datacenter and domain).
pub const DEFAULT_ANSWER_CACHE_ENTRIES: usize = 4096;

/// Why the DNS settings were refused (the agent then stops with this text).
#[derive(Debug, thiserror::Error)]
pub enum DnsConfigError {
    #[error("invalid DNS domain {domain:?}: {source}")]
    Domain { domain: String, source: ProtoError },
    #[error("Invalid recursor address {0:?}: must be an IP address with an optional port")]
    Recursor(String),
}

/// Everything the DNS server needs to run, resolved once at start.
#[derive(Clone, Debug)]
pub struct DnsServerConfig {
    /// Primary domain, lowercase with a trailing dot, e.g. `consul.`.
    pub domain: String,
    /// Optional second domain answered the same way.
    pub alt_domain: Option<String>,
    /// Upstream resolvers for names outside our domains, in configured order.
    pub recursors: Vec<SocketAddr>,
    pub settings: DnsSettings,
    pub tcp_idle_timeout: Duration,
    pub max_inflight_udp: usize,
    pub max_tcp_connections: usize,
    pub answer_cache_entries: usize,
}

impl DnsServerConfig {
    /// Builds the DNS config from the agent's resolved configuration.
    /// Fails on a recursor that is not `ip`, `ip:port` or `[ipv6]:port`.
    pub fn from_runtime(rc: &RuntimeConfig) -> Result<Self, DnsConfigError> {
        let recursors = rc.recursors.iter().map(|r| parse_recursor(r)).collect::<Result<Vec<_>, _>>()?;
        let cfg = DnsServerConfig {
            domain: rc.domain.clone(),
            alt_domain: rc.alt_domain.clone(),
            recursors,
            ..DnsServerConfig::new(&rc.domain, rc.dns.clone())
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// A config with the given domain and settings, no recursors and default
    /// limits (tests and embedders).
    pub fn new(domain: &str, settings: DnsSettings) -> Self {
        let mut domain = domain.to_ascii_lowercase();
        if !domain.ends_with('.') {
            domain.push('.');
        }
        DnsServerConfig {
            domain,
            alt_domain: None,
            recursors: Vec::new(),
            settings,
            tcp_idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            max_inflight_udp: DEFAULT_MAX_INFLIGHT_UDP,
            max_tcp_connections: DEFAULT_MAX_TCP_CONNECTIONS,
            answer_cache_entries: DEFAULT_ANSWER_CACHE_ENTRIES,
        }
    }

    /// Checks that the domains are valid DNS names.
    pub fn validate(&self) -> Result<(), DnsConfigError> {
        domain_name(&self.domain)?;
        if let Some(alt) = &self.alt_domain {
            domain_name(alt)?;
        }
        Ok(())
    }

    /// The domains as DNS names: primary, then the alternative (if distinct).
    pub(crate) fn domains(&self) -> Result<crate::dns::name::Domains, DnsConfigError> {
        let primary = domain_name(&self.domain)?;
        let alt = match &self.alt_domain {
            Some(alt) => Some(domain_name(alt)?).filter(|a| *a != primary),
            None => None,
        };
        Ok(crate::dns::name::Domains::new(primary, alt))
    }
}

/// Consul's defaults for `dns_config` (agent/config/default.go), for tests
/// and embedders that have no `RuntimeConfig`.
pub fn default_dns_settings() -> DnsSettings {
    DnsSettings {
        allow_stale: true,
        max_stale: Duration::from_secs(87600 * 3600),
        node_ttl: Duration::ZERO,
        service_ttl: Default::default(),
        enable_truncate: false,
        only_passing: false,
        recursor_timeout: Duration::from_secs(2),
        recursor_strategy_random: false,
        disable_compression: false,
        udp_answer_limit: 3,
        a_record_limit: 0,
        enable_additional_node_meta_txt: true,
        soa_refresh: 3600,
        soa_retry: 600,
        soa_expire: 86400,
        soa_min_ttl: 0,
    }
}

fn domain_name(d: &str) -> Result<Name, DnsConfigError> {
    let mut name =
        Name::from_ascii(d).map_err(|source| DnsConfigError::Domain { domain: d.to_string(), source })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Parses a recursor: `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6; port 53
/// is implied.
pub fn parse_recursor(r: &str) -> Result<SocketAddr, DnsConfigError> {
    let r = r.trim();
    if let Ok(sa) = r.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = r.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(DnsConfigError::Recursor(r.to_string()))
}

/// Seconds of a duration as a DNS TTL, saturating.
pub(crate) fn ttl_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The TTL for answers about `service`: the exact key, else the longest
/// `prefix*` key, else `*`, else 0.
pub(crate) fn service_ttl(settings: &DnsSettings, service: &str) -> u32 {
    if let Some(d) = settings.service_ttl.get(service) {
        return ttl_secs(*d);
    }
    let mut best: Option<(usize, Duration)> = None;
    for (key, d) in &settings.service_ttl {
        if let Some(prefix) = key.strip_suffix('*') {
            if service.starts_with(prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), *d));
            }
        }
    }
    best.map(|(_, d)| ttl_secs(d)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ttl_prefers_exact_then_longest_prefix_then_wildcard() {
        let mut s = default_dns_settings();
        assert_eq!(service_ttl(&s, "web"), 0);
        s.service_ttl.insert("*".into(), Duration::from_secs(5));
        s.service_ttl.insert("db*".into(), Duration::from_secs(10));
        s.service_ttl.insert("db-main*".into(), Duration::from_secs(20));
        s.service_ttl.insert("db-main".into(), Duration::from_secs(30));
        assert_eq!(service_ttl(&s, "web"), 5);
        assert_eq!(service_ttl(&s, "db-x"), 10);
        assert_eq!(service_ttl(&s, "db-main-2"), 20);
        assert_eq!(service_ttl(&s, "db-main"), 30);
    }

    #[test]
    fn recursors_parse_with_implied_port() {
        assert_eq!(parse_recursor("8.8.8.8").unwrap(), "8.8.8.8:53".parse().unwrap());
        assert_eq!(parse_recursor("8.8.8.8:5353").unwrap(), "8.8.8.8:5353".parse().unwrap());
        assert_eq!(parse_recursor("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(parse_recursor("[::1]:54").unwrap(), "[::1]:54".parse().unwrap());
        assert_eq!(parse_recursor("[::1]").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_recursor("dns.example").unwrap_err().to_string().contains("Invalid recursor address"));
        assert_eq!(
            parse_recursor(" 8.8.8.8:x ").unwrap_err().to_string(),
            "Invalid recursor address \"8.8.8.8:x\": must be an IP address with an optional port"
        );
    }

    #[test]
    fn from_runtime_carries_domains_and_recursors() {
        let loaded = crate::config::load(&crate::config::LoadOptions {
            dev: true,
            flags: Some(serde_json::json!({
                "domain": "Example", "alt_domain": "alt.test",
                "recursors": ["127.0.0.9", "127.0.0.10:5300"],
                "dns_config": {"udp_answer_limit": 5}
            })),
            ..Default::default()
        })
        .unwrap();
        let cfg = DnsServerConfig::from_runtime(&loaded.config).unwrap();
        assert_eq!(cfg.domain, "example.");
        assert_eq!(cfg.alt_domain.as_deref(), Some("alt.test."));
        assert_eq!(cfg.recursors, vec!["127.0.0.9:53".parse().unwrap(), "127.0.0.10:5300".parse().unwrap()]);
        assert_eq!(cfg.settings.udp_answer_limit, 5);
        assert_eq!(cfg.domains().unwrap().name(1).to_ascii(), "alt.test.");
    }

    #[test]
    fn bad_domain_names_itself() {
        let mut cfg = DnsServerConfig::new("consul", default_dns_settings());
        cfg.alt_domain = Some("a..b.".into());
        let e = cfg.validate().unwrap_err();
        assert!(matches!(&e, DnsConfigError::Domain { domain, .. } if domain == "a..b."));
        assert!(e.to_string().starts_with("invalid DNS domain \"a..b.\": "), "{e}");
    }
}
