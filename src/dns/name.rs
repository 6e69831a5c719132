//! Query names → a typed `DnsQuery`, before any lookup happens.
//!
//! Owns: the grammar of names under our domains (service, RFC 2782, node,
//! addr, apex) and of reverse names (`in-addr.arpa`, `ip6.arpa`). Must not
//! touch the backend or build records; everything here is pure and cheap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// What a query name asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsQuery {
    /// `[<tag>.]<service>.service[.<dc>].<domain>`
    Service { name: String, tag: Option<String>, dc: Option<String> },
    /// `_<service>._<tag-or-proto>[.service][.<dc>].<domain>`; `tcp`/`udp`
    /// mean "no tag filter".
    Rfc2782 { service: String, proto_or_tag: String, dc: Option<String> },
    /// `<query>.query[.<dc>].<domain>`: a prepared query by name or ID.
    PreparedQuery { name: String, dc: Option<String> },
    /// `<node>.node[.<dc>].<domain>`; node names may contain dots.
    Node { name: String, dc: Option<String> },
    /// `<hex-ip>.addr[.<dc>].<domain>`
    Addr { ip: IpAddr },
    /// A full `in-addr.arpa` / `ip6.arpa` reverse name.
    Ptr { ip: IpAddr },
    /// The domain itself (SOA, NS).
    Apex,
    /// Outside our domains: forwarded to recursors, or refused.
    NotOurs,
    /// Under our domain but not a name we answer: NXDOMAIN.
    Invalid,
}

impl DnsQuery {
    /// The tag filter a service-like query asks for, if any.
    pub fn tag_filter(&self) -> Option<&str> {
        match self {
            DnsQuery::Service { tag, .. } => tag.as_deref(),
            DnsQuery::Rfc2782 { proto_or_tag, .. } => match proto_or_tag.as_str() {
                "tcp" | "udp" => None,
                t => Some(t),
            },
            _ => None,
        }
    }
}

/// A parsed name and which of our domains (0 = primary, 1 = alt) it is under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedName {
    pub query: DnsQuery,
    pub domain: Option<usize>,
}

/// The domains we answer for, lowercase and fully qualified.
#[derive(Clone, Debug)]
pub struct Domains {
    primary: Name,
    names: Vec<Name>,
    /// Lowercased labels of each domain, to compare without allocating names.
    labels: Vec<Vec<Vec<u8>>>,
}

const KINDS: [&str; 4] = ["service", "node", "addr", "query"];
/// Kinds Consul has that we recognise but do not serve (NXDOMAIN, as for
/// an unknown service).
const UNSERVED_KINDS: [&str; 3] = ["connect", "ingress", "virtual"];

impl Domains {
    pub fn new(primary: Name, alt: Option<Name>) -> Self {
        let names: Vec<Name> = std::iter::once(primary).chain(alt).map(|n| n.to_lowercase()).collect();
        let labels = names.iter().map(|n| n.iter().map(|l| l.to_ascii_lowercase()).collect()).collect();
        let primary = names.first().cloned().unwrap_or_else(Name::root);
        Domains { primary, names, labels }
    }

    /// The domain name at `i` (0 = primary; anything unknown → primary).
    pub fn name(&self, i: usize) -> &Name {
        self.names.get(i).unwrap_or(&self.primary)
    }

    /// The primary domain.
    pub fn primary(&self) -> &Name {
        &self.primary
    }

    /// Parses a query name, case-insensitively.
    pub fn parse(&self, qname: &Name) -> ParsedName {
        let labels: Vec<Vec<u8>> = qname.iter().map(|l| l.to_ascii_lowercase()).collect();
        // The longest matching domain wins, so `alt.consul.` beats `consul.`.
        let mut matched: Option<(usize, usize)> = None;
        for (i, d) in self.labels.iter().enumerate() {
            if labels.len() >= d.len()
                && labels[labels.len() - d.len()..] == d[..]
                && matched.is_none_or(|(_, len)| d.len() > len)
            {
                matched = Some((i, d.len()));
            }
        }
        let Some((domain, dlen)) = matched else {
            return ParsedName { query: parse_reverse(&labels).unwrap_or(DnsQuery::NotOurs), domain: None };
        };
        let rest = &labels[..labels.len() - dlen];
        let query = match rest.iter().map(|l| String::from_utf8(l.clone())).collect::<Result<Vec<_>, _>>() {
            Ok(rest) => parse_local(&rest),
            Err(_) => DnsQuery::Invalid,
        };
        ParsedName { query, domain: Some(domain) }
    }
}

