//! The catalog, health and agent endpoints: golden shapes, anti-entropy,
//! persistence across restarts, blocking isolation, bad registrations.

use crate::golden;
use crate::harness::{wait_until, Agent};
use hyper::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Registers a known set of entries through both APIs.
async fn seed(a: &Agent) {
    let reg = json!({
        "Datacenter": "dc1",
        "ID": "40e4a748-2192-161a-0510-9bf59fe950b5",
        "Node": "ext-node",
        "Address": "192.168.10.10",
        "TaggedAddresses": {"lan": "192.168.10.10", "wan": "10.0.10.10"},
        "NodeMeta": {"somekey": "somevalue"},
        "Service": {
            "ID": "redis1", "Service": "redis", "Tags": ["primary", "v1"], "Address": "127.0.0.1",
            "TaggedAddresses": {"lan": {"address": "127.0.0.1", "port": 8000}},
            "Meta": {"redis_version": "4.0"}, "Port": 8000
        },
        "Check": {
            "Node": "ext-node", "CheckID": "service:redis1", "Name": "Redis health check",
            "Notes": "Script based health check", "Status": "passing", "ServiceID": "redis1",
            "Definition": {"TCP": "localhost:8888", "Interval": "5s", "Timeout": "1s", "DeregisterCriticalServiceAfter": "30s"}
        }
    });
    let r = a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "true"));
    let svc = json!({
        "ID": "web1", "Name": "web", "Tags": ["rails"], "Port": 8080, "Address": "127.0.0.1",
        "Meta": {"env": "prod"}, "EnableTagOverride": false, "Weights": {"Passing": 10, "Warning": 1},
        "Check": {"TTL": "30s", "Notes": "ttl check"}
    });
    let r = a.put("/v1/agent/service/register", svc.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let r = a.put("/v1/agent/check/pass/service:web1?note=all%20good", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Wait for anti-entropy to push the service and the check result.
    let ok = wait_until(Duration::from_secs(15), || async {
        let v: Value = a.get("/v1/health/checks/web").await.json().unwrap_or(Value::Null);
        v[0]["Status"] == "passing"
    })
    .await;
    assert!(ok, "the agent's service never reached the catalog");
}

#[tokio::test]
async fn endpoint_shapes_match_golden_files() {
    let a = Agent::dev(&["-node=golden-node"]);
    a.wait_ready().await;
    seed(&a).await;
    for (name, path) in [
        ("catalog_datacenters", "/v1/catalog/datacenters"),
        ("catalog_nodes", "/v1/catalog/nodes"),
        ("catalog_services", "/v1/catalog/services"),
        ("catalog_service", "/v1/catalog/service/redis"),
        ("catalog_node", "/v1/catalog/node/ext-node"),
        ("catalog_node_services", "/v1/catalog/node-services/golden-node"),
        ("health_service", "/v1/health/service/web"),
        ("health_node", "/v1/health/node/ext-node"),
        ("health_checks", "/v1/health/checks/web"),
        ("health_state_passing", "/v1/health/state/passing"),
        ("agent_services", "/v1/agent/services"),
        ("agent_service", "/v1/agent/service/web1"),
        ("agent_checks", "/v1/agent/checks"),
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v: Value = r.json().unwrap();
        golden::check(name, &v, &a.ip.to_string());
    }
    // Unknown things: [] not null, and null for an unknown node.
    assert_eq!(a.get("/v1/catalog/service/nope").await.text(), "[]");
    assert_eq!(a.get("/v1/health/service/nope").await.text(), "[]");
    assert_eq!(a.get("/v1/catalog/node/nope").await.text(), "null");
    let v: Value = a.get("/v1/agent/self").await.json().unwrap();
    assert_eq!(v["Config"]["NodeName"], "golden-node");
    assert_eq!(v["Config"]["Datacenter"], "dc1");
    assert_eq!(v["Member"]["Status"], 1);
    assert_eq!(v["Stats"]["raft"]["state"], "Leader");
}

#[tokio::test]
async fn health_filters_and_blocking_isolation() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    for (id, tag, status) in [("web1", "v1", "passing"), ("web2", "v2", "critical")] {
        let reg = json!({"Node": format!("n-{id}"), "Address": "10.0.0.1",
            "Service": {"ID": id, "Service": "web", "Tags": [tag], "Port": 80},
            "Check": {"CheckID": "c", "Name": "c", "Status": status, "ServiceID": id}});
        assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
    }
    let all: Vec<Value> = a.get("/v1/health/service/web").await.json().unwrap();
    assert_eq!(all.len(), 2);
    let passing: Vec<Value> = a.get("/v1/health/service/web?passing").await.json().unwrap();
    assert_eq!(passing.len(), 1);
    assert_eq!(passing[0]["Service"]["ID"], "web1");
    assert_eq!(a.get("/v1/health/service/web?passing=false").await.json::<Vec<Value>>().unwrap().len(), 2);
    assert_eq!(a.get("/v1/health/service/web?passing=maybe").await.status, 400);
    let v2: Vec<Value> = a.get("/v1/health/service/web?tag=v2").await.json().unwrap();
    assert_eq!(v2.len(), 1);
    let crit: Vec<Value> = a.get("/v1/health/state/critical").await.json().unwrap();
    assert!(crit.iter().all(|c| c["Status"] == "critical"));
    assert_eq!(a.get("/v1/health/state/sunny").await.status, 400);

    // A blocking query on web is not woken by changes to db.
    let idx = a.get("/v1/health/service/web").await.index().unwrap();
    let wake_before = a.counter("consul.blocking_query.wakeups").await;
    let watchers_before = a.gauge("consul.blocking_query.watchers").await;
    let c = a.client();
    let w = tokio::spawn(async move {
        c.request(Method::GET, &format!("/v1/health/service/web?index={idx}&wait=30s"), None).await
    });
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.gauge("consul.blocking_query.watchers").await > watchers_before
        })
        .await
    );
    for i in 0..20 {
        let reg = json!({"Node": "db-node", "Address": "10.0.0.9", "Service": {"ID": "db", "Service": "db", "Port": 5432 + i}});
        assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
    }
    assert!(!w.is_finished());
    assert_eq!(
        a.counter("consul.blocking_query.wakeups").await,
        wake_before,
        "db changes woke a web watcher"
    );
    let reg = json!({"Node": "n-web2", "Address": "10.0.0.1", "SkipNodeUpdate": true,
        "Check": {"CheckID": "c", "Name": "c", "Status": "passing", "ServiceID": "web2"}});
    assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
    let r = tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap().unwrap();
    assert!(r.index().unwrap() > idx);
    assert_eq!(r.json::<Vec<Value>>().unwrap().len(), 2);
}

