//! Address blocks named by RFCs, as go-sockaddr's `include "rfc" "1918"`
//! and its notion of "private" (RFC 6890 special-purpose registry) and
//! "forwardable" (not in the registry's non-forwardable blocks) use them.
//!
//! Owns: the tables and containment tests. The block lists are IANA facts
//! (RFC 6890 and the RFCs it collects), transcribed here by hand.

use std::net::IpAddr;

/// RFC 6890's special-purpose blocks, IPv4 and IPv6.
const RFC6890: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "::/128",
    "64:ff9b::/96",
    "::ffff:0:0/96",
    "100::/64",
    "2001::/16",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
];

/// Blocks whose "Forwardable" attribute is false in RFC 6890's registry.
const NOT_FORWARDABLE: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "::/128",
    "::ffff:0:0/96",
    "2001:db8::/32",
    "2001:10::/28",
    "fe80::/10",
];

/// The blocks of one RFC, for `include "rfc" "N"`.
fn blocks(rfc: u32) -> Option<&'static [&'static str]> {
    Some(match rfc {
        919 => &["255.255.255.255/32"],
        1112 | 3171 => &["224.0.0.0/4"],
        1122 => &["0.0.0.0/8", "127.0.0.0/8"],
        1918 => &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        2544 => &["198.18.0.0/15"],
        2765 | 4038 => &["::ffff:0:0/96"],
        2928 => &["2001::/16"],
        3056 => &["2002::/16"],
        3068 => &["192.88.99.0/24", "2002:c058:6301::/120"],
        3330 => &[
            "0.0.0.0/8",
            "10.0.0.0/8",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "224.0.0.0/4",
            "240.0.0.0/4",
        ],
        3849 => &["2001:db8::/32"],
        3927 => &["169.254.0.0/16"],
        4193 => &["fc00::/7"],
        4291 => &["::/128", "::1/128", "::/96", "::ffff:0:0/96", "fe80::/10", "fec0::/10", "ff00::/8"],
        4380 => &["2001::/32"],
        4773 => &["2001::/23"],
        4843 => &["2001:10::/28"],
        5180 => &["2001:200::/48"],
        5735 => &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"],
        5737 => &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"],
        6052 => &["64:ff9b::/96"],
        6333 | 7335 => &["192.0.0.0/29"],
        6598 => &["100.64.0.0/10"],
        6666 => &["100::/64"],
        6890 => RFC6890,
        _ => return None,
    })
}

/// Whether `addr` lies in the network `cidr` (same address family only).
pub fn contains(cidr: &str, addr: IpAddr) -> bool {
    let Some((net, len)) = crate::config::netif::parse_cidr(cidr) else { return false };
    in_network(net, len, addr)
}

/// Whether `addr` lies in `net/len` (same address family only).
pub fn in_network(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether `addr` is in one of the blocks of `rfc`; `None` for an RFC we
/// have no table for.
pub fn in_rfc(rfc: u32, addr: IpAddr) -> Option<bool> {
    Some(blocks(rfc)?.iter().any(|c| contains(c, addr)))
}

/// go-sockaddr's "private": in RFC 6890's special-purpose registry.
pub fn is_rfc6890(addr: IpAddr) -> bool {
    RFC6890.iter().any(|c| contains(c, addr))
}

/// go-sockaddr's "forwardable": not in a block RFC 6890 marks as not
/// forwardable (loopback, link-local, documentation, ...).
pub fn is_forwardable(addr: IpAddr) -> bool {
    !NOT_FORWARDABLE.iter().any(|c| contains(c, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_forwardable() {
        for private in ["10.1.2.3", "172.20.0.1", "192.168.1.11", "100.64.0.1", "fd00::1"] {
            assert!(is_rfc6890(ip(private)) && is_forwardable(ip(private)), "{private}");
        }
        for local in ["127.0.0.1", "169.254.1.1", "::1", "fe80::1", "203.0.113.5"] {
            assert!(!is_forwardable(ip(local)), "{local}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_rfc6890(ip(public)) && is_forwardable(ip(public)), "{public}");
        }
    }

    #[test]
    fn rfc_lookup_and_networks() {
        assert_eq!(in_rfc(1918, ip("172.31.255.255")), Some(true));
        assert_eq!(in_rfc(1918, ip("172.32.0.0")), Some(false));
        assert_eq!(in_rfc(12345, ip("10.0.0.1")), None);
        assert!(contains("10.0.0.0/8", ip("10.200.0.1")));
        assert!(!contains("10.0.0.0/8", ip("fd00::1")));
        assert!(contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(!contains("not a cidr", ip("8.8.8.8")));
    }
}
