//! The list operations of go-sockaddr templates: `include`/`exclude`
//! filters, `sort`, `unique`, `limit`, `offset`, and the `attr`/`join`
//! attribute extraction.
//!
//! Owns: the meaning of each selector, sort key and attribute name. Every
//! parameter is checked before the list is looked at, so an empty list
//! (as `check` uses) still reports a bad selector or regular expression.

use super::{rfc, TemplateError};
use crate::config::netif::IfAddr;
use std::cmp::Ordering;
use std::net::IpAddr;

/// `include SELECTOR PARAM` (keep == true) or `exclude SELECTOR PARAM`.
pub fn filter(
    selector: &str,
    param: &str,
    keep: bool,
    list: Vec<IfAddr>,
) -> Result<Vec<IfAddr>, TemplateError> {
    let test = matcher(selector, param)?;
    Ok(list.into_iter().filter(|a| test(a) == keep).collect())
}

type Test = Box<dyn Fn(&IfAddr) -> bool>;

fn matcher(selector: &str, param: &str) -> Result<Test, TemplateError> {
    Ok(match selector.to_ascii_lowercase().as_str() {
        "address" => {
            let re = regex(param, "address")?;
            Box::new(move |a| re.is_match(&sockaddr_string(a)))
        }
        "name" => {
            let re = regex(param, "name")?;
            Box::new(move |a| re.is_match(&a.name))
        }
        "port" => {
            // Interface addresses carry no port; go-sockaddr treats it as 0.
            let re = regex(param, "port")?;
            Box::new(move |_| re.is_match("0"))
        }
        "flag" | "flags" => flag_matcher(param)?,
        "network" => {
            let mut nets = Vec::new();
            for n in param.split('|') {
                let net = crate::config::netif::parse_cidr(n)
                    .ok_or_else(|| TemplateError::InvalidNetwork(n.to_string()))?;
                nets.push(net);
            }
            Box::new(move |a| nets.iter().any(|(net, len)| rfc::in_network(*net, *len, a.addr)))
        }
        "rfc" | "rfcs" => {
            let mut rfcs = Vec::new();
            for r in param.split('|') {
                let n: u32 = r.trim().parse().map_err(|_| TemplateError::InvalidRfc(r.to_string()))?;
                if rfc::in_rfc(n, IpAddr::from([0u8; 4])).is_none() {
                    return Err(TemplateError::UnsupportedRfc(n));
                }
                rfcs.push(n);
            }
            Box::new(move |a| rfcs.iter().any(|n| rfc::in_rfc(*n, a.addr) == Some(true)))
        }
        "size" => {
            let size: u8 =
                param.trim().parse().map_err(|_| TemplateError::InvalidMaskSize(param.to_string()))?;
            if size > 128 {
                return Err(TemplateError::MaskSizeOutOfRange(size));
            }
            Box::new(move |a| a.prefix_len == size)
        }
        "type" => {
            let mut types = Vec::new();
            for t in param.split('|') {
                let t = t.trim().to_ascii_lowercase();
                match t.as_str() {
                    "ip" | "ipv4" | "ipv6" | "unix" => types.push(t),
                    _ => return Err(TemplateError::UnsupportedType(t)),
                }
            }
            Box::new(move |a| {
                types.iter().any(|t| match t.as_str() {
                    "ip" => true,
                    "ipv4" => a.addr.is_ipv4(),
                    "ipv6" => a.addr.is_ipv6(),
                    _ => false,
                })
            })
        }
        other => return Err(TemplateError::UnsupportedSelector(other.to_string())),
    })
}

fn regex(pattern: &str, what: &'static str) -> Result<regex_lite::Regex, TemplateError> {
    regex_lite::Regex::new(pattern).map_err(|source| TemplateError::InvalidRegex {
        what,
        pattern: pattern.to_string(),
        source,
    })
}

