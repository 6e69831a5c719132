//! Nothing acknowledged is lost: every acknowledgement follows an fsync
//! that covers the write (proved from a syscall trace), concurrent writes
//! share fsyncs, and a kill -9 at any moment loses no acknowledged write.

use crate::common::proc;
use crate::harness::{wait_exit, wait_until, Agent, BIN};
use hyper::Method;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs a server under `strace` and checks, for each sequential PUT, that
/// the WAL write holding its key was followed by a completed fdatasync of
/// the WAL before the HTTP response was written.
#[tokio::test]
async fn every_ack_follows_an_fsync_covering_it() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(strace.is_ok(), "this test needs strace (apt-get install strace); .ci/run installs it");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let ip = crate::harness::unique_ip();
    let data = dir.path().join("data");
    // Its own process group: killing strace alone would leave the agent it
    // traces running, orphaned.
    let mut child = proc::spawn(
        Command::new("strace")
            .args([
                "-f",
                "-y",
                "-s",
                "200",
                "-e",
                "trace=pwrite64,fdatasync,fsync,write,writev,sendto,sendmsg",
                "-o",
            ])
            .arg(&trace)
            .arg(BIN)
            .args(["agent", "-server", "-bootstrap", "-node=s1", "-log-level=warn"])
            .arg(format!("-data-dir={}", data.display()))
            .arg(format!("-bind={ip}"))
            .arg(format!("-client={ip}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn strace");
    let client = consul::api::Client::new(consul::api::ClientConfig {
        address: format!("{ip}:8500"),
        ..Default::default()
    })
    .unwrap();
    let ready = wait_until(Duration::from_secs(30), || async {
        matches!(client.request(Method::GET, "/v1/status/leader", None).await, Ok(r) if r.text().len() > 2)
    })
    .await;
    assert!(ready, "agent under strace never became ready");
    let n = 30;
    for i in 0..n {
        let r = client
            .request(Method::PUT, &format!("/v1/kv/durable-key-{i:03}"), Some(format!("value-{i}").into()))
            .await
            .unwrap();
        assert_eq!(r.text(), "true");
    }
    // The whole group: strace and the agent it traces.
    child.kill_group();
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Where each fdatasync/fsync of a WAL segment completed (line index).
    let mut pending_sync: HashMap<String, bool> = HashMap::new();
    let mut sync_done: Vec<usize> = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let pid = line.split_whitespace().next().unwrap_or("").to_string();
        let is_seg_sync = (line.contains("fdatasync(") || line.contains("fsync(")) && line.contains(".seg>");
        if is_seg_sync {
            if line.contains("<unfinished ...>") {
                pending_sync.insert(pid, true);
            } else if line.trim_end().ends_with("= 0") {
                sync_done.push(n);
            }
        } else if (line.contains("<... fdatasync resumed>") || line.contains("<... fsync resumed>"))
            && pending_sync.remove(&pid).is_some()
            && line.trim_end().ends_with("= 0")
        {
            sync_done.push(n);
        }
    }
    let mut checked = 0;
    for i in 0..n {
        let key = format!("durable-key-{i:03}");
        let write_at = lines
            .iter()
            .position(|l| l.contains("pwrite64(") && l.contains(".seg>") && l.contains(&key))
            .unwrap_or_else(|| panic!("no WAL write holds {key}"));
        let resp_at = lines[write_at..]
            .iter()
            .position(|l| {
                (l.contains("write(") || l.contains("writev(") || l.contains("sendto("))
                    && l.contains("HTTP/1.1 200")
            })
            .map(|p| p + write_at)
            .unwrap_or_else(|| panic!("no HTTP response after the WAL write of {key}"));
        assert!(
            sync_done.iter().any(|s| *s > write_at && *s < resp_at),
            "{key}: acknowledged (trace line {resp_at}) without a completed WAL fdatasync after its write (line {write_at})"
        );
        checked += 1;
    }
    assert_eq!(checked, n);
}

