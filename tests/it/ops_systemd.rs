//! Running under systemd: `READY=1` reaches `$NOTIFY_SOCKET` only once the
//! HTTP API answers, `STOPPING=1` when shutdown begins, nothing when the
//! agent fails to start; `-pid-file` holds the agent's pid while it runs and
//! is removed at exit. Also keeps configs/systemd/consul.service in line
//! with what the agent implements.

use crate::common::proc;
use crate::harness::{unique_ip, wait_exit, BIN};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn recv_text(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_stopping_and_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let pid_file = dir.path().join("consul.pid");
    let ip = unique_ip();
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let mut child = proc::spawn(
        Command::new(BIN)
            .args(["agent", "-dev", "-node=sd", &format!("-bind={ip}"), &format!("-client={ip}")])
            .arg(format!("-pid-file={}", pid_file.display()))
            .env("NOTIFY_SOCKET", &sock_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
    .unwrap();
    let output = || std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();

    let ready = recv_text(&sock);
    assert!(
        ready.as_deref().is_some_and(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1: {ready:?}\n{}",
        output()
    );
    // Ready means serving: the very first request succeeds.
    let client = consul::api::Client::new(consul::api::ClientConfig {
        address: format!("{ip}:8500"),
        ..Default::default()
    })
    .unwrap();
    let r = client
        .request(hyper::Method::GET, "/v1/agent/self", None)
        .await
        .expect("HTTP answers once READY=1 is sent");
    assert!(r.status.is_success());
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        child.id().to_string(),
        "-pid-file holds the agent's pid"
    );

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopping = recv_text(&sock);
    assert!(
        stopping.as_deref().is_some_and(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1: {stopping:?}"
    );
    assert!(wait_exit(&mut child, Duration::from_secs(30)).is_some(), "agent did not exit\n{}", output());
    assert!(!pid_file.exists(), "the pid file is removed at exit");
}

#[test]
fn a_failed_start_never_reports_ready() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut child = proc::spawn(
        Command::new(BIN)
            .args(["agent", "-dev", "-bind=not-an-ip"])
            .env("NOTIFY_SOCKET", &sock_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)), Some(1));
    sock.set_nonblocking(true).unwrap();
    assert!(recv_text(&sock).is_none(), "a failed start must not notify systemd");
}

#[test]
fn the_unit_file_matches_what_the_agent_does() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/systemd/consul.service"))
            .unwrap();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "User=consul",
        "Group=consul",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
    ] {
        assert!(has(line), "consul.service lacks {line:?}");
    }
    assert!(unit.lines().any(|l| l.starts_with("ExecStart=/usr/local/bin/consul agent ")), "{unit}");
}