/// Parses the labels left of the domain.
fn parse_local(labels: &[String]) -> DnsQuery {
    let n = labels.len();
    if n == 0 {
        return DnsQuery::Apex;
    }
    let is_kind = |l: &str| KINDS.contains(&l) || UNSERVED_KINDS.contains(&l);
    // Find the kind label: last, or before a datacenter, or before `<dc>.dc`.
    let (kind_at, dc) = if is_kind(&labels[n - 1]) {
        (n - 1, None)
    } else if n >= 2 && is_kind(&labels[n - 2]) {
        (n - 2, Some(labels[n - 1].clone()))
    } else if n >= 3 && labels[n - 1] == "dc" && is_kind(&labels[n - 3]) {
        (n - 3, Some(labels[n - 2].clone()))
    } else {
        // RFC 2782 without the `.service` label: `_svc._proto[.<dc>]`.
        return match labels {
            [s, p] => rfc2782(s, p, None),
            [s, p, dc] => rfc2782(s, p, Some(dc.clone())),
            _ => DnsQuery::Invalid,
        };
    };
    let parts = &labels[..kind_at];
    if parts.is_empty() || dc.as_deref() == Some("") {
        return DnsQuery::Invalid;
    }
    match labels[kind_at].as_str() {
        "service" => match parts {
            [s, p] if s.starts_with('_') && p.starts_with('_') => rfc2782(s, p, dc),
            _ => {
                let (name, tags) = parts.split_last().unwrap_or((&parts[0], &[]));
                let tag = if tags.is_empty() { None } else { Some(tags.join(".")) };
                DnsQuery::Service { name: name.clone(), tag, dc }
            }
        },
        "node" => DnsQuery::Node { name: parts.join("."), dc },
        "query" => DnsQuery::PreparedQuery { name: parts.join("."), dc },
        "addr" => match parts {
            [hex] => parse_hex_ip(hex).map(|ip| DnsQuery::Addr { ip }).unwrap_or(DnsQuery::Invalid),
            _ => DnsQuery::Invalid,
        },
        _ => DnsQuery::Invalid,
    }
}

fn rfc2782(service: &str, proto: &str, dc: Option<String>) -> DnsQuery {
    match (service.strip_prefix('_'), proto.strip_prefix('_')) {
        (Some(s), Some(p)) if !s.is_empty() && !p.is_empty() => {
            DnsQuery::Rfc2782 { service: s.to_string(), proto_or_tag: p.to_string(), dc }
        }
        _ => DnsQuery::Invalid,
    }
}

