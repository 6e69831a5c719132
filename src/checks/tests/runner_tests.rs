//! The runner as the agent uses it: scheduling with counters against a
//! real HTTP server, replacing and stopping checks, shutdown.

use super::http_tests::{http_kind, serve};
use super::{harness, spec, wait_until};
use crate::checks::{CheckKind, Status};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Script {
    codes: Mutex<VecDeque<u16>>,
    hits: AtomicUsize,
}

/// Answers each request with the next queued status code (200 when empty)
/// and counts requests.
async fn scripted_server(codes: &[u16]) -> (SocketAddr, Arc<Script>) {
    let state =
        Arc::new(Script { codes: Mutex::new(codes.iter().copied().collect()), hits: AtomicUsize::new(0) });
    let router = Router::new()
        .route(
            "/",
            get(|State(s): State<Arc<Script>>| async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                let code = s.codes.lock().unwrap().pop_front().unwrap_or(200);
                (StatusCode::from_u16(code).unwrap(), format!("code {code}"))
            }),
        )
        .with_state(state.clone());
    (serve("127.0.0.25", router).await, state)
}

fn fast(id: &str, kind: CheckKind) -> crate::checks::CheckSpec {
    let mut s = spec(id, kind, LONG);
    s.interval = Duration::from_millis(20);
    s
}

#[tokio::test]
async fn counters_decide_what_is_reported() {
    // First result always reported; then 2 failures for critical, 2 successes for passing.
    let (addr, server) = scripted_server(&[200, 500, 500, 200, 429, 500, 200, 200]).await;
    let mut h = harness(None);
    let mut s = fast("c", http_kind(&format!("http://{addr}/")));
    s.success_before_passing = 2;
    s.failures_before_critical = 2;
    h.runner.start(s);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(h.next(LONG).await.status);
    }
    // 200 → passing; 500 → -; 500 → critical; 200 → -; 429 → warning; 500 → -; 200 → -; 200 → passing
    assert_eq!(statuses, vec![Status::Passing, Status::Critical, Status::Warning, Status::Passing]);
    assert!(server.hits.load(Ordering::SeqCst) >= 8);
}

#[tokio::test]
async fn failures_before_warning_reports_warning_before_critical() {
    let (addr, _server) = scripted_server(&[200, 500, 500, 500]).await;
    let mut h = harness(None);
    let mut s = fast("c", http_kind(&format!("http://{addr}/")));
    s.failures_before_warning = 1;
    s.failures_before_critical = 3;
    h.runner.start(s);
    let mut got = Vec::new();
    for _ in 0..4 {
        let r = h.next(LONG).await;
        got.push((r.status, r.output.ends_with("Output: code 500")));
    }
    assert_eq!(
        got,
        vec![
            (Status::Passing, false),
            (Status::Warning, true),
            (Status::Warning, true),
            (Status::Critical, true)
        ]
    );
}

#[tokio::test]
async fn restarting_an_id_replaces_the_check() {
    let (a, server_a) = scripted_server(&[]).await;
    let (b, server_b) = scripted_server(&[]).await;
    let mut h = harness(None);
    h.runner.start(fast("x", http_kind(&format!("http://{a}/"))));
    assert!(h.next(LONG).await.output.contains(&a.to_string()));

    h.runner.start(fast("x", http_kind(&format!("http://{b}/"))));
    let hits_a = server_a.hits.load(Ordering::SeqCst);
    h.drain();
    for _ in 0..5 {
        let r = h.next(LONG).await;
        assert_eq!(r.id, "x");
        assert!(r.output.contains(&b.to_string()), "result from the replaced check: {}", r.output);
    }
    assert!(server_b.hits.load(Ordering::SeqCst) >= 5);
    // At most a request already in flight when it was replaced.
    assert!(server_a.hits.load(Ordering::SeqCst) <= hits_a + 1);
    assert_eq!(h.runner.running(), vec!["x".to_string()]);
}

