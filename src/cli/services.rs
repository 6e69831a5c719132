//! `consul services register|deregister`: manage services on the local
//! agent, from definition files or flags.

use super::HttpFlags;
use crate::api::{encode, Client};
use crate::definition::{service_from_config, CheckDef, ServiceDef};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServicesArgs {
    #[command(subcommand)]
    pub command: ServicesCommand,
}

#[derive(Subcommand, Debug)]
pub enum ServicesCommand {
    /// Register services with the local agent
    Register(RegisterArgs),
    /// Deregister services with the local agent
    Deregister(DeregisterArgs),
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "ID of the service to register")]
    pub id: String,
    #[arg(long, default_value = "", help = "Name of the service to register")]
    pub name: String,
    #[arg(long, default_value = "", help = "Address of the service to register")]
    pub address: String,
    #[arg(long, default_value_t = 0, help = "Port of the service to register")]
    pub port: u16,
    #[arg(long, action = clap::ArgAction::Append, help = "Tag to add to the service (repeatable)")]
    pub tag: Vec<String>,
    #[arg(long, action = clap::ArgAction::Append, help = "Metadata for the service, key=value (repeatable)")]
    pub meta: Vec<String>,
    #[arg(long, default_value = "", help = "Path to the Unix domain socket of the service")]
    pub socket: String,
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DeregisterArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "ID of the service to deregister")]
    pub id: String,
    pub files: Vec<PathBuf>,
}

pub fn run(args: ServicesArgs) -> i32 {
    super::block_on(async move {
        match args.command {
            ServicesCommand::Register(a) => register(a).await,
            ServicesCommand::Deregister(a) => deregister(a).await,
        }
    })
}

fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.client().map_err(|e| {
        eprintln!("Error connecting to Consul agent: {e}");
        1
    })
}

fn defs_from_files(files: &[PathBuf]) -> Result<Vec<ServiceDef>, String> {
    let mut out = Vec::new();
    for f in files {
        let blocks = crate::config::services_in_file(f).map_err(|e| e.to_string())?;
        if blocks.is_empty() {
            return Err(format!("{}: no service definitions found", f.display()));
        }
        for b in blocks {
            out.push(service_from_config(&b).map_err(|e| format!("{}: {e}", f.display()))?);
        }
    }
    Ok(out)
}

fn duration(d: Option<std::time::Duration>) -> Value {
    d.map(|d| json!(crate::duration::format(d))).unwrap_or(Value::Null)
}

fn check_json(c: &CheckDef) -> Value {
    let mut m = Map::new();
    let mut s = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    s("CheckID", &c.id);
    s("Name", &c.name);
    s("Notes", &c.notes);
    s("Status", &c.status);
    s("Script", &c.script);
    s("Shell", &c.shell);
    s("HTTP", &c.http);
    s("Method", &c.method);
    s("Body", &c.body);
    s("TCP", &c.tcp);
    s("UDP", &c.udp);
    s("GRPC", &c.grpc);
    s("AliasNode", &c.alias_node);
    s("AliasService", &c.alias_service);
    s("TLSServerName", &c.tls_server_name);
    if !c.args.is_empty() {
        m.insert("Args".into(), json!(c.args));
    }
    if !c.header.is_empty() {
        m.insert("Header".into(), json!(c.header));
    }
    for (k, v) in [
        ("Interval", c.interval),
        ("Timeout", c.timeout),
        ("TTL", c.ttl),
        ("DeregisterCriticalServiceAfter", c.deregister_critical_service_after),
    ] {
        if v.is_some() {
            m.insert(k.into(), duration(v));
        }
    }
    if c.tls_skip_verify {
        m.insert("TLSSkipVerify".into(), json!(true));
    }
    if c.success_before_passing > 0 {
        m.insert("SuccessBeforePassing".into(), json!(c.success_before_passing));
    }
    if c.failures_before_critical > 0 {
        m.insert("FailuresBeforeCritical".into(), json!(c.failures_before_critical));
    }
    Value::Object(m)
}

/// The agent API's registration body for a definition.
fn service_json(d: &ServiceDef) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(d.id));
    m.insert("Name".into(), json!(d.name));
    m.insert("Tags".into(), json!(d.tags));
    m.insert("Address".into(), json!(d.address));
    m.insert("Port".into(), json!(d.port));
    m.insert("Meta".into(), json!(d.meta));
    m.insert("EnableTagOverride".into(), json!(d.enable_tag_override));
    if !d.kind.is_empty() {
        m.insert("Kind".into(), json!(d.kind));
    }
    if !d.socket_path.is_empty() {
        m.insert("SocketPath".into(), json!(d.socket_path));
    }
    if let Some(w) = d.weights {
        m.insert("Weights".into(), json!({"Passing": w.passing, "Warning": w.warning}));
    }
    if !d.tagged_addresses.is_empty() {
        let t: Map<String, Value> = d
            .tagged_addresses
            .iter()
            .map(|(k, a)| (k.clone(), json!({"Address": a.address, "Port": a.port})))
            .collect();
        m.insert("TaggedAddresses".into(), Value::Object(t));
    }
    if !d.checks.is_empty() {
        m.insert("Checks".into(), Value::Array(d.checks.iter().map(check_json).collect()));
    }
    Value::Object(m)
}

async fn register(a: RegisterArgs) -> i32 {
    let defs = if a.files.is_empty() {
        if a.name.is_empty() {
            eprintln!("Service name must be specified via the -name flag");
            return 1;
        }
        let mut meta = std::collections::BTreeMap::new();
        for kv in &a.meta {
            match kv.split_once('=') {
                Some((k, v)) => {
                    meta.insert(k.to_string(), v.to_string());
                }
                None => {
                    eprintln!("Invalid meta {kv:?}: expected key=value");
                    return 1;
                }
            }
        }
        let mut d = ServiceDef {
            id: a.id.clone(),
            name: a.name.clone(),
            address: a.address.clone(),
            port: a.port,
            tags: a.tag.clone(),
            meta,
            socket_path: a.socket.clone(),
            ..Default::default()
        };
        d.normalize();
        vec![d]
    } else {
        match defs_from_files(&a.files) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    };
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for d in defs {
        let body = service_json(&d).to_string();
        if let Err(e) = c.call(Method::PUT, "/v1/agent/service/register", Some(body.into())).await {
            eprintln!("Error registering service {:?}: {e}", d.name);
            return 1;
        }
        println!("Registered service: {}", d.name);
    }
    0
}

async fn deregister(a: DeregisterArgs) -> i32 {
    let ids: Vec<String> = if !a.id.is_empty() {
        if !a.files.is_empty() {
            eprintln!("Only one of -id or files may be specified");
            return 1;
        }
        vec![a.id.clone()]
    } else if a.files.is_empty() {
        eprintln!("Either -id or at least one file must be specified");
        return 1;
    } else {
        match defs_from_files(&a.files) {
            Ok(d) => d.into_iter().map(|d| d.id).collect(),
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    };
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for id in ids {
        if let Err(e) =
            c.call(Method::PUT, &format!("/v1/agent/service/deregister/{}", encode(&id)), None).await
        {
            eprintln!("Error deregistering service {id:?}: {e}");
            return 1;
        }
        println!("Deregistered service: {id}");
    }
    0
}
