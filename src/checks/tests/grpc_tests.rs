//! gRPC checks against a small `grpc.health.v1` server written with h2
//! (plaintext h2c and TLS).

use super::{probe, spec, tls_acceptor};
use crate::checks::grpc::{decode_request, encode_response, frame, unframe, HEALTH_CHECK_PATH};
use crate::checks::{CheckKind, Status};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Serves Health/Check: "" → SERVING, "sick" → NOT_SERVING, "slow" →
/// never answers, anything else → NOT_FOUND (trailers-only), other paths
/// → UNIMPLEMENTED.
async fn serve_health<T: AsyncRead + AsyncWrite + Unpin>(io: T) {
    let Ok(mut conn) = h2::server::handshake(io).await else { return };
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        tokio::spawn(async move {
            let (head, mut body) = request.into_parts();
            let mut data = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            let trailers_only = |code: &str, msg: &str| {
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc")
                    .header("grpc-status", code)
                    .header("grpc-message", msg)
                    .body(())
                    .unwrap()
            };
            if head.uri.path() != HEALTH_CHECK_PATH {
                let _ = respond.send_response(trailers_only("12", "unknown method"), true);
                return;
            }
            let service = unframe(&data).and_then(decode_request).unwrap_or_default();
            let status = match service.as_str() {
                "" => 1,
                "sick" => 2,
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    1
                }
                _ => {
                    let _ = respond.send_response(trailers_only("5", "unknown%20service"), true);
                    return;
                }
            };
            let response = hyper::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let Ok(mut send) = respond.send_response(response, false) else { return };
            let _ = send.send_data(frame(&encode_response(status)), false);
            let mut trailers = hyper::HeaderMap::new();
            trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
            let _ = send.send_trailers(trailers);
        });
    }
}

async fn grpc_server(tls: bool) -> SocketAddr {
    let listener = TcpListener::bind(if tls { "127.0.0.1:0" } else { "127.0.0.24:0" }).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls_acceptor(&[b"h2"]);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if tls {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve_health(stream).await;
                    }
                } else {
                    serve_health(tcp).await;
                }
            });
        }
    });
    addr
}

fn grpc(target: String, use_tls: bool) -> CheckKind {
    CheckKind::Grpc { target, use_tls, tls_skip_verify: true, tls_server_name: None }
}

#[tokio::test]
async fn serving_is_passing_and_anything_else_critical() {
    let addr = grpc_server(false).await;
    let t = Duration::from_secs(5);
    assert_eq!(
        probe(&spec("g", grpc(addr.to_string(), false), t)).await,
        (Status::Passing, format!("gRPC check {addr}: success"))
    );
    assert_eq!(
        probe(&spec("g", grpc(format!("{addr}/sick"), false), t)).await,
        (Status::Critical, format!("gRPC {addr}/sick serving status: NOT_SERVING"))
    );
    assert_eq!(
        probe(&spec("g", grpc(format!("{addr}/other"), false), t)).await,
        (Status::Critical, "rpc error: code = NotFound desc = unknown service".to_string())
    );
}

#[tokio::test]
async fn slow_dead_and_non_grpc_servers_are_critical() {
    let addr = grpc_server(false).await;
    assert_eq!(
        probe(&spec("g", grpc(format!("{addr}/slow"), false), Duration::from_millis(300))).await,
        (Status::Critical, "rpc error: code = DeadlineExceeded desc = context deadline exceeded".to_string())
    );

    let closed = TcpListener::bind("127.0.0.24:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let (status, out) = probe(&spec("g", grpc(closed_addr.to_string(), false), Duration::from_secs(5))).await;
    assert_eq!(status, Status::Critical);
    assert!(out.starts_with("rpc error: code = Unavailable") && out.contains("connection refused"), "{out}");

    // An HTTP/1 server does not speak h2.
    let http1 = super::http_tests::serve("127.0.0.24", axum::Router::new()).await;
    let (status, out) = probe(&spec("g", grpc(http1.to_string(), false), Duration::from_secs(5))).await;
    assert_eq!(status, Status::Critical, "{out}");
}

#[tokio::test]
async fn grpc_over_tls() {
    let addr = grpc_server(true).await;
    assert_eq!(
        probe(&spec("g", grpc(addr.to_string(), true), Duration::from_secs(5))).await,
        (Status::Passing, format!("gRPC check {addr}: success"))
    );
    let verify = CheckKind::Grpc {
        target: addr.to_string(),
        use_tls: true,
        tls_skip_verify: false,
        tls_server_name: None,
    };
    let (status, out) = probe(&spec("g", verify, Duration::from_secs(5))).await;
    assert_eq!(status, Status::Critical);
    assert!(out.contains("authentication handshake failed"), "{out}");
}

#[test]
fn frames_are_length_prefixed() {
    assert_eq!(frame(b"ab"), Bytes::from_static(&[0, 0, 0, 0, 2, b'a', b'b']));
}
