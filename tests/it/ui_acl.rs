//! The web UI's ACL part in a real headless Chromium, against `consul agent
//! -dev` with ACLs on and `default_policy = "deny"`: logged out the pages
//! say permission denied; the login checks the secret; policies (a bad rule
//! explained inline, then a good one), tokens, and what a limited token
//! sees; deleting both again.

use crate::harness::{wait_until, Agent};
use crate::ui::shoot;
use crate::webdriver::{self, Browser};
use consul::api::{ApiResponse, Client, ClientConfig};
use hyper::Method;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const ROOT: &str = "3b6d1f0e-7c2a-4e58-9a41-5f0c2d8e9b17";

async fn api(c: &Client, method: Method, path: &str, body: Option<Value>) -> ApiResponse {
    c.request(method, path, body.map(|b| b.to_string().into_bytes().into())).await.expect("API call")
}

/// The `data-…` attribute values of the rows of a list, by CSS selector.
async fn names(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let v = b
        .js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]))",
            json!([css, attr]),
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

async fn log_in(b: &Browser, secret: &str, expect: &str) {
    b.click("#token-button").await;
    b.type_into("#login-secret", secret).await;
    b.click("#login-submit").await;
    assert!(b.wait_text("#token-button", expect, T).await, "login as {expect}: {:?}", b.text("#login").await);
}

