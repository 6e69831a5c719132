//! ACLs across datacenters: a primary (dc1) and two secondaries joined
//! over the WAN, one replicating tokens (dc2), one resolving them through
//! the primary (dc3). A policy written in the primary is enforced in the
//! secondaries within a stated bound (the replication lag is measured over
//! ten writes); writes made in a secondary land in the primary; a local
//! token never leaves its datacenter; `/v1/acl/replication` reports
//! Consul's fields. With the primary stopped, dc2 keeps serving what it
//! replicated and dc3 follows `down_policy`; when the primary returns,
//! both catch up by themselves.

use crate::harness::{wait_until, Agent};
use hyper::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ROOT: &str = "3c1f6a2e-8b4d-4f0a-9e7c-5d2b1a0f9e8d";
/// The bound within which a policy written in the primary must be
/// enforced in a replicating secondary (measured: well under a second on
/// loopback; the bound leaves room for a loaded CI machine).
const LAG_BOUND: Duration = Duration::from_secs(3);

fn hcl(primary: &str, extra_acl: &str, tokens: &str) -> String {
    format!(
        r#"primary_datacenter = "{primary}"
acl {{
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  token_ttl = "1s"
  {extra_acl}
  tokens {{
    agent = "{ROOT}"
    {tokens}
  }}
}}"#
    )
}

