//! Idle blocking queries at scale (issue 22, item 3), as a measurement:
//! memory per idle watcher, the agent's idle CPU, and write → wake-up
//! latency. Ignored (it takes a minute or more); run with
//! `WATCHERS=15000 cargo test --features test-hooks --test it watchers:: -- --ignored --nocapture`.
//! `WATCH_H2=1`: HTTP/2 over TLS, 1,000 watchers per connection (the
//! server's stream limit), so N is not bounded by descriptors.
//! `WATCH_CONSUL_BIN` measures another consul binary (e.g. a release build).
//!
//! Each watcher is `GET /v1/kv/w/<i>?index=<now>&wait=10m` on a key that
//! does not exist yet. Over HTTP/1.1 each has its own connection, spread
//! over 127.78.x.y source addresses so no address pair runs out of ports.

use crate::harness::{unique_ip, wait_until, BIN};
use consul::api::{Client, ClientConfig};
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

type Woke = Arc<Mutex<Vec<Option<(Instant, u16)>>>>;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 78, 1, 1 + (i / 10_000) as u8)
}

async fn gauge(c: &Client, name: &str) -> i64 {
    let Ok(r) = c.request(Method::GET, "/v1/agent/metrics", None).await else { return -1 };
    let v: serde_json::Value = r.json().unwrap_or_default();
    v["Gauges"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["Name"] == name))
        .and_then(|g| g["Value"].as_f64())
        .unwrap_or(0.0) as i64
}

fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "consul {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A CA and a server certificate for `ip`; returns (ca, cert, key) paths.
fn pki(dir: &std::path::Path, ip: &str) -> (String, String, String) {
    cli(dir, &["tls", "ca", "create"]);
    let out = cli(dir, &["tls", "cert", "create", "-server", "-additional-ipaddress", ip]);
    let saved: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("==> Saved "))
        .map(|f| dir.join(f).display().to_string())
        .collect();
    assert_eq!(saved.len(), 2, "{out}");
    (dir.join("consul-agent-ca.pem").display().to_string(), saved[0].clone(), saved[1].clone())
}

fn tls_client(ca: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Opens `n` HTTP/1.1 watchers; each records when its answer arrives.
async fn open_h1(n: usize, addr: SocketAddr, index: u64, woke: &Woke) {
    for i in 0..n {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from((source(i), 0))).expect("bind source");
        let mut s = sock.connect(addr).await.expect("connect");
        let req = format!("GET /v1/kv/w/{i}?index={index}&wait=10m HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("send");
        let woke = woke.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf).await {
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200");
                woke.lock().unwrap()[i] = Some((Instant::now(), if ok { 200 } else { 0 }));
            }
            // Keep the connection open (an answered watcher is not parked).
            let _ = s.read(&mut buf).await;
        });
    }
}

