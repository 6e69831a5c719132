//! Resolving the address keys of a config (`bind_addr`, `client_addr`,
//! `addresses.*`, `serf_*`, `advertise_*`, `retry_join`, `recursors`, ...):
//! plain IP lists, go-sockaddr templates, and Consul's choice of an
//! advertise address when binding to 0.0.0.0.
//!
//! Owns: how a key's text becomes addresses and the error wording for it.
//! The interface list comes from the caller (see `Network`), never from
//! here, so tests and `consul validate` do not depend on this machine.

use super::netif::IfAddr;
use super::sockaddr::{self, TemplateError};
use super::ConfigError;
use std::cell::OnceCell;
use std::net::{IpAddr, Ipv4Addr};

/// Where templates and the 0.0.0.0 rule get their interfaces from.
pub enum Network<'a> {
    /// Evaluate against the list `probe` returns (read once, when first
    /// needed).
    Live { probe: &'a dyn Fn() -> Vec<IfAddr>, cache: OnceCell<Vec<IfAddr>> },
    /// Check templates without evaluating them and do not look at any
    /// machine (`consul validate`): results are a documentation address.
    CheckOnly,
}

/// What `CheckOnly` puts where an address from this machine would go.
const PLACEHOLDER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

impl<'a> Network<'a> {
    pub fn live(probe: &'a dyn Fn() -> Vec<IfAddr>) -> Self {
        Network::Live { probe, cache: OnceCell::new() }
    }

    fn interfaces(&self) -> &[IfAddr] {
        match self {
            Network::Live { probe, cache } => cache.get_or_init(probe),
            Network::CheckOnly => &[],
        }
    }

    /// Expands a template; `Ok(None)` in check-only mode.
    fn expand(&self, key: &str, raw: &str) -> Result<Option<String>, ConfigError> {
        let fail = |e: TemplateError| {
            ConfigError::Invalid(format!("{key}: error in go-sockaddr template {raw:?}: {e}"))
        };
        match self {
            Network::CheckOnly => sockaddr::check(raw).map(|_| None).map_err(fail),
            Network::Live { .. } => sockaddr::expand(raw, self.interfaces()).map(Some).map_err(fail),
        }
    }

    /// A space-separated list of IP addresses, or a template producing one.
    pub fn addr_list(&self, key: &str, raw: &str) -> Result<Vec<IpAddr>, ConfigError> {
        if !sockaddr::is_template(raw) {
            return parse_ips(key, raw, raw.split_whitespace(), None);
        }
        match self.expand(key, raw)? {
            None => Ok(vec![PLACEHOLDER]),
            // Consul would fall back to a default here; listening or
            // advertising somewhere the operator did not ask is worse than
            // stopping with the template named.
            Some(out) if out.trim().is_empty() => {
                Err(ConfigError::Invalid(format!("{key}: go-sockaddr template {raw:?} produced no address")))
            }
            Some(out) => parse_ips(key, raw, out.split_whitespace(), Some(&out)),
        }
    }

