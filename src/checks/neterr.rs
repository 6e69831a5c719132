//! Error texts for check output, shaped like the Go errors Consul prints
//! (`dial tcp 127.0.0.1:1: connect: connection refused`), so dashboards and
//! alerts that match on them keep working. Formatting only.

use std::io;

/// The OS reason in Go's spelling: lowercase, no "(os error N)".
pub(crate) fn reason(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::TimedOut {
        return "i/o timeout".to_string();
    }
    let text = match err.raw_os_error() {
        Some(code) => {
            let full = io::Error::from_raw_os_error(code).to_string();
            match full.rfind(" (os error") {
                Some(cut) => full[..cut].to_string(),
                None => full,
            }
        }
        None => err.to_string(),
    };
    lower_first(&text)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `dial tcp <addr>: connect: <reason>` (Go's net.OpError for a failed dial).
pub(crate) fn dial(network: &str, addr: &str, err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::TimedOut {
        return format!("dial {network} {addr}: i/o timeout");
    }
    if err.raw_os_error().is_some() {
        format!("dial {network} {addr}: connect: {}", reason(err))
    } else {
        // Resolution failures and the like carry no errno.
        format!("dial {network} {addr}: {}", reason(err))
    }
}

/// `dial tcp <addr>: i/o timeout`.
pub(crate) fn dial_timeout(network: &str, addr: &str) -> String {
    format!("dial {network} {addr}: i/o timeout")
}

/// Splits `host:port` (`[v6]:port` too) for SNI and URL building.
pub(crate) fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_look_like_go() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(reason(&refused), "connection refused");
        assert_eq!(dial("tcp", "127.0.0.1:1", &refused), "dial tcp 127.0.0.1:1: connect: connection refused");
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(dial("tcp", "10.0.0.1:80", &timeout), "dial tcp 10.0.0.1:80: i/o timeout");
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("localhost:80"), Some(("localhost", 80)));
        assert_eq!(split_host_port("[::1]:8500"), Some(("::1", 8500)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(split_host_port("h:notaport"), None);
    }
}
