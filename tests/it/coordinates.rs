//! Network coordinates end to end: agents' coordinates reaching the catalog
//! through the servers' batches, `/v1/coordinate/*` shapes and bad input,
//! `?near=` ordering on the catalog and health endpoints, `consul rtt`,
//! and ACL rules (update needs node:write; lists are filtered by node:read).

use crate::harness::{unique_ip, wait_until, Agent};
use serde_json::{json, Value};
use std::time::Duration;

/// Servers apply queued updates every 100 ms; agents send every 0.5–1 s.
const FAST_COORDS: &str =
    r#"sync_coordinate_interval_min = "500ms" consul { coordinate { update_period = "100ms" } }"#;

fn coord(x: f64) -> Value {
    json!({"Vec": [x, 0, 0, 0, 0, 0, 0, 0], "Error": 0.2, "Adjustment": 0, "Height": 0.00001})
}

async fn register(a: &Agent, node: &str, addr: &str) {
    let reg = json!({"Node": node, "Address": addr, "Service": {"Service": "web", "Port": 80}});
    let r = a.put("/v1/catalog/register", reg.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn put_coord(a: &Agent, node: &str, x: f64) -> (u16, String) {
    let body = json!({"Node": node, "Coord": coord(x)});
    let r = a.put("/v1/coordinate/update", body.to_string().as_bytes()).await;
    (r.status.as_u16(), r.text())
}

async fn nodes_of(a: &Agent, path: &str) -> Vec<String> {
    let r = a.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let v: Vec<Value> = r.json().unwrap();
    v.iter()
        .map(|e| e["Node"].as_str().or_else(|| e["Node"]["Node"].as_str()).unwrap_or_default().to_string())
        .collect()
}

/// Waits until the coordinate table holds `n` entries.
async fn wait_for_coordinates(a: &Agent, n: usize) -> Vec<Value> {
    let c = a.client();
    let ok = wait_until(Duration::from_secs(20), || {
        let c = c.clone();
        async move {
            match c.request(hyper::Method::GET, "/v1/coordinate/nodes", None).await {
                Ok(r) if r.status == 200 => r.json::<Vec<Value>>().is_ok_and(|l| l.len() >= n),
                _ => false,
            }
        }
    })
    .await;
    let last: Vec<Value> = a.get("/v1/coordinate/nodes").await.json().unwrap_or_default();
    assert!(ok, "coordinates never reached {n}: {last:?}\n{}", a.output_text());
    last
}

/// Crafted coordinates on a line: dev at 0 (a lone agent has no peer to
/// probe, so its own coordinate stays at the origin), n1 at 10 ms, n2 at
/// 30 ms, n3 at 20 ms. `?near` orders by them; `consul rtt` reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_sorts_by_stored_coordinates() {
    let a = Agent::dev(&["-hcl", FAST_COORDS]);
    a.wait_ready().await;
    for (n, ip) in [("n1", "10.1.0.1"), ("n2", "10.1.0.2"), ("n3", "10.1.0.3")] {
        register(&a, n, ip).await;
    }
    // The agent's own instance goes through the agent (anti-entropy would
    // remove one registered on its node through the catalog).
    let r = a.put("/v1/agent/service/register", br#"{"Name": "web", "Port": 80}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ok = wait_until(Duration::from_secs(10), || async {
        a.try_get("/v1/catalog/service/web")
            .await
            .and_then(|r| r.json::<Vec<Value>>().ok())
            .is_some_and(|l| l.len() == 4)
    })
    .await;
    assert!(ok, "the agent's own web instance never reached the catalog");
    for (n, x) in [("dev", 0.0), ("n1", 0.010), ("n2", 0.030), ("n3", 0.020)] {
        assert_eq!(put_coord(&a, n, x).await, (200, String::new()));
    }
    let list = wait_for_coordinates(&a, 4).await;
    let first = list.iter().find(|e| e["Node"] == "n1").unwrap();
    assert_eq!(first["Segment"], "");
    assert_eq!(first["Coord"]["Vec"].as_array().unwrap().len(), 8);
    for key in ["Error", "Adjustment", "Height"] {
        assert!(first["Coord"][key].is_number(), "{key} in {first}");
    }

    // `?near=<node>` and `?near=_agent` on every endpoint that takes it.
    assert_eq!(nodes_of(&a, "/v1/catalog/service/web?near=n2").await, ["n2", "n3", "n1", "dev"]);
    assert_eq!(nodes_of(&a, "/v1/catalog/service/web?near=_agent").await, ["dev", "n1", "n3", "n2"]);
    assert_eq!(nodes_of(&a, "/v1/catalog/nodes?near=n1").await, ["n1", "dev", "n3", "n2"]);
    assert_eq!(
        nodes_of(&a, "/v1/health/service/web?near=n3").await[..2],
        ["n3".to_string(), "n2".to_string()]
    );
    // An unknown source leaves the catalog's order (by node name).
    assert_eq!(nodes_of(&a, "/v1/catalog/service/web?near=nobody").await, ["dev", "n1", "n2", "n3"]);

    // One node; 404 for a node without coordinates.
    let r = a.get("/v1/coordinate/node/n3").await;
    assert_eq!(r.status, 200);
    let v: Vec<Value> = r.json().unwrap();
    assert_eq!((v.len(), v[0]["Coord"]["Vec"][0].as_f64()), (1, Some(0.020)));
    assert!(r.index().unwrap() > 0);
    assert_eq!(a.get("/v1/coordinate/node/nobody").await.status, 404);

    // consul rtt: |30 - 10| ms plus both heights (10 µs each).
    let out = a.cli(&["rtt", "n1", "n2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "Estimated n1 <-> n2 rtt: 20.020 ms (using LAN coordinates)");
    let out = a.cli(&["rtt", "n3"]);
    assert_eq!(out.stdout.trim(), "Estimated n3 <-> dev rtt: 20.020 ms (using LAN coordinates)");
    let out = a.cli(&["rtt", "ghost", "n1"]);
    assert_eq!((out.code, out.stderr.trim()), (1, "Could not find a coordinate for node \"ghost\""));
    let out = a.cli(&["rtt"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("One or two node names must be specified"), "{}", out.stderr);
    let out = a.cli(&["rtt", "-wan", "n1"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("<node name>.<datacenter>") || out.stderr.contains("Could not find"),
        "{}",
        out.stderr
    );

    // A dev agent is a one-server WAN pool, as in Consul: one datacenter
    // whose only entry is this server (short name) at the WAN origin.
    let r = a.get("/v1/coordinate/datacenters").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let dcs: Vec<Value> = r.json().unwrap();
    assert_eq!(dcs.len(), 1, "{dcs:?}");
    assert_eq!((&dcs[0]["Datacenter"], &dcs[0]["AreaID"]), (&json!("dc1"), &json!("wan")));
    let wan = dcs[0]["Coordinates"].as_array().unwrap();
    assert_eq!(wan.len(), 1, "{wan:?}");
    assert_eq!((&wan[0]["Node"], &wan[0]["Segment"]), (&json!("dev"), &json!("")));
    assert_eq!(wan[0]["Coord"]["Vec"], json!([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
    let out = a.cli(&["rtt", "-wan", "dev.dc1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "Estimated dev.dc1 <-> dev.dc1 rtt: 0.020 ms (using WAN coordinates)");
}

/// Bad input is refused with a clear error and nothing is stored; an update
/// for a node the catalog does not know is accepted but dropped (Consul's
/// behaviour: coordinates live and die with their node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_coordinates_are_refused() {
    let a = Agent::dev(&["-hcl", FAST_COORDS]);
    a.wait_ready().await;
    let cases: [(Value, &str); 5] = [
        (
            json!({"Node": "dev", "Coord": {"Vec": [0, 0, 0], "Error": 1, "Adjustment": 0, "Height": 0}}),
            "dimensions",
        ),
        (json!({"Coord": coord(0.0)}), "Must provide node"),
        (json!({"Node": "dev"}), "Must provide coordinate"),
        (json!({"Node": "dev", "Coord": {"Vec": "x"}}), "Request decode failed"),
        (json!([1, 2]), "Request decode failed"),
    ];
    for (body, want) in cases {
        let r = a.put("/v1/coordinate/update", body.to_string().as_bytes()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(want), "{body}: {}", r.text());
    }
    // NaN cannot be written in JSON; an overflowing number is refused too.
    let r = a
        .put(
            "/v1/coordinate/update",
            br#"{"Node":"dev","Coord":{"Vec":[1e999,0,0,0,0,0,0,0],"Error":1,"Adjustment":0,"Height":0}}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(put_coord(&a, "ghost", 0.1).await.0, 200);
    assert_eq!(put_coord(&a, "dev", 0.1).await.0, 200);
    let list = wait_for_coordinates(&a, 1).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Node"], "dev");
}

/// A server and two clients with fast coordinate sync: every agent's
/// coordinate reaches the catalog on its own, and the table's index moves
/// at most once per batch period (the rate limit is the servers' batching
/// plus each agent's interval).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_coordinates_reach_the_catalog() {
    let s_ip = unique_ip();
    let tmp = tempfile::tempdir().unwrap();
    let server = Agent::spawn(
        s_ip,
        vec![
            "agent".into(),
            "-server".into(),
            "-bootstrap".into(),
            format!("-data-dir={}", tmp.path().display()),
            format!("-bind={s_ip}"),
            format!("-client={s_ip}"),
            "-node=srv".into(),
            "-hcl".into(),
            FAST_COORDS.into(),
        ],
        Some(tmp.path().to_path_buf()),
        None,
    );
    let clients: Vec<Agent> = ["c1", "c2"]
        .iter()
        .map(|n| Agent::on_own_ip(n, &[format!("-retry-join={s_ip}"), "-hcl".into(), FAST_COORDS.into()]))
        .collect();
    server.wait_ready().await;
    let list = wait_for_coordinates(&server, 3).await;
    let mut names: Vec<&str> = list.iter().filter_map(|e| e["Node"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["c1", "c2", "srv"]);
    // Probes between the three moved them off the origin.
    let moved = |l: &[Value]| {
        l.iter().any(|e| e["Coord"]["Vec"].as_array().unwrap().iter().any(|x| x.as_f64() != Some(0.0)))
    };
    let c = server.client();
    let ok = wait_until(Duration::from_secs(20), || {
        let c = c.clone();
        async move {
            let r = c.request(hyper::Method::GET, "/v1/coordinate/nodes", None).await;
            r.ok().and_then(|r| r.json::<Vec<Value>>().ok()).is_some_and(|l| moved(&l))
        }
    })
    .await;
    assert!(ok, "no coordinate ever left the origin");
    // A blocking read on the table wakes with a newer index.
    let r = server.get("/v1/coordinate/nodes").await;
    let idx = r.index().unwrap();
    let r = server.get(&format!("/v1/coordinate/nodes?index={idx}&wait=5s")).await;
    assert!(r.index().unwrap() > idx, "no update within 5 s");
    // ?near=_agent on a client (its request goes to the server over RPC).
    let sorted = nodes_of(&clients[0], "/v1/catalog/nodes?near=_agent").await;
    assert_eq!(sorted.len(), 3, "{sorted:?}");
    drop(clients);
}
