//! `consul agent`: turns Consul's agent flags into a config source and runs
//! the daemon.

use crate::config::{self, Format, LoadOptions, SourceSpec};
use clap::{ArgMatches, Args};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Args, Debug, Default)]
#[command(about = "Runs a Consul agent")]
pub struct AgentArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Starts the agent in development mode")]
    pub dev: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Switches agent to server mode")]
    pub server: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Sets server to bootstrap mode")]
    pub bootstrap: Option<bool>,
    #[arg(long = "bootstrap-expect", help = "Sets server to expect bootstrap mode")]
    pub bootstrap_expect: Option<i64>,
    #[arg(long = "config-dir", action = clap::ArgAction::Append, help = "Path to a directory to read configuration files from")]
    pub config_dir: Vec<PathBuf>,
    #[arg(long = "config-file", action = clap::ArgAction::Append, help = "Path to a file in JSON or HCL format")]
    pub config_file: Vec<PathBuf>,
    #[arg(
        long = "config-format",
        help = "Config files are in this format irrespective of their extension (json or hcl)"
    )]
    pub config_format: Option<String>,
    #[arg(long = "data-dir", help = "Path to a data directory to store agent state")]
    pub data_dir: Option<String>,
    #[arg(long = "node", help = "Name of this node. Must be unique in the cluster")]
    pub node: Option<String>,
    #[arg(long = "node-id", help = "A unique ID for this node across space and time")]
    pub node_id: Option<String>,
    #[arg(long = "node-meta", action = clap::ArgAction::Append, help = "An arbitrary metadata key/value pair for this node, of the format `key:value`")]
    pub node_meta: Vec<String>,
    #[arg(long = "datacenter", help = "Datacenter of the agent")]
    pub datacenter: Option<String>,
    #[arg(long = "dc", hide = true)]
    pub dc: Option<String>,
    #[arg(long = "bind", help = "Sets the bind address for cluster communication")]
    pub bind: Option<String>,
    #[arg(long = "serf-lan-bind", help = "Address to bind Serf LAN listeners to")]
    pub serf_lan_bind: Option<String>,
    #[arg(long = "serf-wan-bind", help = "Address to bind Serf WAN listeners to")]
    pub serf_wan_bind: Option<String>,
    #[arg(long = "advertise", help = "Sets the advertise address to use")]
    pub advertise: Option<String>,
    #[arg(long = "advertise-wan", help = "Sets address to advertise on WAN instead of -advertise address")]
    pub advertise_wan: Option<String>,
    #[arg(long = "client", help = "Sets the address to bind for client access (HTTP, DNS)")]
    pub client: Option<String>,
    #[arg(long = "http-port", help = "Sets the HTTP API port to listen on")]
    pub http_port: Option<i64>,
    #[arg(long = "https-port", help = "Sets the HTTPS API port to listen on")]
    pub https_port: Option<i64>,
    #[arg(long = "grpc-port", help = "Sets the gRPC API port to listen on")]
    pub grpc_port: Option<i64>,
    #[arg(long = "dns-port", help = "DNS port to use")]
    pub dns_port: Option<i64>,
    #[arg(long = "server-port", help = "Sets the server port to listen on")]
    pub server_port: Option<i64>,
    #[arg(long = "serf-lan-port", help = "Sets the Serf LAN port to listen on")]
    pub serf_lan_port: Option<i64>,
    #[arg(long = "serf-wan-port", help = "Sets the Serf WAN port to listen on")]
    pub serf_wan_port: Option<i64>,
    #[arg(long = "log-level", help = "Log level of the agent")]
    pub log_level: Option<String>,
    #[arg(long = "log-json", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Output logs in JSON format")]
    pub log_json: Option<bool>,
    #[arg(long = "log-file", help = "Path to the file the logs get written to")]
    pub log_file: Option<String>,
    #[arg(long = "syslog", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enables logging to syslog")]
    pub syslog: Option<bool>,
    #[arg(long = "pid-file", help = "Path to file to store agent PID")]
    pub pid_file: Option<String>,
    #[arg(long = "encrypt", help = "Provides the gossip encryption key")]
    pub encrypt: Option<String>,
    #[arg(long = "disable-keyring-file", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Disables the backing up of the keyring to a file")]
    pub disable_keyring_file: Option<bool>,
    #[arg(long = "join", action = clap::ArgAction::Append, help = "Address of an agent to join at start time")]
    pub join: Vec<String>,
    #[arg(long = "join-wan", action = clap::ArgAction::Append, help = "Address of an agent to join -wan at start time")]
    pub join_wan: Vec<String>,
    #[arg(long = "retry-join", action = clap::ArgAction::Append, help = "Address of an agent to join at start time with retries enabled")]
    pub retry_join: Vec<String>,
    #[arg(long = "retry-join-wan", action = clap::ArgAction::Append, help = "Address of an agent to join -wan at start time with retries enabled")]
    pub retry_join_wan: Vec<String>,
    #[arg(long = "retry-interval", help = "Time to wait between join attempts")]
    pub retry_interval: Option<String>,
    #[arg(long = "retry-interval-wan", help = "Time to wait between join -wan attempts")]
    pub retry_interval_wan: Option<String>,
    #[arg(long = "retry-max", help = "Maximum number of join attempts (0 = infinite)")]
    pub retry_max: Option<i64>,
    #[arg(long = "retry-max-wan", help = "Maximum number of join -wan attempts (0 = infinite)")]
    pub retry_max_wan: Option<i64>,
    #[arg(long = "rejoin", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Ignores a previous leave and attempts to rejoin the cluster")]
    pub rejoin: Option<bool>,
    #[arg(long = "ui", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enables the built-in static web UI server")]
    pub ui: Option<bool>,
    #[arg(long = "ui-dir", help = "Path to directory containing the web UI resources")]
    pub ui_dir: Option<String>,
    #[arg(long = "ui-content-path", help = "Sets the external UI path")]
    pub ui_content_path: Option<String>,
    #[arg(long = "recursor", action = clap::ArgAction::Append, help = "Address of an upstream DNS server")]
    pub recursor: Vec<String>,
    #[arg(long = "domain", help = "Domain to use for DNS interface")]
    pub domain: Option<String>,
    #[arg(long = "alt-domain", help = "Alternate domain to use for DNS interface")]
    pub alt_domain: Option<String>,
    #[arg(long = "enable-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enables health check scripts")]
    pub enable_script_checks: Option<bool>,
    #[arg(long = "enable-local-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enables health check scripts from configuration file")]
    pub enable_local_script_checks: Option<bool>,
    #[arg(long = "disable-host-node-id", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Do not use the host's information for the node id")]
    pub disable_host_node_id: Option<bool>,
    #[arg(long = "default-query-time", help = "The default time a blocking query will wait")]
    pub default_query_time: Option<String>,
    #[arg(long = "max-query-time", help = "The maximum time a blocking query can wait")]
    pub max_query_time: Option<String>,
    #[arg(long = "raft-protocol", help = "Sets the Raft protocol version")]
    pub raft_protocol: Option<i64>,
    #[arg(long = "protocol", help = "Sets the protocol version")]
    pub protocol: Option<i64>,
    #[arg(long = "hcl", action = clap::ArgAction::Append, help = "hcl config fragment. Can be specified multiple times")]
    pub hcl: Vec<String>,
}

