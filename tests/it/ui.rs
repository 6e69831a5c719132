//! The web UI: how the agent serves it (HTTP level), and the pages driven
//! in a real headless Chromium through WebDriver against `consul agent
//! -dev`. One agent and one browser run all the page checks in sequence.

use crate::harness::{wait_until, Agent};
use crate::webdriver::{self, Browser};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// With `CONSUL_RS_UI_SCREENSHOTS=<dir>`, the browser test saves each page
/// at a desktop and a phone width there (docs/img/ui/ holds a set).
pub(crate) async fn shoot(b: &Browser, name: &str) {
    let Ok(dir) = std::env::var("CONSUL_RS_UI_SCREENSHOTS") else { return };
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for (label, w, h) in [("wide", 1280, 800), ("phone", 390, 844)] {
        b.set_size(w, h).await;
        // Let the layout settle at the new width before the picture.
        b.js("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", json!([]))
            .await;
        std::fs::write(format!("{dir}/{name}-{label}.png"), b.screenshot().await).expect("write screenshot");
    }
    b.set_size(1280, 800).await;
}

async fn raw_get(a: &Agent, path: &str, headers: &[(&str, &str)]) -> (u16, hyper::HeaderMap, Vec<u8>) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let mut req = hyper::Request::get(format!("http://{}{path}", a.addr()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::default()).unwrap()).await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, headers, body)
}

