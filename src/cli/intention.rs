//! `consul intention list|get|check|match|create|delete`, by source and
//! destination name (`/v1/connect/intentions/exact`, `/match`, `/check`).
//! Intentions by legacy ID do not exist on this agent.

use super::columnize;
use super::HttpFlags;
use crate::api::{encode, ApiResponse, Client};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct IntentionArgs {
    #[command(subcommand)]
    pub command: IntentionCommand,
}

#[derive(Subcommand, Debug)]
pub enum IntentionCommand {
    /// Create intentions for service connections
    Create(CreateArgs),
    /// Delete an intention
    Delete(PairArgs),
    /// Show information about an intention
    Get(PairArgs),
    /// Check whether a connection between two services is allowed
    Check(PairArgs),
    /// Show intentions that match a source or destination
    Match(MatchArgs),
    /// List all intentions
    List(ListArgs),
}

const B: &str = "true";

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Create an intention that allows when matched")]
    pub allow: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Create an intention that denies when matched")]
    pub deny: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Replace matching intentions")]
    pub replace: Option<bool>,
    #[arg(long, help = "Metadata to set on the intention, formatted as key=value (repeatable)")]
    pub meta: Vec<String>,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PairArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct MatchArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Match intentions with the given source")]
    pub source: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Match intentions with the given destination")]
    pub destination: Option<bool>,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn run(args: IntentionArgs) -> i32 {
    super::block_on(async move {
        match args.command {
            IntentionCommand::Create(a) => create(a).await,
            IntentionCommand::Delete(a) => delete(a).await,
            IntentionCommand::Get(a) => get(a).await,
            IntentionCommand::Check(a) => check(a).await,
            IntentionCommand::Match(a) => matches(a).await,
            IntentionCommand::List(a) => list(a).await,
        }
    })
}

fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.client().map_err(|e| {
        eprintln!("Error connecting to Consul agent: {e}");
        1
    })
}

fn unexpected(r: &ApiResponse) -> String {
    format!("Unexpected response code: {} ({})", r.status.as_u16(), r.text().trim_end())
}

fn pair(args: &[String]) -> Result<(String, String), i32> {
    match args {
        [s, d] => Ok((s.clone(), d.clone())),
        _ => {
            eprintln!("Error: command requires exactly two arguments: src and dst");
            Err(1)
        }
    }
}

fn exact_path(src: &str, dst: &str) -> String {
    format!("/v1/connect/intentions/exact?source={}&destination={}", encode(src), encode(dst))
}

async fn call(http: &HttpFlags, method: Method, path: &str, body: Option<Value>) -> Result<ApiResponse, i32> {
    let c = client(http)?;
    let body = body.map(|b| b.to_string().into_bytes().into());
    match c.request(method, path, body).await {
        Ok(r) => Ok(r),
        Err(e) => {
            eprintln!("Error: {e}");
            Err(1)
        }
    }
}

