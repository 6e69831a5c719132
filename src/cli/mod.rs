//! The `consul` command line: Go-style flags (`goflag`), one file per
//! subcommand, Consul's messages and exit codes. Every command except
//! `agent` talks to a running agent over HTTP through `api::Client`.

pub mod acl;
pub mod agent;
pub mod catalog;
pub mod columnize;
pub mod config;
pub mod debug;
pub mod event;
pub mod exec;
pub mod goflag;
#[cfg(test)]
mod http_flags_tests;
pub mod info;
pub mod intention;
pub mod join;
pub mod keygen;
pub mod keyring;
pub mod kv;
pub mod lock;
pub mod login;
pub mod maint;
pub mod members;
pub mod monitor;
pub mod operator;
pub mod operator_recover;
pub mod reload;
pub mod rtt;
pub mod services;
pub mod snapshot;
pub mod tls;
pub mod validate;
pub mod version;
pub mod watch;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser, Debug)]
#[command(name = "consul", disable_help_subcommand = true, disable_version_flag = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once per process, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Interact with Consul's ACLs
    Acl(acl::AclArgs),
    /// Runs a Consul agent
    Agent(agent::AgentArgs),
    /// Interact with the catalog
    Catalog(catalog::CatalogArgs),
    /// Forces a member of the cluster to enter the "left" state
    ForceLeave(join::ForceLeaveArgs),
    /// Provides debugging information for operators.
    Info(info::InfoArgs),
    /// Tell Consul agent to join cluster
    Join(join::JoinArgs),
    /// Manages gossip layer encryption keys
    Keyring(keyring::KeyringArgs),
    /// Gracefully leaves the Consul cluster and shuts down
    Leave(join::LeaveArgs),
    /// Controls node or service maintenance mode
    Maint(maint::MaintArgs),
    /// Provides cluster-level tools for Consul operators
    Operator(operator::OperatorArgs),
    /// Triggers the agent to reload configuration files
    Reload(reload::ReloadArgs),
    /// Estimates network round trip time between nodes
    Rtt(rtt::RttArgs),
    /// Saves, restores and inspects snapshots of Consul server state
    Snapshot(snapshot::SnapshotArgs),
    /// Fire a new event
    Event(event::EventArgs),
    /// Executes a command on Consul nodes
    Exec(exec::ExecArgs),
    /// Interact with the key-value store
    Kv(kv::KvArgs),
    /// Interact with Consul's centralized configurations
    Config(config::ConfigArgs),
    /// Interact with Connect service intentions
    Intention(intention::IntentionArgs),
    /// Execute a command holding a lock
    Lock(lock::LockArgs),
    /// Lists the members of a Consul cluster
    Members(members::MembersArgs),
    /// Stream logs from a Consul agent
    Monitor(monitor::MonitorArgs),
    /// Interact with services
    Services(services::ServicesArgs),
    /// Builtin helpers for creating CAs and certificates
    Tls(tls::TlsArgs),
    /// Generates a new encryption key
    Keygen(keygen::KeygenArgs),
    /// Validate config files/directories
    Validate(validate::ValidateArgs),
    /// Prints the Consul version
    Version(version::VersionArgs),
    /// Watch for changes in Consul
    Watch(watch::WatchArgs),
    /// Records a debugging archive for operators
    Debug(debug::DebugArgs),
    /// Login to Consul using an auth method
    Login(login::LoginArgs),
    /// Destroy a Consul token created with login
    Logout(login::LogoutArgs),
}

/// Flags every command that talks to an agent takes (Consul's HTTP flags).
#[derive(Args, Debug, Default, Clone)]
pub struct HttpFlags {
    #[arg(long = "http-addr", help = "The `address` and port of the Consul HTTP agent (CONSUL_HTTP_ADDR)")]
    pub http_addr: Option<String>,
    #[arg(long = "token", help = "ACL token to use in the request (CONSUL_HTTP_TOKEN)")]
    pub token: Option<String>,
    #[arg(
        long = "token-file",
        help = "File containing the ACL token to use in the request (CONSUL_HTTP_TOKEN_FILE)"
    )]
    pub token_file: Option<String>,
    #[arg(
        long = "ca-file",
        help = "Path to a CA file to use for TLS when communicating with Consul (CONSUL_CACERT)"
    )]
    pub ca_file: Option<String>,
    #[arg(
        long = "ca-path",
        help = "Path to a directory of CA certificates to use for TLS when communicating with Consul (CONSUL_CAPATH)"
    )]
    pub ca_path: Option<String>,
    #[arg(
        long = "client-cert",
        help = "Path to a client cert file to use for TLS when 'verify_incoming' is enabled (CONSUL_CLIENT_CERT)"
    )]
    pub client_cert: Option<String>,
    #[arg(
        long = "client-key",
        help = "Path to a client key file to use for TLS when 'verify_incoming' is enabled (CONSUL_CLIENT_KEY)"
    )]
    pub client_key: Option<String>,
    #[arg(
        long = "tls-server-name",
        help = "The server name to use as the SNI host when connecting via TLS (CONSUL_TLS_SERVER_NAME)"
    )]
    pub tls_server_name: Option<String>,
    #[arg(long = "datacenter", help = "Name of the datacenter to query")]
    pub datacenter: Option<String>,
    #[arg(long = "stale", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Permit any Consul server (non-leader) to respond to this request")]
    pub stale: Option<bool>,
}

