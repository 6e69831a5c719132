//! Prepared queries end to end: CRUD and Consul's shapes, bad definitions
//! refused with nothing stored, execute with tags/`OnlyPassing`/`near`/
//! `limit`, templates (longest prefix, regexp matches, one catch-all),
//! a query deleted with its session, and failover to another datacenter
//! when the local one has no healthy instance (three datacenters: the
//! `Datacenters` order is followed, each at most once).

use crate::harness::{wait_until, Agent};
use serde_json::{json, Value};
use std::time::Duration;

async fn post(a: &Agent, path: &str, body: &Value) -> (u16, String) {
    let r = a
        .client()
        .request(hyper::Method::POST, path, Some(body.to_string().into_bytes().into()))
        .await
        .expect("POST");
    (r.status.as_u16(), r.text())
}

async fn create(a: &Agent, body: Value) -> String {
    let (status, text) = post(a, "/v1/query", &body).await;
    assert_eq!(status, 200, "{body}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["ID"].as_str().unwrap().to_string()
}

async fn register(a: &Agent, node: &str, tags: &[&str], status: &str) {
    let reg = json!({
        "Node": node, "Address": format!("10.2.0.{}", node.len()),
        "Service": {"ID": "db", "Service": "db", "Tags": tags, "Port": 5432},
        "Check": {"CheckID": "db-check", "Name": "db", "ServiceID": "db", "Status": status},
    });
    let r = a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn execute(a: &Agent, key: &str) -> Value {
    execute_with(a, key, "").await
}

async fn execute_with(a: &Agent, key: &str, params: &str) -> Value {
    let r = a.get(&format!("/v1/query/{key}/execute{params}")).await;
    assert_eq!(r.status, 200, "{key}: {}", r.text());
    r.json().unwrap()
}

/// `dig` against the agent's DNS port; `+short` answers, or the full
/// response when `short` is false.
fn dig(a: &Agent, name: &str, qtype: &str, short: bool) -> String {
    let mut args =
        vec![format!("@{}", a.ip), "-p".into(), "8600".into(), "+time=3".into(), "+tries=1".into()];
    if short {
        args.push("+short".into());
    }
    args.extend([name.to_string(), qtype.to_string()]);
    let out = std::process::Command::new("dig").args(&args).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn nodes(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Node"]["Node"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_execute_and_templates() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    register(&a, "p1", &["primary", "v1"], "passing").await;
    register(&a, "p2", &["replica", "v1"], "warning").await;
    register(&a, "p3", &["replica", "v2"], "critical").await;

    let id = create(
        &a,
        json!({"Name": "db-q", "Service": {"Service": "db", "Tags": ["v1"]}, "DNS": {"TTL": "10s"}}),
    )
    .await;
    // Read back: a one-element list in Consul's shape.
    let r = a.get(&format!("/v1/query/{id}")).await;
    assert_eq!(r.status, 200);
    let got: Vec<Value> = r.json().unwrap();
    assert_eq!(got.len(), 1);
    let q = &got[0];
    assert_eq!((q["ID"].as_str(), q["Name"].as_str()), (Some(id.as_str()), Some("db-q")));
    assert_eq!(q["Service"]["Service"], "db");
    assert_eq!(q["Service"]["Failover"]["NearestN"], 0);
    assert_eq!(q["DNS"]["TTL"], "10s");
    assert!(q["CreateIndex"].as_u64().unwrap() > 0);
    assert_eq!(a.get("/v1/query").await.json::<Vec<Value>>().unwrap().len(), 1);

    // Execute by ID and by name: critical instances never, warning ones
    // unless OnlyPassing.
    let out = execute(&a, &id).await;
    assert_eq!(nodes(&out), ["p1", "p2"]);
    assert_eq!((out["Service"].as_str(), out["Datacenter"].as_str()), (Some("db"), Some("dc1")));
    assert_eq!((out["Failovers"].as_u64(), out["DNS"]["TTL"].as_str()), (Some(0), Some("10s")));
    assert_eq!(nodes(&execute(&a, "db-q").await), ["p1", "p2"]);
    assert_eq!(execute_with(&a, "db-q", "?limit=1").await["Nodes"].as_array().unwrap().len(), 1);

    // Update (PUT) to OnlyPassing and an excluded tag.
    let body = json!({"Name": "db-q", "Service": {"Service": "db", "OnlyPassing": true, "Tags": ["!replica"]}, "DNS": {"TTL": "15s"}});
    let r = a.put(&format!("/v1/query/{id}"), body.to_string().as_bytes()).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, ""));
    assert_eq!(nodes(&execute(&a, "db-q").await), ["p1"]);

    // DNS: the query's answer with its TTL; an unknown query is NXDOMAIN.
    assert_eq!(dig(&a, "db-q.query.consul", "A", true), "10.2.0.2");
    let full = dig(&a, "db-q.query.consul", "A", false);
    assert!(full.contains("db-q.query.consul.\t15\tIN\tA\t10.2.0.2"), "the query's TTL: {full}");
    let srv = dig(&a, "db-q.query.dc1.consul", "SRV", true);
    assert!(srv.contains("5432 p1.node.dc1.consul."), "{srv}");
    let full = dig(&a, "nope.query.consul", "A", false);
    assert!(full.contains("status: NXDOMAIN"), "{full}");

    // Unknown queries (before any catch-all template exists): 404 "Query not found".
    for path in ["/v1/query/nope", "/v1/query/nope/execute", "/v1/query/nope/explain"] {
        let r = a.get(path).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (404, "Query not found"), "{path}");
    }

    // Templates: the longest prefix wins; regexp groups fill the service.
    create(&a, json!({"Name": "", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${name.full}"}})).await;
    create(
        &a,
        json!({"Name": "geo-", "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.+?)-(.+)$", "RemoveEmptyTags": true},
               "Service": {"Service": "${match(1)}", "Tags": ["${match(2)}", "${match(5)}"]}}),
    )
    .await;
    assert_eq!(nodes(&execute(&a, "geo-db-replica").await), ["p2"]);
    assert_eq!(nodes(&execute(&a, "db").await), ["p1", "p2"], "the catch-all template");
    let r = a.get("/v1/query/geo-db-primary/explain").await;
    let ex: Value = r.json().unwrap();
    assert_eq!(ex["Query"]["Service"]["Service"], "db");
    assert_eq!(ex["Query"]["Service"]["Tags"], json!(["primary"]));

    // Bad definitions: a clear error and nothing stored.
    let before = a.get("/v1/query").await.json::<Vec<Value>>().unwrap().len();
    let bad = [
        (json!({"Name": "x", "Service": {}}), "Must provide a Service name to query"),
        (json!({"Name": "x", "Service": {"Service": "db", "Failover": {"NearestN": -1}}}), "Bad NearestN"),
        (
            json!({"Name": "x", "Template": {"Type": "name_prefix_match", "Regexp": "(["}, "Service": {"Service": "db"}}),
            "Bad Regexp",
        ),
        (
            json!({"Name": "x", "Template": {"Type": "other"}, "Service": {"Service": "db"}}),
            "Bad Template.Type",
        ),
        (
            json!({"Name": "", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "db"}}),
            "a query template with an empty name already exists",
        ),
        (json!({"Name": "db-q", "Service": {"Service": "db"}}), "aliases an existing query name"),
        (json!({"Service": {"Service": "db"}}), "Must be bound to a session"),
        (json!({"Name": "x", "Service": {"Service": "db"}, "DNS": {"TTL": "soon"}}), "Bad DNS TTL"),
        (
            json!({"Name": "x", "Service": {"Service": "db", "Failover": {"Targets": [{"Peer": "p"}]}}}),
            "peering",
        ),
        (json!({"Name": "x", "Service": {"Service": "db"}, "Session": "nope"}), "invalid session"),
    ];
    for (body, want) in bad {
        let (status, text) = post(&a, "/v1/query", &body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    assert_eq!(a.get("/v1/query").await.json::<Vec<Value>>().unwrap().len(), before);

    // With a catch-all template every name resolves; an unknown ID does not.
    assert_eq!(a.get("/v1/query/nope").await.status, 404);
    // Unknown service: an empty answer, not an error.
    let ghost = create(&a, json!({"Name": "ghost", "Service": {"Service": "nothing-here"}})).await;
    assert_eq!(execute(&a, &ghost).await["Nodes"], json!([]));

    // A query bound to a session dies with it.
    let r = a.put("/v1/session/create", b"{}").await;
    let sid = r.json::<Value>().unwrap()["ID"].as_str().unwrap().to_string();
    let bound = create(&a, json!({"Session": sid, "Service": {"Service": "db"}})).await;
    assert_eq!(a.get(&format!("/v1/query/{bound}")).await.status, 200);
    assert_eq!(a.put(&format!("/v1/session/destroy/{sid}"), b"").await.status, 200);
    assert_eq!(a.get(&format!("/v1/query/{bound}")).await.status, 404);

    // Delete.
    let r = a.delete(&format!("/v1/query/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(a.get(&format!("/v1/query/{id}")).await.status, 404);
}

fn dc_agent(name: &str, dc: &str, extra: &[String]) -> Agent {
    let mut args = vec![
        format!("-datacenter={dc}"),
        "-retry-interval-wan=1s".to_string(),
        "-server".to_string(),
        "-bootstrap".to_string(),
    ];
    args.extend(extra.iter().cloned());
    Agent::on_own_ip(name, &args)
}

/// dc1 has only a critical instance; dc2 none; dc3 a passing one. A query
/// failing over to [dc2, dc3] answers from dc3 after two failovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_follows_the_datacenters_list() {
    let dc1 = dc_agent("one", "dc1", &["-hcl".into(), "translate_wan_addrs = true".into()]);
    let join = format!("-retry-join-wan={}", dc1.ip);
    let dc2 = dc_agent("two", "dc2", std::slice::from_ref(&join));
    let dc3 = dc_agent("three", "dc3", &[join]);
    for a in [&dc1, &dc2, &dc3] {
        a.wait_ready().await;
    }
    let ok = wait_until(Duration::from_secs(30), || async {
        dc1.try_get("/v1/catalog/datacenters")
            .await
            .and_then(|r| r.json::<Vec<String>>().ok())
            .is_some_and(|d| d.len() == 3)
    })
    .await;
    assert!(
        ok,
        "the WAN never listed three datacenters: {}",
        dc1.get("/v1/catalog/datacenters").await.text()
    );
    register(&dc1, "local1", &[], "critical").await;
    register(&dc3, "far1", &[], "passing").await;
    // far1's node also has a WAN address, which dc1 (translate_wan_addrs) shows.
    let reg = json!({"Node": "far1", "Address": "10.2.0.4", "TaggedAddresses": {"wan": "198.51.100.4"}});
    assert_eq!(dc3.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);

    let id = create(
        &dc1,
        json!({"Name": "db-fo", "Service": {"Service": "db", "Failover": {"Datacenters": ["dc2", "dc3", "dc2", "nowhere"]}}}),
    )
    .await;
    let out = execute(&dc1, &id).await;
    assert_eq!(nodes(&out), ["far1"], "{out}");
    assert_eq!(out["Nodes"][0]["Node"]["Address"], "198.51.100.4", "{out}");
    assert_eq!((out["Datacenter"].as_str(), out["Failovers"].as_u64()), (Some("dc3"), Some(2)));

    // Once dc1 recovers, it answers itself.
    register(&dc1, "local1", &[], "passing").await;
    let out = execute(&dc1, "db-fo").await;
    assert_eq!((nodes(&out), out["Failovers"].as_u64()), (vec!["local1".to_string()], Some(0)));

    // NearestN = 2 without a list reaches dc3 too (dc2 has nothing).
    register(&dc1, "local1", &[], "critical").await;
    create(&dc1, json!({"Name": "db-near", "Service": {"Service": "db", "Failover": {"NearestN": 2}}})).await;
    let out = execute(&dc1, "db-near").await;
    assert_eq!(out["Datacenter"], "dc3", "{out}");
    // WAN coordinates of the three servers, and consul rtt -wan between them.
    let ok = wait_until(Duration::from_secs(20), || async {
        dc1.try_get("/v1/coordinate/datacenters").await.and_then(|r| r.json::<Vec<Value>>().ok()).is_some_and(
            |d| {
                d.len() == 3
                    && d.iter().all(|dc| {
                        dc["AreaID"] == "wan" && dc["Coordinates"].as_array().is_some_and(|c| c.len() == 1)
                    })
            },
        )
    })
    .await;
    assert!(ok, "WAN coordinates: {}", dc1.get("/v1/coordinate/datacenters").await.text());
    let out = dc1.cli(&["rtt", "-wan", "two.dc2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("Estimated two.dc2 <-> one.dc1 rtt: ")
            && out.stdout.contains("(using WAN coordinates)"),
        "{}",
        out.stdout
    );

    // Over DNS too: dc1's agent answers with dc3's instance, by its WAN
    // address (translate_wan_addrs), for a prepared query, a service and a
    // node lookup alike.
    assert_eq!(dig(&dc1, "db-near.query.consul", "A", true), "198.51.100.4");
    assert_eq!(dig(&dc1, "db.service.dc3.consul", "A", true), "198.51.100.4");
    assert_eq!(dig(&dc1, "far1.node.dc3.consul", "A", true), "198.51.100.4");
    // dc3 itself (no translation asked) answers with the LAN address.
    assert_eq!(dig(&dc3, "db.service.consul", "A", true), "10.2.0.4");
    let srv = dig(&dc1, "db-fo.query.consul", "SRV", true);
    assert!(srv.contains("5432 far1.node.dc3.consul."), "{srv}");
}

const ROOT: &str = "8f0c8b2e-2f3b-4a51-9d25-6f8c1f1e0a11";

fn client_with(a: &Agent, token: &str) -> consul::api::Client {
    consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: Some(token.into()),
        datacenter: None,
        ..Default::default()
    })
    .unwrap()
}

/// Under default-deny ACLs: writing a query needs `query:write` on its
/// name, listing shows what `query:read` allows with the stored token as
/// `<hidden>` to callers who may not read ACLs, the stored token is what
/// executes, and a coordinate update needs `node:write`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rules_for_queries_and_coordinates() {
    let hcl = format!(
        r#"acl {{ enabled = true default_policy = "deny" tokens {{ initial_management = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    let root = client_with(&a, ROOT);
    let ok = wait_until(Duration::from_secs(30), || async {
        root.request(hyper::Method::GET, "/v1/acl/token/self", None).await.is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(ok, "ACLs never came up\n{}", a.output_text());
    let put = |c: &consul::api::Client, path: &str, body: Value| {
        let c = c.clone();
        let path = path.to_string();
        async move {
            let r = c
                .request(hyper::Method::PUT, &path, Some(body.to_string().into_bytes().into()))
                .await
                .unwrap();
            (r.status.as_u16(), r.text())
        }
    };
    let policy = json!({"Name": "team", "Rules": r#"query_prefix "team-" { policy = "write" } service_prefix "" { policy = "read" } node_prefix "" { policy = "read" }"#});
    assert_eq!(put(&root, "/v1/acl/policy", policy).await.0, 200);
    let (_, tok) = put(&root, "/v1/acl/token", json!({"Policies": [{"Name": "team"}]})).await;
    let secret = serde_json::from_str::<Value>(&tok).unwrap()["SecretID"].as_str().unwrap().to_string();
    let team = client_with(&a, &secret);
    register_with(&root, "n1").await;

    let post_with = |c: &consul::api::Client, body: Value| {
        let c = c.clone();
        async move {
            let r = c
                .request(hyper::Method::POST, "/v1/query", Some(body.to_string().into_bytes().into()))
                .await
                .unwrap();
            (r.status.as_u16(), r.text())
        }
    };
    let (status, text) = post_with(&team, json!({"Name": "other", "Service": {"Service": "db"}})).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("query:write"), "{text}");
    let (status, text) =
        post_with(&team, json!({"Name": "team-a", "Service": {"Service": "db"}, "Token": secret})).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = post_with(&root, json!({"Name": "admin-q", "Service": {"Service": "db"}})).await;
    assert_eq!(status, 200);

    let list = |c: &consul::api::Client| {
        let c = c.clone();
        async move {
            let r = c.request(hyper::Method::GET, "/v1/query", None).await.unwrap();
            r.json::<Vec<Value>>().unwrap()
        }
    };
    let seen = list(&team).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0]["Name"].as_str(), seen[0]["Token"].as_str()), (Some("team-a"), Some("<hidden>")));
    let all = list(&root).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|q| q["Token"] == secret.as_str()), "management sees the token: {all:?}");

    // The stored token executes: anonymous callers still get results.
    let r = a.get("/v1/query/team-a/execute").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json::<Value>().unwrap()["Nodes"].as_array().unwrap().len(), 1);
    // Without a stored token the (anonymous, deny-all) caller sees nothing.
    let r = a.get("/v1/query/admin-q/execute").await;
    assert_eq!(r.json::<Value>().unwrap()["Nodes"], json!([]));

    // Coordinates: the anonymous token may not update; read filtering by node:read.
    let body = json!({"Node": "n1", "Coord": {"Vec": [0, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5, "Adjustment": 0, "Height": 0.00001}});
    let r = a.put("/v1/coordinate/update", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("node:write"), "{}", r.text());
    assert_eq!(put(&root, "/v1/coordinate/update", body).await.0, 200);
    let ok = wait_until(Duration::from_secs(10), || async {
        root.request(hyper::Method::GET, "/v1/coordinate/nodes", None)
            .await
            .is_ok_and(|r| r.json::<Vec<Value>>().is_ok_and(|l| !l.is_empty()))
    })
    .await;
    assert!(ok);
    let r = a.get("/v1/coordinate/nodes").await;
    assert_eq!(r.json::<Vec<Value>>().unwrap(), Vec::<Value>::new(), "anonymous sees no node");
}

async fn register_with(c: &consul::api::Client, node: &str) {
    let reg = json!({
        "Node": node, "Address": "10.3.0.1",
        "Service": {"ID": "db", "Service": "db", "Port": 5432},
    });
    let r = c
        .request(hyper::Method::PUT, "/v1/catalog/register", Some(reg.to_string().into_bytes().into()))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}