async fn create(a: CreateArgs) -> i32 {
    let (src, dst) = match pair(&a.args) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let action = if a.deny.unwrap_or(false) { "deny" } else { "allow" };
    let mut meta = serde_json::Map::new();
    for kv in &a.meta {
        match kv.split_once('=') {
            Some((k, v)) => {
                meta.insert(k.to_string(), json!(v));
            }
            None => {
                eprintln!("Error parsing -meta: {kv:?} is not key=value");
                return 1;
            }
        }
    }
    if !a.replace.unwrap_or(false) {
        match call(&a.http, Method::GET, &exact_path(&src, &dst), None).await {
            Ok(r) if r.status.is_success() => {
                eprintln!("Intention with source {src:?} and destination {dst:?} already exists");
                return 1;
            }
            Ok(_) => {}
            Err(c) => return c,
        }
    }
    let mut body = json!({ "Action": action });
    if !meta.is_empty() {
        body["Meta"] = Value::Object(meta);
    }
    match call(&a.http, Method::PUT, &exact_path(&src, &dst), Some(body)).await {
        Ok(r) if r.status.is_success() => {
            println!("Created: {src} => {dst} ({action})");
            0
        }
        Ok(r) => {
            eprintln!("Error creating intention \"{src} => {dst} ({action})\": {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}

async fn delete(a: PairArgs) -> i32 {
    let (src, dst) = match pair(&a.args) {
        Ok(p) => p,
        Err(c) => return c,
    };
    match call(&a.http, Method::DELETE, &exact_path(&src, &dst), None).await {
        Ok(r) if r.status.is_success() => {
            println!("Intention deleted.");
            0
        }
        Ok(r) => {
            eprintln!("Error deleting intention: {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}

async fn get(a: PairArgs) -> i32 {
    let (src, dst) = match pair(&a.args) {
        Ok(p) => p,
        Err(c) => return c,
    };
    match call(&a.http, Method::GET, &exact_path(&src, &dst), None).await {
        Ok(r) if r.status.is_success() => {
            let v: Value = r.json().unwrap_or(Value::Null);
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut rows = vec![
                format!("Source:\x1f{}", s("SourceName")),
                format!("Destination:\x1f{}", s("DestinationName")),
                format!("Action:\x1f{}", s("Action")),
                format!("Precedence:\x1f{}", v.get("Precedence").and_then(Value::as_i64).unwrap_or(0)),
            ];
            if !s("Description").is_empty() {
                rows.push(format!("Description:\x1f{}", s("Description")));
            }
            if let Some(m) = v.get("Meta").and_then(Value::as_object) {
                for (k, val) in m {
                    rows.push(format!("Meta[{k}]:\x1f{}", val.as_str().unwrap_or("")));
                }
            }
            println!(
                "{}",
                columnize::format(
                    &rows
                        .iter()
                        .map(|r| r.split('\x1f').map(str::to_string).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                )
            );
            0
        }
        Ok(r) => {
            eprintln!("Error: {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}

async fn check(a: PairArgs) -> i32 {
    let (src, dst) = match pair(&a.args) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let path = format!("/v1/connect/intentions/check?source={}&destination={}", encode(&src), encode(&dst));
    match call(&a.http, Method::GET, &path, None).await {
        Ok(r) if r.status.is_success() => {
            let v: Value = r.json().unwrap_or(Value::Null);
            if v.get("Allowed").and_then(Value::as_bool) == Some(true) {
                println!("Allowed");
                0
            } else {
                println!("Denied");
                2
            }
        }
        Ok(r) => {
            eprintln!("Error checking the connection: {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}

fn line(i: &Value) -> String {
    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    format!("{} => {} ({})", s("SourceName"), s("DestinationName"), s("Action"))
}

async fn matches(a: MatchArgs) -> i32 {
    let name = match a.args.as_slice() {
        [n] => n.clone(),
        _ => {
            eprintln!("Error: command requires exactly one argument: src or dst");
            return 1;
        }
    };
    let by = match (a.source.unwrap_or(false), a.destination.unwrap_or(false)) {
        (true, true) => {
            eprintln!("Error: only one of -source or -destination may be specified");
            return 1;
        }
        (true, false) => "source",
        _ => "destination",
    };
    let path = format!("/v1/connect/intentions/match?by={by}&name={}", encode(&name));
    match call(&a.http, Method::GET, &path, None).await {
        Ok(r) if r.status.is_success() => {
            let v: Value = r.json().unwrap_or(Value::Null);
            for i in v.get(&name).and_then(Value::as_array).into_iter().flatten() {
                println!("{}", line(i));
            }
            0
        }
        Ok(r) => {
            eprintln!("Error matching the intention: {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}

async fn list(a: ListArgs) -> i32 {
    match call(&a.http, Method::GET, "/v1/connect/intentions", None).await {
        Ok(r) if r.status.is_success() => {
            let list: Vec<Value> = r.json().unwrap_or_default();
            if list.is_empty() {
                println!("There are no intentions.");
                return 0;
            }
            let mut rows = vec!["ID\x1fSource\x1fAction\x1fDestination\x1fPrecedence".to_string()];
            for i in &list {
                let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                rows.push(format!(
                    "{}\x1f{}\x1f{}\x1f{}\x1f{}",
                    s("ID"),
                    s("SourceName"),
                    s("Action"),
                    s("DestinationName"),
                    i.get("Precedence").and_then(Value::as_i64).unwrap_or(0)
                ));
            }
            println!(
                "{}",
                columnize::format(
                    &rows
                        .iter()
                        .map(|r| r.split('\x1f').map(str::to_string).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                )
            );
            0
        }
        Ok(r) => {
            eprintln!("Failed to retrieve the intention list: {}", unexpected(&r));
            1
        }
        Err(c) => c,
    }
}
