//! Script checks against real processes: exit codes, output capture and
//! caps, spawn failures, and the timeout killing the whole process group.

use super::{probe, spec};
use crate::checks::{CheckKind, Status};
use std::time::{Duration, Instant};

fn sh(script: &str) -> CheckKind {
    CheckKind::Script { args: vec!["/bin/sh".into(), "-c".into(), script.into()] }
}

const LONG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn exit_codes_map_to_statuses() {
    let cases = [
        ("echo out; echo err >&2; exit 0", Status::Passing, "out\nerr\n"),
        ("echo degraded; exit 1", Status::Warning, "degraded\n"),
        ("echo broken; exit 2", Status::Critical, "broken\n"),
        ("exit 127", Status::Critical, ""),
        ("echo bye; kill -9 $$", Status::Critical, "bye\n"),
    ];
    for (script, status, output) in cases {
        assert_eq!(
            probe(&spec("s", sh(script), LONG)).await,
            (status, output.to_string()),
            "script {script:?}"
        );
    }
}

#[tokio::test]
async fn stdout_and_stderr_keep_their_order() {
    let (_, out) = probe(&spec("s", sh("echo 1; echo 2 >&2; echo 3; echo 4 >&2"), LONG)).await;
    assert_eq!(out, "1\n2\n3\n4\n");
}

#[tokio::test]
async fn legacy_shell_script_runs_through_the_shell() {
    let kind = CheckKind::Shell { command: "echo $((40+2)) | tr 4 x".into(), shell: Some("/bin/sh".into()) };
    assert_eq!(probe(&spec("s", kind, LONG)).await, (Status::Passing, "x2\n".to_string()));
}

#[tokio::test]
async fn stdin_is_empty_and_environment_is_inherited() {
    // `cat` would block forever on an inherited terminal or pipe.
    let (status, out) = probe(&spec("s", sh("cat; test -n \"$PATH\" && echo has-path"), LONG)).await;
    assert_eq!((status, out.as_str()), (Status::Passing, "has-path\n"));
}

#[tokio::test]
async fn spawn_failures_are_critical_with_go_wording() {
    let (status, out) =
        probe(&spec("s", CheckKind::Script { args: vec!["/nonexistent/check".into()] }, LONG)).await;
    assert_eq!(
        (status, out.as_str()),
        (Status::Critical, "fork/exec /nonexistent/check: no such file or directory")
    );
    let (status, out) =
        probe(&spec("s", CheckKind::Script { args: vec!["no-such-command-xyz".into()] }, LONG)).await;
    assert_eq!(
        (status, out.as_str()),
        (Status::Critical, "exec: \"no-such-command-xyz\": executable file not found in $PATH")
    );
    let (status, out) = probe(&spec("s", CheckKind::Script { args: vec![] }, LONG)).await;
    assert_eq!((status, out.as_str()), (Status::Critical, "exec: no command"));
}

#[tokio::test]
async fn huge_output_is_capped_to_the_last_bytes_with_consul_note() {
    let script = "head -c 102400 /dev/zero | tr '\\0' a; printf END";
    let (status, out) = probe(&spec("s", sh(script), LONG)).await;
    assert_eq!(status, Status::Passing);
    let prefix = "Captured 4096 of 102403 bytes\n...\n";
    assert!(out.starts_with(prefix), "{}", &out[..60.min(out.len())]);
    assert_eq!(out.len(), prefix.len() + 4096);
    assert!(out.ends_with("aaaEND"));

    let mut small = spec("s", sh(script), LONG);
    small.output_max_size = 10;
    assert_eq!(probe(&small).await.1, "Captured 10 of 102403 bytes\n...\naaaaaaaEND");
}

#[tokio::test]
async fn binary_output_does_not_break_anything() {
    let (status, out) = probe(&spec("s", sh("printf '\\377\\376ok\\000!'"), LONG)).await;
    assert_eq!(status, Status::Passing);
    assert_eq!(out, "\u{fffd}\u{fffd}ok\u{0}!");
}

/// True when `pid` is gone or a zombie (a zombie no longer runs; in a
/// container without an init that reaps, orphans stay zombies).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group_and_reports_critical() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; echo started; wait", pid_file.display());
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let (status, out) = probe(&spec("s", sh(&script), timeout)).await;
    let took = started.elapsed();
    assert_eq!(status, Status::Critical);
    assert_eq!(out, "Timed out (400ms) running check\n\nstarted\n");
    assert!(took >= timeout && took < timeout + Duration::from_secs(3), "took {took:?}");

    let child = read_pid(&pid_file).expect("the script wrote its child's pid");
    let gone = super::wait_until(Duration::from_secs(5), || async move { is_dead(child) }).await;
    assert!(gone, "background child {child} survived the timeout");
}

#[tokio::test]
async fn a_background_child_holding_the_output_open_runs_into_the_timeout() {
    // As in Consul, the run waits for the output to close, so a script that
    // leaves a child writing to it is cut off by the timeout.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; exit 0", pid_file.display());
    let (status, out) = probe(&spec("s", sh(&script), Duration::from_millis(300))).await;
    assert_eq!((status, out.as_str()), (Status::Critical, "Timed out (300ms) running check"));
    let child = read_pid(&pid_file).unwrap();
    assert!(super::wait_until(Duration::from_secs(5), || async move { is_dead(child) }).await);
}

#[tokio::test]
async fn a_cancelled_run_kills_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let spec = spec("s", sh(&script), LONG);
    let run = tokio::spawn(async move { probe(&spec).await });
    let pid_path = pid_file.clone();
    assert!(
        super::wait_until(Duration::from_secs(5), || {
            let p = pid_path.clone();
            async move { read_pid(&p).is_some() }
        })
        .await
    );
    run.abort();
    let _ = run.await;
    let child = read_pid(&pid_file).unwrap();
    assert!(
        super::wait_until(Duration::from_secs(5), || async move { is_dead(child) }).await,
        "child {child} survived cancellation"
    );
}