#[tokio::test]
async fn anti_entropy_repairs_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ae.json"), r#"{"ae_interval": "1s"}"#).unwrap();
    let a = Agent::dev(&["-node=ae-node", &format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    let svc = json!({"ID": "api1", "Name": "api", "Port": 9000});
    assert_eq!(a.put("/v1/agent/service/register", svc.to_string().as_bytes()).await.status, 200);
    let present = || async {
        let v: Vec<Value> = a.get("/v1/catalog/service/api").await.json().unwrap_or_default();
        !v.is_empty()
    };
    assert!(wait_until(Duration::from_secs(10), present).await);

    // Removed behind the agent's back: it comes back.
    let d = json!({"Node": "ae-node", "ServiceID": "api1"});
    assert_eq!(a.put("/v1/catalog/deregister", d.to_string().as_bytes()).await.status, 200);
    assert!(wait_until(Duration::from_secs(10), present).await, "anti-entropy did not restore the service");

    // A stray service on this agent's node: removed.
    let stray = json!({"Node": "ae-node", "Address": "127.0.0.1", "SkipNodeUpdate": true,
        "Service": {"ID": "stray", "Service": "stray", "Port": 1}});
    assert_eq!(a.put("/v1/catalog/register", stray.to_string().as_bytes()).await.status, 200);
    let gone = wait_until(Duration::from_secs(10), || async {
        let v: Vec<Value> = a.get("/v1/catalog/service/stray").await.json().unwrap_or_default();
        v.is_empty()
    })
    .await;
    assert!(gone, "anti-entropy did not remove the stray service");
    // Entries on other nodes are not this agent's business.
    let other = json!({"Node": "other", "Address": "10.1.1.1", "Service": {"ID": "x", "Service": "x"}});
    a.put("/v1/catalog/register", other.to_string().as_bytes()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.get("/v1/catalog/service/x").await.json::<Vec<Value>>().unwrap().len(), 1);
}

#[tokio::test]
async fn registrations_and_ttl_state_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::server(Some(dir.path()), &["-node=persist-node"]);
    a.wait_ready().await;
    let svc = json!({"ID": "reg1", "Name": "registrator-svc", "Port": 32768, "Check": {"TTL": "10m"}});
    assert_eq!(a.put("/v1/agent/service/register", svc.to_string().as_bytes()).await.status, 200);
    assert_eq!(a.put("/v1/agent/check/warn/service:reg1?note=slow", b"").await.status, 200);
    assert_eq!(a.put("/v1/agent/maintenance?enable=true&reason=upgrade", b"").await.status, 200);
    a.kill9();
    a.restart();
    a.wait_ready().await;
    let services: Value = a.get("/v1/agent/services").await.json().unwrap();
    assert!(services.get("reg1").is_some(), "{services}");
    let checks: Value = a.get("/v1/agent/checks").await.json().unwrap();
    assert_eq!(checks["service:reg1"]["Status"], "warning");
    assert_eq!(checks["service:reg1"]["Output"], "slow");
    assert_eq!(checks["_node_maintenance"]["Status"], "critical");
    assert_eq!(checks["_node_maintenance"]["Notes"], "upgrade");
    let synced = wait_until(Duration::from_secs(15), || async {
        let v: Vec<Value> = a.get("/v1/health/checks/registrator-svc").await.json().unwrap_or_default();
        v.first().is_some_and(|c| c["Status"] == "warning")
    })
    .await;
    assert!(synced);
    // Maintenance takes the node's services out of ?passing.
    assert!(a
        .get("/v1/health/service/registrator-svc?passing")
        .await
        .json::<Vec<Value>>()
        .unwrap()
        .is_empty());
    assert_eq!(a.put("/v1/agent/maintenance?enable=false", b"").await.status, 200);
    assert!(a.get("/v1/agent/checks").await.json::<Value>().unwrap().get("_node_maintenance").is_none());
}

