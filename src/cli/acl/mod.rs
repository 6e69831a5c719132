//! `consul acl`: bootstrap, policies, roles, tokens, the agent's own tokens
//! and the built-in templated policies, with Consul's flags, output and
//! exit codes. Talks to the agent only through `/v1/acl` and
//! `/v1/agent/token`.

mod api;
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
