//! `consul acl ...` and the token flags of every command, through the real
//! binary. The token tests capture the request on a loopback listener of
//! their own, so they check exactly what goes on the wire; the end-to-end
//! test drives a dev agent with ACLs on and `default_policy = "deny"`.

use crate::harness::{cli_with_env, unique_ip, Agent};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Runs the CLI against a one-shot listener and returns the
/// `X-Consul-Token` of the first request it sent (None if it sent none),
/// with the CLI's exit code. The listener answers 500, so every command
/// ends there.
fn token_sent(args: &[&str], env: &[(&str, &str)]) -> (Option<String>, i32) {
    let listener = TcpListener::bind((unique_ip(), 0)).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut token = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("x-consul-token") {
                    token = Some(value.trim().to_string());
                }
            }
        }
        let mut conn = conn;
        let _ = conn.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom",
        );
        token
    });
    let mut all_env = vec![("CONSUL_HTTP_ADDR", addr.as_str())];
    all_env.extend_from_slice(env);
    let out = cli_with_env(args, &all_env, None);
    (server.join().unwrap(), out.code)
}

#[test]
fn every_kind_of_command_sends_the_token_with_consuls_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let flag_file = dir.path().join("flag-token");
    std::fs::write(&flag_file, "from-flag-file\n").unwrap();
    let env_file = dir.path().join("env-token");
    std::fs::write(&env_file, "from-env-file\n").unwrap();
    let (flag_file, env_file) = (flag_file.to_str().unwrap(), env_file.to_str().unwrap());

    // Commands of different shapes (subcommand path, then the rest): KV,
    // agent, catalog, ACL, and the watch plan's own client.
    let commands: [(&[&str], &[&str]); 5] = [
        (&["kv", "get"], &["k"]),
        (&["members"], &[]),
        (&["catalog", "services"], &[]),
        (&["acl", "token", "read"], &["-self"]),
        (&["watch"], &["-type=key", "-key=k"]),
    ];
    for (path, rest) in commands {
        let cmd = path;
        let run = |extra: &[&str], env: &[(&str, &str)]| {
            let args: Vec<&str> = path.iter().chain(extra).chain(rest).copied().collect();
            let (tok, code) = token_sent(&args, env);
            assert_eq!(code, 1, "{args:?} against a failing agent");
            tok
        };
        assert_eq!(run(&[], &[]), None, "{cmd:?}: no token unless one is given");
        assert_eq!(run(&["-token=from-flag"], &[]).as_deref(), Some("from-flag"), "{cmd:?}");
        assert_eq!(run(&[], &[("CONSUL_HTTP_TOKEN", "from-env")]).as_deref(), Some("from-env"), "{cmd:?}");
        assert_eq!(
            run(&["-token=from-flag"], &[("CONSUL_HTTP_TOKEN", "from-env")]).as_deref(),
            Some("from-flag"),
            "{cmd:?}: -token beats CONSUL_HTTP_TOKEN"
        );
        let tf = format!("-token-file={flag_file}");
        assert_eq!(
            run(&["-token=from-flag", &tf], &[("CONSUL_HTTP_TOKEN_FILE", env_file)]).as_deref(),
            Some("from-flag-file"),
            "{cmd:?}: -token-file beats everything"
        );
        assert_eq!(
            run(&["-token=from-flag"], &[("CONSUL_HTTP_TOKEN_FILE", env_file)]).as_deref(),
            Some("from-env-file"),
            "{cmd:?}: a token file, even from the environment, beats -token (Consul's client reads it last)"
        );
    }
}

#[test]
fn unreadable_token_file_fails_before_any_request() {
    let out = cli_with_env(
        &["kv", "get", "-token-file=/nonexistent/consul-token", "k"],
        &[("CONSUL_HTTP_ADDR", "127.0.0.1:1")],
        None,
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error connecting to Consul agent: Error loading token file: open /nonexistent/consul-token: no such file or directory\n"
    );
}

#[test]
fn acl_argument_errors_exit_1_without_an_agent() {
    let env = [("CONSUL_HTTP_ADDR", "127.0.0.1:1")];
    let cases: [(&[&str], &str); 6] = [
        (&["acl", "token", "create"], "Cannot create a token without specifying -policy-name, -policy-id, -role-name, -role-id, -service-identity, -node-identity, or -templated-policy at least once\n"),
        (&["acl", "token", "read"], "Must specify the -accessor-id parameter\n"),
        (&["acl", "policy", "create"], "Missing required '-name' flag\n"),
        (&["acl", "role", "update"], "Cannot update a role without specifying the -id parameter\n"),
        (&["acl", "set-agent-token", "agent"], "Error! Missing TOKEN argument\n"),
        (&["acl", "token", "list", "-format=yaml"], "Unknown format: yaml\n"),
    ];
    for (args, want) in cases {
        let out = cli_with_env(args, &env, None);
        assert_eq!((out.code, out.stderr.as_str()), (1, want), "{args:?}");
    }
}

const ROOT: &str = "4f1a7e0c-2b7d-4c55-9d0e-3a8b6c1d2e3f";

/// The value after `Label:` in Consul's pretty output.
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in\n{out}"))
}

