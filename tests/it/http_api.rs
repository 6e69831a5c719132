//! Cross-cutting HTTP behaviour: status endpoints, ?pretty, ?dc, tokens,
//! unknown paths, methods, ACL endpoints.

use crate::harness::Agent;
use hyper::Method;

#[tokio::test]
async fn status_endpoints() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let leader: String = a.get("/v1/status/leader").await.json().unwrap();
    assert_eq!(leader, format!("{}:8300", a.ip));
    let peers: Vec<String> = a.get("/v1/status/peers").await.json().unwrap();
    assert_eq!(peers, vec![format!("{}:8300", a.ip)]);
}

#[tokio::test]
async fn pretty_dc_tokens_paths_methods() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    a.put("/v1/kv/p", b"v").await;
    let r = a.get("/v1/kv/p?pretty").await;
    let text = r.text();
    assert!(text.starts_with("[\n    {\n        \"LockIndex\": 0,"), "{text}");
    assert!(text.ends_with("]\n"));

    let r = a.get("/v1/kv/p?dc=elsewhere").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (500, "No path to datacenter"));
    assert_eq!(a.get("/v1/kv/p?dc=dc1").await.status, 200);

    // Tokens are accepted in every form (ACLs are off).
    let c = a.client();
    for (h, v) in [("X-Consul-Token", "abc"), ("Authorization", "Bearer abc")] {
        let req = hyper::Request::builder()
            .uri(format!("http://{}/v1/kv/p", a.addr()))
            .header(h, v)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(c.request(Method::GET, "/v1/kv/p?token=abc", None).await.unwrap().status, 200);
    assert_eq!(a.get("/v1/kv/p?unknown_param=1").await.status, 200, "unknown parameters are ignored");

    let r = a.get("/v1/nope").await;
    assert_eq!(r.status, 404);
    let r = a.get("/v1/connect/ca/roots").await;
    assert_eq!(r.status, 501, "known but not yet implemented endpoints say so");
    let r = a.get("/v1/acl/tokens").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (401, "ACL support disabled"));

    let r = c.request(Method::POST, "/v1/kv/p", None).await.unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.text(), "method POST not allowed");
    let allow = r.headers["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("PUT") && allow.contains("DELETE"), "{allow}");
    let r = c.request(Method::POST, "/v1/status/leader", None).await.unwrap();
    assert_eq!(r.status, 405);

    // -dev serves the UI, so `/` redirects to it (tests/it/ui.rs has the rest).
    let r = a.get("/").await;
    assert_eq!(r.status, 301);
}

/// `http_config.response_headers` reach every answer: API, errors, the UI;
/// a header the handler sets itself keeps the handler's value; a header
/// that cannot be sent stops the agent at load time.
#[tokio::test]
async fn response_headers_from_config_are_on_every_answer() {
    let hcl = r#"http_config { response_headers { "Access-Control-Allow-Origin" = "*", "Content-Type" = "text/x-ours", "X-Extra" = "1" } }"#;
    let a = Agent::dev(&["-hcl", hcl]);
    a.wait_ready().await;
    for path in ["/v1/status/leader", "/v1/kv/missing", "/v1/no/such/endpoint", "/ui/"] {
        let r = a.get(path).await;
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(h("access-control-allow-origin"), "*", "{path} ({})", r.status);
        assert_eq!(h("x-extra"), "1", "{path}");
        if path == "/v1/status/leader" {
            assert_eq!(h("content-type"), "application/json", "the handler's Content-Type wins");
        }
    }
    let (code, out) = crate::config_errors::start_with(
        &[("h.hcl", "data_dir = \"/tmp/x\"\nhttp_config { response_headers { \"Bad Name\" = \"v\" } }\n")],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("http_config.response_headers: invalid header name \"Bad Name\""), "{out}");
}

/// The header names of one HTTP/1.1 answer, exactly as they came over the
/// wire (a raw socket: no client library normalises their case).
async fn wire_header_names(addr: &str, path: &str, token: Option<&str>) -> (u16, Vec<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token.map(|t| format!("X-Consul-Token: {t}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("answer timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap();
    (status, lines.filter_map(|l| l.split_once(':')).map(|(k, _)| k.to_string()).collect())
}

/// Over HTTP/1.1 every header name is in Go's canonical form, as Consul
/// sends it and as shell scripts grep for it (`X-Consul-Knownleader`, not
/// `x-consul-knownleader` nor `X-Consul-KnownLeader`).
#[tokio::test]
async fn http1_header_names_are_gos_canonical_form() {
    const ROOT: &str = "8c1b2a44-0d5e-4f55-9a7e-3c2f5f7e9d10";
    let hcl = format!(
        r#"primary_datacenter = "dc1"
           translate_wan_addrs = true
           acl {{ enabled = true
                 default_policy = "deny"
                 tokens {{ initial_management = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    a.wait_ready().await;
    let root = consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: Some(ROOT.into()),
        ..Default::default()
    })
    .unwrap();
    let ready = crate::common::wait::wait_until(std::time::Duration::from_secs(30), || async {
        matches!(root.request(Method::GET, "/v1/acl/token/self", None).await, Ok(r) if r.status == 200)
    })
    .await;
    assert!(ready, "the initial management token never worked");
    // A token that reads nodes but no services: the service list it gets
    // is filtered.
    let policy = root
        .request(
            Method::PUT,
            "/v1/acl/policy",
            Some(r#"{"Name": "nodes", "Rules": "node_prefix \"\" { policy = \"read\" }"}"#.into()),
        )
        .await
        .unwrap();
    assert_eq!(policy.status, 200, "{}", policy.text());
    let token = root
        .request(Method::PUT, "/v1/acl/token", Some(r#"{"Policies": [{"Name": "nodes"}]}"#.into()))
        .await
        .unwrap();
    assert_eq!(token.status, 200, "{}", token.text());
    let secret = token.json::<serde_json::Value>().unwrap()["SecretID"].as_str().unwrap().to_string();

    let addr = a.addr();
    let want = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let (status, names) = wire_header_names(&addr, "/v1/catalog/nodes", Some(ROOT)).await;
    assert_eq!(status, 200);
    for n in want(&[
        "Content-Type",
        "X-Consul-Index",
        "X-Consul-Knownleader",
        "X-Consul-Lastcontact",
        "X-Consul-Effective-Consistency",
        "X-Consul-Default-Acl-Policy",
        "X-Consul-Translate-Addresses",
        "Content-Length",
        "Date",
    ]) {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let (status, names) = wire_header_names(&addr, "/v1/catalog/services?cached", Some(&secret)).await;
    assert_eq!(status, 200);
    for n in want(&["X-Consul-Results-Filtered-By-Acls", "X-Cache"]) {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let (status, names) = wire_header_names(&addr, "/v1/agent/metrics?format=prometheus", Some(ROOT)).await;
    assert_eq!(status, 200);
    assert!(names.contains(&"X-Consul-Reason".to_string()), "{names:?}");
    // Nothing goes out in any other spelling.
    for (_, names) in [
        wire_header_names(&addr, "/v1/catalog/nodes", Some(ROOT)).await,
        wire_header_names(&addr, "/v1/kv/nope", Some(ROOT)).await,
        wire_header_names(&addr, "/v1/agent/self", None).await,
    ] {
        for n in names {
            let canonical: String = n
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            assert_eq!(n, canonical, "header {n:?} is not in Go's canonical form");
        }
    }
}