fn header<'a>(h: &'a hyper::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn serving_rules_of_the_embedded_ui() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;

    let (status, h, _) = raw_get(&a, "/", &[]).await;
    assert_eq!((status, header(&h, "location")), (301, "/ui/"));
    let (status, h, _) = raw_get(&a, "/ui", &[]).await;
    assert_eq!((status, header(&h, "location")), (301, "/ui/"));

    let (status, h, body) = raw_get(&a, "/ui/dc1/services/web", &[]).await;
    assert_eq!(status, 200, "a deep link answers the page");
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert!(header(&h, "content-security-policy").contains("default-src 'none'"));
    assert!(header(&h, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "x-frame-options"), "DENY");
    let html = String::from_utf8(body).unwrap();
    let app = html
        .split('"')
        .find(|s| s.starts_with("/ui/assets/") && s.ends_with("/app.js"))
        .unwrap_or_else(|| panic!("no app.js in {html}"))
        .to_string();

    // Hashed asset names: cached for a year, revalidated by ETag.
    let (status, h, plain) = raw_get(&a, &app, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert!(header(&h, "cache-control").contains("max-age=31536000"));
    let etag = header(&h, "etag").to_string();
    let (status, h2, body) = raw_get(&a, &app, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(header(&h2, "etag"), etag);
    let (status, h, gz) = raw_get(&a, &app, &[("accept-encoding", "gzip")]).await;
    assert_eq!((status, header(&h, "content-encoding")), (200, "gzip"));
    assert!(gz.len() < plain.len());
    assert_ne!(header(&h, "etag"), etag, "each encoding has its own ETag");
    let (status, _, _) = raw_get(&a, "/ui/assets/0000000000/app.js", &[]).await;
    assert_eq!(status, 404, "an asset of another build is not found");

    let (status, _, body) = raw_get(&a, "/favicon.ico", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
    );
    let (status, _, body) = raw_get(&a, "/v1/no/such/endpoint", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(String::from_utf8_lossy(&body), "Invalid URL path: not a recognized HTTP API endpoint\n");
}

#[tokio::test]
async fn ui_off_and_ui_from_a_directory() {
    let off = Agent::dev(&["-ui=false"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ui");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<p>mine at __CONTENT_PATH__, assets in __ASSETS__</p>").unwrap();
    std::fs::write(dir.join("assets/x.css"), "p{}").unwrap();
    std::fs::write(tmp.path().join("outside.txt"), "secret").unwrap();
    let mine = Agent::dev(&[&format!("-ui-dir={}", dir.display()), "-ui-content-path=console"]);
    off.wait_ready().await;
    mine.wait_ready().await;

    let (status, _, body) = raw_get(&off, "/", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart."
    );
    let (status, _, _) = raw_get(&off, "/ui/", &[]).await;
    assert_eq!(status, 404);

    let (status, h, _) = raw_get(&mine, "/", &[]).await;
    assert_eq!((status, header(&h, "location")), (301, "/console/"));
    let (status, h, body) = raw_get(&mine, "/console/dc1/kv/", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&body), "<p>mine at /console/, assets in /console/assets/</p>");
    let (status, h2, _) = raw_get(&mine, "/console/", &[("if-none-match", header(&h, "etag"))]).await;
    assert_eq!(status, 304, "{h2:?}");
    let (status, h, body) = raw_get(&mine, "/console/assets/x.css", &[]).await;
    assert_eq!(
        (status, header(&h, "content-type"), body.as_slice()),
        (200, "text/css; charset=utf-8", &b"p{}"[..])
    );
    // The directory is read on each request: edits show without a restart.
    std::fs::write(dir.join("assets/x.css"), "p{color:red}").unwrap();
    let (_, _, body) = raw_get(&mine, "/console/assets/x.css", &[]).await;
    assert_eq!(body, b"p{color:red}");
    for bad in [
        "/console/assets/missing.js",
        "/console/../outside.txt",
        "/console/%2e%2e/outside.txt",
        "/console/assets/..%2f..%2foutside.txt",
    ] {
        let (status, _, body) = raw_get(&mine, bad, &[]).await;
        assert_eq!(status, 404, "{bad}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{bad}");
    }
    let (status, _, _) = raw_get(&mine, "/ui/", &[]).await;
    assert_eq!(status, 404, "only the configured content path serves the UI");
}

/// Every page against one agent in one browser: real data, live updates,
/// KV editing with CAS, sessions, and that the UI calls only `/v1/`.
#[tokio::test]
async fn pages_in_a_real_browser() {
    if !webdriver::available() {
        eprintln!("NOTICE: chromium/chromedriver not found (apt-get install -y chromium chromium-driver); skipping browser test");
        return;
    }
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    for (id, port, version) in [("web1", 8080, "1"), ("web2", 8081, "2")] {
        let svc = json!({"ID": id, "Name": "web", "Port": port, "Tags": ["v1", "edge"], "Meta": {"version": version},
                         "Check": {"TTL": "10m", "Name": "web alive"}});
        assert_eq!(a.put("/v1/agent/service/register", svc.to_string().as_bytes()).await.status, 200);
        assert_eq!(a.put(&format!("/v1/agent/check/pass/service:{id}?note=fine"), b"").await.status, 200);
    }
    let db = json!({"Name": "db", "Port": 5432, "Tags": ["primary"]});
    assert_eq!(a.put("/v1/agent/service/register", db.to_string().as_bytes()).await.status, 200);
    let synced = wait_until(T, || async {
        let v: Value = a.get("/v1/health/service/web").await.json().unwrap_or_default();
        v.as_array().is_some_and(|l| {
            l.len() == 2
                && l.iter().all(|e| {
                    e["Checks"].as_array().is_some_and(|c| c.iter().all(|c| c["Status"] == "passing"))
                })
        })
    })
    .await;
    assert!(synced, "services never reached the catalog");

    let b = Browser::start(1280, 800).await;
    let base = format!("http://{}", a.addr());

    // Services: what the API registered, with instance counts and health.
    b.goto(&format!("{base}/")).await;
    assert!(b.wait_text("#services", "web", T).await, "services page: {:?}", b.text("main").await);
    let row = |name: &'static str| {
        format!("return [...document.querySelectorAll('#services tbody tr')].map(r => r.innerText).find(t => t.startsWith('{name}')) || null;")
    };
    let web_row = b.js(&row("web"), json!([])).await;
    assert!(
        web_row.as_str().is_some_and(|t| t.contains("passing") && t.contains('2') && t.contains("edge")),
        "{web_row}"
    );
    assert!(b.wait_text("#services", "consul", T).await);
    assert!(
        wait_until(T, || async {
            b.js(&row("db"), json!([])).await.as_str().is_some_and(|t| t.contains('1'))
        })
        .await,
        "db (no checks) has its instance counted: {:?}",
        b.text("#services").await
    );
    let path = b.js("return location.pathname", json!([])).await;
    assert_eq!(path, "/ui/dc1/services");
    shoot(&b, "services").await;
    // ACLs are off here: no ACL sections in the menu, and their pages say why.
    assert_eq!(
        b.js("return [...document.querySelectorAll('#nav [data-acl]')].map(e => e.hidden)", json!([])).await,
        json!([true, true, true])
    );
    assert_eq!(b.text("#token-button").await.as_deref(), Some("ACLs off"));
    b.goto(&format!("{base}/ui/dc1/acls/tokens")).await;
    assert!(b.wait_text("#acl-disabled", "ACLs are disabled", T).await, "{:?}", b.text("main").await);
    b.goto(&format!("{base}/ui/dc1/services")).await;
    assert!(b.wait_text("#services", "web", T).await);

    // The filter box.
    b.type_into("#service-filter", "prim").await;
    assert!(
        wait_until(T, || async {
            b.text("#services").await.is_some_and(|t| t.contains("db") && !t.contains("web"))
        })
        .await
    );
    b.type_into("#service-filter", "").await;

    // A check turning critical shows up without a reload.
    b.js("window.__sameDocument = true", json!([])).await;
    assert_eq!(a.put("/v1/agent/check/fail/service:web1?note=down", b"").await.status, 200);
    let live = wait_until(T, || async {
        b.js(&row("web"), json!([])).await.as_str().is_some_and(|t| t.contains("critical"))
    })
    .await;
    assert!(live, "the critical check never showed: {:?}", b.text("#services").await);
    assert_eq!(b.js("return window.__sameDocument === true", json!([])).await, true, "the page reloaded");

    // A service's instances with their checks; the deep link survives a reload.
    b.click("#services a[href$='/services/web']").await;
    assert!(b.wait_text("#instances", "web2", T).await, "{:?}", b.text("main").await);
    let inst = b.text("[data-instance='web1']").await.unwrap_or_default();
    assert!(
        inst.contains("critical")
            && inst.contains("8080")
            && inst.contains("version")
            && inst.contains("web alive"),
        "{inst}"
    );
    b.refresh().await;
    assert!(b.wait_text("#instances", "web1", T).await, "after reload: {:?}", b.text("main").await);
    assert_eq!(b.text("h1").await.as_deref(), Some("web"));
    shoot(&b, "service").await;

    // Nodes: the leader is marked; a node's sessions can be invalidated.
    b.click("#nav a[data-section='nodes']").await;
    assert!(b.wait_text("#nodes", "leader", T).await, "{:?}", b.text("main").await);
    assert!(b.text("#nodes").await.unwrap_or_default().contains(&a.ip.to_string()));
    shoot(&b, "nodes").await;
    let session: Value = a.put("/v1/session/create", br#"{"Name": "ui-test-lock"}"#).await.json().unwrap();
    let sid = session["ID"].as_str().unwrap().to_string();
    b.click("#nodes a[href$='/nodes/dev']").await;
    assert!(b.wait_text("#node-sessions", &sid, T).await, "{:?}", b.text("main").await);
    assert!(b.wait_text("#node-services", "web1", T).await);
    assert!(b.wait_text("#node-checks", "Serf Health Status", T).await);
    shoot(&b, "node").await;
    b.click(&format!("[data-invalidate='{sid}']")).await;
    b.click("dialog [data-confirm]").await;
    assert!(b.wait_text("#node-sessions", "No sessions", T).await);
    let left: Value = a.get("/v1/session/list").await.json().unwrap();
    assert_eq!(left, json!([]));

    // Key/Value: create (with awkward names), view as text, edit with CAS.
    kv_pages(&a, &b, &base).await;

    // The UI called nothing but the public API and its own files.
    let urls = b
        .js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)", json!([]))
        .await;
    for u in urls.as_array().unwrap() {
        let u = u.as_str().unwrap();
        assert!(u.starts_with("/v1/") || u.starts_with("/ui/assets/"), "unexpected request {u}");
    }
    b.close().await;
}

async fn kv_value(a: &Agent, key: &str) -> Option<Vec<u8>> {
    let r = a.get(&format!("/v1/kv/{}?raw", consul::api::encode(key))).await;
    (r.status == 200).then(|| r.body.to_vec())
}

async fn kv_pages(a: &Agent, b: &Browser, base: &str) {
    let key = "team a/ünïcode key";
    b.goto(&format!("{base}/ui/dc1/kv/")).await;
    assert!(b.wait_text("main", "No keys yet", T).await, "{:?}", b.text("main").await);
    b.type_into("#kv-new-key", key).await;
    b.type_into("#kv-new-value", "v1 <b>bold?</b>").await;
    b.click("#kv-create button[type=submit]").await;
    assert!(b.wait_text("h1", "ünïcode key", T).await, "{:?}", b.text("main").await);
    assert_eq!(kv_value(a, key).await.as_deref(), Some(&b"v1 <b>bold?</b>"[..]));
    // Shown as text: the markup is in the field, not in the page.
    assert!(
        wait_until(T, || async {
            b.js("return document.getElementById('kv-value')?.value", json!([])).await == "v1 <b>bold?</b>"
        })
        .await
    );
    assert_eq!(b.js("return document.querySelector('main b') === null", json!([])).await, true);

    // Creating an existing key is refused, not overwritten.
    b.goto(&format!("{base}/ui/dc1/kv/team%20a/")).await;
    assert!(b.wait_text("#kv-list", "ünïcode key", T).await, "{:?}", b.text("main").await);
    b.type_into("#kv-new-key", "ünïcode key").await;
    b.click("#kv-create button[type=submit]").await;
    assert!(b.wait_text("[role=alert]", "already exists", T).await);
    b.click("#kv-list a").await;

    // Edit and save.
    assert!(b.wait_text("#kv-entry", "Modify index", T).await);
    b.type_into("#kv-value", "v2").await;
    b.click("#kv-save").await;
    assert!(b.wait_text("#kv-notice", "Saved", T).await, "{:?}", b.text("main").await);
    assert_eq!(kv_value(a, key).await.as_deref(), Some(&b"v2"[..]));

    // Someone else writes meanwhile: the save is refused and said so.
    assert!(
        wait_until(T, || async {
            b.js("return document.getElementById('kv-value')?.value", json!([])).await == "v2"
        })
        .await
    );
    assert_eq!(a.put(&format!("/v1/kv/{}", consul::api::encode(key)), b"theirs").await.text(), "true");
    b.type_into("#kv-value", "mine").await;
    b.click("#kv-save").await;
    assert!(
        b.wait_text("[role=alert]", "changed or deleted by someone else", T).await,
        "{:?}",
        b.text("main").await
    );
    assert_eq!(kv_value(a, key).await.as_deref(), Some(&b"theirs"[..]));
    assert_eq!(b.js("return document.getElementById('kv-value').value", json!([])).await, "mine");
    shoot(b, "kv-conflict").await;

    // Delete the key (after a reload shows the current value).
    b.refresh().await;
    assert!(
        wait_until(T, || async {
            b.js("return document.getElementById('kv-value')?.value", json!([])).await == "theirs"
        })
        .await
    );
    b.click("#kv-delete").await;
    b.click("dialog [data-confirm]").await;
    assert!(wait_until(T, || async { kv_value(a, key).await.is_none() }).await, "the key was not deleted");
    assert!(b.wait_text("main", "No keys under", T).await, "{:?}", b.text("main").await);

    // Awkward values: binary, 512 KiB, and a very long key name.
    let long = format!("deep/{}", "x".repeat(300));
    let big = "0123456789abcdef".repeat(512 * 1024 / 16);
    for (k, v) in
        [("deep/bin", &[0xffu8, 0xfe, 0, 1, 2][..]), ("deep/big", big.as_bytes()), (long.as_str(), b"long")]
    {
        assert_eq!(a.put(&format!("/v1/kv/{}", consul::api::encode(k)), v).await.text(), "true");
    }
    b.goto(&format!("{base}/ui/dc1/kv/deep/bin")).await;
    assert!(b.wait_text("#kv-entry", "not UTF-8", T).await, "{:?}", b.text("main").await);
    assert_eq!(b.text("#kv-value").await.as_deref(), Some("//4AAQI="));
    b.goto(&format!("{base}/ui/dc1/kv/deep/big")).await;
    assert!(
        wait_until(T, || async {
            b.js("return document.getElementById('kv-value')?.value.length", json!([])).await
                == json!(512 * 1024)
        })
        .await
    );
    b.goto(&format!("{base}/ui/dc1/kv/deep/")).await;
    assert!(b.wait_text("#kv-list", &"x".repeat(300), T).await);
    shoot(b, "kv-folder").await;

    // Delete a whole folder, after confirming.
    b.click("#kv-delete-folder").await;
    b.click("dialog [data-confirm]").await;
    assert!(
        wait_until(T, || async { a.get("/v1/kv/deep/?keys").await.status == 404 }).await,
        "the folder survived"
    );
    assert_eq!(b.js("return location.pathname", json!([])).await, "/ui/dc1/kv/");
}

/// Not a pass/fail test (timings are measured, never asserted): how long
/// the services page takes to show 1,000 services × 3 instances, from the
/// navigation start to the first page of rows with their health. Run with
/// `cargo test --test it ui::services_page_load_time -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn services_page_load_time() {
    use futures::stream::{self, StreamExt};
    if !webdriver::available() {
        eprintln!("NOTICE: chromium/chromedriver not found; nothing to measure");
        return;
    }
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let regs: Vec<(usize, usize)> = (0..3).flat_map(|n| (0..1000).map(move |s| (n, s))).collect();
    stream::iter(regs)
        .for_each_concurrent(32, |(n, s)| {
            let a = &a;
            async move {
                let body = json!({
                    "Node": format!("node-{n}"), "Address": format!("10.0.0.{}", n + 1),
                    "Service": {"ID": format!("svc-{s}-{n}"), "Service": format!("svc-{s:04}"), "Port": 8000 + n, "Tags": ["t1", "t2"]},
                    "Check": {"CheckID": format!("chk-{s}-{n}"), "Name": "alive", "Status": "passing", "ServiceID": format!("svc-{s}-{n}")},
                });
                assert_eq!(a.put("/v1/catalog/register", body.to_string().as_bytes()).await.status, 200);
            }
        })
        .await;
    let b = Browser::start(1280, 800).await;
    for round in 0..3 {
        b.goto(&format!("http://{}/ui/dc1/services", a.addr())).await;
        let drawn = wait_until(Duration::from_secs(30), || async {
            b.js(
                "return document.querySelectorAll('#services tbody tr .badge.passing').length >= 100",
                json!([]),
            )
            .await
                == true
        })
        .await;
        assert!(drawn, "{:?}", b.text("main").await);
        let ms = b.js("return performance.now()", json!([])).await;
        let bytes = b
            .js("return performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/')).map(e => e.name.split('?')[0] + ' ' + e.encodedBodySize)", json!([]))
            .await;
        eprintln!("round {round}: services page with 1000 services x 3 instances drawn after {ms} ms; API calls: {bytes}");
    }
    b.close().await;
}