/// go-sockaddr's flag test: an address matches when its interface has all
/// the listed interface flags, or when its address has any of the listed
/// address properties. `down` means the interface is not up.
fn flag_matcher(param: &str) -> Result<Test, TemplateError> {
    #[derive(Default)]
    struct Want {
        iface: bool,
        up: bool,
        down: bool,
        broadcast: bool,
        loopback_if: bool,
        multicast_if: bool,
        p2p: bool,
        attrs: Vec<fn(IpAddr) -> bool>,
    }
    let mut w = Want::default();
    for flag in param.to_ascii_lowercase().split('|') {
        match flag.trim() {
            "up" => (w.iface, w.up) = (true, true),
            "down" => (w.iface, w.down) = (true, true),
            "broadcast" => (w.iface, w.broadcast) = (true, true),
            "point-to-point" => (w.iface, w.p2p) = (true, true),
            "loopback" => {
                (w.iface, w.loopback_if) = (true, true);
                w.attrs.push(|a| a.is_loopback());
            }
            "multicast" => {
                (w.iface, w.multicast_if) = (true, true);
                w.attrs.push(|a| a.is_multicast());
            }
            "forwardable" => w.attrs.push(rfc::is_forwardable),
            "global unicast" => w.attrs.push(is_global_unicast),
            "link-local unicast" => w.attrs.push(is_link_local_unicast),
            "link-local multicast" => w.attrs.push(is_link_local_multicast),
            "interface-local multicast" => w.attrs.push(is_interface_local_multicast),
            "unspecified" => w.attrs.push(|a| a.is_unspecified()),
            other => return Err(TemplateError::UnknownFlag(other.to_string())),
        }
    }
    Ok(Box::new(move |a| {
        let f = a.flags;
        let iface_ok = w.iface
            && (!w.up || f.up)
            && (!w.down || !f.up)
            && (!w.broadcast || f.broadcast)
            && (!w.loopback_if || f.loopback)
            && (!w.multicast_if || f.multicast)
            && (!w.p2p || f.point_to_point);
        iface_ok || w.attrs.iter().any(|t| t(a.addr))
    }))
}

fn is_link_local_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_multicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

fn is_interface_local_multicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff01,
    }
}

/// Go's `IsGlobalUnicast`: not unspecified, loopback, link-local,
/// multicast or the IPv4 broadcast address.
fn is_global_unicast(a: IpAddr) -> bool {
    let v4_broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || is_link_local_unicast(a) || v4_broadcast)
}

