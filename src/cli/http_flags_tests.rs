//! Every command that talks to an agent takes Consul's token and TLS
//! flags: the check walks the whole command tree, so a new command cannot
//! forget them.

use clap::CommandFactory;

/// Leaf commands that work offline and so take no HTTP flags.
const OFFLINE: &[&str] = &[
    "consul agent",
    "consul keygen",
    "consul validate",
    "consul version",
    "consul snapshot inspect",
    "consul operator raft recover",
    "consul tls ca create",
    "consul tls cert create",
];

fn leaves(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
    if cmd.get_subcommands().next().is_none() {
        out.push((path, cmd.clone()));
        return;
    }
    for sub in cmd.get_subcommands() {
        leaves(sub, format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_agent_command_takes_token_and_token_file() {
    let mut all = Vec::new();
    leaves(&super::Cli::command(), "consul".to_string(), &mut all);
    assert!(all.len() > 20, "walked only {} commands", all.len());
    let mut missing = Vec::new();
    for (path, cmd) in &all {
        if OFFLINE.contains(&path.as_str()) {
            continue;
        }
        for flag in [
            "token",
            "token-file",
            "http-addr",
            "ca-file",
            "ca-path",
            "client-cert",
            "client-key",
            "tls-server-name",
        ] {
            if !cmd.get_arguments().any(|a| a.get_long() == Some(flag)) {
                missing.push(format!("{path}: -{flag}"));
            }
        }
    }
    assert!(missing.is_empty(), "commands without the HTTP token or TLS flags: {missing:?}");
}
