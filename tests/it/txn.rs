//! `/v1/txn` for KV verbs: atomic apply, rollback with 409, read-only
//! transactions and limits.

use crate::harness::Agent;
use serde_json::{json, Value};

#[tokio::test]
async fn txn_applies_atomically_or_not_at_all() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/existing", b"old").await;

    let ok = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": "YQ=="}},
        {"kv": {"verb": "cas", "key": "t/b", "value": "Yg==", "index": 0}},
        {"KV": {"Verb": "get", "Key": "existing"}},
        {"KV": {"Verb": "delete", "Key": "existing"}}
    ]);
    let r = a.put("/v1/txn", ok.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["Errors"], Value::Null);
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "delete adds no result");
    assert_eq!(results[0]["KV"]["Key"], "t/a");
    assert_eq!(results[0]["KV"]["Value"], Value::Null, "write results carry no value");
    assert_eq!(results[2]["KV"]["Value"], "b2xk");
    assert_eq!(a.get("/v1/kv/t/a?raw").await.text(), "a");
    assert_eq!(a.get("/v1/kv/existing").await.status, 404);

    let bad = json!([
        {"KV": {"Verb": "set", "Key": "t/c", "Value": "Yw=="}},
        {"KV": {"Verb": "delete", "Key": "t/a"}},
        {"KV": {"Verb": "check-not-exists", "Key": "t/b"}}
    ]);
    let r = a.put("/v1/txn", bad.to_string().as_bytes()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["Results"], Value::Null);
    assert_eq!(v["Errors"][0]["OpIndex"], 2);
    assert!(v["Errors"][0]["What"].as_str().unwrap().contains("exists"));
    assert_eq!(a.get("/v1/kv/t/c").await.status, 404, "rolled back");
    assert_eq!(a.get("/v1/kv/t/a?raw").await.text(), "a", "rolled back");
}

#[tokio::test]
async fn read_only_txn_has_query_meta() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/r/1", b"x").await;
    let body = json!([{"KV": {"Verb": "get-tree", "Key": "r/"}}]);
    let r = a.put("/v1/txn?stale", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-consul-knownleader"], "true");
    let v: Value = r.json().unwrap();
    assert_eq!(v["Results"][0]["KV"]["Value"], "eA==");
}

#[tokio::test]
async fn txn_limits_and_methods() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let ops: Vec<Value> = (0..129).map(|i| json!({"KV": {"Verb": "set", "Key": format!("k{i}")}})).collect();
    let r = a.put("/v1/txn", Value::Array(ops).to_string().as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.text(), "Transaction contains too many operations (129 > 128)");
    let r = a.get("/v1/txn").await;
    assert_eq!(r.status, 405);
    assert!(r.headers["allow"].to_str().unwrap().contains("PUT"));
    let r = a.put("/v1/txn", br#"[{"KV": {"Verb": "explode", "Key": "x"}}]"#).await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/txn", br#"[{"KV": {"Verb": "set", "Key": "x", "Value": "!!notbase64"}}]"#).await;
    assert_eq!(r.status, 400);
}
