//! Each kind of configuration problem stops the agent with a message that
//! names the file, the key and the line; warnings let it start.

use crate::common::proc;
use crate::harness::{cli, wait_exit, Agent, BIN};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) fn start_with(files: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let ip = crate::harness::unique_ip();
    let mut child = proc::spawn(
        Command::new(BIN)
            .arg("agent")
            .arg(format!("-config-dir={}", dir.path().display()))
            .arg(format!("-bind={ip}"))
            .arg(format!("-client={ip}"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(10));
    if code.is_none() {
        child.kill_group();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (code, text)
}

#[test]
fn unknown_key_names_file_key_and_line() {
    let (code, out) = start_with(
        &[("10-base.json", "{\n  \"data_dir\": \"/tmp/x\",\n  \"server\": true,\n  \"bogus\": 1\n}")],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("10-base.json") && out.contains("invalid config key bogus") && out.contains("line 4"),
        "{out}"
    );
}

#[test]
fn wrong_type_and_bad_json() {
    let (code, out) = start_with(&[("a.json", "{\"data_dir\": \"/tmp/x\", \"server\": \"yes\"}")], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("a.json") && out.contains("server") && out.contains("invalid type"), "{out}");
    let (code, out) = start_with(&[("b.json", "{\n\"data_dir\": \"/tmp/x\"\n\"server\": true}")], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("b.json") && out.contains("line 3"), "{out}");
}

#[test]
fn refused_and_warned_keys() {
    let (code, out) =
        start_with(&[("ac.json", r#"{"data_dir": "/tmp/x", "auto_config": {"enabled": true}}"#)], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("auto_config.enabled is not supported") && out.contains("Connect CA"), "{out}");
    let (code, out) = start_with(&[("tls.json", r#"{"data_dir": "/tmp/x", "verify_incoming": true}"#)], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("verify_incoming is set but no CA is configured"), "{out}");
}

#[tokio::test]
async fn warned_keys_let_the_agent_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), r#"{"enable_syslog": true, "enable_debug": true, "ui": true}"#)
        .unwrap();
    let a = Agent::dev(&[&format!("-config-dir={}", dir.path().display())]);
    a.wait_ready().await;
    let out = a.output_text();
    assert!(out.contains("[WARN]") && out.contains("enable_syslog"), "{out}");
}

#[test]
fn semantic_errors() {
    let (code, out) = start_with(&[("a.json", r#"{"server": true}"#)], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("data_dir cannot be empty"), "{out}");
    let (code, out) = start_with(&[("a.json", r#"{"data_dir": "/tmp/x", "bootstrap_expect": 3}"#)], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("'bootstrap_expect > 0' requires 'server = true'"), "{out}");
    let (code, out) = start_with(&[("a.json", r#"{"data_dir": "/tmp/x", "encrypt": "c2hvcnQ="}"#)], &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("16, 24 or 32 bytes"), "{out}");
    let (code, out) = start_with(&[], &["-bogus-flag"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("flag provided but not defined: -bogus-flag"), "{out}");
}

#[tokio::test]
async fn two_agents_cannot_share_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let a = Agent::server(Some(dir.path()), &[]);
    a.wait_ready().await;
    let (code, out) =
        start_with(&[], &["-server", "-bootstrap", &format!("-data-dir={}", dir.path().display())]);
    assert_eq!(code, Some(1));
    assert!(out.contains("in use by another agent"), "{out}");
}

#[test]
fn validate_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.json"),
        r#"{"server": true, "bootstrap_expect": 3, "retry_join": ["10.0.0.1"]}"#,
    )
    .unwrap();
    let out = cli(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "Configuration is valid!\n");
    std::fs::write(dir.path().join("zz.json"), r#"{"nonsense": 1}"#).unwrap();
    let out = cli(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("invalid config key nonsense") && out.stderr.contains("zz.json"), "{out:?}");
    assert_eq!(cli(&["validate"]).code, 1);
}
