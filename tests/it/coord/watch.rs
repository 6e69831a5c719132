//! Watches: `consul watch` with and without a handler, and the agent's
//! configured `watches` with script and http handlers. Agents run with a
//! 1s default query time, so blocking queries time out often: a handler
//! must still run once at start and once per real change only.

use super::{lines, read, spawn_cli, stop};
use crate::harness::{wait_exit, wait_until, Agent};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An agent whose blocking queries give up after a second.
fn agent_with(config: Value) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("watch.json"), config.to_string()).unwrap();
    let a = Agent::dev(&[&format!("-config-dir={}", dir.path().display())]);
    (a, dir)
}

/// `count` stays at `n` for `window` (several blocking-query timeouts).
async fn stays(window: Duration, n: usize, count: impl Fn() -> usize) {
    let changed = wait_until(window, || async { count() != n }).await;
    assert!(!changed, "expected {n} handler runs to stay {n}, got {}", count());
}

fn json_lines(path: &Path) -> Vec<Value> {
    lines(path).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn key_watch_runs_once_per_change_and_never_on_timeouts() {
    let (a, _cfg) = agent_with(serde_json::json!({"default_query_time": "1s"}));
    a.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let idx = dir.path().join("idx");
    let handler = format!("cat >> {}; echo \"$CONSUL_INDEX\" >> {}", data.display(), idx.display());
    let mut w = spawn_cli(&a, dir.path(), "watch", &["watch", "-type=key", "-key=w/k", &handler]);
    let count = || lines(&data).len();
    assert!(
        wait_until(Duration::from_secs(15), || async { count() == 1 }).await,
        "no initial run: {}",
        read(&dir.path().join("watch.err"))
    );
    assert_eq!(json_lines(&data)[0], Value::Null, "a missing key is null");
    stays(Duration::from_millis(3500), 1, count).await;

    // Writes elsewhere move indexes but not this key's data.
    for i in 0..3 {
        a.put("/v1/kv/w/other", format!("{i}").as_bytes()).await;
    }
    stays(Duration::from_millis(1500), 1, count).await;

    a.put("/v1/kv/w/k", b"v1").await;
    // The handler writes the data file, then the index file.
    assert!(wait_until(Duration::from_secs(10), || async { count() == 2 && lines(&idx).len() == 2 }).await);
    let got = &json_lines(&data)[1];
    assert_eq!(got["Key"], "w/k");
    assert_eq!(got["Value"], "djE=");
    assert_eq!(got["Session"], "");
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value", "Session"],
        "Go's field order"
    );
    assert_eq!(lines(&idx)[1], got["ModifyIndex"].to_string(), "CONSUL_INDEX");
    stays(Duration::from_millis(2500), 2, count).await;

    a.put("/v1/kv/w/k", b"v2").await;
    assert!(wait_until(Duration::from_secs(10), || async { count() == 3 }).await);
    assert_eq!(json_lines(&data)[2]["Value"], "djI=");
    a.delete("/v1/kv/w/k").await;
    assert!(wait_until(Duration::from_secs(10), || async { count() == 4 }).await);
    assert_eq!(json_lines(&data)[3], Value::Null);
    stays(Duration::from_millis(2500), 4, count).await;
    assert!(w.try_wait().unwrap().is_none(), "the watch keeps running");
    stop(&mut w);
}

#[tokio::test]
async fn service_watch_fires_when_a_service_registers() {
    let (a, _cfg) = agent_with(serde_json::json!({"default_query_time": "1s"}));
    a.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handler = format!("cat >> {}", data.display());
    let mut w = spawn_cli(
        &a,
        dir.path(),
        "svc",
        &["watch", "-type=service", "-service=web", "-passingonly=false", &handler],
    );
    assert!(wait_until(Duration::from_secs(15), || async { lines(&data).len() == 1 }).await);
    assert_eq!(json_lines(&data)[0], serde_json::json!([]));
    let reg = serde_json::json!({"Name": "web", "ID": "web1", "Port": 8080, "Tags": ["v1"]});
    assert_eq!(a.put("/v1/agent/service/register", reg.to_string().as_bytes()).await.status, 200);
    assert!(
        wait_until(Duration::from_secs(20), || async { lines(&data).len() >= 2 }).await,
        "no run after registration"
    );
    let last = json_lines(&data).pop().unwrap();
    assert_eq!(last[0]["Service"]["Service"], "web");
    assert_eq!(last[0]["Service"]["Port"], 8080);
    let n = lines(&data).len();
    stays(Duration::from_millis(2500), n, || lines(&data).len()).await;
    stop(&mut w);
}