/// 8 hex digits → IPv4, 32 → IPv6.
fn parse_hex_ip(hex: &str) -> Option<IpAddr> {
    let bytes = decode_hex(hex)?;
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// Lowercase hex of an address: the `<hex>` of `<hex>.addr.<dc>.<domain>`.
pub fn hex_ip(ip: IpAddr) -> String {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A full reverse name → its address; partial reverse names are not ours.
fn parse_reverse(labels: &[Vec<u8>]) -> Option<DnsQuery> {
    let n = labels.len();
    if n == 6 && labels[4] == b"in-addr" && labels[5] == b"arpa" {
        let mut octets = [0u8; 4];
        for (i, l) in labels[..4].iter().enumerate() {
            let s = std::str::from_utf8(l).ok()?;
            if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            octets[3 - i] = s.parse().ok()?;
        }
        return Some(DnsQuery::Ptr { ip: IpAddr::V4(Ipv4Addr::from(octets)) });
    }
    if n == 34 && labels[32] == b"ip6" && labels[33] == b"arpa" {
        let mut value: u128 = 0;
        for l in labels[..32].iter().rev() {
            let [c] = l.as_slice() else { return None };
            value = (value << 4) | u128::from((*c as char).to_digit(16)?);
        }
        return Some(DnsQuery::Ptr { ip: IpAddr::V6(Ipv6Addr::from(value)) });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use DnsQuery::*;

    fn domains() -> Domains {
        Domains::new(Name::from_ascii("consul.").unwrap(), Some(Name::from_ascii("alt.test.").unwrap()))
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn names_parse_into_typed_queries() {
        let d = domains();
        let cases: Vec<(&str, DnsQuery, Option<usize>)> = vec![
            ("web.service.consul.", Service { name: s("web"), tag: None, dc: None }, Some(0)),
            ("WEB.Service.CONSUL.", Service { name: s("web"), tag: None, dc: None }, Some(0)),
            ("web.service.dc2.consul.", Service { name: s("web"), tag: None, dc: Some(s("dc2")) }, Some(0)),
            (
                "web.service.dc2.dc.consul.",
                Service { name: s("web"), tag: None, dc: Some(s("dc2")) },
                Some(0),
            ),
            ("v1.web.service.consul.", Service { name: s("web"), tag: Some(s("v1")), dc: None }, Some(0)),
            ("v1.2.web.service.consul.", Service { name: s("web"), tag: Some(s("v1.2")), dc: None }, Some(0)),
            ("web.service.alt.test.", Service { name: s("web"), tag: None, dc: None }, Some(1)),
            (
                "_web._tcp.service.consul.",
                Rfc2782 { service: s("web"), proto_or_tag: s("tcp"), dc: None },
                Some(0),
            ),
            (
                "_web._v2.service.dc3.consul.",
                Rfc2782 { service: s("web"), proto_or_tag: s("v2"), dc: Some(s("dc3")) },
                Some(0),
            ),
            ("_web._udp.consul.", Rfc2782 { service: s("web"), proto_or_tag: s("udp"), dc: None }, Some(0)),
            (
                "_web._tcp.dc1.consul.",
                Rfc2782 { service: s("web"), proto_or_tag: s("tcp"), dc: Some(s("dc1")) },
                Some(0),
            ),
            ("foo.node.consul.", Node { name: s("foo"), dc: None }, Some(0)),
            ("foo.bar.node.dc1.consul.", Node { name: s("foo.bar"), dc: Some(s("dc1")) }, Some(0)),
            // The rightmost kind label wins.
            ("web.service.node.consul.", Node { name: s("web.service"), dc: None }, Some(0)),
            ("7f000001.addr.consul.", Addr { ip: "127.0.0.1".parse().unwrap() }, Some(0)),
            ("C0A80001.addr.dc1.consul.", Addr { ip: "192.168.0.1".parse().unwrap() }, Some(0)),
            (
                "20010db8000000000000000000000001.addr.dc1.consul.",
                Addr { ip: "2001:db8::1".parse().unwrap() },
                Some(0),
            ),
            ("consul.", Apex, Some(0)),
            ("CONSUL.", Apex, Some(0)),
            ("alt.test.", Apex, Some(1)),
            ("7f00001.addr.consul.", Invalid, Some(0)),
            ("zz000001.addr.consul.", Invalid, Some(0)),
            ("a.b.addr.consul.", Invalid, Some(0)),
            ("service.consul.", Invalid, Some(0)),
            ("node.dc1.consul.", Invalid, Some(0)),
            ("foo.consul.", Invalid, Some(0)),
            ("a.b.c.consul.", Invalid, Some(0)),
            ("web.query.consul.", PreparedQuery { name: s("web"), dc: None }, Some(0)),
            ("web.query.dc2.consul.", PreparedQuery { name: s("web"), dc: Some(s("dc2")) }, Some(0)),
            ("web.connect.consul.", Invalid, Some(0)),
            ("_web.service.consul.", Service { name: s("_web"), tag: None, dc: None }, Some(0)),
            (
                "__._tcp.service.consul.",
                Rfc2782 { service: s("_"), proto_or_tag: s("tcp"), dc: None },
                Some(0),
            ),
            ("_._tcp.service.consul.", Invalid, Some(0)),
            ("example.com.", NotOurs, None),
            ("consul.example.com.", NotOurs, None),
            (".", NotOurs, None),
            ("1.0.0.127.in-addr.arpa.", Ptr { ip: "127.0.0.1".parse().unwrap() }, None),
            ("0.0.127.in-addr.arpa.", NotOurs, None),
            ("256.0.0.127.in-addr.arpa.", NotOurs, None),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
                Ptr { ip: "2001:db8::1".parse().unwrap() },
                None,
            ),
            ("8.b.d.0.1.0.0.2.ip6.arpa.", NotOurs, None),
        ];
        for (qname, want, dom) in cases {
            let got = d.parse(&Name::from_ascii(qname).unwrap());
            assert_eq!(got.query, want, "{qname}");
            assert_eq!(got.domain, dom, "{qname}");
        }
    }

    #[test]
    fn longest_domain_wins() {
        let d =
            Domains::new(Name::from_ascii("consul.").unwrap(), Some(Name::from_ascii("dc.consul.").unwrap()));
        let got = d.parse(&Name::from_ascii("web.service.dc.consul.").unwrap());
        assert_eq!(got.domain, Some(1));
        assert_eq!(got.query, Service { name: s("web"), tag: None, dc: None });
    }

    #[test]
    fn tag_filter_ignores_protocol_labels() {
        let q = |p: &str| Rfc2782 { service: s("web"), proto_or_tag: s(p), dc: None };
        assert_eq!(q("tcp").tag_filter(), None);
        assert_eq!(q("udp").tag_filter(), None);
        assert_eq!(q("v2").tag_filter(), Some("v2"));
    }

    #[test]
    fn hex_round_trips() {
        for ip in ["10.1.2.3", "2001:db8::ff"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_hex_ip(&hex_ip(ip)), Some(ip));
        }
    }

    #[test]
    fn non_utf8_labels_are_invalid_not_a_panic() {
        let name = Name::from_labels(vec![&b"\xff\xfe"[..], b"service", b"consul"]).unwrap();
        assert_eq!(domains().parse(&name).query, Invalid);
    }
}
