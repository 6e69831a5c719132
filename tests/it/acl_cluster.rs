//! ACLs across a real cluster: three servers and a client agent under
//! `default_policy = "deny"`. Writes through followers (raw commands need
//! the servers' secret), `?stale` reads on a follower, a client agent
//! that may not register itself until it is given an agent token (and says
//! so once, not once per retry), its cached decisions for its own endpoints
//! (narrowed policies take effect within `policy_ttl`), DNS with a DNS
//! token, and the down policy and agent recovery token with every server
//! stopped.

use crate::cluster::{agreed_leader, start_three};
use crate::harness::{wait_until, Agent};
use hyper::Method;
use serde_json::{json, Value};
use std::time::Duration;

const ROOT: &str = "6a3e8b1c-0d2f-4e5a-9b7c-1d2e3f4a5b6c";
const RECOVERY: &str = "recovery-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn acl_hcl(extra: &str) -> String {
    format!(
        r#"acl {{
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  token_ttl = "1s"
  policy_ttl = "1s"
  tokens {{
    initial_management = "{ROOT}"
    agent_recovery = "{RECOVERY}"
    {extra}
  }}
}}"#
    )
}

async fn call(
    a: &Agent,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let c = consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: token.map(str::to_string),
        datacenter: None,
        ..Default::default()
    })
    .expect("client");
    let body = body.map(|b| bytes::Bytes::from(b.to_string()));
    match c.request(method, path, body).await {
        Ok(r) => (r.status.as_u16(), r.text()),
        Err(e) => (0, e),
    }
}

