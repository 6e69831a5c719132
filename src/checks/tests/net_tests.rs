//! TCP and UDP checks against real loopback sockets.

use super::{probe, probe_with_roots, spec, tls_acceptor, CERT_PEM};
use crate::checks::tls::TlsRoots;
use crate::checks::{CheckKind, Status};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};

fn tcp(address: &str, use_tls: bool, skip: bool) -> CheckKind {
    CheckKind::Tcp { address: address.to_string(), use_tls, tls_skip_verify: skip, tls_server_name: None }
}

#[tokio::test]
async fn tcp_passes_while_listening_and_fails_once_closed() {
    let listener = TcpListener::bind("127.0.0.22:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let kind = tcp(&addr, false, false);
    assert_eq!(
        probe(&spec("t", kind.clone(), Duration::from_secs(5))).await,
        (Status::Passing, format!("TCP connect {addr}: Success"))
    );
    drop(listener);
    assert_eq!(
        probe(&spec("t", kind, Duration::from_secs(5))).await,
        (Status::Critical, format!("dial tcp {addr}: connect: connection refused"))
    );
}

#[tokio::test]
async fn tcp_with_tls_needs_a_handshake() {
    let acceptor = tls_acceptor(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(conn).await;
            });
        }
    });
    let t = Duration::from_secs(5);
    assert_eq!(
        probe(&spec("t", tcp(&addr, true, true), t)).await,
        (Status::Passing, format!("TCP+TLS connect {addr}: Success"))
    );
    let (status, out) = probe(&spec("t", tcp(&addr, true, false), t)).await;
    assert_eq!(status, Status::Critical);
    assert!(out.contains("invalid peer certificate"), "{out}");
    let mut roots = TlsRoots::default();
    roots.add_pem(CERT_PEM.as_bytes()).unwrap();
    assert_eq!(probe_with_roots(&spec("t", tcp(&addr, true, false), t), &roots).await.0, Status::Passing);

    // A plain TCP server is not a TLS server.
    let plain = TcpListener::bind("127.0.0.22:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = plain.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = conn.write_all(b"SSH-2.0-not-tls\r\n").await;
            });
        }
    });
    assert_eq!(probe(&spec("t", tcp(&plain_addr, true, true), t)).await.0, Status::Critical);
}

fn udp(address: &str) -> CheckKind {
    CheckKind::Udp { address: address.to_string() }
}

#[tokio::test]
async fn udp_without_listener_is_critical() {
    let socket = UdpSocket::bind("127.0.0.23:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    drop(socket);
    let started = Instant::now();
    let (status, out) = probe(&spec("u", udp(&addr), Duration::from_secs(5))).await;
    assert_eq!(status, Status::Critical);
    assert!(
        out.starts_with("read udp ") && out.ends_with(&format!("->{addr}: read: connection refused")),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "the ICMP error arrives long before the timeout");
}

#[tokio::test]
async fn udp_with_a_silent_listener_passes_at_the_timeout() {
    let socket = UdpSocket::bind("127.0.0.23:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let (status, out) = probe(&spec("u", udp(&addr), Duration::from_millis(200))).await;
    assert_eq!((status, out), (Status::Passing, format!("UDP connect {addr}: Success")));
    // The probe datagram arrived, and it is empty (as Consul sends).
    let mut buf = [0u8; 16];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn udp_with_a_replying_listener_passes_at_once() {
    let socket = UdpSocket::bind("127.0.0.23:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(b"pong", from).await;
        }
    });
    let started = Instant::now();
    let (status, _) = probe(&spec("u", udp(&addr), Duration::from_secs(5))).await;
    assert_eq!(status, Status::Passing);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unresolvable_addresses_are_critical() {
    let t = Duration::from_secs(5);
    assert_eq!(probe(&spec("u", udp("no-port"), t)).await.0, Status::Critical);
    assert_eq!(probe(&spec("t", tcp("no-port", false, false), t)).await.0, Status::Critical);
}