impl HttpFlags {
    /// The client settings these flags (over the environment) ask for: the
    /// one place every command's HTTP options are resolved.
    pub fn client_config(&self) -> Result<crate::api::ClientConfig, String> {
        let mut cfg = crate::api::ClientConfig::resolve(
            self.http_addr.as_deref(),
            self.token.as_deref(),
            self.token_file.as_deref(),
            self.datacenter.as_deref(),
        )?;
        cfg.tls = cfg.tls.with_flags(
            self.ca_file.as_deref(),
            self.ca_path.as_deref(),
            self.client_cert.as_deref(),
            self.client_key.as_deref(),
            self.tls_server_name.as_deref(),
        );
        Ok(cfg)
    }

    pub fn client(&self) -> Result<crate::api::Client, String> {
        crate::api::Client::new(self.client_config()?)
    }

    /// The client, or (after printing Consul's message) exit code 1.
    pub fn connect(&self) -> Result<crate::api::Client, i32> {
        self.client().map_err(|e| {
            eprintln!("Error connecting to Consul agent: {e}");
            1
        })
    }

    pub fn stale(&self) -> bool {
        self.stale.unwrap_or(false)
    }
}

const USAGE: &str = "Usage: consul [--version] [--help] <command> [<args>]

Available commands are:
    acl            Interact with Consul's ACLs
    agent          Runs a Consul agent
    catalog        Interact with the catalog
    event          Fire a new event
    exec           Executes a command on Consul nodes
    force-leave    Forces a member of the cluster to enter the \"left\" state
    info           Provides debugging information for operators.
    join           Tell Consul agent to join cluster
    keygen         Generates a new encryption key
    keyring        Manages gossip layer encryption keys
    kv             Interact with the key-value store
    leave          Gracefully leaves the Consul cluster and shuts down
    lock           Execute a command holding a lock
    maint          Controls node or service maintenance mode
    members        Lists the members of a Consul cluster
    monitor        Stream logs from a Consul agent
    operator       Provides cluster-level tools for Consul operators
    reload         Triggers the agent to reload configuration files
    services       Interact with services
    snapshot       Saves, restores and inspects snapshots of Consul server state
    tls            Builtin helpers for creating CAs and certificates
    validate       Validate config files/directories
    version        Prints the Consul version
    watch          Watch for changes in Consul
";

/// The clap command tree with Go's flag semantics where clap differs: a
/// repeated single-value flag is not an error, the last one wins.
fn command_tree() -> clap::Command {
    fn go_style(cmd: clap::Command) -> clap::Command {
        cmd.args_override_self(true).mut_subcommands(go_style)
    }
    go_style(Cli::command())
}

/// Runs the CLI on `args` (argv including the program name) and returns
/// the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let first = args.get(1).and_then(|a| a.to_str()).map(str::to_string);
    match first.as_deref() {
        None => {
            eprint!("{USAGE}");
            return 127;
        }
        Some("-v" | "-version" | "--version") => return version::run(&version::VersionArgs::default()),
        Some("-h" | "-help" | "--help" | "help") => {
            println!("{USAGE}");
            return 0;
        }
        Some(cmd) if command_tree().find_subcommand(cmd).is_none() => {
            eprint!("{USAGE}");
            return 127;
        }
        _ => {}
    }
    let root = command_tree();
    let args = match goflag::normalize(&root, args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let matches = match root.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => 1,
            };
            let _ = e.print();
            return code;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 1;
        }
    };
    match cli.command {
        Command::Acl(a) => acl::run(a),
        Command::Agent(a) => agent::run(&a, matches.subcommand_matches("agent")),
        Command::Catalog(c) => catalog::run(c),
        Command::Event(e) => event::run(e),
        Command::Exec(e) => exec::run(e),
        Command::Kv(k) => kv::run(k),
        Command::Config(c) => config::run(c),
        Command::Intention(i) => intention::run(i),
        Command::ForceLeave(f) => join::force_leave(f),
        Command::Info(i) => info::run(i),
        Command::Join(j) => join::join(j),
        Command::Keyring(k) => keyring::run(k),
        Command::Leave(l) => join::leave(l),
        Command::Maint(m) => maint::run(m),
        Command::Operator(o) => operator::run(o),
        Command::Reload(r) => reload::run(r),
        Command::Rtt(r) => rtt::run(r),
        Command::Snapshot(s) => snapshot::run(s),
        Command::Lock(l) => lock::run(l),
        Command::Members(m) => members::run(m),
        Command::Monitor(m) => monitor::run(m),
        Command::Services(s) => services::run(s),
        Command::Tls(t) => tls::run(t),
        Command::Keygen(k) => keygen::run(&k),
        Command::Validate(v) => validate::run(&v),
        Command::Version(v) => version::run(&v),
        Command::Watch(w) => watch::run(w),
        Command::Debug(d) => debug::run(d),
        Command::Login(l) => login::login(l),
        Command::Logout(l) => login::logout(l),
    }
}

/// Runs an async CLI command on a small runtime.
pub fn block_on<F: std::future::Future<Output = i32>>(fut: F) -> i32 {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            1
        }
    }
}
