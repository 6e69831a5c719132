//! The machine's network interface addresses, as the config loader needs
//! them: to pick an advertise address when `bind_addr` is 0.0.0.0, and to
//! evaluate go-sockaddr templates (`{{ GetPrivateIP }}`).
//!
//! Owns: the `IfAddr` record and reading it from the kernel (`getifaddrs`
//! and `/proc/net/route`). Must not interpret addresses beyond that; the
//! template language lives in `sockaddr/`. Everything that consumes this
//! list takes it as a parameter, so tests inject fake interfaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Interface flags that templates can filter on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfFlags {
    pub up: bool,
    pub broadcast: bool,
    pub loopback: bool,
    pub point_to_point: bool,
    pub multicast: bool,
}

impl IfFlags {
    /// The flags of an ordinary Ethernet interface that is up.
    pub fn ethernet_up() -> IfFlags {
        IfFlags { up: true, broadcast: true, multicast: true, ..Default::default() }
    }

    /// The flags of a loopback interface that is up.
    pub fn loopback_up() -> IfFlags {
        IfFlags { up: true, loopback: true, ..Default::default() }
    }

    /// Go's `net.Flags` spelling, which go-sockaddr's `attr "flags"` prints.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (set, name) in [
            (self.up, "up"),
            (self.broadcast, "broadcast"),
            (self.loopback, "loopback"),
            (self.point_to_point, "pointtopoint"),
            (self.multicast, "multicast"),
        ] {
            if set {
                parts.push(name);
            }
        }
        if parts.is_empty() {
            "0".to_string()
        } else {
            parts.join("|")
        }
    }
}

/// One IP address on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    pub addr: IpAddr,
    /// Network prefix length from the interface's netmask.
    pub prefix_len: u8,
    pub flags: IfFlags,
    /// Whether this interface carries the host's IPv4 default route.
    pub default_route: bool,
}

impl IfAddr {
    /// Builds an entry from `"10.0.0.5/24"` (or a bare address, taken as a
    /// host route). Meant for tests and callers that fake an environment.
    pub fn parse(name: &str, cidr: &str, flags: IfFlags, default_route: bool) -> Option<IfAddr> {
        let (addr, prefix_len) = parse_cidr(cidr)?;
        Some(IfAddr { name: name.to_string(), addr, prefix_len, flags, default_route })
    }

    /// Wraps plain addresses as interfaces that are up (`lo` for loopback
    /// addresses, `eth0`, `eth1`, ... otherwise; the first non-loopback one
    /// carries the default route). For callers that only know addresses.
    pub fn from_ips(ips: &[IpAddr]) -> Vec<IfAddr> {
        let mut out = Vec::new();
        let mut n = 0;
        for ip in ips {
            let host_len = if ip.is_ipv4() { 32 } else { 128 };
            if ip.is_loopback() {
                out.push(IfAddr {
                    name: "lo".into(),
                    addr: *ip,
                    prefix_len: host_len,
                    flags: IfFlags::loopback_up(),
                    default_route: false,
                });
            } else {
                out.push(IfAddr {
                    name: format!("eth{n}"),
                    addr: *ip,
                    prefix_len: host_len,
                    flags: IfFlags::ethernet_up(),
                    default_route: n == 0,
                });
                n += 1;
            }
        }
        out
    }
}

/// Parses `addr[/len]`; a missing length means a single host.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

/// Lists this machine's interface addresses with names, prefix lengths and
/// flags. Interfaces the kernel cannot describe are skipped; an error
/// listing them yields an empty list (the callers then report "no address").
pub fn interface_addrs() -> Vec<IfAddr> {
    let default_ifaces = default_route_interfaces();
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: cur points into the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and its family tells its layout.
        let Some(addr) = (unsafe { sockaddr_ip(ifa.ifa_addr) }) else { continue };
        // SAFETY: ifa_netmask, when set, has the same family as ifa_addr.
        let mask = if ifa.ifa_netmask.is_null() { None } else { unsafe { sockaddr_ip(ifa.ifa_netmask) } };
        let prefix_len = match mask {
            Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
            Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        let f = ifa.ifa_flags;
        let flags = IfFlags {
            up: f & libc::IFF_UP as u32 != 0,
            broadcast: f & libc::IFF_BROADCAST as u32 != 0,
            loopback: f & libc::IFF_LOOPBACK as u32 != 0,
            point_to_point: f & libc::IFF_POINTOPOINT as u32 != 0,
            multicast: f & libc::IFF_MULTICAST as u32 != 0,
        };
        let default_route = default_ifaces.contains(&name);
        out.push(IfAddr { name, addr, prefix_len, flags, default_route });
    }
    // SAFETY: ifap came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

/// Reads an IPv4 or IPv6 address out of a `sockaddr`.
///
/// # Safety
/// `sa` must point to a valid `sockaddr` whose family matches its layout.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller guarantees sa is valid.
    let family = unsafe { (*sa).sa_family } as i32;
    if family == libc::AF_INET {
        // SAFETY: AF_INET addresses are sockaddr_in.
        let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
    } else if family == libc::AF_INET6 {
        // SAFETY: AF_INET6 addresses are sockaddr_in6.
        let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
        Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
    } else {
        None
    }
}

/// Names of the interfaces that carry an IPv4 default route, from the
/// kernel's routing table (empty where that table cannot be read).
fn default_route_interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/net/route").map(|t| parse_proc_net_route(&t)).unwrap_or_default()
}

/// Picks the default routes (destination and mask 0) out of the text of
/// `/proc/net/route`.
pub fn parse_proc_net_route(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        let (Some(iface), Some(dest), Some(mask)) = (cols.first(), cols.get(1), cols.get(7)) else {
            continue;
        };
        if *dest == "00000000" && *mask == "00000000" && !out.iter().any(|o| o == iface) {
            out.push(iface.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.0.0.5/24"), Some(("10.0.0.5".parse().unwrap(), 24)));
        assert_eq!(parse_cidr("10.0.0.5"), Some(("10.0.0.5".parse().unwrap(), 32)));
        assert_eq!(parse_cidr("fe80::1/64"), Some(("fe80::1".parse().unwrap(), 64)));
        assert_eq!(parse_cidr("10.0.0.5/33"), None);
        assert_eq!(parse_cidr("nonsense/8"), None);
    }

    #[test]
    fn default_route_from_proc() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(parse_proc_net_route(text), vec!["eth0".to_string()]);
        assert!(parse_proc_net_route("garbage").is_empty());
    }

    #[test]
    fn reading_this_machine_gives_sane_records() {
        // What is listed depends on the machine; only the shape is checked.
        for i in interface_addrs() {
            assert!(!i.name.is_empty(), "{i:?}");
            assert!(i.prefix_len <= if i.addr.is_ipv4() { 32 } else { 128 }, "{i:?}");
        }
    }

    #[test]
    fn from_ips_names_interfaces() {
        let ifs = IfAddr::from_ips(&["127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap()]);
        assert_eq!(ifs[0].name, "lo");
        assert_eq!(ifs[1].name, "eth0");
        assert!(ifs[1].default_route && ifs[1].flags.up);
    }
}
