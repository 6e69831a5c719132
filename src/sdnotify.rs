//! systemd readiness notifications (`Type=notify` services): one unix
//! datagram per state change to the socket systemd names in
//! `$NOTIFY_SOCKET` — `READY=1` once the agent serves HTTP, `STOPPING=1`
//! when it begins to shut down.
//!
//! Owns: reading `$NOTIFY_SOCKET` and sending the datagrams. Must not
//! decide when the agent is ready: the daemon calls `ready()`/`stopping()`.
//! Outside systemd (no `$NOTIFY_SOCKET`) every call does nothing. A failed
//! send is logged and otherwise ignored: a missing notification makes
//! systemd time out the start, which is louder than anything we could do.
//!
//! The variable is left in the environment (as Consul does); the unit sets
//! `NotifyAccess=main`, so messages from child processes such as check
//! scripts are ignored by systemd anyway.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifySocket {
    /// A socket file, e.g. `/run/systemd/notify`.
    Path(PathBuf),
    /// A Linux abstract socket (`$NOTIFY_SOCKET` starting with `@`).
    Abstract(Vec<u8>),
}

impl NotifySocket {
    /// Parses the value of `$NOTIFY_SOCKET`; `None` when unset or empty.
    pub fn parse(value: Option<&str>) -> Option<NotifySocket> {
        let v = value?;
        if let Some(name) = v.strip_prefix('@') {
            return Some(NotifySocket::Abstract(name.as_bytes().to_vec()));
        }
        if v.is_empty() {
            return None;
        }
        Some(NotifySocket::Path(PathBuf::from(v)))
    }

    /// Sends one notification (`KEY=value` lines) as a single datagram.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        match self {
            NotifySocket::Path(p) => sock.send_to(message.as_bytes(), p).map(|_| ()),
            NotifySocket::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(message.as_bytes(), &addr).map(|_| ())
            }
        }
    }
}

static SOCKET: OnceLock<Option<NotifySocket>> = OnceLock::new();

fn socket() -> Option<&'static NotifySocket> {
    SOCKET.get_or_init(|| NotifySocket::parse(std::env::var("NOTIFY_SOCKET").ok().as_deref())).as_ref()
}

fn notify(message: &str) {
    let Some(sock) = socket() else { return };
    if let Err(e) = sock.send(message) {
        tracing::warn!(target: "agent", socket = ?sock, error = %e, "failed to notify systemd");
    }
}

/// Tells systemd the agent is up and serving its HTTP API.
pub fn ready() {
    notify("READY=1\nSTATUS=Consul agent running\n");
}

/// Tells systemd the agent is shutting down.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=Consul agent shutting down\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_abstract_names() {
        assert_eq!(NotifySocket::parse(None), None);
        assert_eq!(NotifySocket::parse(Some("")), None);
        assert_eq!(
            NotifySocket::parse(Some("/run/systemd/notify")),
            Some(NotifySocket::Path("/run/systemd/notify".into()))
        );
        assert_eq!(NotifySocket::parse(Some("@sd-123")), Some(NotifySocket::Abstract(b"sd-123".to_vec())));
    }

    #[test]
    fn sends_one_datagram_to_a_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        NotifySocket::Path(path).send("READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("consul-rs-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        NotifySocket::parse(Some(&format!("@{name}"))).unwrap().send("STOPPING=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(NotifySocket::Path(dir.path().join("absent")).send("READY=1\n").is_err());
    }
}
