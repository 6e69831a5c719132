//! `deregister_critical_service_after`: the agent owning a check removes
//! the check's service (with its checks) once the check has been critical
//! for longer than the timeout, which is raised to Consul's one-minute
//! minimum. Covers the three ways to give it: a config file, a service
//! registration's Check, and `/v1/agent/check/register`.

use crate::harness::{wait_until, Agent};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn agent_has(a: &Agent, id: &str) -> bool {
    let v: Value = a.get("/v1/agent/services").await.json().unwrap();
    v.get(id).is_some()
}

#[tokio::test]
async fn services_critical_for_too_long_are_deregistered() {
    let dir = tempfile::tempdir().unwrap();
    // From a config file; 5s is below the minimum, so 1m applies.
    std::fs::write(
        dir.path().join("svc.json"),
        r#"{"service": {"id": "from-file", "name": "from-file", "port": 1,
            "check": {"ttl": "10m", "deregister_critical_service_after": "5s"}}}"#,
    )
    .unwrap();
    let a = Agent::dev(&["-node=reap-node", &format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    let start = Instant::now();

    // Inside a service registration.
    let body = json!({"ID": "in-service", "Name": "in-service", "Port": 2,
        "Check": {"TTL": "10m", "DeregisterCriticalServiceAfter": "1m"}});
    assert_eq!(a.put("/v1/agent/service/register", body.to_string().as_bytes()).await.status, 200);
    // Through the check endpoint, on an existing service.
    let body = json!({"ID": "separate", "Name": "separate", "Port": 3});
    assert_eq!(a.put("/v1/agent/service/register", body.to_string().as_bytes()).await.status, 200);
    let body = json!({"ID": "separate-check", "Name": "c", "ServiceID": "separate", "TTL": "10m",
        "deregister_critical_service_after": "1m"});
    let r = a.put("/v1/agent/check/register", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A passing check with the same setting keeps its service.
    let body = json!({"ID": "healthy", "Name": "healthy", "Port": 4,
        "Check": {"TTL": "10m", "DeregisterCriticalServiceAfter": "1m"}});
    assert_eq!(a.put("/v1/agent/service/register", body.to_string().as_bytes()).await.status, 200);
    assert_eq!(a.put("/v1/agent/check/pass/service:healthy", b"").await.status, 200);

    // All reach the catalog first.
    let in_catalog = wait_until(Duration::from_secs(15), || async {
        let v: Value = a.get("/v1/catalog/node-services/reap-node").await.json().unwrap_or(Value::Null);
        v["Services"].as_array().is_some_and(|s| s.len() >= 5)
    })
    .await;
    assert!(in_catalog, "services never reached the catalog\n{}", a.output_text());

    let reaped = wait_until(Duration::from_secs(100), || async {
        !agent_has(&a, "from-file").await
            && !agent_has(&a, "in-service").await
            && !agent_has(&a, "separate").await
    })
    .await;
    assert!(reaped, "critical services were not deregistered\n{}", a.output_text());
    assert!(
        start.elapsed() >= Duration::from_secs(60),
        "reaped after {:?}, before the 1m minimum",
        start.elapsed()
    );
    assert!(agent_has(&a, "healthy").await, "a passing service stays");
    let checks: Value = a.get("/v1/agent/checks").await.json().unwrap();
    assert!(checks.get("separate-check").is_none(), "the service's checks go with it");
    assert!(checks.get("service:in-service").is_none());

    // Anti-entropy takes them out of the catalog too.
    let gone = wait_until(Duration::from_secs(15), || async {
        let v: Value = a.get("/v1/health/service/in-service").await.json().unwrap_or(Value::Null);
        v == json!([])
    })
    .await;
    assert!(gone, "the catalog still lists a reaped service");
    let out = a.output_text();
    assert!(out.contains("below the minimum"), "the short timeout is reported\n{out}");
}
