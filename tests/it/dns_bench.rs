//! DNS throughput and latency with dnsperf (Debian `dnsperf`), against the
//! real server with 100 instances of `web` and an in-memory backend.
//! Ignored by default; run in release:
//! `cargo test --release --test it dns_bench -- --ignored --nocapture`.

use crate::dns_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn dnsperf_web_service() {
    if std::process::Command::new("dnsperf").arg("-h").output().is_err() {
        eprintln!("NOTICE: dnsperf not found (apt-get install -y dnsperf); skipping");
        return;
    }
    let b = FakeBackend::new();
    b.set_service(DC, "web", 1, many(100));
    b.add_node(node("node-7", "10.0.0.7"));
    let s = start(b, "127.0.0.60", |_| {}).await;
    let dir = std::env::temp_dir().join(format!("dns-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let queries = dir.join("queries.txt");
    std::fs::write(&queries, "web.service.consul A\nweb.service.consul SRV\nnode-7.node.dc1.consul A\n")
        .unwrap();
    for (clients, outstanding) in [(1, 1), (1, 10), (4, 100), (16, 1000)] {
        let out = tokio::process::Command::new("dnsperf")
            .args(["-s", &s.addr.ip().to_string(), "-p", &s.addr.port().to_string()])
            .args(["-d", queries.to_str().unwrap(), "-l", "5"])
            .args(["-c", &clients.to_string(), "-q", &outstanding.to_string()])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        println!("--- dnsperf -c {clients} -q {outstanding} ---");
        for line in text.lines().filter(|l| {
            l.contains("Queries sent")
                || l.contains("Queries completed")
                || l.contains("Queries lost")
                || l.contains("Queries per second")
                || l.contains("Average Latency")
                || l.contains("Latency StdDev")
        }) {
            println!("{line}");
        }
    }
    // One query at a time from a plain blocking socket: round-trip latency.
    let addr = s.addr;
    let (n, elapsed) = tokio::task::spawn_blocking(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let q = build_query("web.service.consul.", hickory_proto::rr::RecordType::A, None).to_vec().unwrap();
        let mut buf = [0u8; 1024];
        let start = std::time::Instant::now();
        let n = 20_000;
        for _ in 0..n {
            sock.send_to(&q, addr).unwrap();
            sock.recv_from(&mut buf).unwrap();
        }
        (n, start.elapsed())
    })
    .await
    .unwrap();
    println!(
        "sequential UDP A queries: {n} in {elapsed:?} = {:.1} us/query",
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    println!("answer sets built: {}", s.handler.answer_set_builds());
    s.stop().await;
}

/// CPU cost of answering one query, without sockets.
#[tokio::test]
#[ignore]
async fn handler_cost_per_query() {
    use hickory_proto::rr::RecordType;
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;
    let b = FakeBackend::new();
    b.set_service(DC, "web", 1, many(100));
    let s = start(b, "127.0.0.61", |_| {}).await;
    let src: std::net::SocketAddr = "127.0.0.1:5353".parse().unwrap();
    for (name, qtype) in [("web.service.consul.", RecordType::A), ("web.service.consul.", RecordType::SRV)] {
        let bytes = build_query(name, qtype, None).to_vec().unwrap();
        let n = 200_000;
        let start = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..n {
            let req = Request::from_bytes(bytes.clone(), src, Protocol::Udp).unwrap();
            total += s.handler.respond_bytes(&req).await.len();
        }
        let el = start.elapsed();
        println!(
            "{name} {qtype}: {:.2} us/query (decode+answer+encode), {} bytes avg",
            el.as_secs_f64() * 1e6 / n as f64,
            total / n
        );
        let start = std::time::Instant::now();
        for _ in 0..n {
            let req = Request::from_bytes(bytes.clone(), src, Protocol::Udp).unwrap();
            std::hint::black_box(req.queries.len());
        }
        println!("  of which decode: {:.2} us", start.elapsed().as_secs_f64() * 1e6 / n as f64);
        let req = Request::from_bytes(bytes.clone(), src, Protocol::Udp).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(s.handler.respond(&req).await.answers.len());
        }
        println!("  of which answer: {:.2} us", start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    s.stop().await;
}