fn agent(name: &str, dc: &str, hcl: &str, extra: &[String]) -> Agent {
    let mut args = vec![
        format!("-datacenter={dc}"),
        "-server".to_string(),
        "-bootstrap".to_string(),
        "-retry-interval-wan=1s".to_string(),
        "-hcl".to_string(),
        hcl.to_string(),
    ];
    args.extend(extra.iter().cloned());
    Agent::on_own_ip(name, &args)
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

async fn ok_json(a: &Agent, method: Method, path: &str, body: Option<Value>) -> Value {
    let (code, text) = call(a, method, path, Some(ROOT), body).await;
    assert_eq!(code, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

async fn replication(a: &Agent) -> Value {
    ok_json(a, Method::GET, "/v1/acl/replication", None).await
}

/// Whether `token` may read key `key` in `a`'s datacenter (a missing key
/// answers 404 when allowed, 403 when not).
async fn may_read(a: &Agent, token: &str, key: &str) -> bool {
    call(a, Method::GET, &format!("/v1/kv/{key}"), Some(token), None).await.0 == 404
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_secondaries_replicate_resolve_and_survive_the_primary() {
    let mut dc1 = agent("p1", "dc1", &hcl("dc1", "", &format!(r#"initial_management = "{ROOT}""#)), &[]);
    let join = format!("-retry-join-wan={}", dc1.ip);
    let dc2 = agent(
        "s2",
        "dc2",
        &hcl("dc1", "enable_token_replication = true", &format!(r#"replication = "{ROOT}""#)),
        std::slice::from_ref(&join),
    );
    let dc3 = agent("s3", "dc3", &hcl("dc1", "", &format!(r#"replication = "{ROOT}""#)), &[join]);
    for a in [&dc1, &dc2, &dc3] {
        a.wait_ready().await;
    }

    // Replication starts by itself and says so with Consul's fields.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            let (code, text) = call(&dc2, Method::GET, "/v1/acl/replication", Some(ROOT), None).await;
            code == 200
                && serde_json::from_str::<Value>(&text).is_ok_and(|r| {
                    r["Running"] == true
                        && r["LastSuccess"] != "0001-01-01T00:00:00Z"
                        && r["ReplicatedTokenIndex"] != 0
                })
        })
        .await,
        "dc2 never replicated: {}\n{}",
        call(&dc2, Method::GET, "/v1/acl/replication", Some(ROOT), None).await.1,
        dc2.output_text()
    );
    let r = replication(&dc2).await;
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "Enabled",
        "LastError",
        "LastErrorMessage",
        "LastSuccess",
        "ReplicatedIndex",
        "ReplicatedRoleIndex",
        "ReplicatedTokenIndex",
        "ReplicationType",
        "Running",
        "SourceDatacenter",
    ];
    want.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, want, "{r}");
    assert_eq!((r["Enabled"].clone(), r["SourceDatacenter"].clone()), (json!(true), json!("dc1")), "{r}");
    assert_eq!(r["ReplicationType"], "tokens", "{r}");
    // (A round may have failed before the WAN join; the last success is later.)
    assert!(r["LastSuccess"].as_str() >= r["LastError"].as_str(), "{r}");
    assert!(r["ReplicatedIndex"].as_u64().unwrap() > 0, "{r}");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            replication(&dc3).await["Running"] == true && replication(&dc3).await["ReplicatedIndex"] != 0
        })
        .await,
        "dc3 never replicated policies: {}",
        replication(&dc3).await
    );
    let r3 = replication(&dc3).await;
    assert_eq!(
        (r3["ReplicationType"].clone(), r3["ReplicatedTokenIndex"].clone()),
        (json!("policies"), json!(0))
    );
    // The primary replicates from nobody.
    let r1 = replication(&dc1).await;
    assert_eq!((r1["Enabled"].clone(), r1["Running"].clone()), (json!(false), json!(false)), "{r1}");

    // A token of the primary with a policy of the primary.
    let app = ok_json(
        &dc1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "app", "Rules": r#"key_prefix "app/" { policy = "write" }"#})),
    )
    .await;
    let tok =
        ok_json(&dc1, Method::PUT, "/v1/acl/token", Some(json!({"Policies": [{"ID": app["ID"]}]}))).await;
    let secret = tok["SecretID"].as_str().unwrap().to_string();
    let accessor = tok["AccessorID"].as_str().unwrap().to_string();
    for a in [&dc2, &dc3] {
        assert!(
            wait_until(LAG_BOUND, || async {
                call(a, Method::PUT, "/v1/kv/app/x", Some(&secret), Some(json!("v"))).await.0 == 200
            })
            .await,
            "the primary's token never worked in {}: {:?}",
            a.addr(),
            call(a, Method::PUT, "/v1/kv/app/x", Some(&secret), Some(json!("v"))).await
        );
        assert_eq!(call(a, Method::PUT, "/v1/kv/other", Some(&secret), Some(json!("v"))).await.0, 403);
        // Its own token reads itself in the secondary too.
        let (code, text) = call(a, Method::GET, "/v1/acl/token/self", Some(&secret), None).await;
        assert_eq!(code, 200, "{text}");
        assert!(text.contains(&accessor), "{text}");
    }
    // `?dc=` from the primary with the primary's token: the secondary
    // resolves it (it used to answer "ACL not found").
    for dc in ["dc2", "dc3"] {
        let (code, text) =
            call(&dc1, Method::GET, &format!("/v1/kv/app/x?dc={dc}&raw"), Some(&secret), None).await;
        assert_eq!((code, text.as_str()), (200, "\"v\""), "?dc={dc}");
    }
    // A secret nobody issued is not found, in either kind of secondary.
    let stranger = "0b7c5a4e-1f2d-4c3b-8a9e-7d6f5e4c3b2a";
    for a in [&dc2, &dc3] {
        let (code, text) = call(a, Method::GET, "/v1/kv/app/x", Some(stranger), None).await;
        assert_eq!((code, text.trim()), (403, "ACL not found"), "{}", a.addr());
    }

    // Replication lag: a policy written in the primary, enforced in dc2.
    let mut lags = Vec::new();
    for i in 0..10 {
        let key = format!("lag{i}/k");
        let p = ok_json(
            &dc1,
            Method::PUT,
            "/v1/acl/policy",
            Some(json!({"Name": format!("lag{i}"), "Rules": format!(r#"key_prefix "lag{i}/" {{ policy = "read" }}"#)})),
        )
        .await;
        let mut policies: Vec<Value> = vec![json!({"ID": app["ID"]})];
        policies.push(json!({"ID": p["ID"]}));
        assert!(!may_read(&dc2, &secret, &key).await, "lag{i} readable before it was granted");
        ok_json(&dc1, Method::PUT, &format!("/v1/acl/token/{accessor}"), Some(json!({"Policies": policies})))
            .await;
        let start = Instant::now();
        assert!(
            wait_until(LAG_BOUND, || may_read(&dc2, &secret, &key)).await,
            "policy lag{i} not enforced in dc2 within {LAG_BOUND:?}"
        );
        lags.push(start.elapsed());
    }
    let med = median(lags.clone());
    eprintln!(
        "ACL replication lag (policy+token write in dc1 -> enforced in dc2): median {med:?}, all {lags:?}"
    );
    assert!(med < LAG_BOUND);

    // Bootstrap belongs to the primary.
    let (code, text) = call(&dc2, Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!((code, text.trim()), (401, "ACL support disabled"));

    // A policy written in a secondary is written in the primary.
    let from2 = ok_json(
        &dc2,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "from-dc2", "Rules": r#"node_prefix "" { policy = "read" }"#})),
    )
    .await;
    let in1 = ok_json(&dc1, Method::GET, "/v1/acl/policy/name/from-dc2", None).await;
    assert_eq!(in1["ID"], from2["ID"]);

    // Local tokens: dc2 (replicating tokens) creates them and keeps them;
    // they never reach dc1 or dc3. dc3 (not replicating tokens) may not
    // create any.
    let local = ok_json(
        &dc2,
        Method::PUT,
        "/v1/acl/token",
        Some(json!({"Local": true, "Description": "only dc2", "Policies": [{"Name": "app"}]})),
    )
    .await;
    let local_secret = local["SecretID"].as_str().unwrap().to_string();
    let local_accessor = local["AccessorID"].as_str().unwrap().to_string();
    assert_eq!(call(&dc2, Method::PUT, "/v1/kv/app/local", Some(&local_secret), Some(json!(1))).await.0, 200);
    for a in [&dc1, &dc3] {
        let (code, text) = call(a, Method::GET, "/v1/kv/app/x", Some(&local_secret), None).await;
        assert_eq!(code, 403, "{}: {text}", a.addr());
        let list = ok_json(a, Method::GET, "/v1/acl/tokens", None).await;
        assert!(!list.to_string().contains(&local_accessor), "local token listed in {}: {list}", a.addr());
    }
    let (code, text) =
        call(&dc3, Method::PUT, "/v1/acl/token", Some(ROOT), Some(json!({"Local": true}))).await;
    assert_eq!((code, text.trim()), (500, "Cannot upsert tokens within this datacenter"));
    // A local token may not name datacenters for a service identity.
    let (code, text) = call(
        &dc2,
        Method::PUT,
        "/v1/acl/token",
        Some(ROOT),
        Some(json!({"Local": true, "ServiceIdentities": [{"ServiceName": "web", "Datacenters": ["dc1"]}]})),
    )
    .await;
    assert_eq!(
        (code, text.trim()),
        (500, r#"Service identity "web" cannot specify a list of datacenters on a local token"#)
    );
    // A later replication round leaves dc2's local token alone.
    let before = replication(&dc2).await["ReplicatedTokenIndex"].as_u64().unwrap();
    ok_json(&dc1, Method::PUT, "/v1/acl/token", Some(json!({"Description": "bump"}))).await;
    assert!(
        wait_until(LAG_BOUND, || async {
            replication(&dc2).await["ReplicatedTokenIndex"].as_u64().unwrap() > before
        })
        .await
    );
    let (code, _) =
        call(&dc2, Method::GET, &format!("/v1/acl/token/{local_accessor}"), Some(ROOT), None).await;
    assert_eq!(code, 200, "dc2's local token went away after a replication round");

    // dc3 resolves through the primary (it sees the token's new policy
    // within token_ttl, 1 s here); the answer is now in its cache.
    assert!(wait_until(LAG_BOUND, || may_read(&dc3, &secret, "lag9/k")).await);

    // The primary stops.
    dc1.kill9();
    // dc2 serves what it replicated, tokens and policies alike.
    assert!(may_read(&dc2, &secret, "lag9/k").await);
    assert_eq!(call(&dc2, Method::PUT, "/v1/kv/app/y", Some(&secret), Some(json!(2))).await.0, 200);
    assert_eq!(call(&dc2, Method::PUT, "/v1/kv/app/z", Some(&local_secret), Some(json!(3))).await.0, 200);
    // dc3 follows down_policy = extend-cache: the token it resolved keeps
    // its rights past token_ttl; a token it never saw gets the default
    // policy (deny), not "ACL not found".
    let ttl_passed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || async { ttl_passed.elapsed() > Duration::from_millis(1500) })
            .await
    );
    assert!(
        may_read(&dc3, &secret, "lag9/k").await,
        "extend-cache lost the cached token: {:?}",
        call(&dc3, Method::GET, "/v1/kv/lag9/k", Some(&secret), None).await
    );
    let (code, text) = call(&dc3, Method::GET, "/v1/kv/app/x", Some(stranger), None).await;
    assert_eq!(code, 403, "{text}");
    assert!(
        text.starts_with("Permission denied: token with AccessorID 'primary-dc-down'"),
        "down policy not applied: {text}"
    );
    // Writes that belong to the primary fail with a clear error.
    let (code, text) = call(
        &dc2,
        Method::PUT,
        "/v1/acl/policy",
        Some(ROOT),
        Some(json!({"Name": "while-down", "Rules": ""})),
    )
    .await;
    assert!(code >= 500, "{code} {text}");
    // Replication reports the outage.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            let r = replication(&dc2).await;
            r["LastErrorMessage"] != "" && r["LastError"] != "0001-01-01T00:00:00Z"
        })
        .await,
        "{}",
        replication(&dc2).await
    );

    // The primary returns: both secondaries catch up by themselves.
    dc1.restart();
    dc1.wait_ready().await;
    let back = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            call(
                &dc1,
                Method::PUT,
                "/v1/acl/policy",
                Some(ROOT),
                Some(json!({"Name": "after", "Rules": r#"key_prefix "after/" { policy = "read" }"#})),
            )
            .await
            .0 == 200
        })
        .await,
        "the primary never took writes again"
    );
    ok_json(
        &dc1,
        Method::PUT,
        &format!("/v1/acl/token/{accessor}"),
        Some(json!({"Policies": [{"ID": app["ID"]}, {"Name": "after"}]})),
    )
    .await;
    for a in [&dc2, &dc3] {
        assert!(
            wait_until(Duration::from_secs(30), || may_read(a, &secret, "after/k")).await,
            "{} never caught up after the primary returned: {}",
            a.addr(),
            replication(a).await
        );
    }
    eprintln!("secondaries caught up {:?} after the primary was back", back.elapsed());
    let r = replication(&dc2).await;
    assert_eq!(r["Running"], true, "{r}");
    // The stranger is "not found" again in dc3 (the primary answers).
    assert!(
        wait_until(Duration::from_secs(10), || async {
            call(&dc3, Method::GET, "/v1/kv/app/x", Some(stranger), None).await.1.trim() == "ACL not found"
        })
        .await
    );
}

/// An agent's config with ACLs on, the given down policy and a 1 s token TTL.
fn acl_hcl(primary: &str, down_policy: &str, tokens: &str) -> String {
    format!(
        r#"primary_datacenter = "{primary}"
acl {{
  enabled = true
  default_policy = "deny"
  down_policy = "{down_policy}"
  token_ttl = "1s"
  tokens {{
    agent = "{ROOT}"
    {tokens}
  }}
}}"#
    )
}

/// Waits until `since` is `d` old (no sleeping: a deadline-bound wait).
async fn until_elapsed(since: Instant, d: Duration) {
    assert!(wait_until(d + Duration::from_secs(5), || async { since.elapsed() > d }).await);
}

/// A secondary (dc2) that resolves tokens through the primary, with
/// `async-cache`, and two client agents of dc2 (down policies `deny` and
/// `allow`). dc2 starts with a replication token that may not read ACLs:
/// replication reports why, keeps running and retrying, and recovers once
/// the token is replaced. Requests through the clients resolve via dc2's
/// server; `async-cache` answers a stale entry at once and refreshes it
/// in the background; with the primary stopped the clients follow their
/// own down policies for a token nobody saw. Auth methods are refused in a
/// secondary that does not replicate tokens (Consul's text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_clients_async_cache_and_a_weak_replication_token() {
    const WEAK: &str = "5e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b";
    let mut dc1 = agent(
        "p1",
        "dc1",
        &acl_hcl("dc1", "extend-cache", &format!(r#"initial_management = "{ROOT}""#)),
        &[],
    );
    let join_wan = format!("-retry-join-wan={}", dc1.ip);
    let dc2 = agent(
        "s2",
        "dc2",
        &acl_hcl("dc1", "async-cache", &format!(r#"replication = "{WEAK}""#)),
        std::slice::from_ref(&join_wan),
    );
    let client_of_dc2 = |name: &str, down: &str| {
        Agent::on_own_ip(
            name,
            &[
                "-datacenter=dc2".to_string(),
                format!("-retry-join={}", dc2.ip),
                "-hcl".to_string(),
                acl_hcl("dc1", down, ""),
            ],
        )
    };
    // A secondary replicating tokens with a token that may only read ACLs.
    const READER: &str = "6f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b";
    let dc3 = agent(
        "s3",
        "dc3",
        &acl_hcl("dc1", "extend-cache", &format!(r#"replication = "{READER}""#))
            .replace("acl {", "acl {\n  enable_token_replication = true"),
        std::slice::from_ref(&join_wan),
    );
    let c_deny = client_of_dc2("c2deny", "deny");
    let c_allow = client_of_dc2("c2allow", "allow");
    for a in [&dc1, &dc2, &dc3, &c_deny, &c_allow] {
        a.wait_ready().await;
    }

    // The replication token exists but grants nothing.
    ok_json(&dc1, Method::PUT, "/v1/acl/token", Some(json!({"SecretID": WEAK, "Description": "weak"}))).await;
    let weak_refusal = |r: &Value| {
        r["LastErrorMessage"].as_str().is_some_and(|m| {
            m.starts_with("failed to retrieve remote ACL policies: Permission denied: token with AccessorID")
                && m.ends_with("lacks permission 'acl:read'")
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || async { weak_refusal(&replication(&dc2).await) }).await,
        "{}",
        replication(&dc2).await
    );
    let r = replication(&dc2).await;
    assert_eq!(
        (r["Running"].clone(), r["LastSuccess"].clone(), r["ReplicationType"].clone()),
        (json!(true), json!("0001-01-01T00:00:00Z"), json!("policies")),
        "{r}"
    );
    // It retries (LastError moves on; the back-off is capped at 4 s).
    let first_error = r["LastError"].as_str().unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(15), || async {
            let r = replication(&dc2).await;
            weak_refusal(&r) && r["LastError"].as_str().unwrap() > first_error.as_str()
        })
        .await,
        "no retry after {first_error}: {}",
        replication(&dc2).await
    );
    // A token with rights, set at run time: replication recovers by itself.
    let (code, text) =
        call(&dc2, Method::PUT, "/v1/agent/token/replication", Some(ROOT), Some(json!({"Token": ROOT})))
            .await;
    assert_eq!(code, 200, "{text}");
    assert!(
        wait_until(Duration::from_secs(15), || async {
            let r = replication(&dc2).await;
            r["LastSuccess"] != "0001-01-01T00:00:00Z" && r["ReplicatedIndex"] != 0 && r["Running"] == true
        })
        .await,
        "{}",
        replication(&dc2).await
    );

    // acl:read without acl:write: policies and roles are copied, tokens
    // are not, and replication says why (Consul's text).
    let reader_policy = ok_json(
        &dc1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "acl-reader", "Rules": r#"acl = "read""#})),
    )
    .await;
    ok_json(
        &dc1,
        Method::PUT,
        "/v1/acl/token",
        Some(json!({"SecretID": READER, "Policies": [{"ID": reader_policy["ID"]}]})),
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            let r = replication(&dc3).await;
            r["LastErrorMessage"]
                == "failed to retrieve unredacted tokens - replication token in use does not grant acl:write"
                && r["ReplicatedIndex"] != 0
                && r["LastSuccess"] != "0001-01-01T00:00:00Z"
        })
        .await,
        "{}",
        replication(&dc3).await
    );
    let r = replication(&dc3).await;
    assert_eq!(
        (r["Running"].clone(), r["ReplicationType"].clone(), r["ReplicatedTokenIndex"].clone()),
        (json!(true), json!("tokens"), json!(0)),
        "{r}"
    );

    // Auth methods need token replication in a secondary.
    let (code, text) = call(&dc2, Method::GET, "/v1/acl/auth-methods", Some(ROOT), None).await;
    assert_eq!((code, text.trim()), (500, "Token replication is required for auth methods to function"));

    // A token of the primary works through dc2's client agents (they ask
    // dc2's server, which asks the primary).
    let app = ok_json(
        &dc1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "app", "Rules": r#"key_prefix "app/" { policy = "write" } agent_prefix "" { policy = "read" }"#})),
    )
    .await;
    let tok =
        ok_json(&dc1, Method::PUT, "/v1/acl/token", Some(json!({"Policies": [{"ID": app["ID"]}]}))).await;
    let secret = tok["SecretID"].as_str().unwrap().to_string();
    let accessor = tok["AccessorID"].as_str().unwrap().to_string();
    for c in [&c_deny, &c_allow] {
        let (code, text) = call(c, Method::PUT, "/v1/kv/app/x", Some(&secret), Some(json!("v"))).await;
        assert_eq!(code, 200, "{}: {text}", c.addr());
        assert_eq!(call(c, Method::PUT, "/v1/kv/other", Some(&secret), Some(json!("v"))).await.0, 403);
        // An agent endpoint, decided by the client agent itself.
        assert_eq!(call(c, Method::GET, "/v1/agent/self", Some(&secret), None).await.0, 200, "{}", c.addr());
    }

    // async-cache in dc2's server: after token_ttl, the cached answer is
    // served at once (without the grant the primary just added) while a
    // background refresh fetches the new one.
    assert!(!may_read(&dc2, &secret, "more/k").await);
    let resolved = Instant::now();
    let more = ok_json(
        &dc1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "more", "Rules": r#"key_prefix "more/" { policy = "read" }"#})),
    )
    .await;
    ok_json(
        &dc1,
        Method::PUT,
        &format!("/v1/acl/token/{accessor}"),
        Some(json!({"Policies": [{"ID": app["ID"]}, {"ID": more["ID"]}]})),
    )
    .await;
    until_elapsed(resolved, Duration::from_millis(1200)).await;
    assert!(
        !may_read(&dc2, &secret, "more/k").await,
        "async-cache waited for the primary instead of answering from its cache"
    );
    assert!(
        wait_until(Duration::from_secs(5), || may_read(&dc2, &secret, "more/k")).await,
        "the background refresh never landed"
    );

    // The primary stops. A token nobody has seen: each client agent
    // follows its own down policy for its own endpoints.
    dc1.kill9();
    let stranger = "0b7c5a4e-1f2d-4c3b-8a9e-7d6f5e4c3b2a";
    let (code, text) = call(&c_deny, Method::GET, "/v1/agent/self", Some(stranger), None).await;
    assert_eq!(code, 403, "down_policy = deny let a stranger in: {text}");
    let (code, text) = call(&c_allow, Method::GET, "/v1/agent/self", Some(stranger), None).await;
    assert_eq!(code, 200, "down_policy = allow refused a stranger: {text}");
    // Both still serve the known token: async-cache in dc2's server keeps
    // its cached answer while the primary is away.
    until_elapsed(Instant::now(), Duration::from_millis(1200)).await;
    assert!(may_read(&dc2, &secret, "more/k").await, "async-cache dropped the cached token");
    for c in [&c_deny, &c_allow] {
        let (code, text) = call(c, Method::PUT, "/v1/kv/app/y", Some(&secret), Some(json!("v"))).await;
        assert_eq!(code, 200, "{}: {text}", c.addr());
    }
}