#[tokio::test]
async fn acl_pages_in_a_real_browser() {
    if !webdriver::available() {
        eprintln!("NOTICE: chromium/chromedriver not found (apt-get install -y chromium chromium-driver); skipping browser test");
        return;
    }
    // The agent token lets anti-entropy write the services below.
    let hcl = format!(
        r#"acl {{ enabled = true
                 default_policy = "deny"
                 tokens {{ initial_management = "{ROOT}" agent = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    let (browser, ()) = tokio::join!(Browser::start(1280, 800), a.wait_ready());
    let b = browser;
    let root = Client::new(ClientConfig {
        address: a.addr(),
        token: Some(ROOT.into()),
        datacenter: None,
        ..Default::default()
    })
    .expect("client");
    for name in ["web", "db"] {
        let svc = json!({"Name": name, "Port": 80});
        let r = api(&root, Method::PUT, "/v1/agent/service/register", Some(svc)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let synced = wait_until(T, || async {
        let r = api(&root, Method::GET, "/v1/catalog/services", None).await;
        r.json::<Value>().is_ok_and(|v| v.get("web").is_some() && v.get("db").is_some())
    })
    .await;
    assert!(synced, "services never reached the catalog\n{}", a.output_text());
    let base = format!("http://{}", a.addr());

    // Logged out: a login prompt, and the list says permission denied.
    b.goto(&format!("{base}/ui/")).await;
    assert!(b.wait_text("#services", "Permission denied", T).await, "{:?}", b.text("main").await);
    assert!(b.text("#login-prompt").await.is_some_and(|t| t.contains("not logged in")));
    assert_eq!(b.text("#token-button").await.as_deref(), Some("Log in"));
    shoot(&b, "acl-logged-out").await;

    // A wrong secret is refused in the dialog and not kept.
    b.click("#login-prompt button").await;
    b.type_into("#login-secret", "00000000-1111-2222-3333-444444444444").await;
    b.click("#login-submit").await;
    assert!(
        b.wait_text("#login-error", "No token has this SecretID", T).await,
        "{:?}",
        b.text("#login").await
    );
    b.type_into("#login-secret", ROOT).await;
    b.click("#login-submit").await;
    assert!(b.wait_text("#token-button", "Initial Management Token", T).await);
    assert!(b.wait_text("#services", "db", T).await, "{:?}", b.text("main").await);
    b.click("#token-button").await;
    let me: Value = api(&root, Method::GET, "/v1/acl/token/self", None).await.json().unwrap();
    assert!(b.wait_text("#login-accessor", me["AccessorID"].as_str().unwrap(), T).await);
    b.click("#login .actions button.secondary:last-child").await; // Cancel

    // Policies: the built-in one is read-only; a bad rule is explained
    // inline with its line, then a good one is saved.
    b.click("#nav a[data-section='acls/policies']").await;
    assert!(b.wait_text("#policies", "global-management", T).await, "{:?}", b.text("main").await);
    b.click("#policies a[data-policy='global-management']").await;
    assert!(b.wait_text("#policy-builtin", "read-only", T).await);
    assert_eq!(
        b.js("return [document.getElementById('policy-rules').readOnly, !document.getElementById('policy-save')]", json!([])).await,
        json!([true, true])
    );
    b.click(".crumbs a").await;
    assert!(b.wait_text("#policies", "global-management", T).await);
    b.click("#policy-new").await;
    assert!(b.wait_text("h1", "New policy", T).await);
    b.type_into("#policy-name", "web-read").await;
    b.type_into("#policy-rules", "service \"web\" {\n  policy = \"reed\"\n}\n").await;
    b.click("#policy-save").await;
    assert!(b.wait_text("#policy-error", "(line 2)", T).await, "{:?}", b.text("main").await);
    assert!(b.text("#policy-error").await.unwrap_or_default().contains("reed"));
    shoot(&b, "acl-policy-error").await;
    b.type_into(
        "#policy-rules",
        "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }\n",
    )
    .await;
    b.click("#policy-save").await;
    assert!(b.wait_text("h1", "web-read", T).await, "{:?}", b.text("main").await);
    let policy: Value = api(&root, Method::GET, "/v1/acl/policy/name/web-read", None).await.json().unwrap();
    assert!(policy["Rules"].as_str().unwrap().contains("node_prefix"), "{policy}");

    // A token with that policy; its SecretID is shown (masked) once created.
    b.click("#nav a[data-section='acls/tokens']").await;
    assert!(b.wait_text("#tokens", "Initial Management Token", T).await, "{:?}", b.text("main").await);
    b.click("#token-new").await;
    assert!(b.wait_text("#token-policies", "web-read", T).await);
    b.type_into("#token-description", "web reader").await;
    b.click("#token-policies input[data-name='web-read']").await;
    b.click("#token-save").await;
    assert!(b.wait_text("#token-notice", "Created", T).await, "{:?}", b.text("main").await);
    let secret = b.js("return document.getElementById('token-secret').value", json!([])).await;
    let secret = secret.as_str().expect("a SecretID").to_string();
    assert_eq!(b.js("return document.getElementById('token-secret').type", json!([])).await, "password");
    assert!(!b.text("main").await.unwrap_or_default().contains(&secret), "the secret is masked");
    let accessor = b.text("#token-accessor").await.unwrap();
    let token: Value =
        api(&root, Method::GET, &format!("/v1/acl/token/{accessor}"), None).await.json().unwrap();
    assert_eq!(
        (token["SecretID"].as_str(), &token["Policies"][0]["Name"]),
        (Some(secret.as_str()), &json!("web-read"))
    );
    // The list follows without a reload.
    b.click(".crumbs a").await;
    assert!(b.wait_text("#tokens", "web reader", T).await);
    shoot(&b, "acl-tokens").await;

    // As that token: only web (and the node) are visible, and the ACL
    // pages are refused with a way to log in.
    log_in(&b, &secret, "web reader").await;
    b.click("#nav a[data-section='services']").await;
    assert!(b.wait_text("#services", "web", T).await, "{:?}", b.text("main").await);
    assert_eq!(names(&b, "#services tbody a", "href").await.len(), 1, "{:?}", b.text("#services").await);
    assert!(b.wait_text("#filtered-note", "hidden", T).await);
    b.click("#nav a[data-section='acls/tokens']").await;
    assert!(
        b.wait_text("[role=alert]", "lacks permission 'acl:read'", T).await,
        "{:?}",
        b.text("main").await
    );

    // Back as the manager (from the banner's login button): delete both.
    b.click("[role=alert] button").await;
    b.type_into("#login-secret", ROOT).await;
    b.click("#login-submit").await;
    assert!(b.wait_text("#tokens", "web reader", T).await, "{:?}", b.text("main").await);
    b.click(&format!("#tokens a[data-accessor='{accessor}']")).await;
    assert!(b.wait_text("#token-info", &accessor, T).await);
    b.click("#token-delete").await;
    b.click("dialog [data-confirm]").await;
    let token_path = format!("/v1/acl/token/{accessor}");
    assert!(
        wait_until(T, || async { api(&root, Method::GET, &token_path, None).await.status == 403 }).await,
        "the token survived"
    );
    assert!(b.wait_text("#tokens", "Initial Management Token", T).await);
    assert!(!b.text("#tokens").await.unwrap_or_default().contains("web reader"));
    b.click("#nav a[data-section='acls/policies']").await;
    assert!(b.wait_text("#policies", "web-read", T).await);
    b.click("#policies a[data-policy='web-read']").await;
    assert!(b.wait_text("#policy-used-by", "No token", T).await, "{:?}", b.text("main").await);
    b.click("#policy-delete").await;
    b.click("dialog [data-confirm]").await;
    assert!(
        wait_until(T, || async {
            api(&root, Method::GET, "/v1/acl/policy/name/web-read", None).await.status != 200
        })
        .await,
        "the policy survived"
    );
    assert!(
        wait_until(T, || async {
            names(&b, "#policies a[data-policy]", "data-policy").await == ["global-management"]
        })
        .await
    );

    // Logging out returns to the anonymous view.
    b.click("#token-button").await;
    b.click("#logout").await;
    assert!(b.wait_text("#token-button", "Log in", T).await);
    assert!(b.wait_text("#login-prompt", "not logged in", T).await);

    // Only the public API and the UI's own files were requested.
    let urls = b
        .js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)", json!([]))
        .await;
    for u in urls.as_array().unwrap() {
        let u = u.as_str().unwrap();
        assert!(u.starts_with("/v1/") || u.starts_with("/ui/assets/"), "unexpected request {u}");
    }
    b.close().await;
}
