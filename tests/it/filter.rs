//! `?filter=` on a real agent: every list endpoint Consul filters, the 400s
//! for bad expressions and unknown selectors, and a blocking query whose
//! answer is filtered while its index still moves.

use crate::harness::{wait_until, Agent};
use consul::api::encode;
use hyper::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Two external nodes with services and checks, plus two agent services.
async fn seed(a: &Agent) {
    let regs = [
        json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1", "os": "linux"},
               "Service": {"ID": "web-1", "Service": "web", "Tags": ["v1", "blue"], "Port": 80,
                           "Meta": {"env": "prod"}},
               "Check": {"CheckID": "web-1-alive", "Name": "web alive", "Status": "passing", "ServiceID": "web-1"}}),
        json!({"Node": "n1", "Address": "10.0.0.1", "SkipNodeUpdate": true,
               "Service": {"ID": "db-1", "Service": "db", "Tags": ["primary"], "Port": 5432, "Meta": {"env": "prod"}}}),
        json!({"Node": "n2", "Address": "10.0.0.2", "NodeMeta": {"rack": "r2", "os": "linux"},
               "Service": {"ID": "web-2", "Service": "web", "Tags": ["v2", "green"], "Port": 8080,
                           "Meta": {"env": "qa"}},
               "Check": {"CheckID": "web-2-alive", "Name": "web alive", "Status": "critical", "ServiceID": "web-2"}}),
        json!({"Node": "n2", "Address": "10.0.0.2", "SkipNodeUpdate": true,
               "Check": {"CheckID": "n2-disk", "Name": "disk", "Status": "warning"}}),
    ];
    for reg in regs {
        let r = a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "true"));
    }
    for svc in [
        json!({"ID": "api-a", "Name": "api", "Tags": ["x"], "Port": 9000, "Meta": {"env": "qa"}, "Check": {"TTL": "30s"}}),
        json!({"ID": "api-b", "Name": "api", "Tags": ["y"], "Port": 9001, "Meta": {"env": "prod"}}),
    ] {
        let r = a.put("/v1/agent/service/register", svc.to_string().as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The agent's services reach the catalog through anti-entropy.
    let synced = wait_until(Duration::from_secs(15), || async {
        a.get("/v1/catalog/service/api").await.json::<Vec<Value>>().unwrap_or_default().len() == 2
    })
    .await;
    assert!(synced, "the agent's services never reached the catalog");
}

/// GET `path` with `?filter=<expr>` (or `&filter=`), expecting a 200.
async fn filtered(a: &Agent, path: &str, expr: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = a.get(&format!("{path}{sep}filter={}", encode(expr))).await;
    assert_eq!(r.status, 200, "{path} filter={expr}: {}", r.text());
    r.json().unwrap()
}

fn field<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = v.as_array().unwrap().iter().map(|e| e[key].as_str().unwrap()).collect();
    out.sort();
    out
}

fn keys(v: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    out.sort();
    out
}

