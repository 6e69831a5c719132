//! Blocking queries: a reader wakes only when what it reads changes, times
//! out with the same index, and idle readers cost no CPU.

use crate::harness::{cpu_ticks, wait_until, Agent};
use hyper::Method;
use std::time::{Duration, Instant};

#[tokio::test]
async fn watcher_of_one_key_sleeps_through_writes_to_another() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/kv/a", b"1").await;
    let idx = a.get("/v1/kv/kv/a").await.index().unwrap();
    let wakeups_before = a.counter("consul.blocking_query.wakeups").await;

    let watchers_before = a.gauge("consul.blocking_query.watchers").await;
    let c = a.client();
    let path = format!("/v1/kv/kv/a?index={idx}&wait=60s");
    let watcher = tokio::spawn(async move { c.request(Method::GET, &path, None).await });

    // Once the watcher is registered, write 1,000 times to another key.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.gauge("consul.blocking_query.watchers").await > watchers_before
        })
        .await,
        "the watcher never registered"
    );
    for i in 0..1000 {
        assert_eq!(a.put("/v1/kv/kv/b", format!("{i}").as_bytes()).await.status, 200);
    }
    assert!(!watcher.is_finished(), "the watcher of kv/a must still be blocked");
    assert_eq!(
        a.counter("consul.blocking_query.wakeups").await,
        wakeups_before,
        "writes to kv/b must not wake the watcher of kv/a"
    );

    let t0 = Instant::now();
    a.put("/v1/kv/kv/a", b"2").await;
    let r = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watcher returns")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(r.status, 200);
    assert!(r.index().unwrap() > idx);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v[0]["Value"], "Mg==");
    assert_eq!(a.counter("consul.blocking_query.spurious_wakeups").await, 0);
}

#[tokio::test]
async fn wait_times_out_with_the_same_index() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/t", b"1").await;
    let idx = a.get("/v1/kv/t").await.index().unwrap();
    let t0 = Instant::now();
    let r = a.get(&format!("/v1/kv/t?index={idx}&wait=1s")).await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.index(), Some(idx));
    assert!(took >= Duration::from_millis(1000), "returned early after {took:?}");
    assert!(took < Duration::from_millis(1000 + 1000 / 16 + 900), "returned late after {took:?}");
}

#[tokio::test]
async fn prefix_and_missing_key_watchers_wake_on_their_changes() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/other", b"x").await;
    // A watcher of a missing key wakes when it is created.
    let r = a.get("/v1/kv/later").await;
    assert_eq!(r.status, 404);
    let idx = r.index().unwrap();
    let c = a.client();
    let w = tokio::spawn(async move {
        c.request(Method::GET, &format!("/v1/kv/later?index={idx}&wait=30s"), None).await
    });
    // Parked, not just registered: a write landing before its first read
    // would rightly end it (a missing key reports the table's index).
    assert!(
        wait_until(Duration::from_secs(10), || async { a.gauge("consul.blocking_query.parked").await >= 1 })
            .await
    );
    a.put("/v1/kv/other", b"y").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!w.is_finished());
    a.put("/v1/kv/later", b"now").await;
    let r = tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status, 200);

    // A recursive watcher wakes on a write or delete under its prefix only.
    a.put("/v1/kv/dir/a", b"1").await;
    let idx = a.get("/v1/kv/dir/?recurse").await.index().unwrap();
    let c = a.client();
    let w = tokio::spawn(async move {
        c.request(Method::GET, &format!("/v1/kv/dir/?recurse&index={idx}&wait=30s"), None).await
    });
    assert!(
        wait_until(Duration::from_secs(10), || async { a.gauge("consul.blocking_query.parked").await >= 1 })
            .await
    );
    a.put("/v1/kv/dirx", b"1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!w.is_finished(), "dirx is not under dir/");
    a.delete("/v1/kv/dir/a").await;
    let r = tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status, 404);
    assert!(r.index().unwrap() > idx);
}

#[tokio::test]
async fn thousands_of_idle_watchers_cost_no_cpu() {
    // 2,000 watchers from one address: lift the per-client connection cap.
    let a = Agent::dev(&["-log-level=info", "-hcl", "limits { http_max_conns_per_client = 0 }"]);
    a.wait_ready().await;
    a.put("/v1/kv/idle", b"1").await;
    let idx = a.get("/v1/kv/idle").await.index().unwrap();
    let n = 2000;
    let mut handles = Vec::new();
    for i in 0..n {
        let c = a.client();
        // Distinct keys, none of which will change.
        let path = format!("/v1/kv/idle/{i}?index={}&wait=120s", idx);
        handles.push(tokio::spawn(async move { c.request(Method::GET, &path, None).await }));
    }
    assert!(
        wait_until(Duration::from_secs(60), || async {
            a.gauge("consul.blocking_query.watchers").await >= n as i64
        })
        .await,
        "not all watchers registered"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(handles.iter().all(|h| !h.is_finished()), "watchers must be blocked");
    let pid = a.pid();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_ticks(pid) - before;
    // Clock ticks are 10 ms: 2,000 idle watchers over 3 s may cost at most a
    // few ticks of housekeeping, never work per watcher.
    assert!(used <= 10, "{n} idle watchers used {used} ticks of CPU in 3 s");
    // And they all still answer when their key changes.
    a.put("/v1/kv/idle/7", b"x").await;
    let r = tokio::time::timeout(Duration::from_secs(10), handles.remove(7)).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status, 200);
    for h in handles {
        h.abort();
    }
}
