//! Mesh-shaped catalog data and the endpoints every agent is asked (issue
//! 19 items 2, 3 and 5), against the real binary: a sidecar registration
//! and Consul's shapes of `Proxy`/`Connect` in the agent, catalog and
//! health views and in `/v1/catalog/connect` and `/v1/health/connect`;
//! `?peer=`, `?merge-central-config`, `/v1/health/ingress`,
//! `/v1/catalog/gateway-services`, `/v1/operator/usage`, `/v1/agent/host`,
//! `/v1/agent/version`; bad input refused with Consul's text and nothing
//! stored; mesh fields surviving a restart, a snapshot restore and the
//! leader's death (stale reads on a follower); and `consul debug`.

use crate::cluster::{agreed_leader, start_three};
use crate::harness::{cli, wait_until, Agent};
use serde_json::{json, Value};
use std::time::Duration;

async fn get_json(a: &Agent, path: &str) -> (Value, Option<String>) {
    let r = a.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let index = r.headers.get("X-Consul-Index").and_then(|v| v.to_str().ok()).map(str::to_string);
    (r.json::<Value>().expect("json"), index)
}

async fn put_json(a: &Agent, path: &str, body: &Value) -> (u16, String) {
    let r = a.put(path, body.to_string().as_bytes()).await;
    (r.status.as_u16(), r.text())
}

/// A proxy with every mesh field set, registered through the catalog.
fn full_proxy_registration(node: &str, id: &str) -> Value {
    json!({
        "Node": node,
        "Address": "10.1.2.3",
        "Service": {
            "Kind": "connect-proxy",
            "ID": id,
            "Service": "api-proxy",
            "Port": 21500,
            "Proxy": {
                "DestinationServiceName": "api",
                "DestinationServiceID": "api-1",
                "LocalServiceAddress": "127.0.0.1",
                "LocalServicePort": 9090,
                "Mode": "transparent",
                "Config": {"protocol": "http", "nested": {"n": 1}},
                "Upstreams": [{
                    "DestinationName": "db",
                    "LocalBindPort": 5432,
                    "Datacenter": "dc2",
                    "Config": {"connect_timeout_ms": 500},
                    "MeshGateway": {"Mode": "local"}
                }],
                "MeshGateway": {"Mode": "remote"},
                "Expose": {"Checks": true, "Paths": [{"Path": "/metrics", "ListenerPort": 21600, "LocalPathPort": 9102, "Protocol": "http"}]},
                "TransparentProxy": {"OutboundListenerPort": 15001, "DialedDirectly": true},
                "AccessLogs": {"Enabled": true, "Type": "stdout"}
            },
            "Locality": {"Region": "us-east-1", "Zone": "us-east-1a"}
        }
    })
}