/// Opens `n` HTTP/2 watchers over TLS, 1,000 per connection.
async fn open_h2(n: usize, https: SocketAddr, ca: &str, index: u64, woke: &Woke) {
    let config = tls_client(ca);
    let mut sender = None;
    for i in 0..n {
        if i % 1000 == 0 {
            let tcp = tokio::net::TcpStream::connect(https).await.expect("connect");
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .expect("tls handshake");
            let (s, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(tls),
            )
            .await
            .expect("h2 handshake");
            tokio::spawn(conn);
            sender = Some(s);
        }
        let mut s = sender.clone().expect("a connection");
        let uri = format!("https://{https}/v1/kv/w/{i}?index={index}&wait=10m");
        let woke = woke.clone();
        tokio::spawn(async move {
            let req = hyper::Request::get(uri).body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
            if let Ok(resp) = s.send_request(req).await {
                woke.lock().unwrap()[i] = Some((Instant::now(), resp.status().as_u16()));
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: a minute or more; run with --ignored --nocapture"]
async fn idle_watchers_memory_cpu_and_wakeups() {
    let n: usize = std::env::var("WATCHERS").ok().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let h2 = std::env::var("WATCH_H2").is_ok_and(|v| v == "1");
    let bin = std::env::var("WATCH_CONSUL_BIN").unwrap_or_else(|_| BIN.to_string());
    let ip = unique_ip();
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "agent",
        "-dev",
        &format!("-bind={ip}"),
        &format!("-client={ip}"),
        "-node=watch",
        "-log-level=warn",
        "-hcl",
        "limits { http_max_conns_per_client = 0 }",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ca = String::new();
    if h2 {
        let (c, cert, key) = pki(dir.path(), &ip.to_string());
        let config = dir.path().join("https.json");
        let json = serde_json::json!({"ports": {"https": 8501},
            "tls": {"defaults": {"ca_file": c, "cert_file": cert, "key_file": key}}});
        std::fs::write(&config, json.to_string()).unwrap();
        args.push(format!("-config-file={}", config.display()));
        ca = c;
    }
    let mut agent = crate::common::proc::spawn(
        Command::new(&bin).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()),
    )
    .expect("spawn consul");
    let pid = agent.id();
    let addr: SocketAddr = format!("{ip}:8500").parse().unwrap();
    let c = Client::new(ClientConfig { address: addr.to_string(), ..Default::default() }).unwrap();
    let ready = wait_until(Duration::from_secs(60), || async {
        matches!(c.request(Method::PUT, "/v1/kv/ready", Some(b"1".to_vec().into())).await, Ok(r) if r.status == 200)
    })
    .await;
    assert!(ready, "agent never accepted a write");
    let index = c.request(Method::GET, "/v1/kv/w/none", None).await.unwrap().index().expect("X-Consul-Index");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let nofile = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("").to_string();
    let base_rss = rss_kib(pid);

    let woke: Woke = Arc::new(Mutex::new(vec![None; n]));
    let opened = Instant::now();
    if h2 {
        open_h2(n, format!("{ip}:8501").parse().unwrap(), &ca, index, &woke).await;
    } else {
        open_h1(n, addr, index, &woke).await;
    }
    let parked = wait_until(Duration::from_secs(300), || async {
        gauge(&c, "consul.blocking_query.parked").await >= n as i64
    })
    .await;
    assert!(parked, "only {} of {n} watchers parked", gauge(&c, "consul.blocking_query.parked").await);
    let open_time = opened.elapsed();
    let rss = rss_kib(pid);
    let ticks0 = crate::harness::cpu_ticks(pid);
    let idle_from = Instant::now();
    // Idle CPU over a fixed window (a measurement, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu =
        (crate::harness::cpu_ticks(pid) - ticks0) as f64 / 100.0 / idle_from.elapsed().as_secs_f64();

    // Wake-ups: write 100 watched keys one after another, each after the
    // previous watcher woke; only that watcher may answer.
    let samples = 100.min(n);
    let mut lat = Vec::new();
    for k in 0..samples {
        let i = k * (n / samples);
        let t0 = Instant::now();
        let r = c.request(Method::PUT, &format!("/v1/kv/w/{i}"), Some(b"x".to_vec().into())).await.unwrap();
        assert_eq!(r.status, 200);
        let w = woke.clone();
        let ok = wait_until(Duration::from_secs(10), || {
            let done = w.lock().unwrap()[i].is_some();
            async move { done }
        })
        .await;
        assert!(ok, "watcher {i} did not wake within 10 s");
        let (at, status) = woke.lock().unwrap()[i].unwrap();
        assert_eq!(status, 200, "watcher {i}");
        lat.push(at.saturating_duration_since(t0));
    }
    lat.sort();
    let answered = woke.lock().unwrap().iter().filter(|w| w.is_some()).count();
    println!(
        "{} watchers={n} open={:.1}s base_rss={} KiB rss={} KiB per_watcher={:.2} KiB idle_cpu={:.2}% \
         write->wake p50={:.2} ms p99={:.2} ms max={:.2} ms; answered {answered} after {samples} writes; agent {nofile}",
        if h2 { "h2/tls" } else { "http/1.1" },
        open_time.as_secs_f64(),
        base_rss,
        rss,
        (rss.saturating_sub(base_rss)) as f64 / n as f64,
        idle_cpu * 100.0,
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3,
    );
    assert_eq!(answered, samples, "a write woke watchers of other keys");
    agent.kill_and_reap();
}