/// Many concurrent writers share fsyncs: far fewer syncs than writes.
#[tokio::test]
async fn concurrent_writes_share_fsyncs() {
    let a = Agent::server(None, &["-log-level=warn"]);
    a.wait_ready().await;
    let syncs_before = a.counter("consul.raft.wal.syncs").await;
    let writers = 64;
    let per = 10;
    let mut handles = Vec::new();
    for w in 0..writers {
        let c = a.client();
        handles.push(tokio::spawn(async move {
            for i in 0..per {
                let r =
                    c.request(Method::PUT, &format!("/v1/kv/batch/{w}/{i}"), Some("x".into())).await.unwrap();
                assert_eq!(r.text(), "true");
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let syncs = a.counter("consul.raft.wal.syncs").await - syncs_before;
    let writes = (writers * per) as u64;
    assert!(syncs > 0);
    assert!(
        syncs * 2 <= writes,
        "{writes} concurrent writes took {syncs} fsyncs; batching should share them"
    );
    let keys: Vec<String> = a.get("/v1/kv/batch/?keys").await.json().unwrap();
    assert_eq!(keys.len() as u64, writes);
}

/// kill -9 in the middle of a write storm loses no acknowledged write.
#[tokio::test]
async fn kill9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::server(Some(dir.path()), &["-log-level=warn"]);
    a.wait_ready().await;
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..16 {
        let c = a.client();
        let acked = acked.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("storm/{w}/{}", i % 50);
                let val = format!("{w}-{i}");
                match c.request(Method::PUT, &format!("/v1/kv/{key}"), Some(val.clone().into())).await {
                    Ok(r) if r.text() == "true" => {
                        acked.lock().unwrap().insert(key, val);
                    }
                    _ => break,
                }
                i += 1;
            }
        }));
    }
    wait_until(Duration::from_secs(30), || async { acked.lock().unwrap().len() >= 400 }).await;
    a.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);
    a.restart();
    a.wait_ready().await;
    let entries: Vec<serde_json::Value> = a.get("/v1/kv/storm/?recurse").await.json().unwrap();
    let mut stored = HashMap::new();
    for e in entries {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD.decode(e["Value"].as_str().unwrap()).unwrap();
        stored.insert(e["Key"].as_str().unwrap().to_string(), String::from_utf8(v).unwrap());
    }
    for (k, v) in &acked {
        let got = stored.get(k).unwrap_or_else(|| panic!("acknowledged key {k} lost"));
        // A later write to the same key may have been applied but not acked
        // before the kill; values only move forward per writer.
        let seq = |s: &str| s.split('-').nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        assert!(seq(got) >= seq(v), "{k}: acknowledged {v}, found older {got}");
    }
}

/// A torn tail (a crash in the middle of an unacknowledged write) is cut
/// off at start; damage in the middle of the log refuses to start.
#[tokio::test]
async fn torn_tail_recovers_and_mid_log_corruption_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::server(Some(dir.path()), &[]);
    a.wait_ready().await;
    for i in 0..20 {
        a.put(&format!("/v1/kv/t/{i}"), b"v").await;
    }
    a.kill9();
    let wal = dir.path().join("raft/wal");
    let seg = std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    // Append half a record: a length header promising more bytes than exist.
    let mut bytes = std::fs::read(&seg).unwrap();
    let original_len = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 99, 0, 0, 0, 0, 0, 0, 0, 7, 7]);
    std::fs::write(&seg, &bytes).unwrap();
    a.restart();
    a.wait_ready().await;
    let keys: Vec<String> = a.get("/v1/kv/t/?keys").await.json().unwrap();
    assert_eq!(keys.len(), 20);
    assert!(a.output_text().contains("torn tail"), "{}", a.output_text());
    a.kill9();
    assert!(std::fs::metadata(&seg).unwrap().len() as usize >= original_len);

    // Flip a byte inside an early record: corruption, not a torn tail.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let out =
        Command::new(BIN).args(a.args.iter()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt") && err.contains("refusing to start"), "{err}");
}
