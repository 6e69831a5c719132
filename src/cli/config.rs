//! `consul config write|read|list|delete`: config entries through the HTTP
//! API, with Consul's flags, messages and exit codes. `write` takes an HCL
//! or JSON file (or `-` for stdin).

use super::HttpFlags;
use crate::api::{encode, ApiResponse, Client};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;
use std::io::Read;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Create or update a centralized config entry
    Write(WriteArgs),
    /// Read a centralized config entry
    Read(ReadArgs),
    /// List centralized config entries of a given kind
    List(ListArgs),
    /// Delete a centralized config entry
    Delete(DeleteArgs),
}

const B: &str = "true";

#[derive(Args, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Perform a Check-And-Set operation")]
    pub cas: Option<bool>,
    #[arg(long = "modify-index", default_value_t = 0, help = "The ModifyIndex of the entry (with -cas)")]
    pub modify_index: u64,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The kind of configuration to read")]
    pub kind: String,
    #[arg(long, default_value = "", help = "The name of configuration to read")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The kind of configurations to list")]
    pub kind: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The kind of configuration to delete")]
    pub kind: String,
    #[arg(long, default_value = "", help = "The name of configuration to delete")]
    pub name: String,
    #[arg(long, default_value = "", help = "The file path to an input config entry to delete")]
    pub filename: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Perform a Check-And-Set operation")]
    pub cas: Option<bool>,
    #[arg(long = "modify-index", default_value_t = 0, help = "The ModifyIndex of the entry (with -cas)")]
    pub modify_index: u64,
}

pub fn run(args: ConfigArgs) -> i32 {
    super::block_on(async move {
        match args.command {
            ConfigCommand::Write(a) => write(a).await,
            ConfigCommand::Read(a) => read(a).await,
            ConfigCommand::List(a) => list(a).await,
            ConfigCommand::Delete(a) => delete(a).await,
        }
    })
}

fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.client().map_err(|e| {
        eprintln!("Error connect to Consul agent: {e}");
        1
    })
}

/// The Go API client's error text for a non-2xx answer.
fn unexpected(r: &ApiResponse) -> String {
    format!("Unexpected response code: {} ({})", r.status.as_u16(), r.text().trim_end())
}

/// Reads an entry from HCL or JSON text into the API's JSON shape.
pub fn parse_entry(text: &str) -> Result<Value, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|e| e.to_string());
    }
    crate::config::hcl::parse(text).map(|doc| doc.value).map_err(|e| e.to_string())
}

fn read_source(path: &str) -> Result<String, String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("Failed to read stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("Failed to read file: {e}"))
    }
}