async fn create(a: &Agent, path: &str, body: Value) -> Value {
    let (code, text) = call(a, Method::PUT, path, Some(ROOT), Some(body)).await;
    assert_eq!(code, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn dig(a: &Agent, name: &str) -> String {
    let out = std::process::Command::new("dig")
        .args([
            format!("@{}", a.ip),
            "-p".into(),
            "8600".into(),
            "+short".into(),
            "+time=2".into(),
            "+tries=1".into(),
            name.into(),
        ])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_by_default_cluster_with_a_client() {
    let hcl = acl_hcl("");
    let mut servers = start_three(&["-hcl", &hcl]);
    let refs: Vec<&Agent> = servers.iter().collect();
    let leader = agreed_leader(&refs, Duration::from_secs(60)).await;
    let ready = wait_until(Duration::from_secs(30), || async {
        call(&servers[0], Method::GET, "/v1/acl/token/self", Some(ROOT), None).await.0 == 200
    })
    .await;
    assert!(ready, "management token never worked\n{}", servers[0].output_text());

    // A token for app/ keys, used through every server: followers forward
    // the write to the leader with the servers' secret.
    create(
        &servers[0],
        "/v1/acl/policy",
        json!({"Name": "app", "Rules": "key_prefix \"app/\" { policy = \"write\" }"}),
    )
    .await;
    let app = create(&servers[0], "/v1/acl/token", json!({"Policies": [{"Name": "app"}]})).await;
    let app_secret = app["SecretID"].as_str().unwrap().to_string();
    for (i, s) in servers.iter().enumerate() {
        let (code, text) =
            call(s, Method::PUT, &format!("/v1/kv/app/{i}"), Some(&app_secret), Some(json!(i))).await;
        assert_eq!((code, text.as_str()), (200, "true"), "write through server {i}");
        let (code, text) = call(s, Method::PUT, "/v1/kv/other", Some(&app_secret), Some(json!(1))).await;
        assert_eq!(code, 403, "{text}");
        assert!(text.contains("lacks permission 'key:write' on \"other\""), "{text}");
    }
    // `?stale` on a follower answers from its own state, under the same rules.
    // Its state may lag the acknowledged writes: wait for the last one
    // (the log applies in order, so the others are there too).
    let follower = servers.iter().find(|s| !leader.starts_with(&format!("{}:", s.ip))).unwrap();
    let ok = wait_until(Duration::from_secs(10), || async {
        call(follower, Method::GET, "/v1/kv/app/2?stale", Some(&app_secret), None).await.0 == 200
    })
    .await;
    assert!(ok, "stale read with the right token never worked on the follower");
    assert_eq!(call(follower, Method::GET, "/v1/kv/app/0?stale", None, None).await.0, 403);
    let (code, body) = call(follower, Method::GET, "/v1/kv/?recurse&stale", Some(&app_secret), None).await;
    assert_eq!(code, 200);
    let keys: Vec<String> = serde_json::from_str::<Vec<Value>>(&body)
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, vec!["app/0", "app/1", "app/2"], "other keys filtered");

    // A client agent without an agent token may not register its node; it
    // says so once, however often anti-entropy retries.
    let server_ips: Vec<String> = servers.iter().map(|s| format!("-retry-join={}", s.ip)).collect();
    let mut args: Vec<String> = vec!["-hcl".into(), hcl.clone()];
    args.extend(server_ips);
    let client = Agent::on_own_ip("c1", &args);
    let joined = wait_until(Duration::from_secs(30), || async {
        call(&client, Method::GET, "/v1/agent/self", Some(ROOT), None).await.0 == 200
            && client.output_text().contains("anti-entropy sync refused by ACLs")
    })
    .await;
    assert!(joined, "client never reported the refused sync\n{}", client.output_text());
    let agent_token = create(
        &servers[0],
        "/v1/acl/token",
        json!({"NodeIdentities": [{"NodeName": "c1", "Datacenter": "dc1"}]}),
    )
    .await;
    let (code, text) = call(
        &client,
        Method::PUT,
        "/v1/agent/token/agent",
        Some(ROOT),
        Some(json!({"Token": agent_token["SecretID"]})),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    // A service registered on the client with a service token syncs with
    // that token; the node's own record with the agent token.
    let svc_token =
        create(&servers[0], "/v1/acl/token", json!({"ServiceIdentities": [{"ServiceName": "api"}]})).await;
    let (code, text) = call(
        &client,
        Method::PUT,
        "/v1/agent/service/register",
        svc_token["SecretID"].as_str(),
        Some(json!({"Name": "api", "Port": 9000})),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let synced = wait_until(Duration::from_secs(20), || async {
        let (_, body) = call(&servers[0], Method::GET, "/v1/catalog/node/c1", Some(ROOT), None).await;
        body.contains("\"Service\":\"api\"")
            && !client.output_text().contains("lacks permission 'service:write'")
    })
    .await;
    assert!(synced, "client never synced with its tokens\n{}", client.output_text());
    let (code, _) =
        call(&client, Method::PUT, "/v1/agent/service/deregister/api", svc_token["SecretID"].as_str(), None)
            .await;
    assert_eq!(code, 200);
    let gone = wait_until(Duration::from_secs(20), || async {
        let (_, body) = call(&servers[0], Method::GET, "/v1/catalog/node/c1", Some(ROOT), None).await;
        !body.contains("\"Service\":\"api\"")
    })
    .await;
    assert!(gone, "the deregistration never synced\n{}", client.output_text());
    let refused_lines = client.output_text().matches("anti-entropy sync refused by ACLs").count();
    assert!(
        refused_lines <= 2,
        "one line per distinct refusal, got {refused_lines}\n{}",
        client.output_text()
    );

    // The client decides its own endpoints from a cached resolution: a
    // narrowed policy takes effect within policy_ttl.
    let reader = create(
        &servers[0],
        "/v1/acl/policy",
        json!({"Name": "agent-read", "Rules": "agent_prefix \"\" { policy = \"read\" }"}),
    )
    .await;
    let t = create(&servers[0], "/v1/acl/token", json!({"Policies": [{"Name": "agent-read"}]})).await;
    let t_secret = t["SecretID"].as_str().unwrap().to_string();
    assert_eq!(call(&client, Method::GET, "/v1/agent/self", Some(&t_secret), None).await.0, 200);
    let pid = reader["ID"].as_str().unwrap();
    create(
        &servers[0],
        &format!("/v1/acl/policy/{pid}"),
        json!({"Name": "agent-read", "Rules": "agent_prefix \"\" { policy = \"deny\" }"}),
    )
    .await;
    let start = std::time::Instant::now();
    let narrowed = wait_until(Duration::from_secs(10), || async {
        call(&client, Method::GET, "/v1/agent/self", Some(&t_secret), None).await.0 == 403
    })
    .await;
    assert!(narrowed, "the client never applied the narrowed policy");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?} (policy_ttl 1s)");

    // DNS answers only what the DNS token may read.
    create(
        &servers[0],
        "/v1/catalog/register",
        json!({"Node": "ext", "Address": "10.9.8.7", "Service": {"Service": "web", "Port": 80}}),
    )
    .await;
    assert_eq!(dig(&client, "web.service.consul"), "", "anonymous DNS must see nothing under deny");
    let dns =
        create(&servers[0], "/v1/acl/token", json!({"TemplatedPolicies": [{"TemplateName": "builtin/dns"}]}))
            .await;
    let (code, _) = call(
        &client,
        Method::PUT,
        "/v1/agent/token/dns",
        Some(ROOT),
        Some(json!({"Token": dns["SecretID"]})),
    )
    .await;
    assert_eq!(code, 200);
    let resolves =
        wait_until(Duration::from_secs(10), || async { dig(&client, "web.service.consul") == "10.9.8.7" })
            .await;
    assert!(resolves, "DNS never answered with the DNS token");

    // Every server gone: the client keeps its cached answers (extend-cache),
    // refuses what it never resolved, and the recovery token still works.
    let kv_token_cached = call(&client, Method::GET, "/v1/agent/self", Some(ROOT), None).await.0;
    assert_eq!(kv_token_cached, 200);
    for s in servers.iter_mut() {
        s.kill9();
    }
    assert_eq!(
        call(&client, Method::GET, "/v1/agent/self", Some(ROOT), None).await.0,
        200,
        "cached management"
    );
    assert_eq!(
        call(&client, Method::GET, "/v1/agent/self", Some(RECOVERY), None).await.0,
        200,
        "agent recovery"
    );
    assert_eq!(
        call(&client, Method::GET, "/v1/agent/self", Some("11111111-2222-3333-4444-555555555555"), None)
            .await
            .0,
        403,
        "a token never resolved is refused while servers are down"
    );
    // No secret in any log.
    for s in servers.iter().chain([&client]) {
        let log = s.output_text();
        for secret in [ROOT, RECOVERY, app_secret.as_str(), t_secret.as_str()] {
            assert!(!log.contains(secret), "a secret appears in the log of {}", s.ip);
        }
    }
}