#[tokio::test]
async fn bad_registrations_are_refused_and_change_nothing() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/v1/agent/service/register", r#"{"Port": 80}"#, 400, "Missing service name"),
        (
            "/v1/agent/service/register",
            r#"{"Name": "x", "Check": {"HTTP": "http://x", "Interval": "10"}}"#,
            400,
            "Request decode failed",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Name": "x", "Check": {"HTTP": "http://x"}}"#,
            400,
            "Invalid check: Interval must be > 0",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Name": "x", "Check": {"TTL": "10s", "Status": "sunny"}}"#,
            400,
            "Status for checks must",
        ),
        ("/v1/agent/service/register", r#"{"Name": "x", "Port": 70000}"#, 400, "invalid port"),
        ("/v1/agent/service/register", r#"{"Name": "x""#, 400, "Request decode failed"),
        (
            "/v1/agent/service/register",
            r#"{"Name": "x", "Check": {"Args": ["/bin/true"], "Interval": "10s"}}"#,
            500,
            "Scripts are disabled on this agent",
        ),
        ("/v1/agent/check/register", r#"{"TTL": "10s"}"#, 400, "Missing check name"),
        (
            "/v1/agent/check/register",
            r#"{"Name": "c", "TTL": "10s", "ServiceID": "ghost"}"#,
            404,
            "ServiceID \"ghost\" does not exist",
        ),
        ("/v1/catalog/register", r#"{"Address": "1.2.3.4"}"#, 400, "Must provide node"),
        (
            "/v1/catalog/register",
            r#"{"Node": "n", "Address": "1.2.3.4", "Service": {"Port": 1}}"#,
            400,
            "Must provide service name",
        ),
        (
            "/v1/catalog/register",
            r#"{"Node": "n", "Address": "1.2.3.4", "Check": {"Name": "c", "Status": "weird"}}"#,
            500,
            "Invalid check status",
        ),
        ("/v1/catalog/deregister", r#"{}"#, 400, "Must provide node"),
    ];
    for (path, body, code, msg) in cases {
        let r = a.put(path, body.as_bytes()).await;
        assert_eq!(r.status.as_u16(), *code, "{path} {body}: {}", r.text());
        assert!(r.text().contains(msg), "{path} {body}: {}", r.text());
    }
    let services: Value = a.get("/v1/agent/services").await.json().unwrap();
    assert_eq!(services, serde_json::json!({}), "a server lists no services of its own");
    let r = a.put("/v1/agent/service/deregister/nope", b"").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("Unknown service ID"));
    let r = a.put("/v1/agent/check/pass/nope", b"").await;
    assert_eq!(r.status, 404);
    let r = a.put("/v1/agent/maintenance", b"").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "Missing value for enable"));
    assert!(a.get("/v1/catalog/node/n").await.text() == "null");
}

