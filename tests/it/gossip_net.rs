//! Real sockets on loopback: several `Gossip` instances in one process on
//! distinct 127.0.x.y addresses (port 0, so parallel tests never collide),
//! with dev or LAN timings. Every wait is a wait-until with a deadline.

use crate::common::wait::wait_elapsed;
use consul::config::runtime::GossipSettings;
use consul::gossip::{
    Gossip, GossipConfig, MemberEvent, MemberStatus, Pool, QueryEvent, QueryParams, WireDirection, WireTap,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const K2: &str = "EXz7LFN8hpQ4id8EDYiFoQ==";
const K3: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn cfg(net: u8, i: u8, name: &str, settings: GossipSettings) -> GossipConfig {
    let bind: SocketAddr = format!("127.0.{net}.{i}:0").parse().unwrap();
    let mut c = GossipConfig::new(name, bind, Pool::Lan);
    c.settings = settings;
    c.tcp_timeout = Duration::from_secs(2);
    let mut tags = BTreeMap::new();
    tags.insert("role".to_string(), "node".to_string());
    tags.insert("dc".to_string(), "dc1".to_string());
    c.tags = tags;
    c
}

async fn start(c: GossipConfig) -> Gossip {
    Gossip::start(c, &TaskTracker::new(), CancellationToken::new()).await.expect("start")
}

fn status_of(g: &Gossip, name: &str) -> Option<MemberStatus> {
    g.members().into_iter().find(|m| m.name == name).map(|m| m.status)
}

fn count_alive(g: &Gossip) -> usize {
    g.members().iter().filter(|m| m.status == MemberStatus::Alive).count()
}

async fn join_all(nodes: &[Gossip]) {
    let seed = nodes[0].addr().to_string();
    for g in &nodes[1..] {
        let (n, errs) = g.join(std::slice::from_ref(&seed)).await;
        assert_eq!(n, 1, "join failed: {errs:?}");
    }
    let n = nodes.len();
    let ok = wait_elapsed(Duration::from_secs(10), || nodes.iter().all(|g| count_alive(g) == n)).await;
    assert!(
        ok.is_some(),
        "members did not agree: {:?}",
        nodes.iter().map(|g| g.members()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_agree_leave_and_crash() {
    let mut nodes = Vec::new();
    for i in 1..=4u8 {
        nodes.push(start(cfg(1, i, &format!("node{i}"), GossipSettings::dev())).await);
    }
    join_all(&nodes).await;
    // Joining yourself, or someone you already know, is harmless.
    let (n, errs) = nodes[1].join(&[nodes[1].addr().to_string(), nodes[0].addr().to_string()]).await;
    assert_eq!((n, errs.len()), (2, 0), "{errs:?}");
    let m = nodes[2].members().into_iter().find(|m| m.name == "node1").unwrap();
    assert_eq!(m.tags.get("dc").map(String::as_str), Some("dc1"));
    assert_eq!(m.addr, nodes[0].addr().ip());
    assert_eq!(m.port, nodes[0].addr().port());

    // Graceful leave: `left` everywhere, never `failed`.
    let mut events = nodes[0].subscribe();
    nodes[3].leave(Duration::from_secs(10)).await.expect("leave");
    assert!(!nodes[3].is_running());
    let t = wait_elapsed(Duration::from_secs(5), || {
        nodes[..3].iter().all(|g| status_of(g, "node4") == Some(MemberStatus::Left))
    })
    .await;
    assert!(t.is_some(), "leave not seen as left: {:?}", nodes[0].members());
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(&ev, MemberEvent::Failed(m) if m.name == "node4"),
            "graceful leave reported as failure"
        );
    }

    // Crash: stop without a word; `failed` everywhere within the bound
    // (dev timings: 100 ms probes, suspicion 3 × 100 ms, ×6 at most).
    let crashed_at = Instant::now();
    nodes[2].shutdown().await;
    let t = wait_elapsed(Duration::from_secs(10), || {
        nodes[..2].iter().all(|g| status_of(g, "node3") == Some(MemberStatus::Failed))
    })
    .await;
    let t = t.expect("crash not detected");
    println!("NET dev timings, 4 nodes: crash detected by all in {:?}", crashed_at.elapsed());
    assert!(t < Duration::from_secs(4), "detection took {t:?}");
    let stats = nodes[0].stats().await.unwrap();
    assert_eq!(stats["failed"], "1");
    assert_eq!(stats["left"], "1");
    assert_eq!(stats["encrypted"], "false");
    for g in &nodes[..2] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_key_cannot_join() {
    let mut a = cfg(2, 1, "a", GossipSettings::dev());
    a.keys = vec![K1.into()];
    let a = start(a).await;
    let mut c = cfg(2, 2, "c", GossipSettings::dev());
    c.keys = vec![K2.into()];
    let c = start(c).await;
    let (n, errs) = c.join(&[a.addr().to_string()]).await;
    assert_eq!(n, 0);
    assert!(errs[0].1.to_string().contains("no installed keys could decrypt"), "{errs:?}");
    assert!(a.rejected_streams() >= 1);
    // Plaintext node against an encrypted one: refused with a clear reason.
    let p = start(cfg(2, 3, "p", GossipSettings::dev())).await;
    let (n, errs) = p.join(&[a.addr().to_string()]).await;
    assert_eq!(n, 0);
    assert!(errs[0].1.to_string().contains("plaintext message refused"), "{errs:?}");
    // And an encrypted node against a plaintext one.
    let (n, errs) = a.join(&[p.addr().to_string()]).await;
    assert_eq!(n, 0);
    assert!(errs[0].1.to_string().contains("encryption is not enabled"), "{errs:?}");
    assert_eq!(a.members().len(), 1);
    for g in [a, c, p] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_enablement_with_verify_flags_off() {
    let plain = start(cfg(3, 1, "plain", GossipSettings::dev())).await;
    let mut lax = cfg(3, 2, "lax", GossipSettings::dev());
    lax.keys = vec![K1.into()];
    lax.verify_incoming = false;
    lax.verify_outgoing = false;
    let lax = start(lax).await;
    join_all(&[plain.clone(), lax.clone()]).await;
    assert!(lax.encrypted());
    for g in [plain, lax] {
        g.shutdown().await;
    }
}

type Capture = Arc<Mutex<Vec<(WireDirection, Vec<u8>)>>>;

fn tap(into: Capture) -> WireTap {
    Arc::new(move |d, _addr, b: &[u8]| into.lock().unwrap().push((d, b.to_vec())))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Runs three nodes with distinctive names and tags, traffic of every kind
/// (probes, gossip, push-pull, user events), and returns what the sockets saw.
async fn capture(net: u8, key: Option<&str>) -> Vec<(WireDirection, Vec<u8>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut settings = GossipSettings::dev();
    settings.push_pull_interval = Duration::from_millis(300);
    let mut nodes = Vec::new();
    for i in 1..=3u8 {
        let mut c = cfg(net, i, &format!("secret-name-{i}"), settings.clone());
        c.tags.insert("secret-tag".into(), "classified-value".into());
        if let Some(k) = key {
            c.keys = vec![k.into()];
        }
        c.wire_tap = Some(tap(seen.clone()));
        nodes.push(start(c).await);
    }
    join_all(&nodes).await;
    nodes[0].user_event("secret-event", b"classified-payload", false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for g in &nodes {
        g.shutdown().await;
    }
    let v = seen.lock().unwrap().clone();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_wire_bytes_carry_no_plaintext() {
    let sealed = capture(4, Some(K1)).await;
    let kinds = |d: WireDirection| sealed.iter().filter(|(x, _)| *x == d).count();
    assert!(
        kinds(WireDirection::UdpOut) > 20 && kinds(WireDirection::TcpOut) >= 4,
        "not enough traffic captured"
    );
    for (_, bytes) in &sealed {
        for secret in ["secret-name", "classified", "secret-event", "secret-tag"] {
            assert!(!contains(bytes, secret), "plaintext {secret:?} on the wire");
        }
        assert!(
            bytes.len() <= 1400 || bytes.first() != Some(&b'E') || bytes.len() > 1400 && bytes[0] == b'E'
        );
    }
    assert!(sealed
        .iter()
        .filter(|(d, _)| matches!(d, WireDirection::UdpOut))
        .all(|(_, b)| b.len() <= 1400 && b[0] == b'E'));
    // The check can fail: without a key the same run leaks everything.
    let plain = capture(5, None).await;
    assert!(plain.iter().any(|(_, b)| contains(b, "secret-name")));
    assert!(plain.iter().any(|(_, b)| contains(b, "classified-payload")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_garbage_and_oversized_packets_are_dropped() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut a = cfg(6, 1, "a", GossipSettings::dev());
    a.keys = vec![K1.into()];
    a.wire_tap = Some(tap(seen.clone()));
    let a = start(a).await;
    let mut b = cfg(6, 2, "b", GossipSettings::dev());
    b.keys = vec![K1.into()];
    let b = start(b).await;
    join_all(&[a.clone(), b.clone()]).await;
    let genuine = wait_elapsed(Duration::from_secs(5), || {
        seen.lock().unwrap().iter().any(|(d, _)| *d == WireDirection::UdpOut)
    })
    .await;
    assert!(genuine.is_some());
    let packet = seen.lock().unwrap().iter().find(|(d, _)| *d == WireDirection::UdpOut).unwrap().1.clone();
    let sock = tokio::net::UdpSocket::bind("127.0.6.9:0").await.unwrap();
    let before = b.dropped_packets();
    let mut flipped = packet.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    sock.send_to(&flipped, b.addr()).await.unwrap();
    sock.send_to(b"\x00garbage", b.addr()).await.unwrap();
    sock.send_to(&[b'E'; 10], b.addr()).await.unwrap();
    sock.send_to(&vec![b'E'; 2000], b.addr()).await.unwrap();
    sock.send_to(b"G\x01\x05\x01", b.addr()).await.unwrap();
    let t = wait_elapsed(Duration::from_secs(5), || b.dropped_packets() >= before + 5).await;
    assert!(t.is_some(), "dropped {} of 5", b.dropped_packets() - before);
    // Garbage on the stream port too.
    let mut s = tokio::net::TcpStream::connect(b.addr()).await.unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await.unwrap();
    drop(s);
    let rej = b.rejected_streams();
    let t = wait_elapsed(Duration::from_secs(5), || b.rejected_streams() > rej || rej > 0).await;
    assert!(t.is_some());
    // Still healthy.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_alive(&a), 2);
    assert_eq!(count_alive(&b), 2);
    for g in [a, b] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_traffic_fails_no_member() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4;
    let mut nodes = Vec::new();
    for i in 1..=n as u8 {
        let mut c = cfg(7, i, &format!("r{i}"), GossipSettings::lan());
        c.keys = vec![K1.into()];
        c.keyring_file = Some(dir.path().join(format!("r{i}/serf/local.keyring")));
        nodes.push(start(c).await);
    }
    join_all(&nodes).await;
    let mut failures = Vec::new();
    let mut user_rx = Vec::new();
    for g in &nodes {
        failures.push(g.subscribe());
        user_rx.push(g.subscribe_user_events());
    }
    // Traffic: a user event every 50 ms during the whole rotation, which
    // starts once a few have gone out and ends a few events after it (the
    // rotation's queries can finish within a few gossip hops, faster than
    // the events come).
    let stop = CancellationToken::new();
    let sender = nodes[0].clone();
    let s2 = stop.clone();
    let sent_so_far = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = sent_so_far.clone();
    let traffic = tokio::spawn(async move {
        let mut k = 0u32;
        while !s2.is_cancelled() {
            sender.user_event("tick", &k.to_be_bytes(), false).await.unwrap();
            k += 1;
            counter.store(k, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        k
    });
    let sent_now = || sent_so_far.load(std::sync::atomic::Ordering::Relaxed);
    assert!(wait_elapsed(Duration::from_secs(10), || sent_now() >= 3).await.is_some(), "no traffic");

    let r = nodes[1].keyring_install(K2).await.unwrap();
    assert!(r.all_ok(), "install: {r:?}");
    let r = nodes[2].keyring_list().await.unwrap();
    assert_eq!(r.keys.get(K1), Some(&n), "{r:?}");
    assert_eq!(r.keys.get(K2), Some(&n), "{r:?}");
    assert_eq!(r.primary_keys.get(K1), Some(&n));
    let r = nodes[0].keyring_use(K2).await.unwrap();
    assert!(r.all_ok(), "use: {r:?}");
    let r = nodes[3].keyring_remove(K1).await.unwrap();
    assert!(r.all_ok(), "remove: {r:?}");
    let r = nodes[0].keyring_list().await.unwrap();
    assert_eq!(r.keys, BTreeMap::from([(K2.to_string(), n)]));
    assert_eq!(r.primary_keys, BTreeMap::from([(K2.to_string(), n)]));
    // The primary cannot be removed, and each member says so.
    let r = nodes[0].keyring_remove(K2).await.unwrap();
    assert_eq!(r.num_err, n);
    assert!(r.messages.values().all(|m| m == "Removing the primary key is not allowed"), "{r:?}");
    // Bad keys are refused before any gossip.
    assert!(nodes[0].keyring_install("YWJj").await.unwrap_err().to_string().contains("16, 24 or 32"));

    let after_rotation = sent_now();
    assert!(
        wait_elapsed(Duration::from_secs(10), || sent_now() >= after_rotation + 3).await.is_some(),
        "traffic stopped during the rotation"
    );
    stop.cancel();
    let sent = traffic.await.unwrap();
    assert!(sent > 5);
    // Traffic still flows under the new key: the last event reaches everyone.
    let last = (sent - 1).to_be_bytes().to_vec();
    let mut got_last = vec![false; n];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) && !got_last.iter().all(|x| *x) {
        for (i, rx) in user_rx.iter_mut().enumerate() {
            while let Ok(ev) = rx.try_recv() {
                if ev.payload == last {
                    got_last[i] = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(got_last.iter().all(|x| *x), "last event not everywhere: {got_last:?}");
    for rx in failures.iter_mut() {
        while let Ok(ev) = rx.try_recv() {
            assert!(!matches!(ev, MemberEvent::Failed(_)), "member failed during rotation: {ev:?}");
        }
    }
    for g in &nodes {
        assert_eq!(g.local_keys(), vec![K2.to_string()]);
        assert_eq!(count_alive(g), n);
    }
    for i in 1..=n {
        let text = std::fs::read_to_string(dir.path().join(format!("r{i}/serf/local.keyring"))).unwrap();
        assert_eq!(text, format!("[\"{K2}\"]"));
    }
    // A restarted node reads its keyring file, not the stale `encrypt` key.
    nodes[3].shutdown().await;
    let mut c = cfg(7, 4, "r4", GossipSettings::lan());
    c.keys = vec![K1.into()];
    c.keyring_file = Some(dir.path().join("r4/serf/local.keyring"));
    let r4 = start(c).await;
    assert_eq!(r4.local_keys(), vec![K2.to_string()]);
    let (joined, errs) = r4.join(&[nodes[0].addr().to_string()]).await;
    assert_eq!(joined, 1, "{errs:?}");
    r4.shutdown().await;
    for g in &nodes[..3] {
        g.shutdown().await;
    }
    // Not enabled → a clear error.
    let plain = start(cfg(7, 9, "plain", GossipSettings::dev())).await;
    assert!(plain.keyring_list().await.unwrap_err().to_string().contains("not enabled"));
    plain.shutdown().await;
    let _ = K3;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_rejoins_previous_peers() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(cfg(8, 1, "a", GossipSettings::dev())).await;
    let mk_b = |rejoin: bool| {
        let mut c = cfg(8, 2, "b", GossipSettings::dev());
        c.snapshot_path = Some(dir.path().join("serf/local.snapshot"));
        c.rejoin_after_leave = rejoin;
        c
    };
    let b = start(mk_b(false)).await;
    join_all(&[a.clone(), b.clone()]).await;
    b.user_event("e", b"1", false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // let the snapshot flush (≤ 1 s)
    b.shutdown().await; // crash-like: no leave
    wait_elapsed(Duration::from_secs(10), || status_of(&a, "b") == Some(MemberStatus::Failed))
        .await
        .expect("b failed");
    let text = std::fs::read_to_string(dir.path().join("serf/local.snapshot")).unwrap();
    assert!(text.contains("\"left\":false") && text.contains("\"name\":\"a\""), "{text}");

    // Restart with no join call: the snapshot brings it back.
    let b2 = start(mk_b(false)).await;
    let t = wait_elapsed(Duration::from_secs(10), || {
        status_of(&a, "b") == Some(MemberStatus::Alive) && count_alive(&b2) == 2
    })
    .await;
    assert!(t.is_some(), "snapshot rejoin did not happen");
    let st = b2.stats().await.unwrap();
    assert!(st["event_time"].parse::<u64>().unwrap() >= 1, "clock restored: {st:?}");

    // A restart that cannot reach anyone keeps the old peers on file.
    a.shutdown().await;
    let b_alone = start(mk_b(false)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b_alone.shutdown().await;
    let text = std::fs::read_to_string(dir.path().join("serf/local.snapshot")).unwrap();
    assert!(text.contains("\"name\":\"a\""), "peers forgotten: {text}");
    let a = start(cfg(8, 1, "a", GossipSettings::dev())).await;
    let a_addr = a.addr();
    let mut snap: serde_json::Value = serde_json::from_str(&text).unwrap();
    snap["alive"][0]["addr"] = serde_json::Value::String(a_addr.to_string());
    std::fs::write(dir.path().join("serf/local.snapshot"), snap.to_string()).unwrap();
    let b2 = start(mk_b(false)).await;
    wait_elapsed(Duration::from_secs(10), || {
        count_alive(&b2) == 2 && status_of(&a, "b") == Some(MemberStatus::Alive)
    })
    .await
    .expect("rejoined");

    // After a graceful leave the snapshot says so. With rejoin_after_leave
    // the node rejoins anyway; without it, it forgets its peers.
    b2.leave(Duration::from_secs(10)).await.unwrap();
    wait_elapsed(Duration::from_secs(5), || status_of(&a, "b") == Some(MemberStatus::Left))
        .await
        .expect("left");
    let text = std::fs::read_to_string(dir.path().join("serf/local.snapshot")).unwrap();
    assert!(text.contains("\"left\":true"), "{text}");
    let b4 = start(mk_b(true)).await;
    let t = wait_elapsed(Duration::from_secs(10), || {
        count_alive(&b4) == 2 && status_of(&a, "b") == Some(MemberStatus::Alive)
    })
    .await;
    assert!(t.is_some(), "rejoin_after_leave did not rejoin");
    b4.leave(Duration::from_secs(10)).await.unwrap();
    wait_elapsed(Duration::from_secs(5), || status_of(&a, "b") == Some(MemberStatus::Left))
        .await
        .expect("left again");
    let b3 = start(mk_b(false)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b3.members().len(), 1, "rejoined despite a graceful leave");
    b3.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_events_over_sockets() {
    let mut nodes = Vec::new();
    for i in 1..=3u8 {
        nodes.push(start(cfg(9, i, &format!("q{i}"), GossipSettings::dev())).await);
    }
    join_all(&nodes).await;
    // Every node answers queries named "whoami".
    for g in &nodes {
        let g2 = g.clone();
        let mut rx = g.subscribe_queries();
        tokio::spawn(async move {
            while let Ok(q) = rx.recv().await {
                let me = g2.local_member().name;
                let _ = g2.respond(&q.query, me.into_bytes()).await;
            }
        });
    }
    let params =
        QueryParams { request_ack: true, timeout: Some(Duration::from_secs(2)), ..Default::default() };
    let mut stream = nodes[0].query("whoami", b"", params).await.unwrap();
    let mut acks = 0;
    let mut names = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev {
            QueryEvent::Ack(_) => acks += 1,
            QueryEvent::Response { payload, .. } => names.push(String::from_utf8(payload).unwrap()),
        }
    }
    names.sort();
    assert_eq!(acks, 3);
    assert_eq!(names, vec!["q1", "q2", "q3"]);
    let filtered = QueryParams {
        filter_nodes: vec!["q2".into()],
        timeout: Some(Duration::from_millis(800)),
        ..Default::default()
    };
    let r = nodes[2].query("whoami", b"", filtered).await.unwrap().collect().await;
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].0, "q2");
    // Tags update reaches the others.
    let mut tags = nodes[1].local_member().tags;
    tags.insert("expect".into(), "3".into());
    nodes[1].set_tags(tags).await.unwrap();
    let t = wait_elapsed(Duration::from_secs(5), || {
        nodes[2].members().iter().any(|m| m.name == "q2" && m.tags.contains_key("expect"))
    })
    .await;
    assert!(t.is_some());
    let mut big = BTreeMap::new();
    big.insert("x".to_string(), "y".repeat(600));
    assert!(nodes[1].set_tags(big).await.is_err());
    assert!(nodes[0].user_event("big", &[0u8; 600], false).await.is_err());
    for g in &nodes {
        g.shutdown().await;
    }
    assert!(nodes[0].join(&["127.0.9.1".into()]).await.1[0].1.to_string().contains("shut down"));
}

/// The figures benchmark 4 compares with serf 0.9.4 (same shape as
/// deps-and-performance.md §B6): 5 agents with LAN timings on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_timing_figures_for_five_nodes() {
    let mut nodes = Vec::new();
    for i in 1..=4u8 {
        nodes.push(start(cfg(10, i, &format!("lan{i}"), GossipSettings::lan())).await);
    }
    join_all(&nodes).await;
    // A fifth agent starts and joins through node 1; time until the
    // farthest member lists it (start included, as in §B6).
    let t0 = Instant::now();
    let fifth = start(cfg(10, 5, "lan5", GossipSettings::lan())).await;
    let (n, errs) = fifth.join(&[nodes[0].addr().to_string()]).await;
    assert_eq!(n, 1, "{errs:?}");
    nodes.push(fifth);
    wait_elapsed(Duration::from_secs(30), || {
        nodes.iter().all(|g| status_of(g, "lan5") == Some(MemberStatus::Alive))
    })
    .await
    .expect("join");
    let join = t0.elapsed();

    let t0 = Instant::now();
    nodes[4].leave(Duration::from_secs(10)).await.unwrap();
    wait_elapsed(Duration::from_secs(10), || {
        nodes[..4].iter().all(|g| status_of(g, "lan5") == Some(MemberStatus::Left))
    })
    .await
    .expect("leave");
    let leave = t0.elapsed();

    let t0 = Instant::now();
    nodes[1].shutdown().await;
    let first = wait_elapsed(Duration::from_secs(30), || {
        [0usize, 2, 3].iter().any(|i| status_of(&nodes[*i], "lan2") == Some(MemberStatus::Failed))
    })
    .await
    .expect("first");
    wait_elapsed(Duration::from_secs(30), || {
        [0usize, 2, 3].iter().all(|i| status_of(&nodes[*i], "lan2") == Some(MemberStatus::Failed))
    })
    .await
    .expect("all");
    let all = t0.elapsed();
    println!(
        "NET LAN timings, 5 nodes: join visible everywhere {:.2}s; leave → left everywhere {:.2}s; kill → failed first {:.2}s, everywhere {:.2}s",
        join.as_secs_f64(),
        leave.as_secs_f64(),
        first.as_secs_f64(),
        all.as_secs_f64()
    );
    // 1 s probe + 0.5 s timeout + 4 s minimum suspicion (+ confirmations):
    // the formula bound with the ×6 maximum is 1 + 1 + 24 s.
    assert!(all < Duration::from_secs(26), "{all:?}");
    assert!(all >= Duration::from_secs(4), "faster than the minimum suspicion timeout: {all:?}");
    for i in [0usize, 2, 3] {
        nodes[i].shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_by_ip_uses_the_pool_port() {
    // Same port on two loopback addresses, as agents on different hosts.
    let mk = |i: u8| {
        let mut c = cfg(11, i, &format!("ip{i}"), GossipSettings::dev());
        c.bind = format!("127.0.11.{i}:18301").parse().unwrap();
        c
    };
    let a = start(mk(1)).await;
    let b = start(mk(2)).await;
    let (n, errs) =
        b.join(&["127.0.11.1".to_string(), "localhost:1".to_string(), "not a host".to_string()]).await;
    assert_eq!(n, 1, "{errs:?}");
    assert_eq!(errs.len(), 2, "{errs:?}");
    wait_elapsed(Duration::from_secs(5), || count_alive(&a) == 2).await.expect("joined");
    assert_eq!(a.local_member().port, 18301);
    for g in [a, b] {
        g.shutdown().await;
    }
}
