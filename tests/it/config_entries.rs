//! Config entries end to end: every kind round-trips in Consul's shape,
//! bad input is refused with Consul's texts and nothing is stored, CAS
//! races have exactly one winner per round, blocking reads wake on writes,
//! entries survive a restart and a snapshot restore, ACLs guard writes and
//! filter reads, a follower answers `?stale` after the leader dies, the
//! CLI writes/reads/lists/deletes, and intentions check and match.

use crate::harness::{cli_with_env, wait_until, Agent};
use serde_json::{json, Value};
use std::time::Duration;

fn client_with_token(a: &Agent, token: &str) -> consul::api::Client {
    consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: Some(token.to_string()),
        ..Default::default()
    })
    .expect("client")
}

async fn put_entry(a: &Agent, body: &Value, query: &str) -> (u16, String) {
    let r = a.put(&format!("/v1/config{query}"), body.to_string().as_bytes()).await;
    (r.status.as_u16(), r.text())
}

async fn get_json(a: &Agent, path: &str) -> (u16, Value) {
    let r = a.get(path).await;
    let status = r.status.as_u16();
    (status, serde_json::from_str(&r.text()).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_round_trips_in_consuls_shape() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let entries = [
        json!({"kind": "service-defaults", "name": "web", "protocol": "HTTP", "mesh_gateway": {"mode": "local"}}),
        json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http", "local_connect_timeout_ms": 1000}}),
        json!({"Kind": "service-router", "Name": "web", "Routes": [{"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin", "RequestTimeout": "15s"}}]}),
        json!({"Kind": "service-splitter", "Name": "web", "Splits": [{"Weight": 90}, {"Weight": 10, "Service": "web-canary"}]}),
        json!({"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "15s", "DefaultSubset": "v1", "Subsets": {"v1": {"Filter": "Service.Meta.version == 1"}}}),
        json!({"Kind": "ingress-gateway", "Name": "ingress", "Listeners": [{"Port": 8080, "Protocol": "http", "Services": [{"Name": "web"}]}]}),
        json!({"Kind": "terminating-gateway", "Name": "term", "Services": [{"Name": "billing"}]}),
        json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "web", "Action": "allow"}, {"Name": "*", "Action": "deny"}]}),
        json!({"Kind": "mesh", "TransparentProxy": {"MeshDestinationsOnly": true}}),
        json!({"Kind": "exported-services", "Name": "default", "Services": [{"Name": "web", "Consumers": [{"Peer": "other"}]}]}),
    ];
    for e in &entries {
        let (status, text) = put_entry(&a, e, "").await;
        assert_eq!((status, text.as_str()), (200, "true"), "{e}");
    }
    let (status, sd) = get_json(&a, "/v1/config/service-defaults/web").await;
    assert_eq!(status, 200);
    let idx = sd["ModifyIndex"].clone();
    assert_eq!(
        sd,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http", "TransparentProxy": {},
            "MeshGateway": {"Mode": "local"}, "Expose": {}, "CreateIndex": idx, "ModifyIndex": idx})
    );
    let (_, pd) = get_json(&a, "/v1/config/proxy-defaults/global").await;
    assert_eq!(pd["Config"]["local_connect_timeout_ms"], 1000);
    let (_, r) = get_json(&a, "/v1/config/service-router/web").await;
    assert_eq!(r["Routes"][0]["Destination"]["RequestTimeout"], "15s");
    let (_, sp) = get_json(&a, "/v1/config/service-splitter/web").await;
    assert_eq!(sp["Splits"][1]["Service"], "web-canary");
    let (_, res) = get_json(&a, "/v1/config/service-resolver/web").await;
    assert_eq!(res["Subsets"]["v1"]["Filter"], "Service.Meta.version == 1");
    let (_, ig) = get_json(&a, "/v1/config/ingress-gateway/ingress").await;
    assert_eq!(ig["Listeners"][0]["Services"][0]["Name"], "web");
    let (_, si) = get_json(&a, "/v1/config/service-intentions/db").await;
    assert_eq!(si["Sources"][0]["Precedence"], 9);
    assert_eq!(si["Sources"][1]["Precedence"], 8);
    assert_eq!(si["Sources"][0]["Type"], "consul");
    let (_, mesh) = get_json(&a, "/v1/config/mesh/mesh").await;
    assert_eq!(mesh["TransparentProxy"]["MeshDestinationsOnly"], true);
    assert!(mesh.get("Name").is_none(), "{mesh}");
    let r = a.get("/v1/config/exported-services").await;
    assert!(r.headers.get("X-Consul-Index").is_some());
    let list: Vec<Value> = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(list.len(), 1);

    // Discovery chain: the splitter starts web's chain (http via
    // service-defaults); a service without entries gets the default chain.
    let (status, chain) = get_json(&a, "/v1/discovery-chain/web").await;
    assert_eq!(status, 200, "{chain}");
    assert_eq!(chain["Chain"]["Protocol"], "http");
    assert_eq!(chain["Chain"]["StartNode"], "router:web");
    let (_, chain) = get_json(&a, "/v1/discovery-chain/api").await;
    assert_eq!(chain["Chain"]["StartNode"], "resolver:api.default.default.dc1");
    assert_eq!(chain["Chain"]["Nodes"]["resolver:api.default.default.dc1"]["Resolver"]["Default"], true);

    // Deletes: plain answers {}, CAS answers the outcome.
    let r = a.delete("/v1/config/terminating-gateway/term").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "{}"));
    let r = a.delete("/v1/config/ingress-gateway/ingress?cas=1").await;
    assert_eq!(r.text(), "false");
    let (status, text) = (
        a.get("/v1/config/terminating-gateway/term").await.status.as_u16(),
        a.get("/v1/config/terminating-gateway/term").await.text(),
    );
    assert_eq!(
        (status, text.as_str()),
        (404, "Config entry not found for \"terminating-gateway\" / \"term\"")
    );
    let (_, none) = get_json(&a, "/v1/config/terminating-gateway").await;
    assert_eq!(none, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_consuls_texts_and_nothing_is_stored() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"Kind": "nope", "Name": "x"}), 400, "Request decoding failed: invalid config entry kind: nope"),
        (json!({"Kind": "api-gateway", "Name": "x"}), 400, "not supported by this agent"),
        (json!({"Name": "x"}), 400, "Request decoding failed: Payload does not contain a kind/Kind key at the top level"),
        (
            json!({"Kind": "service-defaults", "Name": "x", "Protocl": "http"}),
            400,
            "Request decoding failed: 1 error occurred:\n\t* invalid config key \"Protocl\"\n\n",
        ),
        (json!({"Kind": "service-defaults", "Name": "x", "Protocol": {"a": 1}}), 400, "expected type 'string'"),
        (json!({"Kind": "service-defaults", "Name": "x", "Namespace": "ns"}), 400, "namespaces are a consul enterprise feature"),
        (json!({"Kind": "service-defaults"}), 500, "Name is required"),
        (json!({"Kind": "proxy-defaults", "Name": "web"}), 500, "invalid name (\"web\"), only \"global\" is supported"),
        (
            json!({"Kind": "service-splitter", "Name": "x", "Splits": [{"Weight": 90}, {"Weight": 5, "Service": "y"}]}),
            500,
            "the sum of all split weights must be 100, not 95.000000",
        ),
        (
            json!({"Kind": "service-router", "Name": "x", "Routes": [{"Match": {"HTTP": {"PathPrefix": "/a"}}}]}),
            500,
            "discovery chain \"x\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior",
        ),
        (json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "web", "Action": "maybe"}]}), 500, "Sources[0].Action must be set to 'allow' or 'deny'"),
    ];
    for (body, status, text) in &cases {
        let (got, msg) = put_entry(&a, body, "").await;
        assert_eq!(got, *status, "{body}: {msg}");
        assert!(msg.contains(text), "{body}: {msg:?} lacks {text:?}");
    }
    let r = a.put("/v1/config", b"{not json").await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    assert!(r.text().starts_with("Request decoding failed: "), "{}", r.text());
    let big = format!(
        "{{\"Kind\":\"service-defaults\",\"Name\":\"x\",\"Meta\":{{\"k\":\"{}\"}}}}",
        "a".repeat(2 << 20)
    );
    let r = a.put("/v1/config", big.as_bytes()).await;
    assert_eq!(r.status.as_u16(), 413, "{}", r.text());
    let r = a.get("/v1/config/nope").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "invalid config entry kind: nope"));
    for kind in
        ["service-defaults", "proxy-defaults", "service-splitter", "service-router", "service-intentions"]
    {
        let (_, list) = get_json(&a, &format!("/v1/config/{kind}")).await;
        assert_eq!(list, json!([]), "{kind} stored something");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_races_have_exactly_one_winner_per_round() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let entry = |writer: u32, round: u32| json!({"Kind": "service-defaults", "Name": "race", "Meta": {"writer": writer.to_string(), "round": round.to_string()}});
    let (status, _) = put_entry(&a, &entry(0, 0), "?cas=0").await;
    assert_eq!(status, 200);
    let (status, again) = put_entry(&a, &entry(0, 0), "?cas=0").await;
    assert_eq!((status, again.as_str()), (200, "false"), "cas=0 on an existing entry must fail");
    for round in 1..=100u32 {
        let (_, current) = get_json(&a, "/v1/config/service-defaults/race").await;
        let idx = current["ModifyIndex"].as_u64().expect("index");
        let q = format!("?cas={idx}");
        let (b1, b2) = (entry(1, round), entry(2, round));
        let (r1, r2) = tokio::join!(put_entry(&a, &b1, &q), put_entry(&a, &b2, &q));
        let wins = [&r1, &r2].iter().filter(|r| r.1 == "true").count();
        assert_eq!(wins, 1, "round {round}: {r1:?} {r2:?}");
        let (_, now) = get_json(&a, "/v1/config/service-defaults/race").await;
        let winner = if r1.1 == "true" { "1" } else { "2" };
        assert_eq!(now["Meta"]["writer"], winner, "round {round}");
        assert_eq!(now["Meta"]["round"], round.to_string());
    }
    // Delete with CAS: a stale index loses, the current one wins.
    let (_, now) = get_json(&a, "/v1/config/service-defaults/race").await;
    let idx = now["ModifyIndex"].as_u64().unwrap();
    assert_eq!(a.delete(&format!("/v1/config/service-defaults/race?cas={}", idx - 1)).await.text(), "false");
    assert_eq!(a.delete(&format!("/v1/config/service-defaults/race?cas={idx}")).await.text(), "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_wake_on_a_write() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    put_entry(&a, &json!({"Kind": "service-defaults", "Name": "web"}), "").await;
    let r = a.get("/v1/config/service-defaults").await;
    let index: u64 = r.headers.get("X-Consul-Index").unwrap().to_str().unwrap().parse().unwrap();
    // Without a write, the read waits out its `wait` and answers the same index.
    let started = std::time::Instant::now();
    let r = a.get(&format!("/v1/config/service-defaults?index={index}&wait=1s")).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "answered after {:?}", started.elapsed());
    assert_eq!(r.headers.get("X-Consul-Index").unwrap().to_str().unwrap(), index.to_string());
    let client = a.client();
    let path = format!("/v1/config/service-defaults?index={index}&wait=20s");
    let waiter = tokio::spawn(async move { client.request(hyper::Method::GET, &path, None).await.unwrap() });
    put_entry(&a, &json!({"Kind": "service-defaults", "Name": "api"}), "").await;
    let r = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woke").unwrap();
    let list: Vec<Value> = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(list.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_restart_and_snapshot_restore() {
    let mut a = Agent::server(None, &[]);
    a.wait_ready().await;
    let e = json!({"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "3s"});
    assert_eq!(put_entry(&a, &e, "").await.0, 200);
    a.restart();
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            get_json(&a, "/v1/config/service-resolver/web").await.1["ConnectTimeout"] == "3s"
        })
        .await,
        "entry lost across restart\n{}",
        a.output_text()
    );
    let snap = a.get("/v1/snapshot").await;
    assert_eq!(snap.status.as_u16(), 200);
    assert_eq!(a.delete("/v1/config/service-resolver/web").await.status.as_u16(), 200);
    assert_eq!(a.get("/v1/config/service-resolver/web").await.status.as_u16(), 404);
    let r = a.put("/v1/snapshot", &snap.body).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let (status, back) = get_json(&a, "/v1/config/service-resolver/web").await;
    assert_eq!((status, back["ConnectTimeout"].clone()), (200, json!("3s")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_guard_writes_and_filter_reads() {
    let hcl = r#"acl { enabled = true default_policy = "deny" tokens { initial_management = "root" } }"#;
    let a = Agent::dev(&["-hcl", hcl]);
    a.wait_ready().await;
    let root = client_with_token(&a, "root");
    let policy = json!({"Name": "web-writer", "Rules": "service \"web\" { policy = \"write\" intentions = \"write\" }"});
    let r = root
        .request(hyper::Method::PUT, "/v1/acl/policy", Some(policy.to_string().into_bytes().into()))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let tok = json!({"Policies": [{"Name": "web-writer"}]});
    let r = root
        .request(hyper::Method::PUT, "/v1/acl/token", Some(tok.to_string().into_bytes().into()))
        .await
        .unwrap();
    let secret = r.json::<Value>().unwrap()["SecretID"].as_str().unwrap().to_string();
    let user = client_with_token(&a, &secret);
    let put = |c: &consul::api::Client, body: Value| {
        let c = c.clone();
        async move {
            let r = c
                .request(hyper::Method::PUT, "/v1/config", Some(body.to_string().into_bytes().into()))
                .await
                .unwrap();
            (r.status.as_u16(), r.text())
        }
    };
    assert_eq!(put(&user, json!({"Kind": "service-defaults", "Name": "web"})).await.0, 200);
    let (status, text) = put(&user, json!({"Kind": "service-defaults", "Name": "api"})).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("lacks permission 'service:write' on \"api\""), "{text}");
    let (status, text) = put(&user, json!({"Kind": "proxy-defaults", "Name": "global"})).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("mesh:write"), "{text}");
    assert_eq!(put(&user, json!({"Kind": "service-intentions", "Name": "web", "Sources": [{"Name": "x", "Action": "allow"}]})).await.0, 200);
    assert_eq!(
        put(
            &user,
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "x", "Action": "allow"}]})
        )
        .await
        .0,
        403
    );
    assert_eq!(put(&root, json!({"Kind": "service-defaults", "Name": "api"})).await.0, 200);
    // The list is filtered to what the token may read, and says so.
    let r = user.request(hyper::Method::GET, "/v1/config/service-defaults", None).await.unwrap();
    let names: Vec<String> =
        r.json::<Vec<Value>>().unwrap().iter().map(|e| e["Name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, vec!["web"]);
    assert_eq!(
        r.headers.get("X-Consul-Results-Filtered-By-ACLs").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let r = user.request(hyper::Method::GET, "/v1/config/service-defaults/api", None).await.unwrap();
    assert_eq!(r.status.as_u16(), 403);
    let anon = a.client();
    let r = anon.request(hyper::Method::GET, "/v1/config/service-defaults", None).await.unwrap();
    assert_eq!(r.json::<Vec<Value>>().unwrap().len(), 0);
    // With ACLs on and default deny, an unmatched intention check denies.
    let r = root
        .request(hyper::Method::GET, "/v1/connect/intentions/check?source=a&destination=b", None)
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap(), json!({"Allowed": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_writes_reads_lists_and_deletes() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.hcl");
    std::fs::write(&file, "Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"http\"\n").unwrap();
    let out = a.cli(&["config", "write", file.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Config entry written: service-defaults/web"), "{out:?}");
    let env = [("CONSUL_HTTP_ADDR", a.addr())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli_with_env(
        &["config", "write", "-"],
        &env,
        Some(&br#"{"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}"#[..]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = a.cli(&["config", "write", "-cas", "-modify-index=1", file.to_str().unwrap()]);
    assert_eq!(
        (out.code, out.stderr.trim()),
        (1, "Config entry not updated: service-defaults/web"),
        "{out:?}"
    );
    let out = a.cli(&["config", "read", "-kind", "service-defaults", "-name", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["Protocol"], "http");
    assert!(out.stdout.contains("\n    \"Kind\": \"service-defaults\""), "{}", out.stdout);
    let out = a.cli(&["config", "list", "-kind", "service-defaults"]);
    assert_eq!(out.stdout, "api\nweb\n", "{out:?}");
    let out = a.cli(&[
        "config",
        "delete",
        "-kind",
        "service-defaults",
        "-name",
        "web",
        "-cas",
        "-modify-index",
        "1",
    ]);
    assert_eq!(
        (out.code, out.stderr.trim()),
        (1, "Config entry not deleted: service-defaults/web"),
        "{out:?}"
    );
    let out = a.cli(&["config", "delete", "-kind", "service-defaults", "-name", "web"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Config entry deleted: service-defaults/web"), "{out:?}");
    let out = a.cli(&["config", "read", "-kind", "service-defaults", "-name", "web"]);
    assert_eq!(out.code, 1, "{out:?}");
    let out = a.cli(&["config", "read", "-name", "web"]);
    assert_eq!((out.code, out.stderr.trim()), (1, "Must specify the -kind parameter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intentions_create_check_match_and_delete() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let out = a.cli(&["intention", "create", "-deny", "web", "db"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Created: web => db (deny)"), "{out:?}");
    let out = a.cli(&["intention", "create", "-allow", "*", "db"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = a.cli(&["intention", "create", "web", "db"]);
    assert_eq!(out.code, 1, "an existing intention needs -replace: {out:?}");
    let out = a.cli(&["intention", "check", "web", "db"]);
    assert_eq!((out.code, out.stdout.trim()), (2, "Denied"), "{out:?}");
    let out = a.cli(&["intention", "check", "api", "db"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Allowed"), "{out:?}");
    let out = a.cli(&["intention", "check", "api", "cache"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Allowed"), "ACLs off: default allow {out:?}");
    let out = a.cli(&["intention", "match", "db"]);
    assert_eq!(out.stdout, "web => db (deny)\n* => db (allow)\n", "{out:?}");
    let (_, m) = get_json(&a, "/v1/connect/intentions/match?by=source&name=web").await;
    assert_eq!(m["web"].as_array().unwrap().len(), 2, "web => db and * => db both match source web");
    let (_, exact) = get_json(&a, "/v1/connect/intentions/exact?source=web&destination=db").await;
    assert_eq!((exact["Action"].clone(), exact["Precedence"].clone()), (json!("deny"), json!(9)));
    let (_, list) = get_json(&a, "/v1/connect/intentions").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = a.cli(&["intention", "delete", "web", "db"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "Intention deleted."), "{out:?}");
    let out = a.cli(&["intention", "delete", "*", "db"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        a.get("/v1/config/service-intentions/db").await.status.as_u16(),
        404,
        "the empty entry is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_stale_after_the_leader_dies() {
    let mut servers = crate::cluster::start_three(&["-hcl", "autopilot { cleanup_dead_servers = false }"]);
    let refs: Vec<&Agent> = servers.iter().collect();
    let leader = crate::cluster::agreed_leader(&refs, Duration::from_secs(60)).await;
    let e = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    assert_eq!(put_entry(&servers[0], &e, "").await, (200, "true".to_string()));
    let li = servers.iter().position(|s| format!("{}:8300", s.ip) == leader).expect("leader");
    let follower = (0..3).find(|i| *i != li).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            get_json(&servers[follower], "/v1/config/service-defaults/web?stale").await.0 == 200
        })
        .await
    );
    servers[li].kill9();
    let (status, v) = get_json(&servers[follower], "/v1/config/service-defaults/web?stale").await;
    assert_eq!((status, v["Protocol"].clone()), (200, json!("http")));
    let (status, list) = get_json(&servers[follower], "/v1/config/service-defaults?stale").await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
}
