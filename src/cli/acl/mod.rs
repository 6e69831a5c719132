//! `consul acl`: bootstrap, policies, roles, tokens, the agent's own tokens
//! and the built-in templated policies, with Consul's flags, output and
//! exit codes. Talks to the agent only through `/v1/acl` and
//! `/v1/agent/token`.

mod api;
mod auth_method;
mod binding_rule;
mod format;
mod input;
mod misc;
mod model;
mod policy;
mod role;
mod templated;
mod token;

use clap::{Args, Subcommand};
use format::Format;

#[derive(Args, Debug)]
pub struct AclArgs {
    #[command(subcommand)]
    pub command: AclCommand,
}

/// Parsed once per process, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Bootstrap Consul's ACL system
    Bootstrap(misc::BootstrapArgs),
    /// Manage Consul's ACL policies
    Policy(policy::PolicyArgs),
    /// Manage Consul's ACL roles
    Role(role::RoleArgs),
    /// Manage Consul's ACL tokens
    Token(token::TokenArgs),
    /// Assign tokens for the Consul Agent's usage
    SetAgentToken(misc::SetAgentTokenArgs),
    /// Manage Consul's ACL templated policies
    TemplatedPolicy(templated::TemplatedPolicyArgs),
    /// Manage Consul's ACL auth methods
    AuthMethod(auth_method::AuthMethodArgs),
    /// Manage Consul's ACL binding rules
    BindingRule(binding_rule::BindingRuleArgs),
}

pub fn run(a: AclArgs) -> i32 {
    super::block_on(async move {
        match a.command {
            AclCommand::Bootstrap(b) => misc::bootstrap(b).await,
            AclCommand::Policy(p) => policy::run(p).await,
            AclCommand::Role(r) => role::run(r).await,
            AclCommand::Token(t) => token::run(t).await,
            AclCommand::SetAgentToken(s) => misc::set_agent_token(s).await,
            AclCommand::TemplatedPolicy(t) => templated::run(t).await,
            AclCommand::AuthMethod(m) => auth_method::run(m).await,
            AclCommand::BindingRule(r) => binding_rule::run(r).await,
        }
    })
}

/// Consul's UI prints errors on stderr; every failure here exits 1.
fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("{msg}");
    1
}

/// Prints a formatted block as Consul's UI does (one more newline), or
/// nothing when it is empty.
fn emit(out: &str) -> i32 {
    if !out.is_empty() {
        println!("{out}");
    }
    0
}

/// `-format` checked before any request, as Consul builds its formatter.
fn output_format(raw: &str) -> Result<Format, i32> {
    Format::parse(raw).map_err(fail)
}

const B: &str = "true";

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, FromArgMatches};

    /// argv through the same Go-style rewriting and clap tree as `cli::run`.
    fn parse(args: &[&str]) -> Result<Cli, String> {
        let root = Cli::command().args_override_self(true);
        let argv = args.iter().map(std::ffi::OsString::from).collect();
        let argv = crate::cli::goflag::normalize(&root, argv)?;
        let m = root.try_get_matches_from(argv).map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&m).map_err(|e| e.to_string())
    }

    #[test]
    fn go_style_repeated_and_boolean_flags() {
        let cli = parse(&[
            "consul",
            "acl",
            "token",
            "create",
            "-policy-name",
            "a",
            "-policy-name=b",
            "-local",
            "-expires-ttl",
            "15m",
            "-token",
            "t",
            "-service-identity",
            "web:dc1,dc2",
        ])
        .unwrap();
        let Command::Acl(super::AclArgs { command: super::AclCommand::Token(t) }) = cli.command else {
            panic!("not acl token")
        };
        let super::token::TokenCommand::Create(c) = t.command else { panic!("not create") };
        assert_eq!(c.policy_names, vec!["a", "b"]);
        assert_eq!(c.local, Some(true));
        assert_eq!(c.expires_ttl, "15m");
        assert_eq!(c.http.token.as_deref(), Some("t"));
        assert_eq!(c.service_identities, vec!["web:dc1,dc2"]);
    }

    #[test]
    fn set_agent_token_takes_positionals_and_unknown_flags_fail() {
        let cli =
            parse(&["consul", "acl", "set-agent-token", "-token-file", "/f", "agent", "secret"]).unwrap();
        let Command::Acl(super::AclArgs { command: super::AclCommand::SetAgentToken(s) }) = cli.command
        else {
            panic!("not set-agent-token")
        };
        assert_eq!(s.args, vec!["agent", "secret"]);
        assert_eq!(s.http.token_file.as_deref(), Some("/f"));
        assert_eq!(
            parse(&["consul", "acl", "token", "read", "-from-token", "x"]).err().unwrap(),
            "flag provided but not defined: -from-token"
        );
    }
}
