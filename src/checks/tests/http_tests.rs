//! HTTP(S) checks against real servers on loopback: status mapping,
//! output wording, request shape, redirects, slow and garbage servers, TLS.

use super::{probe, probe_with_roots, spec, tls_acceptor, CERT_PEM};
use crate::checks::tls::TlsRoots;
use crate::checks::{CheckKind, Status};
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(10);

pub(super) fn http_kind(url: &str) -> CheckKind {
    CheckKind::Http {
        url: url.to_string(),
        method: String::new(),
        headers: BTreeMap::new(),
        body: None,
        tls_skip_verify: false,
        tls_server_name: None,
        disable_redirects: false,
    }
}

async fn echo(method: Method, headers: HeaderMap, body: String) -> String {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    format!(
        "{method} ua={} accept={} host={} x-a={} body={body}",
        h("user-agent"),
        h("accept"),
        h("host"),
        h("x-a")
    )
}

pub(super) async fn serve(ip: &str, router: Router) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn test_server() -> SocketAddr {
    let router = Router::new()
        .route("/ok", get(|| async { "hello world" }))
        .route("/busy", get(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }))
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/echo", any(echo))
        .route("/redirect", get(|| async { (StatusCode::FOUND, [("location", "/ok")]) }))
        .route("/relative/start", get(|| async { (StatusCode::MOVED_PERMANENTLY, [("location", "../ok")]) }))
        .route("/loop", get(|| async { (StatusCode::FOUND, [("location", "/loop")]) }))
        .route("/post-307", any(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/echo")]) }))
        .route("/post-303", any(|| async { (StatusCode::SEE_OTHER, [("location", "/echo")]) }))
        .route("/big", get(|| async { format!("{}TAIL", "b".repeat(100 * 1024)) }))
        .route(
            "/endless",
            get(|| async {
                let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
                let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                Body::from_stream(stream).into_response()
            }),
        );
    serve("127.0.0.21", router).await
}

#[tokio::test]
async fn status_codes_map_like_consul() {
    let addr = test_server().await;
    let cases = [
        ("/ok", Status::Passing, "200 OK Output: hello world"),
        ("/busy", Status::Warning, "429 Too Many Requests Output: slow down"),
        ("/fail", Status::Critical, "500 Internal Server Error Output: boom"),
        ("/nope", Status::Critical, "404 Not Found Output: "),
    ];
    for (path, status, tail) in cases {
        let url = format!("http://{addr}{path}");
        assert_eq!(probe(&spec("h", http_kind(&url), T)).await, (status, format!("HTTP GET {url}: {tail}")));
    }
}

#[tokio::test]
async fn request_carries_method_headers_body_and_consul_defaults() {
    let addr = test_server().await;
    let url = format!("http://{addr}/echo");
    let (status, out) = probe(&spec("h", http_kind(&url), T)).await;
    assert_eq!(status, Status::Passing);
    assert!(
        out.ends_with(&format!(
            "GET ua=Consul Health Check accept=text/plain, text/*, */* host={addr} x-a=- body="
        )),
        "{out}"
    );

    let mut headers = BTreeMap::new();
    headers.insert("X-A".to_string(), vec!["1".to_string()]);
    headers.insert("User-Agent".to_string(), vec!["mine".to_string()]);
    headers.insert("Host".to_string(), vec!["example.test".to_string()]);
    let kind = CheckKind::Http {
        url: url.clone(),
        method: "PUT".into(),
        headers,
        body: Some("{\"k\":1}".into()),
        tls_skip_verify: false,
        tls_server_name: None,
        disable_redirects: false,
    };
    let (status, out) = probe(&spec("h", kind, T)).await;
    assert_eq!(status, Status::Passing);
    assert_eq!(out, format!("HTTP PUT {url}: 200 OK Output: PUT ua=mine accept=text/plain, text/*, */* host=example.test x-a=1 body={{\"k\":1}}"));
}

#[tokio::test]
async fn redirects_are_followed_unless_disabled() {
    let addr = test_server().await;
    let url = format!("http://{addr}/redirect");
    assert_eq!(
        probe(&spec("h", http_kind(&url), T)).await,
        (Status::Passing, format!("HTTP GET {url}: 200 OK Output: hello world"))
    );
    let url2 = format!("http://{addr}/relative/start");
    assert_eq!(
        probe(&spec("h", http_kind(&url2), T)).await,
        (Status::Passing, format!("HTTP GET {url2}: 200 OK Output: hello world"))
    );

    let CheckKind::Http { url: u, method, headers, body, tls_skip_verify, tls_server_name, .. } =
        http_kind(&url)
    else {
        unreachable!()
    };
    let kind = CheckKind::Http {
        url: u,
        method,
        headers,
        body,
        tls_skip_verify,
        tls_server_name,
        disable_redirects: true,
    };
    assert_eq!(
        probe(&spec("h", kind, T)).await,
        (Status::Critical, format!("HTTP GET {url}: 302 Found Output: "))
    );

    let looping = format!("http://{addr}/loop");
    assert_eq!(
        probe(&spec("h", http_kind(&looping), T)).await,
        (Status::Critical, format!("Get \"http://{addr}/loop\": stopped after 10 redirects"))
    );
}

#[tokio::test]
async fn redirects_rewrite_the_method_like_go() {
    let addr = test_server().await;
    let post = |path: &str| CheckKind::Http {
        url: format!("http://{addr}{path}"),
        method: "POST".into(),
        headers: BTreeMap::new(),
        body: Some("data".into()),
        tls_skip_verify: false,
        tls_server_name: None,
        disable_redirects: false,
    };
    let (_, out) = probe(&spec("h", post("/post-307"), T)).await;
    assert!(out.contains("Output: POST ") && out.ends_with("body=data"), "{out}");
    let (_, out) = probe(&spec("h", post("/post-303"), T)).await;
    assert!(out.contains("Output: GET ") && out.ends_with("body="), "{out}");
}

#[tokio::test]
async fn big_and_endless_bodies_are_capped() {
    let addr = test_server().await;
    let url = format!("http://{addr}/big");
    let (status, out) = probe(&spec("h", http_kind(&url), T)).await;
    assert_eq!(status, Status::Passing);
    let prefix = format!("HTTP GET {url}: 200 OK Output: ");
    assert_eq!(out.len(), prefix.len() + 4096);
    assert!(out.ends_with("bbbTAIL"));

    let url = format!("http://{addr}/endless");
    let started = Instant::now();
    let (status, out) = probe(&spec("h", http_kind(&url), T)).await;
    assert_eq!(status, Status::Passing);
    assert!(out.ends_with("zzz"));
    assert!(started.elapsed() < Duration::from_secs(5), "stopped reading at the read limit, not the timeout");
}

#[tokio::test]
async fn slow_server_times_out_critical() {
    let addr = test_server().await;
    let url = format!("http://{addr}/slow");
    let started = Instant::now();
    let result = probe(&spec("h", http_kind(&url), Duration::from_millis(300))).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        result,
        (
            Status::Critical,
            format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )
        )
    );
}