impl AgentArgs {
    /// The config sources named by `-config-file` and `-config-dir`, in the
    /// order they appeared on the command line.
    pub fn sources(&self, matches: Option<&ArgMatches>) -> Vec<SourceSpec> {
        let mut indexed: Vec<(usize, SourceSpec)> = Vec::new();
        let files = matches.and_then(|m| m.indices_of("config_file")).map(|i| i.collect::<Vec<_>>());
        let dirs = matches.and_then(|m| m.indices_of("config_dir")).map(|i| i.collect::<Vec<_>>());
        for (n, f) in self.config_file.iter().enumerate() {
            let idx = files.as_ref().and_then(|v| v.get(n).copied()).unwrap_or(n);
            indexed.push((idx, SourceSpec::File(f.clone())));
        }
        for (n, d) in self.config_dir.iter().enumerate() {
            let idx = dirs.as_ref().and_then(|v| v.get(n).copied()).unwrap_or(usize::MAX / 2 + n);
            indexed.push((idx, SourceSpec::Dir(d.clone())));
        }
        indexed.sort_by_key(|(i, _)| *i);
        indexed.into_iter().map(|(_, s)| s).collect()
    }

    /// The config keys these flags set, as one more config source.
    pub fn flag_source(&self) -> Result<Value, String> {
        let mut m = Map::new();
        let mut set = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(v) = self.server {
            set("server", json!(v));
        }
        if let Some(v) = self.bootstrap {
            set("bootstrap", json!(v));
        }
        if let Some(v) = self.bootstrap_expect {
            set("bootstrap_expect", json!(v));
        }
        if let Some(v) = &self.data_dir {
            set("data_dir", json!(v));
        }
        if let Some(v) = &self.node {
            set("node_name", json!(v));
        }
        if let Some(v) = &self.node_id {
            set("node_id", json!(v));
        }
        if !self.node_meta.is_empty() {
            let mut meta = Map::new();
            for kv in &self.node_meta {
                let (k, v) = kv.split_once(':').unwrap_or((kv.as_str(), ""));
                meta.insert(k.to_string(), json!(v));
            }
            set("node_meta", Value::Object(meta));
        }
        if let Some(v) = self.datacenter.as_ref().or(self.dc.as_ref()) {
            set("datacenter", json!(v));
        }
        for (key, v) in [
            ("bind_addr", &self.bind),
            ("serf_lan", &self.serf_lan_bind),
            ("serf_wan", &self.serf_wan_bind),
            ("advertise_addr", &self.advertise),
            ("advertise_addr_wan", &self.advertise_wan),
            ("client_addr", &self.client),
            ("log_level", &self.log_level),
            ("log_file", &self.log_file),
            ("pid_file", &self.pid_file),
            ("encrypt", &self.encrypt),
            ("retry_interval", &self.retry_interval),
            ("retry_interval_wan", &self.retry_interval_wan),
            ("domain", &self.domain),
            ("alt_domain", &self.alt_domain),
            ("default_query_time", &self.default_query_time),
            ("max_query_time", &self.max_query_time),
        ] {
            if let Some(v) = v {
                set(key, json!(v));
            }
        }
        for (key, v) in [
            ("log_json", self.log_json),
            ("enable_syslog", self.syslog),
            ("disable_keyring_file", self.disable_keyring_file),
            ("rejoin_after_leave", self.rejoin),
            ("enable_script_checks", self.enable_script_checks),
            ("enable_local_script_checks", self.enable_local_script_checks),
            ("disable_host_node_id", self.disable_host_node_id),
        ] {
            if let Some(v) = v {
                set(key, json!(v));
            }
        }
        for (key, v) in [
            ("retry_max", self.retry_max),
            ("retry_max_wan", self.retry_max_wan),
            ("raft_protocol", self.raft_protocol),
            ("protocol", self.protocol),
        ] {
            if let Some(v) = v {
                set(key, json!(v));
            }
        }
        for (key, v) in [
            ("start_join", &self.join),
            ("start_join_wan", &self.join_wan),
            ("retry_join", &self.retry_join),
            ("retry_join_wan", &self.retry_join_wan),
            ("recursors", &self.recursor),
        ] {
            if !v.is_empty() {
                set(key, json!(v));
            }
        }
        let mut ports = Map::new();
        for (key, v) in [
            ("http", self.http_port),
            ("https", self.https_port),
            ("grpc", self.grpc_port),
            ("dns", self.dns_port),
            ("server", self.server_port),
            ("serf_lan", self.serf_lan_port),
            ("serf_wan", self.serf_wan_port),
        ] {
            if let Some(v) = v {
                ports.insert(key.to_string(), json!(v));
            }
        }
        if !ports.is_empty() {
            set("ports", Value::Object(ports));
        }
        // As Consul's flags: -ui, -ui-dir and -ui-content-path set
        // `ui_config`, not the deprecated top-level keys.
        let mut ui = Map::new();
        if let Some(v) = self.ui {
            ui.insert("enabled".into(), json!(v));
        }
        if let Some(v) = &self.ui_dir {
            ui.insert("dir".into(), json!(v));
        }
        if let Some(v) = &self.ui_content_path {
            ui.insert("content_path".into(), json!(v));
        }
        if !ui.is_empty() {
            set("ui_config", Value::Object(ui));
        }
        Ok(Value::Object(m))
    }

    pub fn load_options(&self, matches: Option<&ArgMatches>) -> Result<LoadOptions, String> {
        let format = match &self.config_format {
            None => None,
            Some(f) => Some(
                Format::parse(f)
                    .ok_or_else(|| format!("-config-format: invalid format {f:?} (json or hcl)"))?,
            ),
        };
        Ok(LoadOptions {
            dev: self.dev.unwrap_or(false),
            sources: self.sources(matches),
            format,
            flags: Some(self.flag_source()?),
            hcl: self.hcl.clone(),
            defaults: None,
            validate_only: false,
        })
    }
}

/// Runs `consul agent`.
pub fn run(args: &AgentArgs, matches: Option<&ArgMatches>) -> i32 {
    let opts = match args.load_options(matches) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    let loaded = match config::load(&opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    crate::daemon::run(loaded, opts)
}