    /// A key that takes exactly one address; unset or empty gives `default`.
    pub fn single_addr(
        &self,
        key: &str,
        value: Option<&str>,
        default: IpAddr,
    ) -> Result<IpAddr, ConfigError> {
        let Some(raw) = value else { return Ok(default) };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(default);
        }
        let list = self.addr_list(key, raw)?;
        let template = sockaddr::is_template(raw);
        match list.as_slice() {
            [one] => Ok(*one),
            [] => Err(ConfigError::Invalid(format!("{key}: no address found in {raw:?}"))),
            _ if template => Err(ConfigError::Invalid(format!(
                "{key}: go-sockaddr template {raw:?} produced several addresses ({}); only one is allowed",
                list.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")
            ))),
            _ => Err(ConfigError::Invalid(format!(
                "{key}: multiple addresses found in {raw:?}: only one is allowed"
            ))),
        }
    }

    /// Join addresses (`retry_join` and friends): an entry with a template
    /// becomes the addresses it produces; other entries (host names,
    /// `provider=...` cloud strings) pass through untouched, as in Consul.
    pub fn join_list(
        &self,
        key: &str,
        entries: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for entry in entries {
            if !sockaddr::is_template(entry) {
                out.push(entry.clone());
                continue;
            }
            match self.expand(key, entry)? {
                None => {}
                Some(text) => {
                    let before = out.len();
                    out.extend(text.split_whitespace().map(str::to_string));
                    if out.len() == before {
                        warnings.push(format!("{key}: go-sockaddr template {entry:?} produced no address"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// DNS recursors: templates expanded, duplicates dropped (as Consul).
    pub fn recursors(&self, entries: &[String]) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for entry in entries {
            let expanded = if sockaddr::is_template(entry) {
                match self.expand("recursors", entry)? {
                    Some(text) => text,
                    None => continue,
                }
            } else {
                entry.clone()
            };
            for r in expanded.split_whitespace() {
                if r.starts_with("unix://") {
                    return Err(ConfigError::Invalid(format!(
                        "recursors: DNS recursors cannot be unix sockets: {r}"
                    )));
                }
                if !out.iter().any(|o| o == r) {
                    out.push(r.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Consul's advertise address for `bind_addr = 0.0.0.0`: the machine's
    /// only private IPv4 address, among interfaces that are up (as Consul:
    /// an address on a downed interface is not reachable, so it neither
    /// counts nor makes the choice ambiguous).
    pub fn private_ipv4(&self) -> Result<IpAddr, ConfigError> {
        match self {
            Network::CheckOnly => Ok(PLACEHOLDER),
            Network::Live { .. } => {
                let ips: Vec<IpAddr> =
                    self.interfaces().iter().filter(|i| i.flags.up).map(|i| i.addr).collect();
                pick_private_ipv4(&ips)
            }
        }
    }
}

fn parse_ips<'s>(
    key: &str,
    raw: &str,
    parts: impl Iterator<Item = &'s str>,
    expanded: Option<&str>,
) -> Result<Vec<IpAddr>, ConfigError> {
    parts
        .map(|part| {
            let p = part.trim_start_matches('[').trim_end_matches(']');
            p.parse::<IpAddr>().map_err(|_| {
                ConfigError::Invalid(match expanded {
                    Some(out) => format!(
                        "{key}: go-sockaddr template {raw:?} produced {out:?}, and {part:?} is not an IP address"
                    ),
                    None => format!("{key}: invalid IP address {part:?}"),
                })
            })
        })
        .collect()
}

/// Whether an IPv4 address is private in Consul's sense: RFC 1918 and the
/// RFC 6598 shared address space.
pub fn is_private_ipv4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 10
        || (o[0] == 172 && (16..=31).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 100 && (64..=127).contains(&o[1]))
}

pub fn pick_private_ipv4(addrs: &[IpAddr]) -> Result<IpAddr, ConfigError> {
    let mut private: Vec<Ipv4Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) if is_private_ipv4(*v4) => Some(*v4),
            _ => None,
        })
        .collect();
    private.sort();
    private.dedup();
    match private.as_slice() {
        [one] => Ok(IpAddr::V4(*one)),
        [] => Err(ConfigError::Invalid("No private IPv4 address found".into())),
        _ => Err(ConfigError::Invalid(format!(
            "Multiple private IPv4 addresses found. Please configure one with 'bind' and/or 'advertise'. Found: {}",
            private.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::netif::IfFlags;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fake() -> Vec<IfAddr> {
        vec![
            IfAddr::parse("lo", "127.0.0.1/8", IfFlags::loopback_up(), false).unwrap(),
            IfAddr::parse("eth0", "10.0.1.5/24", IfFlags::ethernet_up(), true).unwrap(),
            IfAddr::parse("eth1", "192.168.50.4/24", IfFlags::ethernet_up(), false).unwrap(),
        ]
    }

    #[test]
    fn private_address_choice() {
        assert_eq!(pick_private_ipv4(&[a("127.0.0.1"), a("192.168.1.11")]).unwrap(), a("192.168.1.11"));
        let e = pick_private_ipv4(&[a("127.0.0.1"), a("203.0.113.5")]).unwrap_err();
        assert!(e.to_string().contains("No private IPv4 address found"));
        let e = pick_private_ipv4(&[a("10.0.0.1"), a("192.168.1.1")]).unwrap_err();
        assert!(e.to_string().contains("Multiple private IPv4 addresses found. Please configure one"));
        assert_eq!(pick_private_ipv4(&[a("100.64.1.1")]).unwrap(), a("100.64.1.1"));
    }

    #[test]
    fn private_address_ignores_interfaces_that_are_down() {
        let down = IfFlags { up: false, ..IfFlags::ethernet_up() };
        let probe = || {
            vec![
                IfAddr::parse("lo", "127.0.0.1/8", IfFlags::loopback_up(), false).unwrap(),
                IfAddr::parse("eth0", "192.168.1.11/24", IfFlags::ethernet_up(), true).unwrap(),
                IfAddr::parse("eth1", "10.9.0.4/16", down, false).unwrap(),
            ]
        };
        assert_eq!(Network::live(&probe).private_ipv4().unwrap(), a("192.168.1.11"));
        let only_down = || vec![IfAddr::parse("eth1", "10.9.0.4/16", down, false).unwrap()];
        let e = Network::live(&only_down).private_ipv4().unwrap_err().to_string();
        assert!(e.contains("No private IPv4 address found"), "{e}");
    }

    #[test]
    fn templates_resolve_against_the_given_interfaces() {
        let probe = fake;
        let net = Network::live(&probe);
        assert_eq!(
            net.single_addr("bind_addr", Some("{{ GetPrivateIP }}"), a("0.0.0.0")).unwrap(),
            a("10.0.1.5")
        );
        assert_eq!(
            net.addr_list("client_addr", r#"127.0.0.1 {{ GetInterfaceIP "eth1" }}"#).unwrap(),
            vec![a("127.0.0.1"), a("192.168.50.4")]
        );
        let e = net
            .single_addr("bind_addr", Some(r#"{{ GetInterfaceIP "eth7" }}"#), a("0.0.0.0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bind_addr") && e.contains("eth7") && e.contains("produced no address"), "{e}");
        let e = net
            .single_addr(
                "advertise_addr",
                Some(r#"{{ GetPrivateInterfaces | join "address" " " }}"#),
                a("0.0.0.0"),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("several addresses (10.0.1.5 192.168.50.4)"), "{e}");
        let e = net
            .addr_list("addresses.http", r#"{{ GetPrivateInterfaces | attr "name" }}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("addresses.http") && e.contains("\"eth0\" is not an IP address"), "{e}");
        let e = net.addr_list("serf_lan", "{{ GetPrivatIP }}").unwrap_err().to_string();
        assert!(
            e.contains("serf_lan: error in go-sockaddr template \"{{ GetPrivatIP }}\": unknown function"),
            "{e}"
        );
    }

    #[test]
    fn join_lists_pass_plain_entries_through() {
        let probe = fake;
        let net = Network::live(&probe);
        let mut warnings = Vec::new();
        let out = net
            .join_list(
                "retry_join",
                &[
                    "provider=aws tag_key=consul".to_string(),
                    r#"{{ GetAllInterfaces | include "name" "eth" | join "address" " " }}"#.to_string(),
                    r#"{{ GetInterfaceIP "none" }}"#.to_string(),
                ],
                &mut warnings,
            )
            .unwrap();
        assert_eq!(out, vec!["provider=aws tag_key=consul", "10.0.1.5", "192.168.50.4"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let r = net.recursors(&["8.8.8.8".into(), "{{ GetPrivateIP }} 8.8.8.8".into()]).unwrap();
        assert_eq!(r, vec!["8.8.8.8", "10.0.1.5"]);
    }

    #[test]
    fn the_interface_list_is_read_once_and_only_when_needed() {
        let calls = std::cell::Cell::new(0);
        let probe = || {
            calls.set(calls.get() + 1);
            fake()
        };
        let net = Network::live(&probe);
        net.single_addr("bind_addr", Some("10.0.0.9"), a("0.0.0.0")).unwrap();
        assert_eq!(calls.get(), 0);
        net.single_addr("bind_addr", Some("{{ GetPrivateIP }}"), a("0.0.0.0")).unwrap();
        net.private_ipv4().unwrap_err();
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn check_only_validates_without_interfaces() {
        let net = Network::CheckOnly;
        assert_eq!(
            net.single_addr("bind_addr", Some(r#"{{ GetInterfaceIP "eth0" }}"#), a("0.0.0.0")).unwrap(),
            PLACEHOLDER
        );
        assert!(net.single_addr("bind_addr", Some("{{ GetInterfaceIP }}"), a("0.0.0.0")).is_err());
        assert!(net.single_addr("bind_addr", Some("not-an-ip"), a("0.0.0.0")).is_err());
        assert_eq!(net.private_ipv4().unwrap(), PLACEHOLDER);
    }
}