/// What Consul's catalog shows for `full_proxy_registration`'s `Proxy`.
fn full_proxy_expected() -> Value {
    json!({
        "TransparentProxy": {"OutboundListenerPort": 15001, "DialedDirectly": true},
        "AccessLogs": {"Enabled": true, "Type": "stdout"},
        "DestinationServiceName": "api",
        "DestinationServiceID": "api-1",
        "LocalServiceAddress": "127.0.0.1",
        "LocalServicePort": 9090,
        "Mode": "transparent",
        "Config": {"protocol": "http", "nested": {"n": 1}},
        "Upstreams": [{
            "DestinationType": "",
            "DestinationName": "db",
            "Datacenter": "dc2",
            "LocalBindPort": 5432,
            "Config": {"connect_timeout_ms": 500},
            "MeshGateway": {"Mode": "local"}
        }],
        "MeshGateway": {"Mode": "remote"},
        "Expose": {"Checks": true, "Paths": [{"ListenerPort": 21600, "Path": "/metrics", "LocalPathPort": 9102, "Protocol": "http"}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_registration_and_consuls_mesh_shapes() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;

    // snake_case, as a config file or a handwritten body would send it.
    let body = json!({"name": "web", "port": 8080, "tags": ["v1"], "connect": {"sidecar_service": {}}});
    assert_eq!(put_json(&a, "/v1/agent/service/register", &body).await, (200, String::new()));
    let (services, _) = get_json(&a, "/v1/agent/services").await;
    assert!(services["web"].get("Proxy").is_none(), "{services}");
    assert!(services["web"].get("Connect").is_none(), "{services}");
    let sidecar = &services["web-sidecar-proxy"];
    assert_eq!(sidecar["Kind"], "connect-proxy", "{services}");
    assert_eq!(sidecar["Service"], "web-sidecar-proxy");
    assert_eq!(sidecar["Port"], 21000);
    assert_eq!(sidecar["Tags"], json!(["v1"]));
    assert_eq!(
        sidecar["Proxy"],
        json!({
            "DestinationServiceName": "web",
            "DestinationServiceID": "web",
            "LocalServiceAddress": "127.0.0.1",
            "LocalServicePort": 8080,
            "MeshGateway": {},
            "Expose": {}
        })
    );
    let (checks, _) = get_json(&a, "/v1/agent/checks").await;
    assert_eq!(checks["service:web-sidecar-proxy:1"]["Name"], "Connect Sidecar Listening", "{checks}");
    assert_eq!(checks["service:web-sidecar-proxy:1"]["Type"], "tcp");
    assert_eq!(checks["service:web-sidecar-proxy:2"]["Name"], "Connect Sidecar Aliasing web");
    assert_eq!(checks["service:web-sidecar-proxy:2"]["Type"], "alias");

    // A second sidecar takes the next port of the range.
    let body = json!({"Name": "api", "Port": 9090, "Connect": {"SidecarService": {"Port": 0}}});
    assert_eq!(put_json(&a, "/v1/agent/service/register", &body).await.0, 200);
    let (svc, _) = get_json(&a, "/v1/agent/service/api-sidecar-proxy").await;
    assert_eq!(svc["Port"], 21001, "{svc}");

    // The catalog's Connect views find the proxy once anti-entropy ran.
    assert!(
        wait_until(Duration::from_secs(15), || async {
            a.get("/v1/catalog/connect/web").await.json::<Vec<Value>>().map(|v| v.len()).unwrap_or(0) == 1
        })
        .await,
        "sidecar never reached /v1/catalog/connect/web"
    );
    let (connect, index) = get_json(&a, "/v1/catalog/connect/web").await;
    assert!(index.is_some());
    assert_eq!(connect[0]["ServiceID"], "web-sidecar-proxy");
    assert_eq!(connect[0]["ServiceKind"], "connect-proxy");
    assert_eq!(connect[0]["ServiceProxy"]["DestinationServiceName"], "web");
    assert_eq!(connect[0]["ServiceProxy"]["Mode"], "");
    assert_eq!(connect[0]["ServiceConnect"], json!({}));
    let (health, index) = get_json(&a, "/v1/health/connect/web").await;
    assert!(index.is_some());
    assert_eq!(health.as_array().map(Vec::len), Some(1), "{health}");
    assert_eq!(health[0]["Service"]["ID"], "web-sidecar-proxy");
    assert_eq!(health[0]["Service"]["Proxy"]["LocalServicePort"], 8080);
    let names: Vec<&str> =
        health[0]["Checks"].as_array().unwrap().iter().filter_map(|c| c["Name"].as_str()).collect();
    assert!(
        names.contains(&"Connect Sidecar Listening") && names.contains(&"Connect Sidecar Aliasing web"),
        "{names:?}"
    );
    // A typical service still shows Consul's empty proxy block.
    let (web, _) = get_json(&a, "/v1/catalog/service/web").await;
    assert_eq!(web[0]["ServiceProxy"], json!({"Mode": "", "MeshGateway": {}, "Expose": {}}));
    assert_eq!(web[0]["ServiceConnect"], json!({}));

    // ?peer: nothing is peered, the answer is empty with the index headers.
    for path in [
        "/v1/catalog/service/web?peer=other",
        "/v1/health/service/web?peer=other",
        "/v1/catalog/connect/web?peer=other",
        "/v1/health/connect/web?peer=other",
        "/v1/health/checks/web?peer=other",
        "/v1/catalog/nodes?peer=other",
    ] {
        let (v, index) = get_json(&a, path).await;
        assert_eq!(v, json!([]), "{path}");
        assert!(index.is_some(), "{path}");
    }
    let (v, _) = get_json(&a, "/v1/catalog/services?peer=other").await;
    assert_eq!(v, json!({}));
    // ?merge-central-config is accepted (no config entries to merge yet).
    let (merged, _) = get_json(&a, "/v1/health/service/web-sidecar-proxy?merge-central-config").await;
    assert_eq!(merged[0]["Service"]["Proxy"]["DestinationServiceName"], "web");
    // Ingress and gateway services need config entries: empty, with index.
    for path in ["/v1/health/ingress/web", "/v1/catalog/gateway-services/gw"] {
        let (v, index) = get_json(&a, path).await;
        assert_eq!(v, json!([]), "{path}");
        assert!(index.is_some(), "{path}");
    }

    // Usage counts, host facts and version in Consul's shapes.
    let (usage, _) = get_json(&a, "/v1/operator/usage").await;
    let dc1 = &usage["Usage"]["dc1"];
    assert_eq!(dc1["Nodes"], 1, "{usage}");
    assert_eq!(dc1["ConnectServiceInstances"]["connect-proxy"], 2, "{usage}");
    assert_eq!(dc1["BillableServiceInstances"], 2, "{usage}");
    assert_eq!(dc1["ServiceInstances"], 5, "{usage}");
    for k in [
        "Index",
        "LastContact",
        "KnownLeader",
        "ConsistencyLevel",
        "NotModified",
        "Backend",
        "ResultsFilteredByACLs",
    ] {
        assert!(usage.get(k).is_some(), "{k} missing: {usage}");
    }
    let (host, _) = get_json(&a, "/v1/agent/host").await;
    for k in ["Memory", "CPU", "Host", "Disk", "CollectionTime", "Errors"] {
        assert!(host.get(k).is_some(), "{k} missing: {host}");
    }
    assert!(host["Memory"]["total"].as_u64().unwrap_or(0) > 0, "{host}");
    assert!(host["Host"]["hostname"].is_string());
    let (version, _) = get_json(&a, "/v1/agent/version").await;
    assert!(version["HumanVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{version}");
    let (me, _) = get_json(&a, "/v1/agent/self").await;
    assert!(me.get("xDS").is_none());

    // The sidecar goes with its parent.
    assert_eq!(a.put("/v1/agent/service/deregister/web", b"").await.status, 200);
    let (services, _) = get_json(&a, "/v1/agent/services").await;
    assert!(services.get("web").is_none() && services.get("web-sidecar-proxy").is_none(), "{services}");
    assert!(services.get("api-sidecar-proxy").is_some());
    assert!(
        wait_until(Duration::from_secs(15), || async {
            a.get("/v1/catalog/connect/web").await.json::<Vec<Value>>().map(|v| v.is_empty()).unwrap_or(false)
        })
        .await
    );

    // An upstream keeps Consul's agent shape (DestinationType filled in).
    let body = json!({
        "name": "db-proxy", "kind": "connect-proxy", "port": 20000,
        "proxy": {"destination_service_name": "db", "upstreams": [{"destination_name": "cache", "local_bind_port": 6000}]}
    });
    assert_eq!(put_json(&a, "/v1/agent/service/register", &body).await.0, 200);
    let (svc, _) = get_json(&a, "/v1/agent/service/db-proxy").await;
    assert_eq!(
        svc["Proxy"]["Upstreams"],
        json!([{"DestinationType": "service", "DestinationName": "cache", "LocalBindPort": 6000, "MeshGateway": {}}]),
        "{svc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mesh_input_is_refused_with_consuls_text_and_nothing_stored() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"Name": "p1", "Kind": "connect-proxy"}),
            "Validation failed: 2 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n",
        ),
        (
            json!({"Name": "p1", "Kind": "connect-proxy", "Port": 1, "Proxy": {"DestinationServiceName": "x", "Upstreams": [{"DestinationName": "y"}]}}),
            "Validation failed: 1 error occurred:\n\t* upstream local bind port or local socket path must be defined and nonzero\n\n",
        ),
        (
            json!({"Name": "p1", "Kind": "mesh-gateway"}),
            "Validation failed: 1 error occurred:\n\t* Port must be non-zero for a mesh-gateway\n\n",
        ),
        (
            json!({"Name": "p1", "Port": 1, "Connect": {"SidecarService": {"ID": "mine"}}}),
            "Validation failed: 1 error occurred:\n\t* A SidecarService cannot specify an ID as this is managed by the agent\n\n",
        ),
        (json!({"Name": "p1", "Proxy": "x"}), "Request decode failed: Proxy: invalid type: string, expected an object"),
        (
            json!({"Name": "p1", "Kind": "connect-proxy", "Port": 1, "Proxy": {"DestinationServiceName": "x", "LocalServicePort": "80"}}),
            "Request decode failed: Proxy.LocalServicePort: invalid type: string, expected an integer",
        ),
        (
            json!({"Name": "p1", "Connect": {"Native": "yes"}}),
            "Request decode failed: Connect.Native: invalid type: string, expected a boolean",
        ),
    ];
    for (body, want) in &cases {
        let (status, text) = put_json(&a, "/v1/agent/service/register", body).await;
        assert_eq!((status, text.as_str()), (400, *want), "{body}");
    }
    let (services, _) = get_json(&a, "/v1/agent/services").await;
    assert!(services.get("p1").is_none(), "a refused registration was stored: {services}");

    // The catalog and txn endpoints run the same validation.
    let reg = json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "p2", "Kind": "connect-proxy", "Port": 5}});
    let (status, text) = put_json(&a, "/v1/catalog/register", &reg).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Proxy.DestinationServiceName must be non-empty"), "{text}");
    let txn = json!([{"Service": {"Verb": "set", "Node": "dev", "Service": {"Service": "p3", "Kind": "connect-proxy", "Port": 5}}}]);
    let r = a.put("/v1/txn", txn.to_string().as_bytes()).await;
    assert!(!r.status.is_success(), "{}", r.text());
    for name in ["p2", "p3"] {
        let (v, _) = get_json(&a, &format!("/v1/catalog/service/{name}")).await;
        assert_eq!(v, json!([]), "{name} was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_fields_survive_restart_and_snapshot_restore() {
    // A config-file service with a sidecar, in the file format's snake_case.
    let cfg = r#"service { name = "cfg" port = 7000 connect { sidecar_service { proxy { upstreams = [{ destination_name = "db", local_bind_port = 9191 }] } } } }"#;
    let mut a = Agent::server(None, &["-hcl", cfg]);
    a.wait_ready().await;
    let (svc, _) = get_json(&a, "/v1/agent/service/cfg-sidecar-proxy").await;
    assert_eq!(svc["Port"], 21000, "{svc}");
    assert_eq!(svc["Proxy"]["DestinationServiceName"], "cfg");
    assert_eq!(svc["Proxy"]["Upstreams"][0]["DestinationName"], "db");
    let (status, text) = put_json(&a, "/v1/catalog/register", &full_proxy_registration("n1", "p1")).await;
    assert_eq!(status, 200, "{text}");
    let native = json!({"Node": "n1", "Address": "10.1.2.3", "Service": {"Service": "nat", "Port": 7000, "Connect": {"Native": true}}});
    assert_eq!(put_json(&a, "/v1/catalog/register", &native).await.0, 200);
    let sidecar = json!({"Name": "web", "Port": 8080, "Connect": {"SidecarService": {}}});
    assert_eq!(put_json(&a, "/v1/agent/service/register", &sidecar).await.0, 200);

    let (before, _) = get_json(&a, "/v1/catalog/service/api-proxy").await;
    assert_eq!(before[0]["ServiceProxy"], full_proxy_expected(), "{before}");
    assert_eq!(before[0]["ServiceLocality"], json!({"Region": "us-east-1", "Zone": "us-east-1a"}));
    let (conn, _) = get_json(&a, "/v1/catalog/connect/nat").await;
    assert_eq!(conn[0]["ServiceConnect"], json!({"Native": true}), "{conn}");

    let snap = a.get("/v1/snapshot").await;
    assert_eq!(snap.status, 200);
    let snap = snap.body.clone();

    a.restart();
    a.wait_ready().await;
    let (after, _) = get_json(&a, "/v1/catalog/service/api-proxy").await;
    assert_eq!(after[0]["ServiceProxy"], before[0]["ServiceProxy"]);
    assert_eq!(after[0]["ServiceLocality"], before[0]["ServiceLocality"]);
    let (svc, _) = get_json(&a, "/v1/agent/service/web-sidecar-proxy").await;
    assert_eq!(svc["Proxy"]["DestinationServiceID"], "web", "persisted sidecar lost: {svc}");
    assert_eq!(svc["Port"], 21001, "{svc}");
    let (svc, _) = get_json(&a, "/v1/agent/service/cfg-sidecar-proxy").await;
    assert_eq!(svc["Port"], 21000, "{svc}");

    let dereg = json!({"Node": "n1", "ServiceID": "p1"});
    assert_eq!(put_json(&a, "/v1/catalog/deregister", &dereg).await.0, 200);
    let (gone, _) = get_json(&a, "/v1/catalog/service/api-proxy").await;
    assert_eq!(gone, json!([]));
    let r = a.put("/v1/snapshot", &snap).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (restored, _) = get_json(&a, "/v1/catalog/service/api-proxy").await;
    assert_eq!(restored[0]["ServiceProxy"], before[0]["ServiceProxy"]);
    assert_eq!(restored[0]["ServiceKind"], "connect-proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_mesh_fields_stale_after_the_leader_dies() {
    let mut servers = start_three(&["-hcl", "autopilot { cleanup_dead_servers = false }"]);
    let refs: Vec<&Agent> = servers.iter().collect();
    let leader = agreed_leader(&refs, Duration::from_secs(60)).await;
    let (status, text) =
        put_json(&servers[0], "/v1/catalog/register", &full_proxy_registration("n9", "p9")).await;
    assert_eq!(status, 200, "{text}");
    let leader_ix = servers.iter().position(|s| format!("{}:8300", s.ip) == leader).expect("leader");
    let follower = (0..3).find(|i| *i != leader_ix).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            servers[follower]
                .get("/v1/catalog/connect/api?stale")
                .await
                .json::<Vec<Value>>()
                .map(|v| v.len() == 1)
                .unwrap_or(false)
        })
        .await
    );
    servers[leader_ix].kill9();
    let (v, _) = get_json(&servers[follower], "/v1/catalog/service/api-proxy?stale").await;
    assert_eq!(v[0]["ServiceProxy"], full_proxy_expected(), "{v}");
    let (h, _) = get_json(&servers[follower], "/v1/health/connect/api?stale").await;
    assert_eq!(h[0]["Service"]["Proxy"], full_proxy_expected(), "{h}");
    assert_eq!(h[0]["Service"]["Locality"], json!({"Region": "us-east-1", "Zone": "us-east-1a"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_debug_writes_an_archive_without_the_token() {
    const ROOT: &str = "7f3e1c52-mesh-debug-root-token";
    let hcl = format!(
        r#"acl {{ enabled = true default_policy = "deny" tokens {{ initial_management = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    let c = consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: Some(ROOT.into()),
        ..Default::default()
    })
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            c.request(hyper::Method::GET, "/v1/agent/self", None).await.is_ok_and(|r| r.status.is_success())
        })
        .await
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let out_s = out.to_str().unwrap().to_string();
    let addr = a.addr();
    let run = cli(&[
        "debug",
        &format!("-http-addr={addr}"),
        &format!("-token={ROOT}"),
        "-duration=10s",
        "-interval=5s",
        &format!("-output={out_s}"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Starting debugger and capturing static information..."), "{run:?}");
    assert!(run.stdout.matches("Capture successful").count() >= 2, "{run:?}");
    assert!(run.stderr.contains("pprof"), "pprof not reported as unavailable: {run:?}");
    assert!(!out.exists(), "the directory is removed once archived");
    let archive = dir.path().join("bundle.tar.gz");
    let f = std::fs::File::open(&archive).expect("archive written");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut text = String::new();
        if entry.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            assert!(!text.contains(ROOT), "{name} contains the token");
        }
        names.push(name);
    }
    for f in ["index.json", "agent.json", "host.json", "members.json", "metrics.json", "consul.log"] {
        assert!(names.iter().any(|n| n == &format!("bundle/{f}")), "{f} missing from {names:?}");
    }

    // Consul's flag checks.
    let bad = cli(&["debug", &format!("-http-addr={addr}"), "-duration=1s"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("Capture validation failed: duration must be longer than 10s"), "{bad:?}");
}

/// `config_entries.bootstrap` (HCL) written by the leader; central config
/// merged into proxies and gateways with `?merge-central-config`; gateway
/// mappings and ingress health from gateway entries, `*` included, with
/// blocking reads that wake on a registration; `?filter` on config entries
/// and intentions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_config_bootstrap_merge_and_gateway_mappings() {
    let hcl = r#"config_entries {
  bootstrap {
    kind = "proxy-defaults"
    name = "global"
    config { local_connect_timeout_ms = 1000 }
    mesh_gateway { mode = "local" }
  }
  bootstrap {
    kind = "service-defaults"
    name = "web"
    protocol = "http"
  }
}"#;
    let a = Agent::dev(&["-hcl", hcl]);
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(15), || async {
            a.get("/v1/config/service-defaults/web").await.status == 200
        })
        .await,
        "bootstrap entries never written"
    );
    let (pd, _) = get_json(&a, "/v1/config/proxy-defaults/global").await;
    assert_eq!(pd["Config"], json!({"local_connect_timeout_ms": 1000}), "{pd}");

    // A sidecar registered through the catalog (no agent-side merge).
    let reg = json!({
        "Node": "n1", "Address": "10.0.0.1",
        "Service": {"Kind": "connect-proxy", "ID": "web-proxy", "Service": "web-sidecar-proxy", "Port": 21000,
            "Proxy": {"DestinationServiceName": "web", "Config": {"protocol": "tcp"}}}
    });
    assert_eq!(put_json(&a, "/v1/catalog/register", &reg).await.0, 200);
    let (plain, _) = get_json(&a, "/v1/catalog/service/web-sidecar-proxy").await;
    assert_eq!(plain[0]["ServiceProxy"]["Config"], json!({"protocol": "tcp"}));
    assert_eq!(plain[0]["ServiceProxy"]["MeshGateway"], json!({}));
    let (merged, _) = get_json(&a, "/v1/catalog/service/web-sidecar-proxy?merge-central-config").await;
    // What the proxy registered wins; central config fills the rest.
    assert_eq!(
        merged[0]["ServiceProxy"]["Config"],
        json!({"protocol": "tcp", "local_connect_timeout_ms": 1000}),
        "{merged}"
    );
    assert_eq!(merged[0]["ServiceProxy"]["MeshGateway"], json!({"Mode": "local"}));
    let (health, _) = get_json(&a, "/v1/health/service/web-sidecar-proxy?merge-central-config").await;
    assert_eq!(health[0]["Service"]["Proxy"]["MeshGateway"], json!({"Mode": "local"}), "{health}");
    let (ns, _) = get_json(&a, "/v1/catalog/node-services/n1?merge-central-config").await;
    assert_eq!(ns["Services"][0]["Proxy"]["MeshGateway"], json!({"Mode": "local"}), "{ns}");

    // Gateways: an ingress with an explicit service and a wildcard, a
    // terminating gateway with TLS origination.
    let ingress = json!({"Kind": "ingress-gateway", "Name": "ing", "Listeners": [
        {"Port": 8080, "Protocol": "http", "Services": [{"Name": "web", "Hosts": ["web.example"]}, {"Name": "*"}]}]});
    assert_eq!(put_json(&a, "/v1/config", &ingress).await, (200, "true".to_string()));
    let term = json!({"Kind": "terminating-gateway", "Name": "term", "Services": [{"Name": "billing", "CAFile": "/ca.pem", "SNI": "billing.example"}]});
    assert_eq!(put_json(&a, "/v1/config", &term).await.0, 200);
    let (gs, _) = get_json(&a, "/v1/catalog/gateway-services/term").await;
    assert_eq!(gs.as_array().map(Vec::len), Some(1), "{gs}");
    assert_eq!(gs[0]["Gateway"], json!({"Name": "term"}));
    assert_eq!(gs[0]["Service"], json!({"Name": "billing"}));
    assert_eq!(gs[0]["GatewayKind"], "terminating-gateway");
    assert_eq!((gs[0]["CAFile"].as_str(), gs[0]["SNI"].as_str()), (Some("/ca.pem"), Some("billing.example")));
    let (gs, index) = get_json(&a, "/v1/catalog/gateway-services/ing").await;
    let names: Vec<&str> =
        gs.as_array().unwrap().iter().filter_map(|g| g["Service"]["Name"].as_str()).collect();
    assert_eq!(names, vec!["web"], "only the explicit service until one is registered: {gs}");
    assert_eq!(gs[0]["Hosts"], json!(["web.example"]));
    assert_eq!((gs[0]["Port"].as_i64(), gs[0]["Protocol"].as_str()), (Some(8080), Some("http")));

    // A blocked read wakes when a typical service appears under `*`.
    let index: u64 = index.unwrap().parse().unwrap();
    let client = a.client();
    let path = format!("/v1/catalog/gateway-services/ing?index={index}&wait=20s");
    let waiter = tokio::spawn(async move {
        let r = client.request(hyper::Method::GET, &path, None).await.unwrap();
        serde_json::from_str::<Value>(&r.text()).unwrap()
    });
    let api =
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "api", "Service": "api", "Port": 80}});
    assert_eq!(put_json(&a, "/v1/catalog/register", &api).await.0, 200);
    let woke = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("blocked read never woke")
        .unwrap();
    let wild = woke.as_array().unwrap().iter().find(|g| g["Service"]["Name"] == "api").cloned();
    assert_eq!(wild.as_ref().map(|g| g["FromWildcard"].clone()), Some(json!(true)), "{woke}");

    // Ingress health: the gateway's instances, for an explicit and a
    // wildcard service; nothing for a service no gateway fronts.
    let gw = json!({"Node": "n1", "Address": "10.0.0.1",
        "Service": {"Kind": "ingress-gateway", "ID": "ing-1", "Service": "ing", "Port": 8080}});
    assert_eq!(put_json(&a, "/v1/catalog/register", &gw).await.0, 200);
    for service in ["web", "api"] {
        let (h, _) = get_json(&a, &format!("/v1/health/ingress/{service}")).await;
        assert_eq!(h.as_array().map(Vec::len), Some(1), "{service}: {h}");
        assert_eq!(h[0]["Service"]["ID"], "ing-1");
        assert_eq!(h[0]["Node"]["Node"], "n1");
    }
    let (h, _) = get_json(&a, "/v1/health/ingress/billing").await;
    assert_eq!(h, json!([]));

    // ?filter on a kind's fields and on intentions.
    let (sd, _) = get_json(&a, "/v1/config/service-defaults?filter=Protocol%20%3D%3D%20http").await;
    assert_eq!(sd.as_array().map(Vec::len), Some(1), "{sd}");
    let (sd, _) = get_json(&a, "/v1/config/service-defaults?filter=Protocol%20%3D%3D%20grpc").await;
    assert_eq!(sd, json!([]));
    assert_eq!(a.get("/v1/config/service-defaults?filter=Bogus%20%3D%3D%201").await.status, 400);
    let intentions = json!({"Kind": "service-intentions", "Name": "web",
        "Sources": [{"Name": "api", "Action": "allow"}, {"Name": "db", "Action": "deny"}]});
    assert_eq!(put_json(&a, "/v1/config", &intentions).await.0, 200);
    let (list, _) = get_json(&a, "/v1/connect/intentions?filter=Action%20%3D%3D%20deny").await;
    let sources: Vec<&str> =
        list.as_array().unwrap().iter().filter_map(|i| i["SourceName"].as_str()).collect();
    assert_eq!(sources, vec!["db"], "{list}");
    // Locality and Proxy selectors on the catalog.
    let (p, _) = get_json(
        &a,
        "/v1/catalog/service/web-sidecar-proxy?filter=ServiceProxy.DestinationServiceName%20%3D%3D%20web",
    )
    .await;
    assert_eq!(p.as_array().map(Vec::len), Some(1));
    assert_eq!(a.get("/v1/catalog/service/api?filter=ServiceLocality.Region%20%3D%3D%20x").await.status, 200);
}

#[test]
fn a_bad_bootstrap_config_entry_stops_validate_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entries.hcl");
    std::fs::write(
        &file,
        "server = true\ndata_dir = \"/tmp/x\"\nconfig_entries {\n  bootstrap {\n    kind = \"service-defaults\"\n    name = \"web\"\n    protocol = \"http\"\n  }\n  bootstrap {\n    kind = \"service-defaults\"\n    name = \"api\"\n    bogus = 1\n  }\n}\n",
    )
    .unwrap();
    let out = cli(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("config_entries.bootstrap[1]"), "{text}");
    assert!(text.contains("bogus"), "{text}");
}
