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

/// Registers `web-node` with a `web1` service and its check in one txn.
fn catalog_setup_ops() -> Value {
    json!([
        {"Node": {"Verb": "set", "Node": {
            "ID": "67539c9d-b948-ba67-edd4-d07a676d6673", "Node": "web-node", "Address": "10.1.2.3",
            "TaggedAddresses": {"lan": "10.1.2.3"}, "Meta": {"rack": "r1"}}}},
        {"Service": {"Verb": "set", "Node": "web-node", "Service": {
            "ID": "web1", "Service": "web", "Tags": ["v1"], "Port": 8080, "Address": "10.1.2.3"}}},
        {"Check": {"Verb": "set", "Check": {
            "Node": "web-node", "CheckID": "web-check", "Name": "Web HTTP", "Status": "passing",
            "ServiceID": "web1", "Definition": {"HTTP": "http://10.1.2.3:8080/health", "Interval": "10s"}}}},
        {"KV": {"Verb": "set", "Key": "svc/web", "Value": "dXA="}}
    ])
}

#[tokio::test]
async fn mixed_kv_and_catalog_txn_applies_atomically() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/txn", catalog_setup_ops().to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 4);

    let node = &results[0]["Node"];
    assert_eq!(node["ID"], "67539c9d-b948-ba67-edd4-d07a676d6673");
    assert_eq!(node["Node"], "web-node");
    assert_eq!(node["Address"], "10.1.2.3");
    assert_eq!(node["Datacenter"], "dc1", "the agent's datacenter fills in");
    assert_eq!(node["TaggedAddresses"]["lan"], "10.1.2.3");
    assert_eq!(node["Meta"]["rack"], "r1");
    let index = node["CreateIndex"].as_u64().unwrap();
    assert!(index > 0);
    assert_eq!(node["ModifyIndex"].as_u64(), Some(index));

    let svc = &results[1]["Service"];
    assert_eq!(svc["ID"], "web1");
    assert_eq!(svc["Service"], "web");
    assert_eq!(svc["Tags"], json!(["v1"]));
    assert_eq!(svc["Port"], 8080);
    assert_eq!(svc["Weights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(svc["CreateIndex"].as_u64(), Some(index), "one raft index for the whole txn");

    let check = &results[2]["Check"];
    assert_eq!(check["Node"], "web-node");
    assert_eq!(check["CheckID"], "web-check");
    assert_eq!(check["Status"], "passing");
    assert_eq!(check["ServiceID"], "web1");
    assert_eq!(check["ServiceName"], "web", "filled from the service");
    assert_eq!(check["Definition"]["HTTP"], "http://10.1.2.3:8080/health");
    assert_eq!(check["Definition"]["Interval"], "10s");
    assert_eq!(results[3]["KV"]["Key"], "svc/web");

    // Everything is visible through the ordinary endpoints.
    let r = a.get("/v1/catalog/service/web").await;
    let v: Value = r.json().unwrap();
    assert_eq!(v[0]["Node"], "web-node");
    assert_eq!(v[0]["ServicePort"], 8080);
    assert_eq!(r.index(), Some(index));
    let v: Value = a.get("/v1/health/service/web?passing").await.json().unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(a.get("/v1/kv/svc/web?raw").await.text(), "up");
}

#[tokio::test]
async fn failing_catalog_op_rolls_back_kv_and_catalog() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/txn", catalog_setup_ops().to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Per-node and per-service indexes: the agent's own node syncs meanwhile.
    let node_index = a.get("/v1/catalog/node/web-node").await.index().unwrap();
    let web_index = a.get("/v1/catalog/service/web").await.index().unwrap();

    // Writes of every kind, then a node cas with a stale index.
    let bad = json!([
        {"KV": {"Verb": "set", "Key": "rb/key", "Value": "eA=="}},
        {"Node": {"Verb": "set", "Node": {"Node": "rb-node", "Address": "10.9.9.9"}}},
        {"Service": {"Verb": "set", "Node": "rb-node", "Service": {"Service": "rb", "Port": 1}}},
        {"Service": {"Verb": "delete", "Node": "web-node", "Service": {"ID": "web1"}}},
        {"Check": {"Verb": "set", "Check": {"Node": "web-node", "CheckID": "web-check", "Status": "critical"}}},
        {"Node": {"Verb": "cas", "Node": {"Node": "web-node", "Address": "10.0.0.1", "ModifyIndex": 1}}}
    ]);
    let r = a.put("/v1/txn", bad.to_string().as_bytes()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["Results"], Value::Null);
    assert_eq!(v["Errors"][0]["OpIndex"], 5);
    assert!(v["Errors"][0]["What"].as_str().unwrap().contains("stale"), "{v}");

    assert_eq!(a.get("/v1/kv/rb/key").await.status, 404, "KV write rolled back");
    let nodes: Value = a.get("/v1/catalog/nodes").await.json().unwrap();
    assert!(!nodes.as_array().unwrap().iter().any(|n| n["Node"] == "rb-node"), "node write rolled back");
    let rb: Value = a.get("/v1/catalog/service/rb").await.json().unwrap();
    assert_eq!(rb, json!([]), "service write rolled back");
    let r = a.get("/v1/catalog/service/web").await;
    let web: Value = r.json().unwrap();
    assert_eq!(web.as_array().unwrap().len(), 1, "service delete rolled back");
    assert_eq!(web[0]["Address"], "10.1.2.3");
    assert_eq!(r.index(), Some(web_index), "no index moved");
    assert_eq!(a.get("/v1/catalog/node/web-node").await.index(), Some(node_index));
    let checks: Value = a.get("/v1/health/checks/web").await.json().unwrap();
    assert_eq!(checks[0]["Status"], "passing", "check write rolled back");

    // A service on a node that does not exist fails the txn too.
    let bad = json!([
        {"KV": {"Verb": "set", "Key": "rb/key2", "Value": "eA=="}},
        {"Service": {"Verb": "set", "Node": "ghost", "Service": {"Service": "g"}}}
    ]);
    let r = a.put("/v1/txn", bad.to_string().as_bytes()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json::<Value>().unwrap()["Errors"][0]["OpIndex"], 1);
    assert_eq!(a.get("/v1/kv/rb/key2").await.status, 404);
}

