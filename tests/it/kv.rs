//! `/v1/kv` against a real agent: every parameter, Consul's shapes, codes
//! and headers.

use crate::harness::Agent;
use base64::Engine;
use serde_json::Value;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn put_get_roundtrip_with_consul_shape() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/kv/web/config?flags=42", b"hello").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "true");

    let r = a.get("/v1/kv/web/config").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let idx = r.index().expect("index header");
    assert!(idx > 0);
    assert_eq!(r.headers["x-consul-knownleader"], "true");
    assert!(r.headers.contains_key("x-consul-lastcontact"));
    let v: Value = r.json().unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "LockIndex": 0, "Key": "web/config", "Flags": 42, "Value": b64("hello"),
            "CreateIndex": idx, "ModifyIndex": idx
        }])
    );
    // Field order as Consul's DirEntry.
    let text = r.text();
    let order: Vec<usize> = ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"]
        .iter()
        .map(|f| text.find(f).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

    // Raw.
    let r = a.get("/v1/kv/web/config?raw").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello");
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");

    // Empty value is null.
    a.put("/v1/kv/empty", b"").await;
    let v: Value = a.get("/v1/kv/empty").await.json().unwrap();
    assert_eq!(v[0]["Value"], Value::Null);
}

#[tokio::test]
async fn missing_keys_and_lists() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.get("/v1/kv/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert!(r.index().unwrap() >= 1, "X-Consul-Index is set even on 404");

    for k in ["app/a", "app/b/c", "app/b/d", "apple", "zeta"] {
        assert_eq!(a.put(&format!("/v1/kv/{k}"), k.as_bytes()).await.status, 200);
    }
    let v: Value = a.get("/v1/kv/app/?recurse").await.json().unwrap();
    let keys: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["app/a", "app/b/c", "app/b/d"]);

    let v: Vec<String> = a.get("/v1/kv/app?keys&separator=/").await.json().unwrap();
    assert_eq!(v, vec!["app/", "apple"]);
    let v: Vec<String> = a.get("/v1/kv/app/?keys&seperator=/").await.json().unwrap();
    assert_eq!(v, vec!["app/a", "app/b/"]);
    let v: Vec<String> = a.get("/v1/kv/?keys").await.json().unwrap();
    assert_eq!(v.len(), 5);

    assert_eq!(a.get("/v1/kv/none/?recurse").await.status, 404);
    assert_eq!(a.get("/v1/kv/none/?keys").await.status, 404);
    // Empty prefix with no keys is an empty list, not a 404.
    let b = Agent::dev(&[]);
    b.wait_ready().await;
    let r = b.get("/v1/kv/?keys").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "[]");

    let r = a.get("/v1/kv/").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Missing key name");
}