#[tokio::test]
async fn filters_apply_on_every_list_endpoint() {
    let a = Agent::dev(&["-node=filter-node"]);
    a.wait_ready().await;
    seed(&a).await;

    // Catalog.
    let v = filtered(&a, "/v1/catalog/nodes", r#"Meta.rack == "r1""#).await;
    assert_eq!(field(&v, "Node"), ["n1"]);
    let v = filtered(&a, "/v1/catalog/nodes", r#"Meta["os"] == linux and not Node == n1"#).await;
    assert_eq!(field(&v, "Node"), ["n2"]);
    let v = filtered(&a, "/v1/catalog/nodes", "Meta.missing is empty").await;
    assert!(field(&v, "Node").contains(&"filter-node"), "{v}");

    let v = filtered(&a, "/v1/catalog/service/web", r#"ServiceTags contains "v2""#).await;
    assert_eq!(field(&v, "ServiceID"), ["web-2"]);
    let v = filtered(
        &a,
        "/v1/catalog/service/web",
        r#"ServiceMeta.env == prod and NodeMeta["rack"] matches "r[0-9]+""#,
    )
    .await;
    assert_eq!(field(&v, "ServiceID"), ["web-1"]);
    let v = filtered(&a, "/v1/catalog/service/web", "ServicePort == 8080 or ServicePort == 80").await;
    assert_eq!(field(&v, "ServiceID"), ["web-1", "web-2"]);

    // Services are filtered per instance, then grouped with only the
    // matching instances' tags.
    let v = filtered(&a, "/v1/catalog/services", "ServiceMeta.env == prod").await;
    assert_eq!(keys(&v), ["api", "db", "web"], "{v}");
    assert_eq!(v["web"], json!(["blue", "v1"]));
    assert_eq!(v["api"], json!(["y"]));
    let v = filtered(&a, "/v1/catalog/services", r#"NodeMeta.rack == "r2""#).await;
    assert_eq!(v, json!({"web": ["green", "v2"]}));

    let v = filtered(&a, "/v1/catalog/node/n1", "Port == 5432").await;
    assert_eq!(v["Node"]["Node"], "n1");
    assert_eq!(keys(&v["Services"]), ["db-1"]);
    let v = filtered(&a, "/v1/catalog/node-services/n1", r#""v1" in Tags"#).await;
    assert_eq!(field(&v["Services"], "ID"), ["web-1"]);

    // Health.
    let v = filtered(&a, "/v1/health/node/n2", r#"ServiceName != """#).await;
    assert_eq!(field(&v, "CheckID"), ["web-2-alive"]);
    let v = filtered(&a, "/v1/health/checks/web", "Status == critical").await;
    assert_eq!(field(&v, "CheckID"), ["web-2-alive"]);
    let v = filtered(&a, "/v1/health/state/any", "Node == n2 and Status != critical").await;
    assert_eq!(field(&v, "CheckID"), ["n2-disk"]);
    let v = filtered(&a, "/v1/health/service/web", "Checks.Status == critical").await;
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["Service"]["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web-2"]);
    let v =
        filtered(&a, "/v1/health/service/web", r#"Node.Meta.rack == r1 and Service.Tags contains "blue""#)
            .await;
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["Service"]["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web-1"]);
    // Combined with ?passing: both apply.
    let v = filtered(&a, "/v1/health/service/web?passing", "Service.Port == 8080").await;
    assert_eq!(v, json!([]));

    // Agent.
    let v = filtered(&a, "/v1/agent/services", r#"Meta.env == "qa""#).await;
    assert_eq!(keys(&v), ["api-a"]);
    let v = filtered(&a, "/v1/agent/services", "Port != 9000 and Service == api").await;
    assert_eq!(keys(&v), ["api-b"]);
    let v = filtered(&a, "/v1/agent/checks", r#"ServiceID == "api-a""#).await;
    assert_eq!(keys(&v), ["service:api-a"]);
    let v = filtered(&a, "/v1/agent/members", r#"Name == "filter-node""#).await;
    assert_eq!(field(&v, "Name"), ["filter-node"]);
    let v = filtered(&a, "/v1/agent/members", r#"Name != "filter-node""#).await;
    assert_eq!(v, json!([]));

    // An empty ?filter= is no filter.
    let all: Vec<Value> = a.get("/v1/catalog/service/web?filter=").await.json().unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn bad_expressions_and_unknown_selectors_are_400() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let cases: &[(&str, &str, &str)] = &[
        ("/v1/catalog/nodes", "Node ==", "expected a value"),
        ("/v1/catalog/nodes", "Nope == x", r#"Selector "Nope" is not valid"#),
        (
            "/v1/catalog/services",
            "ServiceTags == x",
            r#"Invalid match operator "Equal" for selector "ServiceTags""#,
        ),
        (
            "/v1/catalog/service/web",
            r#"ServicePort == "http""#,
            r#"Failed to coerce value "http" for selector "ServicePort""#,
        ),
        ("/v1/catalog/node/dev", "Tags contains", "expected a value"),
        ("/v1/catalog/node-services/dev", "ServiceName == web", r#"Selector "ServiceName" is not valid"#),
        ("/v1/health/service/web", "Checks.Bogus == 1", r#"Selector "Checks.Bogus" is not valid"#),
        ("/v1/health/node/dev", "(Status == passing", "unmatched parentheses"),
        ("/v1/health/checks/web", r#"Status matches "(""#, "Failed to compile regular expression"),
        ("/v1/health/state/any", "Status = passing", "expected a match operator"),
        ("/v1/agent/services", "Service.Meta == x", r#"Selector "Service.Meta" is not valid"#),
        ("/v1/agent/checks", r#"Name == "unterminated"#, "unterminated string literal"),
        ("/v1/agent/members", "Status == alive", r#"Failed to coerce value "alive" for selector "Status""#),
    ];
    for (path, expr, want) in cases {
        let r = a.get(&format!("{path}?filter={}", encode(expr))).await;
        let body = r.text();
        assert_eq!(r.status, 400, "{path} filter={expr}: {body}");
        assert!(body.starts_with("Failed to create boolean expression evaluator: "), "{path}: {body}");
        assert!(body.contains(want), "{path} filter={expr}: {body:?} lacks {want:?}");
    }
    // Oversized input is refused with a clear message, not processed.
    let huge = format!("Node == \"{}\"", "x".repeat(5000));
    let r = a.get(&format!("/v1/catalog/nodes?filter={}", encode(&huge))).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("the limit is 4096"), "{}", r.text());
    // One refusal per case, plus the oversized one.
    assert_eq!(a.counter("consul.http.filter.rejected").await, cases.len() as u64 + 1);
}

#[tokio::test]
async fn blocking_queries_answer_filtered_results_at_the_new_index() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let reg = json!({"Node": "b1", "Address": "10.1.0.1", "Service": {"ID": "q1", "Service": "queue", "Tags": ["old"], "Port": 1}});
    assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
    let expr = encode(r#"ServiceTags contains "new""#);
    let first = a.get(&format!("/v1/catalog/service/queue?filter={expr}")).await;
    assert_eq!(first.text(), "[]");
    let idx = first.index().unwrap();

    let watchers_before = a.gauge("consul.blocking_query.watchers").await;
    let c = a.client();
    let path = format!("/v1/catalog/service/queue?index={idx}&wait=30s&filter={expr}");
    let w = tokio::spawn(async move { c.request(Method::GET, &path, None).await });
    // Wait until the query is parked before changing anything.
    let parked = wait_until(Duration::from_secs(10), || async {
        a.gauge("consul.blocking_query.watchers").await > watchers_before
    })
    .await;
    assert!(parked);
    assert!(!w.is_finished());
    let reg = json!({"Node": "b2", "Address": "10.1.0.2", "Service": {"ID": "q2", "Service": "queue", "Tags": ["new"], "Port": 2}});
    assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
    let r = tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.index().unwrap() > idx, "the index moves with the data, not with the filter");
    let v: Vec<Value> = r.json().unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["ServiceID"], "q2");
}
