//! Sessions and KV locks: Consul's fields and defaults, lock hand-over on
//! destroy, on a critical check and on TTL expiry, lock-delay, and mutual
//! exclusion under contention.

use crate::harness::{wait_until, Agent};
use hyper::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn create(a: &Agent, body: Value) -> String {
    let r = a.put("/v1/session/create", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json::<Value>().unwrap()["ID"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn session_lifecycle_and_fields() {
    let a = Agent::dev(&["-node=sess-node"]);
    a.wait_ready().await;
    // The node must be in the catalog first (anti-entropy does that).
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.get("/v1/catalog/node/sess-node").await.text() != "null"
        })
        .await
    );
    let id = create(&a, json!({"Name": "web-lock"})).await;
    let v: Vec<Value> = a.get(&format!("/v1/session/info/{id}")).await.json().unwrap();
    assert_eq!(v.len(), 1);
    let s = &v[0];
    assert_eq!(s["Name"], "web-lock");
    assert_eq!(s["Node"], "sess-node");
    assert_eq!(s["LockDelay"], 15_000_000_000u64);
    assert_eq!(s["Behavior"], "release");
    assert_eq!(s["TTL"], "");
    assert_eq!(s["NodeChecks"], json!(["serfHealth"]));
    let list: Vec<Value> = a.get("/v1/session/list").await.json().unwrap();
    assert_eq!(list.len(), 1);
    let on_node: Vec<Value> = a.get("/v1/session/node/sess-node").await.json().unwrap();
    assert_eq!(on_node.len(), 1);
    let r = a.put(&format!("/v1/session/renew/{id}"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(a.put("/v1/session/renew/00000000-0000-0000-0000-000000000000", b"").await.status, 404);
    assert_eq!(a.put(&format!("/v1/session/destroy/{id}"), b"").await.text(), "true");
    assert_eq!(a.get(&format!("/v1/session/info/{id}")).await.text(), "[]");

    // Bad input.
    let r = a.put("/v1/session/create", json!({"TTL": "5s"}).to_string().as_bytes()).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Invalid Session TTL"), "{}", r.text());
    let r = a.put("/v1/session/create", json!({"Behavior": "explode"}).to_string().as_bytes()).await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/session/create", json!({"Node": "nowhere"}).to_string().as_bytes()).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("Missing node registration"), "{}", r.text());
    let r = a.put("/v1/session/create", json!({"NodeChecks": ["nope"]}).to_string().as_bytes()).await;
    assert!(r.text().contains("Missing check 'nope' registration"), "{}", r.text());
    // LockDelay as a small number means seconds.
    let id = create(&a, json!({"LockDelay": 3, "Checks": []})).await;
    let v: Vec<Value> = a.get(&format!("/v1/session/info/{id}")).await.json().unwrap();
    assert_eq!(v[0]["LockDelay"], 3_000_000_000u64);
    assert_eq!(v[0]["NodeChecks"], json!([]));
}

#[tokio::test]
async fn locks_hand_over_with_lock_delay() {
    let a = Agent::dev(&["-node=lock-node"]);
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.get("/v1/catalog/node/lock-node").await.text() != "null"
        })
        .await
    );
    let s1 = create(&a, json!({"LockDelay": "2s"})).await;
    let s2 = create(&a, json!({})).await;
    assert_eq!(a.put(&format!("/v1/kv/leader?acquire={s1}"), b"one").await.text(), "true");
    let v: Vec<Value> = a.get("/v1/kv/leader").await.json().unwrap();
    assert_eq!(v[0]["Session"], s1.as_str());
    assert_eq!(v[0]["LockIndex"], 1);
    assert_eq!(a.put(&format!("/v1/kv/leader?acquire={s2}"), b"two").await.text(), "false");
    assert_eq!(a.put(&format!("/v1/kv/leader?release={s2}"), b"").await.text(), "false");
    assert_eq!(a.put("/v1/kv/leader?acquire=x&release=y", b"").await.status, 400);

    // Destroying the holder releases the lock; lock-delay keeps others out for 2s.
    a.put(&format!("/v1/session/destroy/{s1}"), b"").await;
    let v: Vec<Value> = a.get("/v1/kv/leader").await.json().unwrap();
    assert!(v[0].get("Session").is_none(), "released: {v:?}");
    assert_eq!(v[0]["Value"], "b25l", "release keeps the value");
    let t0 = Instant::now();
    assert_eq!(
        a.put(&format!("/v1/kv/leader?acquire={s2}"), b"two").await.text(),
        "false",
        "within lock-delay"
    );
    let got = wait_until(Duration::from_secs(10), || async {
        a.put(&format!("/v1/kv/leader?acquire={s2}"), b"two").await.text() == "true"
    })
    .await;
    assert!(got);
    assert!(t0.elapsed() >= Duration::from_millis(1500), "acquired after only {:?}", t0.elapsed());
    let v: Vec<Value> = a.get("/v1/kv/leader").await.json().unwrap();
    assert_eq!(v[0]["LockIndex"], 2);
    assert_eq!(a.put(&format!("/v1/kv/leader?release={s2}"), b"").await.text(), "true");

    // Behavior delete removes held keys when the session dies.
    let s3 = create(&a, json!({"Behavior": "delete", "LockDelay": "0s"})).await;
    assert_eq!(a.put(&format!("/v1/kv/ephemeral?acquire={s3}"), b"x").await.text(), "true");
    a.put(&format!("/v1/session/destroy/{s3}"), b"").await;
    assert_eq!(a.get("/v1/kv/ephemeral").await.status, 404);
}