/// `sort "key,-key,..."`: a stable sort by each key in turn.
pub fn sort(criteria: &str, mut list: Vec<IfAddr>) -> Result<Vec<IfAddr>, TemplateError> {
    type Cmp = fn(&IfAddr, &IfAddr) -> Ordering;
    let mut keys: Vec<(Cmp, bool)> = Vec::new();
    for raw in criteria.split(',') {
        let raw = raw.trim();
        let (desc, name) = match raw.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        let cmp: Cmp = match name.to_ascii_lowercase().as_str() {
            "address" => |a, b| same_family(a, b, || a.addr.cmp(&b.addr)),
            "default" => |a, b| b.default_route.cmp(&a.default_route),
            "name" => |a, b| a.name.cmp(&b.name),
            "port" => |_, _| Ordering::Equal,
            "private" => |a, b| rfc::is_rfc6890(b.addr).cmp(&rfc::is_rfc6890(a.addr)),
            "size" => |a, b| same_family(a, b, || a.prefix_len.cmp(&b.prefix_len)),
            "type" => |a, b| a.addr.is_ipv6().cmp(&b.addr.is_ipv6()),
            other => return Err(TemplateError::UnsupportedSortKey(other.to_string())),
        };
        keys.push((cmp, desc));
    }
    list.sort_by(|a, b| {
        for (cmp, desc) in &keys {
            let o = cmp(a, b);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(list)
}

/// Size and address only compare within one family. go-sockaddr leaves
/// mixed pairs undecided, which is not a total order (and Rust's sort may
/// panic on one), so IPv4 sorts before IPv6 here instead.
fn same_family(a: &IfAddr, b: &IfAddr, f: impl FnOnce() -> Ordering) -> Ordering {
    if a.addr.is_ipv4() == b.addr.is_ipv4() {
        f()
    } else {
        a.addr.is_ipv6().cmp(&b.addr.is_ipv6())
    }
}

/// `unique "address"` or `unique "name"`: keeps the first of each.
pub fn unique(selector: &str, list: Vec<IfAddr>) -> Result<Vec<IfAddr>, TemplateError> {
    let key: fn(&IfAddr) -> String = match selector.to_ascii_lowercase().as_str() {
        "address" => |a| a.addr.to_string(),
        "name" => |a| a.name.clone(),
        other => return Err(TemplateError::UnsupportedUnique(other.to_string())),
    };
    let mut seen = std::collections::HashSet::new();
    Ok(list.into_iter().filter(|a| seen.insert(key(a))).collect())
}

/// `limit N`: the first N entries.
pub fn limit(n: i64, mut list: Vec<IfAddr>) -> Result<Vec<IfAddr>, TemplateError> {
    let n = usize::try_from(n).map_err(|_| TemplateError::NegativeLimit(n))?;
    list.truncate(n);
    Ok(list)
}

/// `offset N`: skips N entries; a negative N keeps the last |N|.
pub fn offset(n: i64, list: Vec<IfAddr>) -> Result<Vec<IfAddr>, TemplateError> {
    let count = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if count > list.len() {
        return Err(TemplateError::OffsetPastEnd { offset: n, len: list.len() });
    }
    let skip = if n < 0 { list.len() - count } else { count };
    Ok(list.into_iter().skip(skip).collect())
}

/// Checks an attribute name without a value to apply it to.
pub fn check_attr(name: &str) -> Result<(), TemplateError> {
    let probe = IfAddr {
        name: String::new(),
        addr: IpAddr::from([0u8; 4]),
        prefix_len: 0,
        flags: Default::default(),
        default_route: false,
    };
    attr(name, &probe).map(|_| ())
}

/// One attribute of one address, as `attr` and `join` print it.
pub fn attr(name: &str, a: &IfAddr) -> Result<String, TemplateError> {
    let max = if a.addr.is_ipv4() { 32u32 } else { 128 };
    let len = u32::from(a.prefix_len).min(max);
    let host_bits = max - len;
    let bits: u128 = match a.addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let all: u128 = if max == 32 { u128::from(u32::MAX) } else { u128::MAX };
    let host_mask: u128 = if host_bits == 0 { 0 } else { all >> (max - host_bits) };
    let network = bits & !host_mask & all;
    let last = network | host_mask;
    let to_ip = |v: u128| -> String {
        if max == 32 {
            std::net::Ipv4Addr::from(v as u32).to_string()
        } else {
            std::net::Ipv6Addr::from(v).to_string()
        }
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "address" | "host" => a.addr.to_string(),
        "name" => a.name.clone(),
        "flags" => a.flags.describe(),
        "type" => if max == 32 { "IPv4" } else { "IPv6" }.to_string(),
        "mask_bits" => len.to_string(),
        "network" => to_ip(network),
        "netmask" => to_ip(all & !host_mask),
        "broadcast" if max == 32 => to_ip(last),
        "first_usable" if max == 32 && host_bits >= 2 => to_ip(network + 1),
        "last_usable" if max == 32 && host_bits >= 2 => to_ip(last - 1),
        "first_usable" => to_ip(network),
        "last_usable" => to_ip(last),
        "size" => match 1u128.checked_shl(host_bits) {
            Some(n) => n.to_string(),
            None => "340282366920938463463374607431768211456".to_string(),
        },
        "string" => sockaddr_string(a),
        "port" => "0".to_string(),
        "octets" => match a.addr {
            IpAddr::V4(v4) => v4.octets().iter().map(|o| o.to_string()).collect::<Vec<_>>().join(" "),
            IpAddr::V6(v6) => v6.octets().iter().map(|o| o.to_string()).collect::<Vec<_>>().join(" "),
        },
        "uint32" if max == 32 => bits.to_string(),
        "uint128" if max == 128 => bits.to_string(),
        other => return Err(TemplateError::UnsupportedAttribute { name: other.to_string(), addr: a.addr }),
    })
}

/// go-sockaddr's string form: the bare address for a host route, else
/// `address/length`.
fn sockaddr_string(a: &IfAddr) -> String {
    let max = if a.addr.is_ipv4() { 32 } else { 128 };
    if a.prefix_len >= max {
        a.addr.to_string()
    } else {
        format!("{}/{}", a.addr, a.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::netif::IfFlags;

    fn ifa(name: &str, cidr: &str) -> IfAddr {
        let flags = if name == "lo" { IfFlags::loopback_up() } else { IfFlags::ethernet_up() };
        IfAddr::parse(name, cidr, flags, name == "eth0").unwrap()
    }

    fn names(list: &[IfAddr]) -> Vec<String> {
        list.iter().map(|a| format!("{}={}", a.name, a.addr)).collect()
    }

    fn sample() -> Vec<IfAddr> {
        vec![
            ifa("lo", "127.0.0.1/8"),
            ifa("eth0", "10.0.1.5/24"),
            ifa("eth0", "fd00::5/64"),
            ifa("eth1", "192.168.7.2/16"),
            ifa("docker0", "172.17.0.1/16"),
            ifa("eth2", "203.0.114.9/24"),
        ]
    }

    #[test]
    fn filters() {
        let l = filter("name", "^eth", true, sample()).unwrap();
        assert_eq!(names(&l), ["eth0=10.0.1.5", "eth0=fd00::5", "eth1=192.168.7.2", "eth2=203.0.114.9"]);
        let l = filter("network", "10.0.0.0/8|192.168.0.0/16", true, sample()).unwrap();
        assert_eq!(names(&l), ["eth0=10.0.1.5", "eth1=192.168.7.2"]);
        let l = filter("type", "IPv6", false, sample()).unwrap();
        assert_eq!(l.len(), 5);
        let l = filter("flag", "loopback", false, sample()).unwrap();
        assert!(l.iter().all(|a| a.name != "lo"));
        let l = filter("rfc", "1918", true, sample()).unwrap();
        assert_eq!(names(&l), ["eth0=10.0.1.5", "eth1=192.168.7.2", "docker0=172.17.0.1"]);
        let l = filter("size", "16", true, sample()).unwrap();
        assert_eq!(names(&l), ["eth1=192.168.7.2", "docker0=172.17.0.1"]);
        let l = filter("address", r"^10\.", true, sample()).unwrap();
        assert_eq!(names(&l), ["eth0=10.0.1.5"]);
    }

    #[test]
    fn flag_down_means_not_up() {
        let mut down = ifa("eth9", "10.9.9.9/24");
        down.flags.up = false;
        let l = filter("flag", "down", true, vec![down.clone(), ifa("eth0", "10.0.0.1/24")]).unwrap();
        assert_eq!(l, vec![down]);
    }

    #[test]
    fn bad_parameters_are_reported_on_empty_lists() {
        for (sel, param, want) in [
            ("name", "(", "invalid name regular expression"),
            ("network", "10.0.0.0/40", "invalid network"),
            ("rfc", "42", "unsupported RFC 42"),
            ("type", "ipx", "unsupported type"),
            ("flag", "sideways", "unknown interface flag"),
            ("colour", "red", "unsupported selector"),
        ] {
            let e = filter(sel, param, true, Vec::new()).unwrap_err().to_string();
            assert!(e.contains(want), "{sel} {param}: {e}");
        }
        assert!(sort("height", Vec::new()).unwrap_err().to_string().contains("unsupported sort key"));
        assert!(check_attr("colour").unwrap_err().to_string().contains("unsupported attribute"));
        assert!(check_attr("address").is_ok());
    }

    #[test]
    fn sorting_is_stable_and_keyed() {
        let l = sort("default,type,size", sample()).unwrap();
        assert_eq!(names(&l)[..2], ["eth0=10.0.1.5", "eth0=fd00::5"]);
        let l = sort("-address", filter("type", "ipv4", true, sample()).unwrap()).unwrap();
        assert_eq!(names(&l)[0], "eth2=203.0.114.9");
        let l = sort("+name", sample()).unwrap();
        assert_eq!(l[0].name, "docker0");
        let l = sort("private", sample()).unwrap();
        assert_eq!(l.last().map(|a| a.name.as_str()), Some("eth2"));
    }

    #[test]
    fn limit_offset_unique() {
        assert_eq!(limit(2, sample()).unwrap().len(), 2);
        assert!(limit(-1, sample()).is_err());
        assert_eq!(names(&offset(-1, sample()).unwrap()), ["eth2=203.0.114.9"]);
        assert_eq!(offset(5, sample()).unwrap().len(), 1);
        assert!(offset(7, sample()).unwrap_err().to_string().contains("past the end"));
        assert_eq!(unique("name", sample()).unwrap().len(), 5);
    }

    #[test]
    fn attributes() {
        let a = ifa("eth1", "192.168.7.2/16");
        for (name, want) in [
            ("address", "192.168.7.2"),
            ("name", "eth1"),
            ("network", "192.168.0.0"),
            ("netmask", "255.255.0.0"),
            ("mask_bits", "16"),
            ("broadcast", "192.168.255.255"),
            ("size", "65536"),
            ("string", "192.168.7.2/16"),
            ("type", "IPv4"),
            ("flags", "up|broadcast|multicast"),
            ("first_usable", "192.168.0.1"),
            ("last_usable", "192.168.255.254"),
            ("octets", "192 168 7 2"),
        ] {
            assert_eq!(attr(name, &a).unwrap(), want, "{name}");
        }
        let v6 = ifa("eth0", "fd00::5/64");
        assert_eq!(attr("network", &v6).unwrap(), "fd00::");
        assert_eq!(attr("type", &v6).unwrap(), "IPv6");
        assert!(attr("broadcast", &v6).is_err());
    }
}
