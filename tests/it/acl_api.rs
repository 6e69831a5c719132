//! `/v1/acl/*` as the public client libraries see it: the JSON shapes,
//! status codes and error texts that py-consul's, rs-consul's and
//! Consul's own API tests rely on. Each check here is a difference from
//! Consul 1.2x found by running those suites against a dev agent; see
//! docs/acl.md for the endpoints' use.

use crate::harness::Agent;
use consul::api::{ApiResponse, Client, ClientConfig};
use hyper::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// 32 hex digits without dashes, as py-consul's harness makes its
/// initial management token (`uuid4().hex`): Consul accepts it.
const ROOT: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

struct Acl {
    agent: Agent,
    root: Client,
    anon: Client,
}

impl Acl {
    async fn start() -> Acl {
        let hcl = format!(
            r#"primary_datacenter = "dc1"
               acl {{ enabled = true
                     tokens {{ initial_management = "{ROOT}" }} }}"#
        );
        let agent = Agent::dev(&["-hcl", &hcl]);
        agent.wait_ready().await;
        let client = |token: Option<&str>| {
            Client::new(ClientConfig {
                address: agent.addr(),
                token: token.map(str::to_string),
                ..Default::default()
            })
            .unwrap()
        };
        let (root, anon) = (client(Some(ROOT)), client(None));
        let ready = crate::common::wait::wait_until(Duration::from_secs(30), || async {
            matches!(root.request(Method::GET, "/v1/acl/token/self", None).await,
                Ok(r) if r.status.is_success())
        })
        .await;
        assert!(ready, "the initial management token never worked\n{}", agent.output_text());
        Acl { agent, root, anon }
    }

    async fn call(&self, c: &Client, method: Method, path: &str, body: Option<Value>) -> ApiResponse {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap().into());
        c.request(method, path, body).await.unwrap()
    }

    async fn root(&self, method: Method, path: &str, body: Option<Value>) -> ApiResponse {
        self.call(&self.root, method, path, body).await
    }

    async fn ok_json(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let r = self.root(method.clone(), path, body).await;
        assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.text());
        r.json().unwrap()
    }
}

fn status_text(r: &ApiResponse) -> (u16, String) {
    (r.status.as_u16(), r.text())
}

/// RFC 3339 in UTC as Go prints a `time.Time`: no fixed fraction width,
/// trailing zeros dropped (py-consul and the Go client parse it).
fn is_go_time(s: &str) -> bool {
    let Some(body) = s.strip_suffix('Z') else { return false };
    let b = body.as_bytes();
    body.len() >= 19 && b[4] == b'-' && b[10] == b'T' && !(body.contains('.') && body.ends_with('0'))
}

#[tokio::test]
async fn token_json_is_shaped_as_consuls() {
    let acl = Acl::start().await;

    // The initial management token: a non-UUID secret, Consul's
    // description, the global-management link with its name.
    let me = acl.ok_json(Method::GET, "/v1/acl/token/self", None).await;
    assert_eq!(me["SecretID"], ROOT);
    assert_eq!(me["Description"], "Initial Management Token");
    assert_eq!(
        me["Policies"],
        json!([{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}])
    );
    // Hash: base64 of a 32-byte digest, like Consul's blake2b-256.
    let hash = me["Hash"].as_str().unwrap();
    assert_eq!(hash.len(), 44, "{hash}");
    assert!(is_go_time(me["CreateTime"].as_str().unwrap()), "{}", me["CreateTime"]);
    // Empty lists are left out, never null.
    for absent in ["Roles", "ServiceIdentities", "NodeIdentities", "TemplatedPolicies", "AuthMethod"] {
        assert!(me.get(absent).is_none(), "{absent} in {me}");
    }

    // ExpirationTTL becomes ExpirationTime and is not echoed back.
    let t = acl
        .ok_json(Method::PUT, "/v1/acl/token", Some(json!({"Description": "x", "ExpirationTTL": "10m"})))
        .await;
    assert!(t.get("ExpirationTTL").is_none(), "{t}");
    assert!(is_go_time(t["ExpirationTime"].as_str().unwrap()), "{t}");

    // Templated policies read back with Consul's lower-case `name` variable,
    // whichever case the request used.
    for sent in ["name", "Name"] {
        let t = acl
            .ok_json(
                Method::PUT,
                "/v1/acl/token",
                Some(json!({"TemplatedPolicies": [
                    {"TemplateName": "builtin/service", "TemplateVariables": {sent: "web"}}]})),
            )
            .await;
        let want = json!([{"TemplateName": "builtin/service", "TemplateVariables": {"name": "web"}}]);
        assert_eq!(t["TemplatedPolicies"], want, "sent {sent}");
        let path = format!("/v1/acl/token/{}", t["AccessorID"].as_str().unwrap());
        assert_eq!(acl.ok_json(Method::GET, &path, None).await["TemplatedPolicies"], want);
    }

    // The policy listing's stubs: no Rules, Datacenters always present.
    let list = acl.ok_json(Method::GET, "/v1/acl/policies", None).await;
    let gm = list.as_array().unwrap().iter().find(|p| p["Name"] == "global-management").unwrap();
    assert!(gm.get("Rules").is_none(), "{gm}");
    assert_eq!(gm.get("Datacenters"), Some(&Value::Null), "{gm}");
    let full = acl.ok_json(Method::GET, "/v1/acl/policy/00000000-0000-0000-0000-000000000001", None).await;
    // The built-in shows its rules and a hash, as Consul's does.
    assert!(full["Rules"].as_str().unwrap().contains("acl = \"write\""), "{full}");
    assert_eq!(full["Hash"].as_str().unwrap().len(), 44, "{full}");
    assert!(full.get("Datacenters").is_none(), "{full}");

    // Bootstrap is refused here (the initial management token did it), with
    // Consul's text and the reset index to write to acl-bootstrap-reset.
    let r = acl.call(&acl.anon, Method::PUT, "/v1/acl/bootstrap", None).await;
    let (code, text) = status_text(&r);
    assert_eq!(code, 403, "{text}");
    assert!(text.starts_with("Permission denied: ACL bootstrap no longer allowed (reset index: "), "{text}");
    drop(acl.agent);
}