#[tokio::test]
async fn stop_stops_the_check() {
    let (addr, server) = scripted_server(&[]).await;
    let mut h = harness(None);
    h.runner.start(fast("a", http_kind(&format!("http://{addr}/"))));
    h.runner.start(fast("b", CheckKind::Ttl { ttl: LONG }));
    assert_eq!(h.runner.running(), vec!["a".to_string(), "b".to_string()]);
    h.next(LONG).await;

    assert!(h.runner.stop("a"));
    assert!(!h.runner.stop("a"));
    assert_eq!(h.runner.running(), vec!["b".to_string()]);
    h.drain();
    let hits = server.hits.load(Ordering::SeqCst);
    // Wait several intervals: nothing more from "a".
    assert!(h.quiet_for(Duration::from_millis(300)).await);
    assert!(server.hits.load(Ordering::SeqCst) <= hits + 1);
}

#[tokio::test]
async fn stopping_a_running_script_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let h = harness(None);
    h.runner.start(fast("s", CheckKind::Script { args: vec!["/bin/sh".into(), "-c".into(), script] }));
    let path = pid_file.clone();
    assert!(
        wait_until(LONG, || {
            let p = path.clone();
            async move { std::fs::read_to_string(&p).is_ok_and(|s| s.ends_with('\n')) }
        })
        .await
    );
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    h.runner.stop("s");
    let dead = wait_until(LONG, || async move {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
    })
    .await;
    assert!(dead, "script child {pid} still running after stop");
}

#[tokio::test]
async fn shutdown_ends_every_task() {
    let (addr, _server) = scripted_server(&[]).await;
    let mut h = harness(None);
    h.runner.start(fast("a", http_kind(&format!("http://{addr}/"))));
    h.runner.start(fast("b", CheckKind::Ttl { ttl: LONG }));
    h.runner.start(fast("c", CheckKind::Udp { address: "127.0.0.25:9".into() }));
    h.next(LONG).await;
    h.shutdown.cancel();
    h.tasks.close();
    assert!(tokio::time::timeout(LONG, h.tasks.wait()).await.is_ok(), "tasks still running after shutdown");
    h.runner.start(fast("d", CheckKind::Ttl { ttl: LONG }));
    assert!(!h.runner.running().contains(&"d".to_string()), "nothing starts after shutdown");
}

#[tokio::test]
async fn dropping_the_runner_or_the_receiver_ends_the_tasks() {
    let (addr, _server) = scripted_server(&[]).await;
    let mut h = harness(None);
    h.runner.start(fast("a", http_kind(&format!("http://{addr}/"))));
    h.next(LONG).await;
    drop(h.results);
    h.tasks.close();
    assert!(
        tokio::time::timeout(LONG, h.tasks.wait()).await.is_ok(),
        "task kept running with nobody listening"
    );

    let h2 = harness(None);
    h2.runner.start(fast("b", CheckKind::Ttl { ttl: LONG }));
    drop(h2.runner);
    h2.tasks.close();
    assert!(tokio::time::timeout(LONG, h2.tasks.wait()).await.is_ok(), "task outlived its runner");
}

#[tokio::test]
async fn a_ca_can_be_added_before_sharing_only() {
    let mut h = harness(None);
    assert_eq!(h.runner.add_ca_pem(super::CERT_PEM.as_bytes()), Ok(1));
    let clone = h.runner.clone();
    assert!(h.runner.add_ca_pem(super::CERT_PEM.as_bytes()).is_err());
    drop(clone);
    // The CA is used: an HTTPS check against the fixture server verifies.
    let addr = super::http_tests::tls_http_server().await;
    h.runner.start(fast("tls", http_kind(&format!("https://127.0.0.1:{}/", addr.port()))));
    let r = h.next(LONG).await;
    assert_eq!(r.status, Status::Passing, "{}", r.output);
}