#[tokio::test]
async fn cli_catalog_members_services() {
    let a = Agent::dev(&["-node=cli-node"]);
    a.wait_ready().await;
    let out = a.cli(&["members"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        vec!["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        vec![
            "cli-node",
            &format!("{}:8301", a.ip),
            "alive",
            "server",
            "1.22.0",
            "2",
            "dc1",
            "default",
            "<all>"
        ]
    );
    assert_eq!(a.cli(&["members", "-status=failed"]).code, 2);
    assert!(a.cli(&["members", "-detailed"]).stdout.contains("role=consul"));

    let out =
        a.cli(&["services", "register", "-name=web", "-port=8080", "-tag=a", "-tag=b", "-meta=env=prod"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Registered service: web\n"));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("svc.json");
    std::fs::write(&f, r#"{"service": {"name": "db", "id": "db1", "port": 5432, "check": {"ttl": "30s"}}}"#)
        .unwrap();
    let out = a.cli(&["services", "register", f.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Registered service: db\n"), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.cli(&["catalog", "services"]).stdout.contains("db\n")
        })
        .await
    );
    let out = a.cli(&["catalog", "services", "-tags"]);
    assert!(
        out.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == vec!["web", "a,b"]),
        "{}",
        out.stdout
    );
    let out = a.cli(&["catalog", "nodes"]);
    assert!(out.stdout.starts_with("Node"), "{}", out.stdout);
    assert!(out.stdout.contains("cli-node"));
    assert_eq!(a.cli(&["catalog", "datacenters"]).stdout, "dc1\n");
    assert_eq!(a.cli(&["services", "deregister", f.to_str().unwrap()]).stdout, "Deregistered service: db1\n");
    assert_eq!(a.cli(&["services", "deregister", "-id=web"]).stdout, "Deregistered service: web\n");
    let out = a.cli(&["services", "deregister", "-id=web"]);
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn ttl_checks_pass_warn_fail_and_expire() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let body = json!({"Name": "ttl-check", "TTL": "2s", "Notes": "heartbeat"});
    assert_eq!(a.put("/v1/agent/check/register", body.to_string().as_bytes()).await.status, 200);
    let status = || async {
        let v: Value = a.get("/v1/agent/checks").await.json().unwrap();
        (
            v["ttl-check"]["Status"].as_str().unwrap_or("").to_string(),
            v["ttl-check"]["Output"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(status().await.0, "critical", "TTL checks start critical");
    a.put("/v1/agent/check/pass/ttl-check?note=ok", b"").await;
    assert_eq!(status().await, ("passing".into(), "ok".into()));
    a.put("/v1/agent/check/warn/ttl-check", b"").await;
    assert_eq!(status().await.0, "warning");
    let upd = json!({"Status": "passing", "Output": "from update"});
    assert_eq!(a.put("/v1/agent/check/update/ttl-check", upd.to_string().as_bytes()).await.status, 200);
    assert_eq!(status().await, ("passing".into(), "from update".into()));
    let bad = json!({"Status": "sunny"});
    assert_eq!(a.put("/v1/agent/check/update/ttl-check", bad.to_string().as_bytes()).await.status, 400);
    // Without renewal it expires to critical, keeping the last output.
    let expired = wait_until(Duration::from_secs(10), || async {
        let (s, o) = status().await;
        s == "critical" && o.starts_with("TTL expired") && o.contains("from update")
    })
    .await;
    assert!(expired, "{:?}", status().await);
    // And the catalog follows.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            let v: Vec<Value> = a.get("/v1/health/state/critical").await.json().unwrap_or_default();
            v.iter().any(|c| c["CheckID"] == "ttl-check")
        })
        .await
    );
    // A non-TTL check cannot be updated; an HTTP check on a closed port goes critical.
    let http = json!({"Name": "web-check", "HTTP": "http://127.0.0.1:1/health", "Interval": "1s"});
    assert_eq!(a.put("/v1/agent/check/register", http.to_string().as_bytes()).await.status, 200);
    let r = a.put("/v1/agent/check/pass/web-check", b"").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("does not have associated TTL"), "{}", r.text());
}
