//! A minimal W3C WebDriver client for the browser tests: chromedriver speaks
//! HTTP+JSON, so our own API client carries it. Starts Debian's
//! `chromedriver` (package `chromium-driver`) on a free loopback port with
//! headless Chromium; both die with the `Browser` (process group).

use crate::common::proc::{self, Proc};
use crate::common::wait::wait_until;
use consul::api::{Client, ClientConfig};
use hyper::Method;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: Client,
    session: String,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

/// Where Debian's packages put them.
fn find(names: &[&str]) -> Option<String> {
    names.iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string())
}

pub fn available() -> bool {
    driver_path().is_some() && chromium_path().is_some()
}

fn driver_path() -> Option<String> {
    find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
}

fn chromium_path() -> Option<String> {
    find(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"])
}

impl Browser {
    /// A headless browser window of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let driver = proc::spawn(
            Command::new(driver_path().expect("chromedriver"))
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("spawn chromedriver");
        let http = Client::new(ClientConfig { address: format!("127.0.0.1:{port}"), ..Default::default() })
            .expect("client");
        let ready = wait_until(Duration::from_secs(20), || async {
            matches!(http.request(Method::GET, "/status", None).await, Ok(r) if r.status.is_success())
        })
        .await;
        assert!(ready, "chromedriver never answered on port {port}");
        let profile = tempfile::tempdir().expect("tempdir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_path().expect("chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         format!("--user-data-dir={}", profile.path().display()),
                         format!("--window-size={width},{height}")],
            },
        }}});
        let resp =
            http.request(Method::POST, "/session", Some(caps.to_string().into())).await.expect("new session");
        let v: Value = resp.json().expect("session json");
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {}", resp.text()))
            .to_string();
        Browser { http, session, _driver: driver, _profile: profile }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("/session/{}{path}", self.session);
        // Commands that take no parameters still get `{}` when POSTed.
        let body = (method == Method::POST).then(|| body.unwrap_or(json!({})).to_string().into());
        let resp = self
            .http
            .request(method.clone(), &url, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let v: Value = resp.json().unwrap_or_else(|e| panic!("webdriver {path}: {e}: {}", resp.text()));
        if !resp.status.is_success() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn refresh(&self) {
        self.call(Method::POST, "/refresh", None).await;
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.call(Method::POST, "/window/rect", Some(json!({ "width": width, "height": height }))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.call(Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// The text of the first element matching `css`, or None.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                json!([css]),
            )
            .await;
        v.as_str().map(str::to_string)
    }

    /// Waits until `css` matches an element whose text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || async { self.text(css).await.is_some_and(|t| t.contains(needle)) }).await
    }

    async fn element(&self, css: &str) -> String {
        let v =
            self.call(Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    /// A real click (WebDriver's, so the element must be visible).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(Method::POST, &format!("/element/{id}/click"), None).await;
    }

    /// Clears a field and types `text` into it, key by key.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(Method::POST, &format!("/element/{id}/clear"), None).await;
        self.call(Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text }))).await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).expect("png base64")
    }

    pub async fn close(self) {
        let _ = self.http.request(Method::DELETE, &format!("/session/{}", self.session), None).await;
    }
}
