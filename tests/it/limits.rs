//! Resource bounds against abusive clients and damaged data dirs, against
//! real agents: request bodies and heads, connections per client IP,
//! clients that dribble their headers, DNS answer sizes, gossip and
//! server-port input, a corrupt snapshot and a full disk.

use crate::harness::{unique_ip, wait_until, Agent};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// A TCP connection to `to` from the loopback address `from`, so the
/// agent sees a client IP no other connection of the test uses.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((from, 0))).unwrap();
    s.connect(to).await.unwrap()
}

fn http_addr(a: &Agent) -> SocketAddr {
    a.addr().parse().unwrap()
}

/// Reads until the peer closes or `limit` passes; returns what arrived and
/// whether the peer closed (EOF or reset) in time.
async fn read_until_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one keep-alive GET and reads its (small, length-delimited) answer.
async fn get_keepalive(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "connection closed before the response: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn request_bodies_over_their_limit_get_413() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    // KV values: Consul's kv_max_value_size, 512 KiB by default.
    let r = a.put("/v1/kv/big", &vec![b'x'; 512 * 1024 + 1]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("too large"), "{}", r.text());
    assert_eq!(a.get("/v1/kv/big").await.status, 404);
    assert_eq!(a.put("/v1/kv/fits", &vec![b'x'; 512 * 1024]).await.status, 200);
    // JSON bodies of the other write endpoints.
    let big_json = format!("{{\"Name\":\"web\",\"Notes\":\"{}\"}}", "n".repeat(1024 * 1024 + 16));
    for path in [
        "/v1/agent/service/register",
        "/v1/agent/check/register",
        "/v1/catalog/register",
        "/v1/session/create",
        "/v1/txn",
    ] {
        // The agent reads and discards a moderately oversized body before
        // answering, so the client gets to read the 413.
        let r = a
            .client()
            .request(hyper::Method::PUT, path, Some(big_json.clone().into_bytes().into()))
            .await
            .expect(path);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        assert!(r.text().to_lowercase().contains("too large"), "{path}: {}", r.text());
    }
    let services: serde_json::Value = a.get("/v1/agent/services").await.json().expect("json");
    assert!(services.get("web").is_none(), "an oversized registration was stored: {services}");
    assert_eq!(a.get("/v1/agent/checks").await.text(), "{}", "an oversized check was stored");
    assert_eq!(a.get("/v1/session/list").await.text(), "[]", "an oversized session was stored");
    // A chunked body announces no length: it is cut off while it streams.
    let mut s = TcpStream::connect(http_addr(&a)).await.unwrap();
    s.write_all(b"PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b'y'; 64 * 1024];
    let mut answer = Vec::new();
    for _ in 0..16 {
        let mut msg = format!("{:x}\r\n", chunk.len()).into_bytes();
        msg.extend_from_slice(&chunk);
        msg.extend_from_slice(b"\r\n");
        if s.write_all(&msg).await.is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.len() > 12 {
                break;
            }
        }
    }
    if answer.len() < 12 {
        let _ = s.write_all(b"0\r\n\r\n").await;
        let (rest, _) = read_until_close(&mut s, Duration::from_secs(5)).await;
        answer.extend_from_slice(&rest);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(a.get("/v1/kv/chunked").await.status, 404);
}

#[tokio::test]
async fn oversized_request_heads_are_refused_with_431() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    // Within the 64 KiB head limit: served.
    let mut s = TcpStream::connect(http_addr(&a)).await.unwrap();
    let ok = format!(
        "GET /v1/agent/self HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    s.write_all(ok.as_bytes()).await.unwrap();
    let (resp, _) = read_until_close(&mut s, Duration::from_secs(10)).await;
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp[..resp.len().min(200)])
    );

    // Over it: 431, read while we still write, never a 200.
    let s = TcpStream::connect(http_addr(&a)).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut out)).await;
        out
    });
    let big = format!("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(256 * 1024));
    let _ = wr.write_all(big.as_bytes()).await;
    let resp = reader.await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(!text.contains(" 200 "), "{text}");
    // The agent is unharmed.
    assert_eq!(a.get("/v1/agent/self").await.status, 200);
}

