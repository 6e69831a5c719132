//! The CLI: Go-style flags, version/keygen, and `consul kv` with Consul's
//! output and exit codes against a real agent.

use crate::harness::{cli, cli_with_env, Agent};
use base64::Engine;

#[test]
fn version_and_keygen() {
    let out = cli(&["version"]);
    assert_eq!(out.code, 0);
    let mut lines = out.stdout.lines();
    assert!(lines.next().unwrap().starts_with("Consul v1."), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("Protocol 2 spoken by default")), "{}", out.stdout);
    assert_eq!(cli(&["-version"]).stdout, out.stdout);
    assert_eq!(cli(&["--version"]).stdout, out.stdout);

    let k1 = cli(&["keygen"]);
    let k2 = cli(&["keygen"]);
    assert_eq!(k1.code, 0);
    let key = k1.stdout.trim();
    assert_eq!(key.len(), 44);
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(key).unwrap().len(), 32);
    assert_ne!(k1.stdout, k2.stdout);
}

#[test]
fn usage_and_unknown_commands() {
    let out = cli(&[]);
    assert_eq!(out.code, 127);
    assert!(out.stderr.contains("Usage: consul"));
    assert_eq!(cli(&["definitely-not-a-command"]).code, 127);
    assert_eq!(cli(&["kv", "get", "-h"]).code, 0);
}

#[tokio::test]
async fn kv_commands() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;

    let out = a.cli(&["kv", "put", "redis/config/connections", "5"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Success! Data written to: redis/config/connections\n"));
    // Go-style flag forms: -flag=v, -flag v, --flag=v.
    assert_eq!(a.cli(&["kv", "put", "-flags=42", "redis/config/users/admin", "abcd1234"]).code, 0);
    assert_eq!(a.cli(&["kv", "put", "-flags", "7", "a", "1"]).code, 0);
    assert_eq!(a.cli(&["kv", "put", "--flags=8", "b", "-"]).code, 0, "'-' reads stdin (empty here)");

    let out = a.cli(&["kv", "get", "redis/config/connections"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "5\n"));
    let out = a.cli(&["kv", "get", "-detailed", "redis/config/users/admin"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Flags            42\n"), "{}", out.stdout);
    assert!(out.stdout.contains("Session          -\n"), "{}", out.stdout);
    assert!(out.stdout.ends_with("Value            abcd1234\n"), "{}", out.stdout);
    let out = a.cli(&["kv", "get", "-recurse", "redis/"]);
    assert_eq!(out.stdout, "redis/config/connections:5\nredis/config/users/admin:abcd1234\n");
    let out = a.cli(&["kv", "get", "-keys", "redis/config/"]);
    assert_eq!(out.stdout, "redis/config/connections\nredis/config/users/\n");
    let out = a.cli(&["kv", "get", "-base64", "a"]);
    assert_eq!(out.stdout, "MQ==\n");

    let out = a.cli(&["kv", "get", "nope"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "Error! No key exists at: nope\n"));
    assert_eq!(a.cli(&["kv", "get"]).stderr, "Error! Missing KEY argument\n");

    // CAS.
    let idx = {
        let d = a.cli(&["kv", "get", "-detailed", "a"]).stdout;
        d.lines()
            .find(|l| l.starts_with("ModifyIndex"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let out = a.cli(&["kv", "put", "-cas", "-modify-index=1", "a", "2"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "Error! Did not write to a: CAS failed\n"));
    assert_eq!(a.cli(&["kv", "put", "-cas", &format!("-modify-index={idx}"), "a", "2"]).code, 0);

    // Export and import round trip through a file.
    let export = a.cli(&["kv", "export", "redis/"]);
    assert_eq!(export.code, 0);
    let v: serde_json::Value = serde_json::from_str(&export.stdout).unwrap();
    assert_eq!(v[1]["flags"], 42);
    assert!(export.stdout.contains("\n\t{\n\t\t\"key\""), "tab-indented like Consul: {}", export.stdout);
    let b = Agent::dev(&[]);
    b.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, &export.stdout).unwrap();
    let out = b.cli(&["kv", "import", &format!("@{}", file.display())]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "Imported: redis/config/connections\nImported: redis/config/users/admin\n");
    assert_eq!(b.cli(&["kv", "get", "redis/config/users/admin"]).stdout, "abcd1234\n");
    let out = cli_with_env(
        &["kv", "import", "-prefix=copy/", "-"],
        &[("CONSUL_HTTP_ADDR", &b.addr())],
        Some(export.stdout.as_bytes()),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(b.cli(&["kv", "get", "copy/redis/config/connections"]).stdout, "5\n");

    // Deletes.
    assert_eq!(a.cli(&["kv", "delete", "a"]).stdout, "Success! Deleted key: a\n");
    assert_eq!(
        a.cli(&["kv", "delete", "-recurse", "redis/"]).stdout,
        "Success! Deleted keys with prefix: redis/\n"
    );
    assert_eq!(
        a.cli(&["kv", "delete", "-cas", "-recurse", "x"]).stderr,
        "Cannot specify both -cas and -recurse!\n"
    );
    assert!(a.cli(&["kv", "get", "-recurse", "redis/"]).stdout.is_empty());

    // -http-addr overrides the environment; an unreachable agent is a clear error.
    let out = cli(&["kv", "get", &format!("-http-addr={}", a.addr()), "b"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = cli(&["kv", "get", "-http-addr=127.0.0.1:1", "b"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Error querying Consul agent: "), "{}", out.stderr);
    let out = cli(&["kv", "put", "-nosuchflag", "x"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "flag provided but not defined: -nosuchflag\n"));
}