#[tokio::test]
async fn acl_commands_against_a_default_deny_agent() {
    let hcl = format!(
        r#"acl {{ enabled = true
                 default_policy = "deny"
                 tokens {{ initial_management = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    a.wait_ready().await;
    let addr = a.addr();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![("CONSUL_HTTP_ADDR", addr.as_str())];
        all.extend_from_slice(env);
        cli_with_env(args, &all, None)
    };
    let root = |args: &[&str]| run(args, &[("CONSUL_HTTP_TOKEN", ROOT)]);
    // The initial management token appears once the leader has set ACLs up.
    let ready = crate::common::wait::wait_until(Duration::from_secs(30), || async {
        root(&["acl", "token", "read", "-self"]).code == 0
    })
    .await;
    assert!(ready, "management token never worked\n{}", a.output_text());

    // No token under deny: refused, exit 1, Consul's text.
    let out = run(&["acl", "policy", "list"], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "Failed to retrieve the policy list: Unexpected response code: 403 (Permission denied"
        ),
        "{}",
        out.stderr
    );
    let out = run(&["kv", "put", "app/x", "1"], &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);

    // Bootstrap once: with an initial management token it is already done.
    let out = run(&["acl", "bootstrap"], &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("ACL bootstrap no longer allowed"), "{}", out.stderr);

    let out = root(&["acl", "token", "read", "-self"]);
    assert_eq!(field(&out.stdout, "SecretID"), ROOT);
    assert_eq!(field(&out.stdout, "Description"), "Initial Management Token");
    assert!(
        out.stdout.contains("Policies:\n   00000000-0000-0000-0000-000000000001 - global-management\n"),
        "{}",
        out.stdout
    );

    // A policy from a file.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("app.hcl");
    std::fs::write(&rules, "key_prefix \"app/\" {\n  policy = \"write\"\n}\n").unwrap();
    let out = root(&[
        "acl",
        "policy",
        "create",
        "-name",
        "app-rw",
        "-description",
        "app keys",
        "-rules",
        &format!("@{}", rules.display()),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(field(&out.stdout, "Name"), "app-rw");
    assert!(
        out.stdout.contains("Rules:\nkey_prefix \"app/\" {\n  policy = \"write\"\n}\n"),
        "{}",
        out.stdout
    );
    let policy_id = field(&out.stdout, "ID");
    let out = root(&["acl", "policy", "read", "-name", "app-rw", "-format=json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["ID"], policy_id.as_str());
    assert!(root(&["acl", "policy", "list"]).stdout.contains("app-rw:\n"));
    let out =
        root(&["acl", "policy", "create", "-name", "app-rw", "-rules", "key \"\" { policy = \"read\" }"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("Failed to create new policy: Unexpected response code: 500 (Invalid Policy: A Policy with Name \"app-rw\" already exists)"),
        "{}",
        out.stderr
    );

    // A token with that policy, found again by an ID prefix.
    let out = root(&["acl", "token", "create", "-description", "app", "-policy-name", "app-rw"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (accessor, secret) = (field(&out.stdout, "AccessorID"), field(&out.stdout, "SecretID"));
    assert!(out.stdout.contains(&format!("Policies:\n   {policy_id} - app-rw\n")), "{}", out.stdout);
    let out = root(&["acl", "token", "read", "-accessor-id", &accessor[..8]]);
    assert_eq!((out.code, field(&out.stdout, "AccessorID")), (0, accessor.clone()), "{}", out.stderr);

    // The new token through each way of giving it.
    let out = run(&["acl", "token", "read", "-self", "-token", &secret], &[]);
    assert_eq!(field(&out.stdout, "AccessorID"), accessor, "{}", out.stderr);
    assert_eq!(run(&["kv", "put", "app/x", "1"], &[("CONSUL_HTTP_TOKEN", &secret)]).code, 0);
    let out = run(&["kv", "put", "other", "1"], &[("CONSUL_HTTP_TOKEN", &secret)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "token with AccessorID '{accessor}' lacks permission 'key:write' on \"other\""
        )),
        "{}",
        out.stderr
    );
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let tf = token_file.to_str().unwrap();
    assert_eq!(run(&["kv", "get", "-token-file", tf, "app/x"], &[]).stdout, "1\n");
    assert_eq!(run(&["kv", "get", "app/x"], &[("CONSUL_HTTP_TOKEN_FILE", tf)]).stdout, "1\n");

    // An unknown secret is not the anonymous token.
    // Consul 1.15+ reads one's own token by its secret: 404 when none has it.
    let out = run(&["acl", "token", "read", "-self", "-token", "00000000-0000-0000-0000-00000000dead"], &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Supplied token does not exist"), "{}", out.stderr);

    // Update, clone, role, delete.
    let out = root(&[
        "acl",
        "token",
        "update",
        "-accessor-id",
        &accessor,
        "-description",
        "renamed",
        "-append-policy-name",
        "global-management",
    ]);
    assert_eq!(field(&out.stdout, "Description"), "renamed", "{}", out.stderr);
    assert!(out.stdout.contains("global-management"), "{}", out.stdout);
    let out = root(&["acl", "token", "clone", "-accessor-id", &accessor, "-description", "copy"]);
    assert_eq!(field(&out.stdout, "Description"), "copy", "{}", out.stderr);
    let clone_id = field(&out.stdout, "AccessorID");
    let out = root(&[
        "acl",
        "role",
        "create",
        "-name",
        "web-role",
        "-policy-id",
        &policy_id[..8],
        "-service-identity",
        "web",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Service Identities:\n   web (Datacenters: all)\n"), "{}", out.stdout);
    let out = root(&["acl", "token", "delete", "-accessor-id", &clone_id]);
    assert_eq!(out.stdout, format!("Token \"{clone_id}\" deleted successfully\n"), "{}", out.stderr);

    // The agent's own token, and the templates.
    let out = root(&["acl", "set-agent-token", "agent", ROOT]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ACL token \"agent\" set successfully\n"),
        "{}",
        out.stderr
    );
    assert!(root(&["acl", "templated-policy", "list"]).stdout.contains("builtin/service\n"));
    let out = root(&["acl", "templated-policy", "preview", "-name", "builtin/service", "-var", "name:api"]);
    assert!(out.stdout.contains("service \"api\""), "{}{}", out.stdout, out.stderr);
}
