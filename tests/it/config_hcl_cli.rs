//! `consul validate` and `consul agent -hcl` with HCL, through the real
//! binary: HCL files and directories validate, errors name the file, key
//! and line, and `-hcl` fragments merge after the flags.

use std::process::Command;

use crate::harness::BIN;

struct Out {
    code: Option<i32>,
    text: String,
}

fn run(args: &[&str]) -> Out {
    let out = Command::new(BIN).args(args).output().expect("run consul");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Out { code: out.status.code(), text }
}

#[test]
fn validate_hcl_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let server = "server = true\nbootstrap_expect = 3\nretry_join = [\"10.0.0.1\"]\nbind_addr = \"{{ GetInterfaceIP \\\"eth0\\\" }}\"\nservice { name = \"web\" port = 80 check { http = \"http://localhost/\" interval = \"10s\" } }\n";
    std::fs::write(dir.path().join("server.hcl"), server).unwrap();
    std::fs::write(dir.path().join("extra.json"), r#"{"node_meta": {"rack": "r1"}}"#).unwrap();
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(out.text.contains("Configuration is valid!"), "{}", out.text);

    let file = dir.path().join("server.hcl");
    let out = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text);

    std::fs::write(dir.path().join("zz.hcl"), "ports {\n  http = 8500\n  htp = 1\n}\n").unwrap();
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(
        out.text.contains("zz.hcl")
            && out.text.contains("invalid config key ports.htp")
            && out.text.contains("line 3"),
        "{}",
        out.text
    );

    std::fs::write(dir.path().join("zz.hcl"), "client_addr = \"{{ GetInterfaceAddr \\\"eth0\\\" }}\"\n")
        .unwrap();
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(
        out.text.contains("client_addr") && out.text.contains("unknown function \"GetInterfaceAddr\""),
        "{}",
        out.text
    );
}

#[test]
fn validate_with_config_format_hcl() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("agent.conf");
    std::fs::write(&conf, "datacenter = \"east\"\nlog_level = \"debug\"\n").unwrap();
    let out = run(&["validate", "-config-format=hcl", conf.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text);
    let out = run(&["validate", conf.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "a .conf file is JSON unless told otherwise: {}", out.text);
}

#[test]
fn agent_hcl_fragments_merge_after_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // The fragment sets what the flags did not: its bootstrap_expect needs
    // server mode, which the error proves was read from the fragment.
    let out =
        run(&["agent", &format!("-data-dir={data}"), "-bind=127.0.0.1", "-hcl", "bootstrap_expect = 3"]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(out.text.contains("'bootstrap_expect > 0' requires 'server = true'"), "{}", out.text);
    // A fragment wins over a flag (Consul merges fragments last).
    let out = run(&[
        "agent",
        &format!("-data-dir={data}"),
        "-bind=127.0.0.1",
        "-server",
        "-bootstrap-expect=3",
        "-hcl",
        "server = false",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(out.text.contains("'bootstrap_expect > 0' requires 'server = true'"), "{}", out.text);
    // Errors name the fragment and the line.
    let out = run(&[
        "agent",
        &format!("-data-dir={data}"),
        "-bind=127.0.0.1",
        "-hcl",
        "log_level = \"info\"",
        "-hcl",
        "ports {\n  bogus = 1\n}",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(
        out.text.contains("-hcl fragment 2")
            && out.text.contains("invalid config key ports.bogus")
            && out.text.contains("line 2"),
        "{}",
        out.text
    );
}