#[tokio::test]
async fn critical_check_and_ttl_invalidate_sessions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ttl.json"), r#"{"session_ttl_min": "1s"}"#).unwrap();
    let a = Agent::dev(&["-node=inv-node", &format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    // A node registered through the catalog whose serfHealth we control.
    let reg = json!({"Node": "ext", "Address": "10.0.0.5", "Check": {"CheckID": "serfHealth", "Name": "Serf", "Status": "passing"}});
    let r = a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = create(&a, json!({"Node": "ext", "LockDelay": "0s"})).await;
    assert_eq!(a.put(&format!("/v1/kv/svc/leader?acquire={s}"), b"ext").await.text(), "true");
    let reg = json!({"Node": "ext", "Address": "10.0.0.5", "Check": {"CheckID": "serfHealth", "Name": "Serf", "Status": "critical"}});
    a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
    assert_eq!(a.get(&format!("/v1/session/info/{s}")).await.text(), "[]", "the session died with its check");
    let v: Vec<Value> = a.get("/v1/kv/svc/leader").await.json().unwrap();
    assert!(v[0].get("Session").is_none());

    // TTL: not renewed → destroyed after at most 2×TTL (never before TTL).
    let t0 = Instant::now();
    let s = create(&a, json!({"TTL": "1s", "LockDelay": "0s"})).await;
    assert_eq!(a.put(&format!("/v1/kv/ttl-lock?acquire={s}"), b"x").await.text(), "true");
    let gone = wait_until(Duration::from_secs(10), || async {
        a.get(&format!("/v1/session/info/{s}")).await.text() == "[]"
    })
    .await;
    assert!(gone);
    assert!(t0.elapsed() >= Duration::from_secs(1), "destroyed before its TTL");
    // Renewal keeps it alive past 2×TTL.
    let s = create(&a, json!({"TTL": "1s"})).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(a.put(&format!("/v1/session/renew/{s}"), b"").await.status, 200);
    }
    assert_ne!(a.get(&format!("/v1/session/info/{s}")).await.text(), "[]");
}