#[tokio::test]
async fn refused_connection_and_bad_urls_are_critical() {
    let listener = TcpListener::bind("127.0.0.21:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/");
    assert_eq!(
        probe(&spec("h", http_kind(&url), T)).await,
        (Status::Critical, format!("Get \"{url}\": dial tcp {addr}: connect: connection refused"))
    );
    let (status, out) = probe(&spec("h", http_kind("ftp://127.0.0.1/"), T)).await;
    assert_eq!(
        (status, out.as_str()),
        (Status::Critical, "Get \"ftp://127.0.0.1/\": unsupported protocol scheme \"ftp\"")
    );
    let (status, _) = probe(&spec("h", http_kind("http://[::1"), T)).await;
    assert_eq!(status, Status::Critical);
}

/// Accepts connections and answers each with `reply` whatever was asked.
async fn raw_server(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.21:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(reply).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn garbage_responses_are_critical_not_panics() {
    let replies: [&'static [u8]; 5] = [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        b"HTTP/1.1 999 Weird\r\n\r\n",
        b"",
        b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 4\r\n\r\n\xff\xfeok",
    ];
    let mut outcomes = Vec::new();
    for reply in replies {
        let addr = raw_server(reply).await;
        outcomes.push(probe(&spec("h", http_kind(&format!("http://{addr}/")), T)).await);
    }
    assert_eq!(outcomes[0].0, Status::Critical);
    assert!(outcomes[0].1.starts_with("Get \""), "{}", outcomes[0].1);
    // A body cut short still reports the status code (Consul logs and goes on).
    assert_eq!(outcomes[1].0, Status::Passing);
    assert!(outcomes[1].1.ends_with("200 OK Output: short"), "{}", outcomes[1].1);
    assert_eq!(outcomes[2].0, Status::Critical);
    assert_eq!(outcomes[3].0, Status::Critical);
    assert_eq!(outcomes[4].0, Status::Passing);
    assert!(outcomes[4].1.ends_with("200 Fine Thanks Output: \u{fffd}\u{fffd}ok"), "{}", outcomes[4].1);
}

/// A TLS server with the fixture certificate answering one fixed response.
pub(super) async fn tls_http_server() -> SocketAddr {
    let acceptor = tls_acceptor(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn https_kind(addr: SocketAddr, host: &str, skip: bool, server_name: Option<&str>) -> CheckKind {
    CheckKind::Http {
        url: format!("https://{host}:{}/", addr.port()),
        method: String::new(),
        headers: BTreeMap::new(),
        body: None,
        tls_skip_verify: skip,
        tls_server_name: server_name.map(str::to_string),
        disable_redirects: false,
    }
}

#[tokio::test]
async fn https_verifies_certificates_unless_told_not_to() {
    let addr = tls_http_server().await;
    let (status, out) = probe(&spec("h", https_kind(addr, "127.0.0.1", false, None), T)).await;
    assert_eq!(status, Status::Critical);
    assert!(out.contains("invalid peer certificate"), "{out}");

    let (status, out) = probe(&spec("h", https_kind(addr, "127.0.0.1", true, None), T)).await;
    assert_eq!(
        (status, out.as_str()),
        (
            Status::Passing,
            format!("HTTP GET https://127.0.0.1:{}/: 200 OK Output: secure", addr.port()).as_str()
        )
    );

    let mut roots = TlsRoots::default();
    assert_eq!(roots.add_pem(CERT_PEM.as_bytes()), Ok(1));
    assert_eq!(
        probe_with_roots(&spec("h", https_kind(addr, "127.0.0.1", false, None), T), &roots).await.0,
        Status::Passing
    );
    assert_eq!(
        probe_with_roots(&spec("h", https_kind(addr, "localhost", false, None), T), &roots).await.0,
        Status::Passing
    );
    assert_eq!(
        probe_with_roots(&spec("h", https_kind(addr, "127.0.0.1", false, Some("localhost")), T), &roots)
            .await
            .0,
        Status::Passing
    );
    let (status, out) =
        probe_with_roots(&spec("h", https_kind(addr, "127.0.0.1", false, Some("other.example")), T), &roots)
            .await;
    assert_eq!(status, Status::Critical);
    assert!(out.contains("certificate"), "{out}");
}

#[test]
fn bad_ca_pem_is_an_error() {
    let mut roots = TlsRoots::default();
    assert!(roots.add_pem(b"not a pem").is_err());
}