#[tokio::test]
async fn acl_errors_have_consuls_status_codes_and_texts() {
    let acl = Acl::start().await;
    let missing = "6d3f5e1a-7b2c-4d8e-9f01-23456789abcd";

    // Reads of policies and roles that are not there: 404 (py-consul reads
    // them as None); a token that is not there: 403 (it expects an error).
    let r = acl.root(Method::GET, &format!("/v1/acl/token/{missing}"), None).await;
    assert_eq!(status_text(&r), (403, "ACL not found".into()));
    for (path, what) in [
        (format!("/v1/acl/policy/{missing}"), "policy"),
        (format!("/v1/acl/role/{missing}"), "role"),
        ("/v1/acl/policy/name/nope".to_string(), "policy"),
        ("/v1/acl/role/name/nope".to_string(), "role"),
    ] {
        let r = acl.root(Method::GET, &path, None).await;
        assert_eq!(
            status_text(&r),
            (404, format!("Requested {what} does not exist: ACL not found")),
            "{path}"
        );
    }
    // An ID the lookup index refuses: an error, not "nothing there".
    let r = acl.root(Method::GET, "/v1/acl/policy/unknown", None).await;
    assert_eq!(
        status_text(&r),
        (500, "failed acl policy lookup: index error: UUID must be 36 characters".into())
    );
    assert_eq!(acl.root(Method::GET, "/v1/acl/token/unknown", None).await.status, 500);

    // Update of a token that does not exist: Consul's RPC error, a 500
    // (a 404 would read as "nothing to update" to clients).
    let r =
        acl.root(Method::PUT, &format!("/v1/acl/token/{missing}"), Some(json!({"Description": "d"}))).await;
    assert_eq!(status_text(&r), (500, format!("Cannot find token {missing:?}")));
    let r = acl.root(Method::PUT, "/v1/acl/token/unknown", Some(json!({}))).await;
    assert_eq!(status_text(&r), (500, "AccessorID is not a valid UUID".into()));
    // Clone of a missing token: ACL not found.
    let r = acl.root(Method::PUT, &format!("/v1/acl/token/{missing}/clone"), None).await;
    assert_eq!(status_text(&r), (403, "ACL not found".into()));
    // Deleting what is not there is fine.
    let r = acl.root(Method::DELETE, &format!("/v1/acl/token/{missing}"), None).await;
    assert_eq!(status_text(&r), (200, "true".into()));

    // Validation failures come back as 500s with the server's text.
    let p = acl.ok_json(Method::PUT, "/v1/acl/policy", Some(json!({"Name": "dup"}))).await;
    let r = acl.root(Method::PUT, "/v1/acl/policy", Some(json!({"Name": "dup"}))).await;
    assert_eq!(status_text(&r), (500, "Invalid Policy: A Policy with Name \"dup\" already exists".into()));
    let r = acl.root(Method::PUT, "/v1/acl/policy", Some(json!({"Name": ""}))).await;
    assert_eq!(status_text(&r), (500, "Invalid Policy: no Name is set".into()));
    let r = acl.root(Method::PUT, "/v1/acl/policy", Some(json!({"ID": p["ID"], "Name": "x"}))).await;
    assert_eq!(status_text(&r), (400, "Cannot specify the ID when creating a new policy".into()));
    let r = acl.root(Method::PUT, "/v1/acl/role", Some(json!({"Name": ""}))).await;
    assert_eq!(status_text(&r), (500, "Invalid Role: no Name is set".into()));
    let r = acl.root(Method::PUT, "/v1/acl/token", Some(json!({"AccessorID": "nope"}))).await;
    assert_eq!(status_text(&r), (500, "Invalid Token: AccessorID - not a valid UUID".into()));
    let r = acl
        .root(
            Method::PUT,
            "/v1/acl/token",
            Some(json!({"AccessorID": "00000000-0000-0000-0000-000000000042"})),
        )
        .await;
    assert_eq!(
        status_text(&r),
        (
            500,
            "Invalid Token: AccessorID - UUIDs with the prefix \"00000000-0000-0000-0000-0000000000\" are reserved"
                .into()
        )
    );
    let r = acl.root(Method::PUT, "/v1/acl/token", Some(json!({"ExpirationTTL": "10s"}))).await;
    assert_eq!(
        status_text(&r),
        (500, "ExpirationTime cannot be less than 1m0s in the future (was 10s)".into())
    );
    let r = acl
        .root(
            Method::PUT,
            "/v1/acl/token",
            Some(json!({"Local": true,
        "ServiceIdentities": [{"ServiceName": "web", "Datacenters": ["dc1"]}]})),
        )
        .await;
    assert_eq!(
        status_text(&r),
        (500, "Service identity \"web\" cannot specify a list of datacenters on a local token".into())
    );
    let r = acl.root(Method::PUT, "/v1/acl/token", Some(json!({"AuthMethod": "m"}))).await;
    assert_eq!(status_text(&r), (500, "AuthMethod field is disallowed outside of login".into()));
    let r = acl.call(&acl.root, Method::PUT, "/v1/acl/token", None).await;
    assert!(r.status.is_success(), "an empty body creates a token: {}", r.text());
    let r = acl.root.request(Method::PUT, "/v1/acl/token", Some("{".into())).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Token decoding failed: "), "{}", r.text());

    // Login names an auth method; none exist, so: ACL not found. Logout
    // needs a token made by a login.
    let r = acl
        .call(&acl.anon, Method::POST, "/v1/acl/login", Some(json!({"AuthMethod": "m", "BearerToken": "x"})))
        .await;
    assert_eq!(status_text(&r), (403, "ACL not found".into()));
    let r = acl.call(&acl.anon, Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(status_text(&r), (401, "Supplied token does not exist".into()));
    let stranger = Client::new(ClientConfig {
        address: acl.agent.addr(),
        token: Some(missing.into()),
        ..Default::default()
    })
    .unwrap();
    let r = acl.call(&stranger, Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(status_text(&r), (403, "ACL not found".into()));
    let r = acl.root(Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(status_text(&r), (403, "Permission denied: token wasn't created via login".into()));
}

/// The way back in when every management token is lost: the refusal names
/// the reset index, the operator writes it to `acl-bootstrap-reset` in the
/// leader's data dir, and bootstrap works once more. The file is used up
/// whether its number was right or not.
#[tokio::test]
async fn bootstrap_reset_uses_the_index_from_the_refusal_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = Agent::server(Some(dir.path()), &["-hcl", "acl { enabled = true }"]);
    a.wait_ready().await;
    let reset_file = dir.path().join("acl-bootstrap-reset");
    let bootstrap = || async { a.put("/v1/acl/bootstrap", b"").await };
    let ok = crate::common::wait::wait_until(Duration::from_secs(30), || async {
        bootstrap().await.status.is_success()
    })
    .await;
    assert!(ok, "bootstrap never worked\n{}", a.output_text());

    let refused_index = |r: &ApiResponse| -> u64 {
        let (code, text) = status_text(r);
        assert_eq!(code, 403, "{text}");
        let n = text
            .strip_prefix("Permission denied: ACL bootstrap no longer allowed (reset index: ")
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{text}"));
        n.parse().unwrap()
    };
    let index = refused_index(&bootstrap().await);

    std::fs::write(&reset_file, format!("{}\n", index + 1)).unwrap();
    let r = bootstrap().await;
    assert_eq!(
        status_text(&r),
        (500, format!("Invalid bootstrap reset index (specified {}, reset index: {index})", index + 1))
    );
    assert!(!reset_file.exists(), "a wrong reset file is used up too");
    assert_eq!(refused_index(&bootstrap().await), index);

    std::fs::write(&reset_file, format!("{index}\n")).unwrap();
    let r = bootstrap().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t: Value = r.json().unwrap();
    assert_eq!(t["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(t["ID"], t["SecretID"]);
    assert!(!reset_file.exists());
    // Bootstrap is closed again, at the new index.
    assert!(refused_index(&bootstrap().await) > index);
}
