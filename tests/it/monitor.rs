//! Monitoring an agent: `/v1/agent/monitor` and `consul monitor` streaming
//! lines caused by real actions (levels, JSON, several readers, readers
//! leaving), and `/v1/agent/metrics` in Prometheus' format.

use crate::harness::{cli, wait_until, Agent};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A live `/v1/agent/monitor` response read line by line.
struct Stream {
    body: Incoming,
    buf: Vec<u8>,
}

async fn open(a: &Agent, query: &str) -> (hyper::StatusCode, Stream) {
    let http: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let uri = format!("http://{}/v1/agent/monitor{query}", a.addr());
    let resp = http.get(uri.parse().expect("uri")).await.expect("monitor request");
    let status = resp.status();
    (status, Stream { body: resp.into_body(), buf: Vec::new() })
}

impl Stream {
    /// Lines until one contains `needle` (inclusive), or None at the deadline.
    async fn until(&mut self, needle: &str, timeout: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 1]).to_string();
                let hit = line.contains(needle);
                lines.push(line);
                if hit {
                    return Some(lines);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.body.frame()).await {
                Ok(Some(Ok(f))) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                _ => return None,
            }
        }
    }
}

async fn register(a: &Agent, name: &str) {
    let r = a.put("/v1/agent/service/register", format!(r#"{{"Name":"{name}","Port":80}}"#).as_bytes()).await;
    assert!(r.status.is_success(), "register {name}: {} {}", r.status, r.text());
}

async fn fire(a: &Agent, name: &str) {
    let r = a.put(&format!("/v1/event/fire/{name}"), b"").await;
    assert!(r.status.is_success(), "fire {name}: {} {}", r.status, r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_stream_lines_at_their_own_level_and_format() {
    // The agent itself only writes warnings; monitors still get more.
    let a = Agent::dev(&["-log-level=warn"]);
    a.wait_ready().await;
    let (status, mut info) = open(&a, "").await;
    assert_eq!(status, 200);
    let (_, mut debug) = open(&a, "?loglevel=debug").await;
    let (_, mut json) = open(&a, "?loglevel=DEBUG&logjson").await;
    assert!(
        wait_until(Duration::from_secs(5), || async { a.gauge("consul.agent.monitor.streams").await == 3 })
            .await
    );

    // A debug line (logged before the fire request returns), then an info one.
    fire(&a, "deploy-7").await;
    register(&a, "web-7").await;

    let lines = info
        .until("Synced service: service=web-7", Duration::from_secs(10))
        .await
        .expect("info monitor saw the sync");
    assert!(lines.iter().all(|l| !l.contains("[DEBUG]")), "an info monitor got debug lines: {lines:#?}");
    let synced = lines.last().expect("line");
    assert!(synced.contains(" [INFO]  agent: Synced service: service=web-7"), "{synced}");

    let lines = debug
        .until("Synced service: service=web-7", Duration::from_secs(10))
        .await
        .expect("debug monitor saw the sync");
    assert!(
        lines.iter().any(|l| l.contains("[DEBUG] agent: fired user event: event_name=deploy-7")),
        "a debug monitor missed the debug line: {lines:#?}"
    );

    let lines = json.until("web-7", Duration::from_secs(10)).await.expect("json monitor saw the sync");
    let objs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        objs.iter().any(|o| o["@level"] == "debug"
            && o["@message"] == "fired user event"
            && o["event_name"] == "deploy-7"),
        "{lines:#?}"
    );
    let last = objs.last().expect("line");
    assert_eq!(
        (last["@level"].as_str(), last["@module"].as_str(), last["service"].as_str()),
        (Some("info"), Some("agent"), Some("web-7"))
    );
    assert!(last["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{last}");

    // None of this reached the agent's own output (it logs at warn).
    assert!(!a.output_text().contains("Synced service: service=web-7"));

    // Readers that go away are detached; the others keep streaming.
    drop(info);
    drop(json);
    assert!(
        wait_until(Duration::from_secs(10), || async { a.gauge("consul.agent.monitor.streams").await == 1 })
            .await,
        "closed monitors were never detached"
    );
    register(&a, "web-8").await;
    debug
        .until("Synced service: service=web-8", Duration::from_secs(10))
        .await
        .expect("the remaining monitor still streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_level_is_refused() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.get("/v1/agent/monitor?loglevel=loud").await;
    assert_eq!((r.status.as_u16(), r.text()), (400, "Unknown log level: loud".to_string()));
    let out = a.cli(&["monitor", "-log-level=loud"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "Error starting monitor: Unexpected response code: 400 (Unknown log level: loud)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_monitor_prints_lines_until_interrupted_or_the_agent_stops() {
    let mut a = Agent::dev(&[]);
    a.wait_ready().await;

    let spawn_monitor = |extra: &[&str]| {
        crate::common::proc::spawn(
            Command::new(crate::harness::BIN)
                .arg("monitor")
                .arg(format!("-http-addr={}", a.addr()))
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .expect("spawn consul monitor")
    };
    // Lines read on a thread: (line, sent) until EOF.
    let reader = |child: &mut std::process::Child| {
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let wait_line = |rx: &std::sync::mpsc::Receiver<String>, needle: &str| -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };

    // SIGINT ends it with 0.
    let mut m = spawn_monitor(&[]);
    let rx = reader(&mut m);
    assert!(
        wait_until(Duration::from_secs(10), || async { a.gauge("consul.agent.monitor.streams").await == 1 })
            .await
    );
    register(&a, "api-1").await;
    assert!(wait_line(&rx, "Synced service: service=api-1"), "consul monitor never printed the sync line");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(m.id() as i32, libc::SIGINT) };
    assert_eq!(crate::harness::wait_exit(&mut m, Duration::from_secs(10)), Some(0));

    // JSON lines; the agent stopping ends it with 1 and Consul's message.
    let mut m = spawn_monitor(&["-log-json"]);
    let rx = reader(&mut m);
    assert!(
        wait_until(Duration::from_secs(10), || async { a.gauge("consul.agent.monitor.streams").await == 1 })
            .await
    );
    register(&a, "api-2").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut saw = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(l) = rx.recv_timeout(left) else { break };
        if l.contains("api-2") {
            let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
            assert_eq!(v["service"], "api-2");
            saw = true;
            break;
        }
    }
    assert!(saw, "consul monitor -log-json never printed the sync line");
    // (Its own exit code is the daemon's business; the monitor must notice.)
    assert!(a.signal_and_wait(libc::SIGTERM).is_some(), "agent did not stop");
    let code = crate::harness::wait_exit(&mut m, Duration::from_secs(10));
    let mut stdout_rest = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        stdout_rest.push_str(&l);
        stdout_rest.push('\n');
    }
    assert_eq!(code, Some(1), "monitor did not exit 1 when the agent stopped");
    assert!(stdout_rest.contains("Remote side ended the monitor!"), "{stdout_rest}");
}

#[test]
fn consul_monitor_without_an_agent_fails_clearly() {
    let out = cli(&["monitor", "-http-addr=127.0.0.1:1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(
            "Error starting monitor: GET \"http://127.0.0.1:1/v1/agent/monitor?loglevel=INFO\":"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_format_needs_retention_as_in_consul() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.get("/v1/agent/metrics?format=prometheus").await;
    // Consul 1.2x: an empty 200 with the reason in a header.
    assert_eq!((r.status.as_u16(), r.text()), (200, String::new()));
    assert_eq!(
        r.headers.get("X-Consul-Reason").and_then(|v| v.to_str().ok()),
        Some("Prometheus is not enabled since its retention time is not positive")
    );
    // The JSON form is unchanged.
    let v: Value = a.get("/v1/agent/metrics").await.json().expect("json");
    for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
}

/// `telemetry.prometheus_retention_time` in the config switches the
/// Prometheus text format on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_format_lists_counters_and_gauges() {
    let a = Agent::dev(&["-hcl", r#"telemetry { prometheus_retention_time = "60s" }"#]);
    a.wait_ready().await;
    // A write and a consistent read, so raft counters exist.
    let r = a.put("/v1/kv/prom", b"1").await;
    assert!(r.status.is_success());
    assert_eq!(a.get("/v1/kv/prom?raw&consistent").await.text(), "1");
    let r = a.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let json: Value = a.get("/v1/agent/metrics").await.json().expect("json");
    // Every JSON counter and gauge appears, renamed, typed and with a value.
    for (list, kind) in [("Counters", "counter"), ("Gauges", "gauge")] {
        for m in json[list].as_array().expect("list") {
            let name = m["Name"].as_str().expect("name").replace('.', "_");
            assert!(name.starts_with("consul_"), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no TYPE for {name}:\n{text}");
            assert!(
                text.lines()
                    .any(|l| l.strip_prefix(&format!("{name} ")).is_some_and(|v| v.parse::<f64>().is_ok())),
                "no sample for {name}:\n{text}"
            );
        }
    }
    assert!(json["Counters"].as_array().is_some_and(|c| !c.is_empty()), "no counters to compare: {json}");
    // Prometheus' scrapers ask by Accept header.
    let mut req = hyper::Request::get(format!("http://{}/v1/agent/metrics", a.addr()));
    req = req.header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
    let http: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let resp = http.request(req.body(Empty::new()).expect("request")).await.expect("scrape");
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
}