/// Many clients contend for one lock; the recorded history never shows two
/// holders at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_never_has_two_holders() {
    let a = Agent::dev(&["-node=contend"]);
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.get("/v1/catalog/node/contend").await.text() != "null"
        })
        .await
    );
    let events: std::sync::Arc<std::sync::Mutex<Vec<(Instant, Instant, usize)>>> = Default::default();
    // Every worker tries at least ATTEMPTS times, and all keep trying until
    // the history holds NEEDED acquisitions: a loaded machine takes longer
    // to produce them, it does not get a shorter history. The deadline only
    // bounds a broken run.
    const ATTEMPTS: usize = 15;
    const NEEDED: usize = 6;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut handles = Vec::new();
    for w in 0..6 {
        let c = a.client();
        let events = events.clone();
        let body = json!({"LockDelay": "0s"}).to_string();
        let sid: String = c
            .request(Method::PUT, "/v1/session/create", Some(body.into()))
            .await
            .unwrap()
            .json::<Value>()
            .unwrap()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        handles.push(tokio::spawn(async move {
            let mut attempts = 0;
            while (attempts < ATTEMPTS || events.lock().unwrap().len() < NEEDED) && Instant::now() < deadline
            {
                attempts += 1;
                let r = c
                    .request(Method::PUT, &format!("/v1/kv/mutex?acquire={sid}"), Some(format!("{w}").into()))
                    .await
                    .unwrap();
                if r.text() == "true" {
                    let acquired = Instant::now();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let released = Instant::now();
                    let r =
                        c.request(Method::PUT, &format!("/v1/kv/mutex?release={sid}"), None).await.unwrap();
                    assert_eq!(r.text(), "true");
                    events.lock().unwrap().push((acquired, released, w));
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut ev = events.lock().unwrap().clone();
    assert!(ev.len() >= NEEDED, "too few acquisitions to prove anything: {}", ev.len());
    ev.sort();
    for pair in ev.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "holders {} and {} overlapped", pair[0].2, pair[1].2);
    }
}

/// A snapshot restore replaces the sessions: the leader must time every
/// restored TTL session afresh from the restore (never by a deadline it
/// armed before), and time sessions the restore brought back.
#[tokio::test]
async fn restore_rearms_session_ttl_timers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ttl.json"), r#"{"session_ttl_min": "1s"}"#).unwrap();
    let a = Agent::dev(&["-node=restore-node", &format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.get("/v1/catalog/node/restore-node").await.text() != "null"
        })
        .await
    );
    let ttl = Duration::from_secs(4);
    let kept = create(&a, json!({"TTL": "4s"})).await;
    let created = Instant::now();
    let revived = create(&a, json!({"TTL": "4s"})).await;
    let snap = a.get("/v1/snapshot").await;
    assert_eq!(snap.status, 200, "{}", snap.text());
    // Gone before the restore, back after it.
    assert_eq!(a.put(&format!("/v1/session/destroy/{revived}"), b"").await.text(), "true");
    let exists = |id: String| {
        let a = &a;
        async move { a.get(&format!("/v1/session/info/{id}")).await.text() != "[]" }
    };

    // Let `kept` run most of its first timer (armed at ~created, due at
    // created + 2×TTL), then restore: its clock must restart.
    tokio::time::sleep_until((created + Duration::from_secs(5)).into()).await;
    assert!(exists(kept.clone()).await, "the session died before the restore (machine too slow?)");
    let r = a.client().request(Method::PUT, "/v1/snapshot", Some(snap.body.clone())).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let restored = Instant::now();
    assert!(exists(revived.clone()).await, "the restore brings the destroyed session back");

    let kept_gone = wait_until(Duration::from_secs(20), || async { !exists(kept.clone()).await }).await;
    assert!(kept_gone, "a restored TTL session must still expire\n{}", a.output_text());
    // Expiry comes no sooner than one TTL after the restore: the deadline
    // armed before it (due ~3s after the restore) was dropped.
    let lived = restored.elapsed();
    assert!(lived >= ttl, "a restored session expired {lived:?} after the restore, before its TTL");
    let revived_gone = wait_until(Duration::from_secs(20), || async { !exists(revived.clone()).await }).await;
    assert!(revived_gone, "a session the restore brought back must be timed too\n{}", a.output_text());
}