#[tokio::test]
async fn cas_and_deletes() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    assert_eq!(a.put("/v1/kv/c?cas=0", b"1").await.text(), "true", "cas=0 creates");
    assert_eq!(a.put("/v1/kv/c?cas=0", b"2").await.text(), "false", "cas=0 on existing fails");
    let idx = a.get("/v1/kv/c").await.json::<Value>().unwrap()[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(a.put(&format!("/v1/kv/c?cas={}", idx + 100), b"3").await.text(), "false");
    assert_eq!(a.put(&format!("/v1/kv/c?cas={idx}"), b"3").await.text(), "true");
    assert_eq!(a.get("/v1/kv/c?raw").await.text(), "3");

    let idx = a.get("/v1/kv/c").await.json::<Value>().unwrap()[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(a.delete(&format!("/v1/kv/c?cas={}", idx - 1)).await.text(), "false");
    assert_eq!(a.get("/v1/kv/c").await.status, 200);
    assert_eq!(a.delete(&format!("/v1/kv/c?cas={idx}")).await.text(), "true");
    assert_eq!(a.get("/v1/kv/c").await.status, 404);
    assert_eq!(a.delete("/v1/kv/never-existed").await.text(), "true");

    for k in ["t/1", "t/2", "t/x/3", "u"] {
        a.put(&format!("/v1/kv/{k}"), b"v").await;
    }
    let before = a.get("/v1/kv/t/?recurse").await.index().unwrap();
    assert_eq!(a.delete("/v1/kv/t/?recurse").await.text(), "true");
    let r = a.get("/v1/kv/t/?recurse").await;
    assert_eq!(r.status, 404);
    assert!(r.index().unwrap() > before, "a recursive delete moves the prefix index (tombstones)");
    assert_eq!(a.get("/v1/kv/u").await.status, 200);

    let r = a.put("/v1/kv/x?cas=1&acquire=abc", b"").await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Conflicting flags: "), "{}", r.text());
    let r = a.delete("/v1/kv/x?cas=1&recurse").await;
    assert_eq!(r.status, 400);
    assert_eq!(a.delete("/v1/kv/").await.status, 400);
}

#[tokio::test]
async fn lock_operations_need_a_session() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/kv/lock?acquire=00000000-0000-0000-0000-000000000000", b"x").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("invalid session"), "{}", r.text());
    assert_eq!(a.get("/v1/kv/lock").await.status, 404, "nothing written");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_lost() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/keep", b"safe").await;

    // Oversized value: declared length and chunked body both refused with 413.
    let big = vec![b'x'; 512 * 1024 + 1];
    let r = a.put("/v1/kv/big", &big).await;
    assert_eq!(r.status, 413);
    assert!(r.text().contains("too large"), "{}", r.text());
    let exact = vec![b'y'; 512 * 1024];
    assert_eq!(a.put("/v1/kv/exact", &exact).await.status, 200);

    // Invalid UTF-8 in the key.
    let r = a.get("/v1/kv/bad%FFkey").await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/kv/bad%FFkey", b"v").await;
    assert_eq!(r.status, 400);
    // Traversal.
    assert_eq!(a.get("/v1/kv/a/%2e%2e/b").await.status, 400);

    // Bad index / wait / flags.
    let r = a.get("/v1/kv/keep?index=abc").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "Invalid index"));
    let r = a.get("/v1/kv/keep?index=1&wait=forever").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "Invalid wait time"));
    assert_eq!(a.put("/v1/kv/keep?flags=-1", b"v").await.status, 400);
    let r = a.get("/v1/kv/keep?stale&consistent").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Cannot specify ?stale with ?consistent, conflicting semantics.");

    // Malformed JSON on the txn endpoint.
    let r = a.put("/v1/txn", b"[{\"KV\": {").await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Failed to parse body"), "{}", r.text());

    // The agent still serves, and nothing was lost or half-written.
    assert_eq!(a.get("/v1/kv/keep?raw").await.text(), "safe");
    assert_eq!(a.get("/v1/kv/big").await.status, 404);
    assert_eq!(a.get("/v1/kv/exact?raw").await.body.len(), 512 * 1024);
}

#[tokio::test]
async fn kv_max_value_size_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("limits.json"), r#"{"limits": {"kv_max_value_size": 1024}}"#).unwrap();
    let a = Agent::dev(&[&format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    assert_eq!(a.put("/v1/kv/k", &[0u8; 1024]).await.status, 200);
    assert_eq!(a.put("/v1/kv/k", &[0u8; 1025]).await.status, 413);
}

#[tokio::test]
async fn consistency_modes() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/m", b"v").await;
    for (q, mode) in [("", "leader"), ("?stale", "stale"), ("?consistent", "consistent")] {
        let r = a.get(&format!("/v1/kv/m{q}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-consul-effective-consistency"], mode);
    }
    // Default reads confirm leadership with the lease (or a quorum round
    // when it lapsed); `?consistent` always with a round; `?stale` never.
    let confirmations = || async {
        a.counter("consul.raft.read_barrier.rounds").await
            + a.counter("consul.raft.read_barrier.lease_reads").await
    };
    let before = confirmations().await;
    a.get("/v1/kv/m").await;
    assert!(confirmations().await > before, "default reads confirm leadership");
    let before = a.counter("consul.raft.read_barrier.rounds").await;
    a.get("/v1/kv/m?consistent").await;
    assert!(
        a.counter("consul.raft.read_barrier.rounds").await > before,
        "?consistent reads run a quorum round"
    );
    let before = confirmations().await;
    a.get("/v1/kv/m?stale").await;
    assert_eq!(confirmations().await, before, "stale reads don't");
}