#[tokio::test]
async fn connections_per_client_ip_are_capped_with_429() {
    let a = Agent::dev(&["-hcl", "limits { http_max_conns_per_client = 4 }"]);
    a.wait_ready().await;
    let me = unique_ip();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from(me, http_addr(&a)).await;
        let r = get_keepalive(&mut s, "/v1/status/leader").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        held.push(s);
    }
    // The fifth from the same IP is refused, clearly.
    let mut fifth = connect_from(me, http_addr(&a)).await;
    let _ = fifth.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (resp, closed) = read_until_close(&mut fifth, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(text.contains("http_max_conns_per_client"), "{text}");
    assert!(closed, "refused connection left open");
    // Another client IP is not affected.
    let mut other = connect_from(unique_ip(), http_addr(&a)).await;
    assert!(get_keepalive(&mut other, "/v1/status/leader").await.starts_with("HTTP/1.1 200"));
    // Closing one frees a slot.
    drop(held.pop());
    let ok = wait_until(Duration::from_secs(10), || async {
        let mut s = connect_from(me, http_addr(&a)).await;
        let _ = s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        let (resp, _) = read_until_close(&mut s, Duration::from_secs(5)).await;
        resp.starts_with(b"HTTP/1.1 200")
    })
    .await;
    assert!(ok, "slot never freed after a connection closed");
    assert!(a.counter("consul.http.conns.rejected").await >= 1);
}

#[tokio::test]
async fn clients_dribbling_headers_are_cut_off() {
    let a = Agent::dev(&["-hcl", "limits { http_read_header_timeout = \"1s\" }"]);
    a.wait_ready().await;
    let mut s = TcpStream::connect(http_addr(&a)).await.unwrap();
    let start = Instant::now();
    s.write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One header line every 200 ms: never idle, never done.
    let mut closed_after = None;
    for i in 0..50 {
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(start.elapsed());
                break;
            }
            Ok(Ok(_)) => {
                // hyper may answer 408 before closing; either way it ends.
                let (_, closed) = read_until_close(&mut s, Duration::from_secs(2)).await;
                assert!(closed);
                closed_after = Some(start.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let t = closed_after.expect("the slow client was never cut off (10 s of dribbling)");
    assert!(t >= Duration::from_millis(900) && t < Duration::from_secs(5), "cut off after {t:?}");
    // Normal clients are unaffected.
    assert_eq!(a.get("/v1/agent/self").await.status, 200);
}

fn dns_query(name: &str, qtype: hickory_proto::rr::RecordType, edns: Option<u16>) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use std::str::FromStr;
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(hickory_proto::rr::Name::from_str(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[tokio::test]
async fn dns_answers_are_bounded_and_any_is_minimal() {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    // 40 instances of one service on 40 nodes.
    for i in 0..40 {
        let body = format!(
            r#"{{"Node":"n{i}","Address":"10.1.{}.{}","Service":{{"Service":"web","ID":"web{i}","Port":80,"Tags":["t"],"Meta":{{"k":"{}"}}}}}}"#,
            i / 200,
            i % 200 + 1,
            "v".repeat(200)
        );
        assert_eq!(a.put("/v1/catalog/register", body.as_bytes()).await.status, 200);
    }
    let sock = UdpSocket::bind((a.ip, 0)).await.unwrap();
    let dns: SocketAddr = (a.ip, 8600).into();
    let ask = async |q: Vec<u8>| -> (usize, Message) {
        let mut buf = vec![0u8; 70000];
        // Retried until a deadline (a lost or slow answer is asked again),
        // not a number of times.
        let deadline = Instant::now() + Duration::from_secs(25);
        while Instant::now() < deadline {
            sock.send_to(&q, dns).await.unwrap();
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
            {
                return (n, Message::from_vec(&buf[..n]).unwrap());
            }
        }
        panic!("no DNS answer");
    };
    // Plain UDP: at most 512 bytes, whatever the question.
    for qtype in [RecordType::ANY, RecordType::A, RecordType::SRV, RecordType::TXT] {
        let q = dns_query("web.service.consul.", qtype, None);
        let (n, m) = ask(q.clone()).await;
        assert!(n <= 512, "{qtype}: {n} bytes");
        assert!(n <= q.len() * 20, "{qtype}: amplification {n}/{}", q.len());
        if qtype == RecordType::ANY {
            // ANY gets the addresses, nothing more, and only a few.
            assert!(!m.answers.is_empty());
            assert!(
                m.answers.iter().all(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA)),
                "{m:?}"
            );
            assert!(m.answers.len() <= 3, "{} answers", m.answers.len());
        }
    }
    // EDNS: never above what the client allows.
    let (n, _) = ask(dns_query("web.service.consul.", RecordType::SRV, Some(1232))).await;
    assert!(n <= 1232, "{n} bytes");
}

#[tokio::test]
async fn gossip_and_server_ports_drop_oversized_input() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    // Gossip UDP: a datagram over the packet limit is dropped and counted.
    let before = a.counter("consul.memberlist.udp.dropped").await;
    let u = UdpSocket::bind((a.ip, 0)).await.unwrap();
    u.send_to(&vec![b'G'; 9000], (a.ip, 8301)).await.unwrap();
    u.send_to(b"\x00garbage", (a.ip, 8301)).await.unwrap();
    let dropped = wait_until(Duration::from_secs(10), || async {
        a.counter("consul.memberlist.udp.dropped").await >= before + 2
    })
    .await;
    assert!(dropped, "oversized gossip packets not counted as dropped");
    // Gossip TCP: a frame announcing 2 GiB is refused before it is read.
    let mut s = TcpStream::connect((a.ip, 8301)).await.unwrap();
    s.write_all(&0x8000_0000u32.to_be_bytes()).await.unwrap();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "gossip stream with a huge frame left open");
    // Server RPC port: same for a frame over 64 MiB, and a frame that
    // announces 60 MiB but never comes is held only by its bytes.
    let mut s = TcpStream::connect((a.ip, 8300)).await.unwrap();
    let mut msg = b"CRPC\x02".to_vec();
    msg.extend_from_slice(&(100u32 << 20).to_le_bytes());
    msg.extend_from_slice(&[0u8; 9]);
    s.write_all(&msg).await.unwrap();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "rpc connection with an oversized frame left open");
    // The agent still works and still sees itself alive.
    let r = a.get("/v1/agent/members").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"Status\":1"), "{}", r.text());
}