#[tokio::test]
async fn catalog_get_cas_and_delete_verbs() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/txn", catalog_setup_ops().to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Read-only: served without a Raft write, with query meta.
    let gets = json!([
        {"Node": {"Verb": "get", "Node": {"ID": "67539C9D-B948-BA67-EDD4-D07A676D6673"}}},
        {"Service": {"Verb": "get", "Node": "web-node", "Service": {"ID": "web1"}}},
        {"Check": {"Verb": "get", "Check": {"Node": "web-node", "CheckID": "web-check"}}}
    ]);
    let r = a.put("/v1/txn?stale", gets.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["x-consul-knownleader"], "true", "read-only txns carry query meta");
    let v: Value = r.json().unwrap();
    let res = v["Results"].as_array().unwrap();
    assert_eq!(res[0]["Node"]["Node"], "web-node", "found by ID, any case");
    assert_eq!(res[1]["Service"]["Port"], 8080);
    assert_eq!(res[2]["Check"]["ServiceName"], "web");
    let svc_index = res[1]["Service"]["ModifyIndex"].as_u64().unwrap();

    let r = a.put("/v1/txn", br#"[{"Node": {"Verb": "get", "Node": {"Node": "nope"}}}]"#).await;
    assert_eq!(r.status, 409);
    assert!(r.json::<Value>().unwrap()["Errors"][0]["What"].as_str().unwrap().contains("doesn't exist"));

    // cas with the current index succeeds; index 0 only creates.
    let ops = json!([
        {"Service": {"Verb": "cas", "Node": "web-node", "Service": {"ID": "web1", "Service": "web", "Port": 9090, "ModifyIndex": svc_index}}},
        {"Service": {"Verb": "cas", "Node": "web-node", "Service": {"ID": "web2", "Service": "web", "Port": 9091, "ModifyIndex": 0}}}
    ]);
    let r = a.put("/v1/txn", ops.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["Results"][0]["Service"]["Port"], 9090);
    assert!(v["Results"][0]["Service"]["ModifyIndex"].as_u64().unwrap() > svc_index);
    let r = a.put("/v1/txn", ops.to_string().as_bytes()).await;
    assert_eq!(r.status, 409, "the same cas again is stale");

    // The service's new tags moved its check's index: read it again.
    let r = a
        .put(
            "/v1/txn",
            br#"[{"Check": {"Verb": "get", "Check": {"Node": "web-node", "CheckID": "web-check"}}}]"#,
        )
        .await;
    let check_index = r.json::<Value>().unwrap()["Results"][0]["Check"]["ModifyIndex"].as_u64().unwrap();
    // delete-cas with a stale index fails; delete verbs add no result.
    let ops = json!([{"Check": {"Verb": "delete-cas", "Check": {"Node": "web-node", "CheckID": "web-check", "ModifyIndex": check_index + 100}}}]);
    assert_eq!(a.put("/v1/txn", ops.to_string().as_bytes()).await.status, 409);
    let ops = json!([
        {"Check": {"Verb": "delete-cas", "Check": {"Node": "web-node", "CheckID": "web-check", "ModifyIndex": check_index}}},
        {"Service": {"Verb": "delete", "Node": "web-node", "Service": {"ID": "web2"}}}
    ]);
    let r = a.put("/v1/txn", ops.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json::<Value>().unwrap()["Results"], json!([]));
    let checks: Value = a.get("/v1/health/node/web-node").await.json().unwrap();
    assert_eq!(checks, json!([]));

    // Deleting the node takes its remaining service with it.
    let r = a.put("/v1/txn", br#"[{"Node": {"Verb": "delete", "Node": {"Node": "web-node"}}}]"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let web: Value = a.get("/v1/catalog/service/web").await.json().unwrap();
    assert_eq!(web, json!([]));

    // Malformed catalog ops are the client's fault.
    let r = a.put("/v1/txn", br#"[{"Node": {"Verb": "explode", "Node": {"Node": "x"}}}]"#).await;
    assert_eq!(r.status, 400);
    let r = a.put("/v1/txn", br#"[{"Check": {"Verb": "set", "Check": {"CheckID": "c"}}}]"#).await;
    assert_eq!(r.status, 400, "a check needs a node");
}

#[tokio::test]
async fn catalog_txn_invalidates_sessions_like_a_registration() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    // An external node without serfHealth (so the leader leaves it alone).
    let setup = json!([
        {"Node": {"Verb": "set", "Node": {"Node": "ext-node", "Address": "10.7.7.7"}}},
        {"Check": {"Verb": "set", "Check": {"Node": "ext-node", "CheckID": "alive", "Name": "alive", "Status": "passing"}}}
    ]);
    assert_eq!(a.put("/v1/txn", setup.to_string().as_bytes()).await.status, 200);
    let r = a
        .put(
            "/v1/session/create",
            json!({"Node": "ext-node", "NodeChecks": ["alive"], "LockDelay": "0s"}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json::<Value>().unwrap()["ID"].as_str().unwrap().to_string();
    assert_eq!(a.put(&format!("/v1/kv/ext/lock?acquire={id}"), b"x").await.text(), "true");

    // A rolled-back critical check leaves the session alone...
    let ops = json!([
        {"Check": {"Verb": "set", "Check": {"Node": "ext-node", "CheckID": "alive", "Name": "alive", "Status": "critical"}}},
        {"KV": {"Verb": "check-not-exists", "Key": "ext/lock"}}
    ]);
    assert_eq!(a.put("/v1/txn", ops.to_string().as_bytes()).await.status, 409);
    assert_ne!(a.get(&format!("/v1/session/info/{id}")).await.text(), "[]");
    // ...a committed one invalidates it and releases its lock.
    let ops = json!([{"Check": {"Verb": "set", "Check": {"Node": "ext-node", "CheckID": "alive", "Name": "alive", "Status": "critical"}}}]);
    assert_eq!(a.put("/v1/txn", ops.to_string().as_bytes()).await.status, 200);
    assert_eq!(a.get(&format!("/v1/session/info/{id}")).await.text(), "[]");
    let v: Value = a.get("/v1/kv/ext/lock").await.json().unwrap();
    assert!(v[0].get("Session").is_none(), "{v}");
}
