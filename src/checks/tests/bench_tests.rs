//! Rough cost of one run of each periodic kind on loopback. Ignored by
//! default; run with `cargo test --lib checks::tests::bench -- --ignored --nocapture`.

use super::http_tests::{http_kind, serve};
use super::{probe, spec};
use crate::checks::{CheckKind, Status};
use std::time::{Duration, Instant};

async fn measure(name: &str, kind: CheckKind, runs: u32) {
    let s = spec("b", kind, Duration::from_secs(10));
    let started = Instant::now();
    for _ in 0..runs {
        assert_eq!(probe(&s).await.0, Status::Passing);
    }
    let per_run = started.elapsed() / runs;
    println!("{name}: {per_run:?} per run ({runs} runs)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_one_run_per_kind() {
    let addr =
        serve("127.0.0.26", axum::Router::new().route("/", axum::routing::get(|| async { "ok" }))).await;
    measure("http", http_kind(&format!("http://{addr}/")), 500).await;
    measure(
        "tcp",
        CheckKind::Tcp {
            address: addr.to_string(),
            use_tls: false,
            tls_skip_verify: false,
            tls_server_name: None,
        },
        500,
    )
    .await;
    measure("script /bin/true", CheckKind::Script { args: vec!["/bin/true".into()] }, 200).await;
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; no other memory is touched.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_many_checks_in_one_runner() {
    let addr =
        serve("127.0.0.26", axum::Router::new().route("/", axum::routing::get(|| async { "ok" }))).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let runner = crate::checks::Runner::new(
        tx,
        None,
        tokio_util::task::TaskTracker::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let n = 1000;
    for i in 0..n {
        let mut s = spec(&format!("c{i}"), http_kind(&format!("http://{addr}/")), Duration::from_secs(10));
        s.interval = Duration::from_secs(1);
        runner.start(s);
    }
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut results = 0;
    while started.elapsed() < Duration::from_secs(5) {
        if tokio::time::timeout(Duration::from_millis(100), rx.recv()).await.is_ok_and(|r| r.is_some()) {
            results += 1;
        }
    }
    let cpu = cpu_time() - cpu_before;
    println!(
        "{n} http checks at 1s: {results} results in 5s, process CPU {cpu:?} (client and server together)"
    );
    runner.stop_all();
}
