//! UDP checks, with Consul's semantics: send one datagram (empty, as
//! Consul's agent sends) on a connected socket, then wait up to the
//! timeout for anything back. A reply or silence is passing; an error
//! (on loopback and most hosts an ICMP port-unreachable, which a connected
//! socket sees as "connection refused") is critical. Owns only its socket.

use super::neterr;
use super::spec::Status;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

pub(crate) async fn run(address: &str, timeout: Duration) -> (Status, String) {
    let success = || (Status::Passing, format!("UDP connect {address}: Success"));
    let deadline = tokio::time::Instant::now() + timeout;
    let socket = match tokio::time::timeout_at(deadline, connect(address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return (Status::Critical, e),
        // Consul counts a dial timeout as success too.
        Err(_) => return success(),
    };
    let endpoints = match (socket.local_addr(), socket.peer_addr()) {
        (Ok(l), Ok(p)) => format!("{l}->{p}"),
        _ => address.to_string(),
    };
    if let Err(e) = socket.send(&[]).await {
        return (Status::Critical, format!("write udp {endpoints}: write: {}", neterr::reason(&e)));
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
        Ok(Ok(_)) => success(),
        Ok(Err(e)) => (Status::Critical, format!("read udp {endpoints}: read: {}", neterr::reason(&e))),
        Err(_) => success(),
    }
}

async fn connect(address: &str) -> Result<UdpSocket, String> {
    let mut last_err = None;
    let addrs = tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("dial udp {address}: {}", neterr::reason(&e)))?;
    for addr in addrs {
        let bind: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let attempt = async {
            let socket = UdpSocket::bind(bind).await?;
            socket.connect(addr).await?;
            Ok::<_, std::io::Error>(socket)
        };
        match attempt.await {
            Ok(s) => return Ok(s),
            Err(e) => last_err = Some(neterr::dial("udp", address, &e)),
        }
    }
    Err(last_err.unwrap_or_else(|| format!("dial udp {address}: no addresses found")))
}
