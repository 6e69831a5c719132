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