fn kind_and_name(v: &Value) -> (String, String) {
    let field = |k: &str| {
        v.as_object()
            .and_then(|m| m.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (field("Kind"), field("Name"))
}

async fn write(a: WriteArgs) -> i32 {
    let path = match a.args.as_slice() {
        [p] => p.clone(),
        [] => {
            eprintln!("Must provide exactly one positional argument to specify the config entry to write");
            return 1;
        }
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let cas = a.cas.unwrap_or(false);
    if a.modify_index != 0 && !cas {
        eprintln!("Cannot specify -modify-index without -cas");
        return 1;
    }
    let entry = match read_source(&path).and_then(|t| parse_entry(&t)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Failed to decode config entry input: {e}");
            return 1;
        }
    };
    let (kind, name) = kind_and_name(&entry);
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let q = if cas { format!("?cas={}", a.modify_index) } else { String::new() };
    let body = entry.to_string().into_bytes();
    match c.request(Method::PUT, &format!("/v1/config{q}"), Some(body.into())).await {
        Ok(r) if r.status.is_success() => {
            if r.text().trim() == "true" {
                println!("Config entry written: {kind}/{name}");
                0
            } else {
                eprintln!("Config entry not updated: {kind}/{name}");
                1
            }
        }
        Ok(r) => {
            eprintln!("Error writing config entry {kind}/{name}: {}", unexpected(&r));
            1
        }
        Err(e) => {
            eprintln!("Error writing config entry {kind}/{name}: {e}");
            1
        }
    }
}

async fn read(a: ReadArgs) -> i32 {
    if a.kind.is_empty() {
        eprintln!("Must specify the -kind parameter");
        return 1;
    }
    if a.name.is_empty() {
        eprintln!("Must specify the -name parameter");
        return 1;
    }
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = format!("/v1/config/{}/{}", encode(&a.kind), encode(&a.name));
    match c.request(Method::GET, &path, None).await {
        Ok(r) if r.status.is_success() => match r.json::<Value>() {
            Ok(v) => {
                println!("{}", pretty(&v));
                0
            }
            Err(e) => {
                eprintln!("Error reading config entry {}/{}: {e}", a.kind, a.name);
                1
            }
        },
        Ok(r) => {
            eprintln!("Error reading config entry {}/{}: {}", a.kind, a.name, unexpected(&r));
            1
        }
        Err(e) => {
            eprintln!("Error reading config entry {}/{}: {e}", a.kind, a.name);
            1
        }
    }
}

/// Go's `json.MarshalIndent(v, "", "    ")`.
fn pretty(v: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match serde::Serialize::serialize(v, &mut ser) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => v.to_string(),
    }
}

async fn list(a: ListArgs) -> i32 {
    if a.kind.is_empty() {
        eprintln!("Must specify the -kind parameter");
        return 1;
    }
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.request(Method::GET, &format!("/v1/config/{}", encode(&a.kind)), None).await {
        Ok(r) if r.status.is_success() => {
            let entries: Vec<Value> = r.json().unwrap_or_default();
            let mut names: Vec<String> = entries
                .iter()
                .map(|e| match e.get("Name").and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => e.get("Kind").and_then(Value::as_str).unwrap_or("").to_string(),
                })
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
            0
        }
        Ok(r) => {
            eprintln!("Error listing config entries for kind {:?}: {}", a.kind, unexpected(&r));
            1
        }
        Err(e) => {
            eprintln!("Error listing config entries for kind {:?}: {e}", a.kind);
            1
        }
    }
}

async fn delete(a: DeleteArgs) -> i32 {
    let cas = a.cas.unwrap_or(false);
    let (kind, name) = if !a.filename.is_empty() {
        if !a.kind.is_empty() || !a.name.is_empty() {
            eprintln!("filename can't be used with kind or name");
            return 1;
        }
        match read_source(&a.filename).and_then(|t| parse_entry(&t)) {
            Ok(v) => kind_and_name(&v),
            Err(e) => {
                eprintln!("Failed to decode config entry input: {e}");
                return 1;
            }
        }
    } else {
        if a.kind.is_empty() {
            eprintln!("Must specify the -kind parameter");
            return 1;
        }
        if a.name.is_empty() {
            eprintln!("Must specify the -name parameter");
            return 1;
        }
        (a.kind.clone(), a.name.clone())
    };
    if cas && a.modify_index == 0 {
        eprintln!("Must specify a -modify-index greater than 0 with -cas");
        return 1;
    }
    if a.modify_index != 0 && !cas {
        eprintln!("Cannot specify -modify-index without -cas");
        return 1;
    }
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let q = if cas { format!("?cas={}", a.modify_index) } else { String::new() };
    let path = format!("/v1/config/{}/{}{q}", encode(&kind), encode(&name));
    match c.request(Method::DELETE, &path, None).await {
        Ok(r) if r.status.is_success() => {
            let deleted = !cas || r.text().trim() == "true";
            if deleted {
                println!("Config entry deleted: {kind}/{name}");
                0
            } else {
                eprintln!("Config entry not deleted: {kind}/{name}");
                1
            }
        }
        Ok(r) => {
            eprintln!("Error deleting config entry {kind}/{name}: {}", unexpected(&r));
            1
        }
        Err(e) => {
            eprintln!("Error deleting config entry {kind}/{name}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_and_json_entries_parse_to_the_same_shape() {
        let hcl = "Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"http\"\n";
        let json = r#"{"Kind": "service-defaults", "Name": "web", "Protocol": "http"}"#;
        assert_eq!(parse_entry(hcl).unwrap(), parse_entry(json).unwrap());
        assert_eq!(kind_and_name(&parse_entry(hcl).unwrap()), ("service-defaults".into(), "web".into()));
    }
}