/// A handler that exits without reading its stdin must not take the
/// watch down with it: the JSON is larger than a pipe buffer, so the write
/// to the handler's stdin fails with a broken pipe every time.
#[tokio::test]
async fn handler_that_ignores_its_input_keeps_the_watch_running() {
    let (a, _cfg) = agent_with(serde_json::json!({"default_query_time": "1s"}));
    a.wait_ready().await;
    let big = vec![b'x'; 48 * 1024];
    for i in 0..4 {
        a.put(&format!("/v1/kv/big/{i}"), &big).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let handler = format!("echo run >> {}", runs.display());
    let mut w = spawn_cli(&a, dir.path(), "big", &["watch", "-type=keyprefix", "-prefix=big/", &handler]);
    assert!(
        wait_until(Duration::from_secs(15), || async { lines(&runs).len() == 1 }).await,
        "no initial run: {}",
        read(&dir.path().join("big.err"))
    );
    a.put("/v1/kv/big/4", &big).await;
    assert!(
        wait_until(Duration::from_secs(15), || async { lines(&runs).len() == 2 }).await,
        "the watch died after its handler closed stdin: {:?} {}",
        w.try_wait(),
        read(&dir.path().join("big.err"))
    );
    assert!(w.try_wait().unwrap().is_none(), "the watch keeps running");
    stop(&mut w);
}

#[tokio::test]
async fn watch_without_handler_prints_once_and_exits() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let out = a.cli(&["watch", "-type=key", "-key=nothing/here"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "null\n"), "{out:?}");
    a.put("/v1/kv/print/me", b"<&>").await;
    let out = a.cli(&["watch", "-type=keyprefix", "-prefix=print/"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("[\n    {\n        \"Key\": \"print/me\",\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\"Value\": \"PCY+\""), "{}", out.stdout);
    let out = a.cli(&["watch", "-type=services"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("{\n    \"consul\": []"), "{}", out.stdout);

    let out = a.cli(&["watch", "-type=key", "-key=x", "exit 4"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Error executing handler: exit status 4"), "{}", out.stderr);

    let bad = |args: &[&str], msg: &str| {
        let out = a.cli(args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    };
    bad(&["watch"], "Watch type must be specified");
    bad(&["watch", "-type=bogus"], "Unsupported watch type: bogus");
    bad(&["watch", "-type=key"], "Must specify a single key to watch");
    bad(
        &["watch", "-type=service", "-service=web", "-passingonly=maybe"],
        "Failed to parse passingonly flag",
    );
    bad(&["watch", "-type=checks", "-service=a", "-state=passing"], "Cannot specify service and state");
    bad(&["watch", "-type=key", "-key=a", "-http-addr=127.0.0.1:1"], "Error querying Consul agent");
}

/// One POST received by the test's HTTP endpoint.
#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: String,
}

async fn hook(State(hits): State<Arc<Mutex<Vec<Hit>>>>, headers: HeaderMap, body: String) -> &'static str {
    hits.lock().unwrap().push(Hit { headers, body });
    "ok"
}

#[tokio::test]
async fn agent_watches_from_config_run_script_and_http_handlers() {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/hook", post(hook)).with_state(hits.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let script_out = dir.path().join("script");
    let (a, _cfg) = agent_with(serde_json::json!({
        "default_query_time": "1s",
        "watches": [
            {
                "type": "key", "key": "cfg/k", "handler_type": "http",
                "http_handler_config": {
                    "path": format!("http://127.0.0.1:{port}/hook"), "method": "POST",
                    "header": {"X-Test": ["yes"]}, "timeout": "5s"
                }
            },
            {"type": "keyprefix", "prefix": "cfg/", "args": ["/bin/sh", "-c", format!("cat >> {}", script_out.display())]}
        ]
    }));
    a.wait_ready().await;
    let n_hits = || hits.lock().unwrap().len();
    assert!(
        wait_until(Duration::from_secs(15), || async { n_hits() == 1 }).await,
        "no initial POST\n{}",
        a.output_text()
    );
    assert!(
        wait_until(Duration::from_secs(15), || async { lines(&script_out).len() == 1 }).await,
        "script handler never ran"
    );
    {
        let first = hits.lock().unwrap()[0].clone();
        assert_eq!(first.body, "null\n");
        assert_eq!(first.headers["content-type"], "application/json");
        assert_eq!(first.headers["x-test"], "yes");
        assert!(first.headers["x-consul-index"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    }
    stays(Duration::from_millis(3000), 1, n_hits).await;

    a.put("/v1/kv/cfg/k", b"hello").await;
    assert!(wait_until(Duration::from_secs(10), || async { n_hits() == 2 }).await);
    let second: Value = serde_json::from_str(&hits.lock().unwrap()[1].body).unwrap();
    assert_eq!(second["Key"], "cfg/k");
    assert_eq!(second["Value"], "aGVsbG8=");
    assert!(wait_until(Duration::from_secs(10), || async { lines(&script_out).len() == 2 }).await);
    let prefix_data: Value = serde_json::from_str(&lines(&script_out)[1]).unwrap();
    assert_eq!(prefix_data[0]["Key"], "cfg/k");
    // An unrelated key: no POST for the key watch.
    a.put("/v1/kv/elsewhere", b"x").await;
    stays(Duration::from_millis(2500), 2, n_hits).await;
    assert_eq!(lines(&script_out).len(), 2);
}

#[tokio::test]
async fn a_bad_watch_stops_the_agent_with_its_name() {
    let (mut a, _cfg) = agent_with(serde_json::json!({
        "watches": [
            {"type": "key", "key": "ok", "args": ["true"]},
            {"type": "key", "args": ["true"]}
        ]
    }));
    let code = wait_exit(a.child.as_mut().unwrap(), Duration::from_secs(20));
    assert_eq!(code, Some(1));
    let out = a.output_text();
    assert!(out.contains("Failed to parse watch #2"), "{out}");
    assert!(out.contains("Must specify a single key to watch"), "{out}");
}

#[tokio::test]
async fn reload_replaces_the_agent_watches() {
    let dir = tempfile::tempdir().unwrap();
    let out_a = dir.path().join("a");
    let out_b = dir.path().join("b");
    let watch = |key: &str, out: &Path| {
        serde_json::json!({
            "default_query_time": "1s",
            "watches": [{"type": "key", "key": key, "args": ["/bin/sh", "-c", format!("cat >> {}", out.display())]}]
        })
    };
    let (a, cfg) = agent_with(watch("one", &out_a));
    a.wait_ready().await;
    assert!(
        wait_until(Duration::from_secs(15), || async { lines(&out_a).len() == 1 }).await,
        "first watch never ran"
    );

    // Swap the watch for one on another key and reload.
    std::fs::write(cfg.path().join("watch.json"), watch("two", &out_b).to_string()).unwrap();
    let r = a.cli(&["reload"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        wait_until(Duration::from_secs(15), || async { lines(&out_b).len() == 1 }).await,
        "new watch never ran"
    );
    // The old watch is gone: a change to its key runs nothing; the new one fires.
    a.put("/v1/kv/one", b"x").await;
    a.put("/v1/kv/two", b"y").await;
    assert!(
        wait_until(Duration::from_secs(10), || async { lines(&out_b).len() == 2 }).await,
        "new watch missed its change"
    );
    stays(Duration::from_millis(2500), 1, || lines(&out_a).len()).await;

    // A bad watch in the new config: the reload fails and the running watch stays.
    std::fs::write(
        cfg.path().join("watch.json"),
        serde_json::json!({"watches": [{"type": "nope"}]}).to_string(),
    )
    .unwrap();
    let r = a.cli(&["reload"]);
    assert_ne!(r.code, 0, "{r:?}");
    a.put("/v1/kv/two", b"z").await;
    assert!(
        wait_until(Duration::from_secs(10), || async { lines(&out_b).len() == 3 }).await,
        "watch stopped after a failed reload"
    );
}