#[tokio::test]
async fn corrupt_snapshots_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::server(Some(dir.path()), &["-hcl", "raft_snapshot_threshold = 8"]);
    a.wait_ready().await;
    for i in 0..40 {
        assert_eq!(a.put(&format!("/v1/kv/k{i}"), format!("v{i}").as_bytes()).await.status, 200);
    }
    let snaps_dir = dir.path().join("raft").join("snapshots");
    let snaps = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&snaps_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "snap"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert!(wait_until(Duration::from_secs(20), || async { snaps().len() >= 2 }).await, "no snapshots taken");
    a.kill9();

    // The newest snapshot is damaged: the older one plus the log still
    // give every key back.
    let all = snaps();
    let newest = all.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    a.restart();
    a.wait_ready().await;
    for i in [0, 17, 39] {
        let r = a.get(&format!("/v1/kv/k{i}?raw")).await;
        assert_eq!((r.status.as_u16(), r.text()), (200, format!("v{i}")));
    }
    assert!(a.output_text().contains("skipping corrupt snapshot"), "{}", a.output_text());
    a.kill9();

    // Every snapshot damaged: refuse to start, naming the problem.
    for p in snaps() {
        std::fs::write(&p, b"not a snapshot at all").unwrap();
    }
    let mut child = crate::common::proc::spawn(
        std::process::Command::new(crate::harness::BIN)
            .args(&a.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .unwrap();
    let code = crate::harness::wait_exit(&mut child, Duration::from_secs(30));
    if code.is_none() {
        child.kill_group();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(code.is_some_and(|c| c != 0), "started on corrupt snapshots (exit {code:?})\n{text}");
    assert!(text.contains("corrupt") && text.contains("refusing to start"), "{text}");
}

/// A tmpfs mounted for one test, unmounted (lazily, so a process still
/// holding a file cannot keep it) on drop.
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_path_buf();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(SmallDisk { path, _dir: dir })
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.path.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
async fn full_disk_fails_writes_clearly_and_recovers() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("skipping: cannot mount tmpfs here (needs root)");
        return;
    };
    let mut a = Agent::server(Some(&disk.path.join("data")), &[]);
    a.wait_ready().await;
    assert_eq!(a.put("/v1/kv/before", b"1").await.status, 200);

    let filler = disk.fill();
    let big = vec![b'z'; 64 * 1024];
    let put = |key: String| {
        let body = big.clone();
        let client = a.client();
        async move {
            client
                .request(hyper::Method::PUT, &format!("/v1/kv/{key}"), Some(body.into()))
                .await
                .expect("the agent answers while the disk is full")
        }
    };
    // Writes that fit in the space the log already holds (a segment grows
    // in zero-filled steps of 1 MiB) are durable, and acknowledged. The
    // first one that needs more waits for its append, which is retried
    // until space returns: its outcome is unknown, and it says so.
    let mut acked = Vec::new();
    let pending = loop {
        let key = format!("fits{}", acked.len());
        let r = put(key.clone()).await;
        if r.status == 200 {
            acked.push(key);
            assert!(acked.len() <= 32, "{} writes of 64 KiB acknowledged on a full disk", acked.len());
            continue;
        }
        assert_eq!(r.status, 500, "{key}: {}", r.text());
        assert!(
            r.text().contains("No space left on device") && r.text().contains("if space is freed"),
            "{}",
            r.text()
        );
        break key;
    };
    // Later writes are refused at once, before they reach the log.
    let refused: Vec<String> = (1..5).map(|i| format!("full{i}")).collect();
    for key in &refused {
        let r = put(key.clone()).await;
        assert_eq!(r.status, 500, "write acknowledged on a full disk: {}", r.text());
        assert!(
            r.text().contains("No space left on device") && r.text().contains("not accepted"),
            "{}",
            r.text()
        );
    }
    assert!(a.output_text().contains("disk full"), "no log line about the full disk\n{}", a.output_text());
    // Stale reads keep working, and nothing unacknowledged shows up.
    let r = a.get("/v1/kv/before?raw&stale").await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "1".to_string()));
    for key in refused.iter().chain([&pending]) {
        assert_eq!(a.get(&format!("/v1/kv/{key}?stale")).await.status, 404, "{key}");
    }

    // Space returns: the same agent takes writes again, without a restart.
    std::fs::remove_file(filler).unwrap();
    let ok = wait_until(Duration::from_secs(30), || async {
        a.client()
            .request(hyper::Method::PUT, "/v1/kv/after", Some(b"2".to_vec().into()))
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(ok, "writes did not recover after space returned\n{}", a.output_text());
    assert!(a.output_text().contains("raft writes resumed"), "{}", a.output_text());
    let check = |a: &Agent| {
        let client = a.client();
        let (acked, refused, pending) = (acked.clone(), refused.clone(), pending.clone());
        async move {
            let r = client.request(hyper::Method::GET, "/v1/kv/before?raw", None).await.expect("get");
            assert_eq!((r.status.as_u16(), r.text()), (200, "1".to_string()));
            let r = client.request(hyper::Method::GET, "/v1/kv/after?raw", None).await.expect("get");
            assert_eq!((r.status.as_u16(), r.text()), (200, "2".to_string()));
            for key in &acked {
                let r = client
                    .request(hyper::Method::GET, &format!("/v1/kv/{key}?raw"), None)
                    .await
                    .expect("get");
                assert_eq!((r.status.as_u16(), r.body.len()), (200, 64 * 1024), "acknowledged write {key}");
            }
            // The pending write may have been applied; if so, intact.
            let r = client
                .request(hyper::Method::GET, &format!("/v1/kv/{pending}?raw"), None)
                .await
                .expect("get");
            assert!(
                r.status == 404 || r.body.len() == 64 * 1024,
                "{pending}: {} ({} bytes)",
                r.status,
                r.body.len()
            );
            for key in &refused {
                let r =
                    client.request(hyper::Method::GET, &format!("/v1/kv/{key}"), None).await.expect("get");
                assert_eq!(r.status, 404, "refused write {key} was applied");
            }
        }
    };
    check(&a).await;
    // And after a restart, everything acknowledged is there, nothing refused.
    a.restart();
    a.wait_ready().await;
    check(&a).await;
    a.kill9();
}
