//! `consul kv get|put|delete|export|import`, with Consul's flags, output
//! and exit codes.

use super::HttpFlags;
use crate::api::{encode, Client};
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::io::Read;

#[derive(Args, Debug)]
pub struct KvArgs {
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// Retrieves or lists data from the KV store
    Get(GetArgs),
    /// Sets or updates data in the KV store
    Put(PutArgs),
    /// Removes data from the KV store
    Delete(DeleteArgs),
    /// Exports a tree from the KV store as JSON
    Export(ExportArgs),
    /// Imports a tree stored as JSON to the KV store
    Import(ImportArgs),
}

const B: &str = "true";

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Base64 encode the value")]
    pub base64: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Provide additional metadata about the key")]
    pub detailed: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "List keys which start with the given prefix")]
    pub keys: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Recursively look at all keys prefixed with the given path")]
    pub recurse: Option<bool>,
    #[arg(long, default_value = "/", help = "String to use as a separator between keys (with -keys)")]
    pub separator: String,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, help = "Session to acquire the lock with")]
    pub acquire: Option<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Treat the data as base64 encoded")]
    pub base64: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Perform a Check-And-Set operation")]
    pub cas: Option<bool>,
    #[arg(long, default_value_t = 0, help = "Unsigned integer value to assign to this key-value pair")]
    pub flags: u64,
    #[arg(
        long = "modify-index",
        default_value_t = 0,
        help = "Unsigned integer representing the ModifyIndex of the key (with -cas)"
    )]
    pub modify_index: u64,
    #[arg(long, help = "Session to release the lock with")]
    pub release: Option<String>,
    #[arg(long, help = "User-defined identifier for this session")]
    pub session: Option<String>,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Perform a Check-And-Set operation")]
    pub cas: Option<bool>,
    #[arg(
        long = "modify-index",
        default_value_t = 0,
        help = "Unsigned integer representing the ModifyIndex of the key (with -cas)"
    )]
    pub modify_index: u64,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Recursively delete all keys with the path")]
    pub recurse: Option<bool>,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Key prefix for imported data")]
    pub prefix: String,
    pub args: Vec<String>,
}

/// An entry as the API returns it.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct KvPair {
    key: String,
    flags: u64,
    value: Option<String>,
    session: Option<String>,
    lock_index: u64,
    create_index: u64,
    modify_index: u64,
}

impl KvPair {
    fn value_bytes(&self) -> Vec<u8> {
        self.value
            .as_deref()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .unwrap_or_default()
    }
}

/// `consul kv export` / `import` format.
#[derive(Serialize, Deserialize, Debug)]
struct ExportEntry {
    key: String,
    flags: u64,
    value: String,
}

pub fn run(args: KvArgs) -> i32 {
    super::block_on(async move {
        match args.command {
            KvCommand::Get(a) => get(a).await,
            KvCommand::Put(a) => put(a).await,
            KvCommand::Delete(a) => delete(a).await,
            KvCommand::Export(a) => export(a).await,
            KvCommand::Import(a) => import(a).await,
        }
    })
}

fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.client().map_err(|e| {
        eprintln!("Error connecting to Consul agent: {e}");
        1
    })
}

fn strip_slash(key: &str) -> String {
    key.strip_prefix('/').unwrap_or(key).to_string()
}

fn stale_param(http: &HttpFlags) -> &'static str {
    if http.stale() {
        "&stale"
    } else {
        ""
    }
}

async fn get(a: GetArgs) -> i32 {
    let key = match a.args.as_slice() {
        [] => String::new(),
        [k] => strip_slash(k),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let recurse = a.recurse.unwrap_or(false);
    let keys = a.keys.unwrap_or(false);
    let detailed = a.detailed.unwrap_or(false);
    let b64 = a.base64.unwrap_or(false);
    if key.is_empty() && !(recurse || keys) {
        eprintln!("Error! Missing KEY argument");
        return 1;
    }
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stale = stale_param(&a.http);
    if keys {
        let path = format!("/v1/kv/{}?keys&separator={}{stale}", encode(&key), encode(&a.separator));
        return match c.request(Method::GET, &path, None).await {
            Ok(r) if r.status == StatusCode::NOT_FOUND => 0,
            Ok(r) if r.status.is_success() => match r.json::<Vec<String>>() {
                Ok(list) => {
                    for k in list {
                        println!("{k}");
                    }
                    0
                }
                Err(e) => query_error(&e),
            },
            Ok(r) => query_error(&unexpected(&r)),
            Err(e) => query_error(&e),
        };
    }
    let path = if recurse {
        format!("/v1/kv/{}?recurse{stale}", encode(&key))
    } else {
        format!("/v1/kv/{}{}", encode(&key), if stale.is_empty() { "" } else { "?stale" })
    };
    let pairs = match c.request(Method::GET, &path, None).await {
        Ok(r) if r.status == StatusCode::NOT_FOUND => Vec::new(),
        Ok(r) if r.status.is_success() => match r.json::<Vec<KvPair>>() {
            Ok(p) => p,
            Err(e) => return query_error(&e),
        },
        Ok(r) => return query_error(&unexpected(&r)),
        Err(e) => return query_error(&e),
    };
    if recurse {
        let n = pairs.len();
        for (i, p) in pairs.iter().enumerate() {
            if detailed {
                println!("{}", pretty_pair(p, b64));
                if i + 1 < n {
                    println!();
                }
            } else {
                println!("{}:{}", p.key, render_value(&p.value_bytes(), b64));
            }
        }
        return 0;
    }
    let Some(p) = pairs.first() else {
        eprintln!("Error! No key exists at: {key}");
        return 1;
    };
    if detailed {
        println!("{}", pretty_pair(p, b64));
    } else {
        println!("{}", render_value(&p.value_bytes(), b64));
    }
    0
}

fn render_value(v: &[u8], b64: bool) -> String {
    if b64 {
        base64::engine::general_purpose::STANDARD.encode(v)
    } else {
        String::from_utf8_lossy(v).to_string()
    }
}

/// Consul's `-detailed` block: names padded to the longest plus six spaces
/// (Go's tabwriter with padding 6).
fn pretty_pair(p: &KvPair, b64: bool) -> String {
    let rows = [
        ("CreateIndex", p.create_index.to_string()),
        ("Flags", p.flags.to_string()),
        ("Key", p.key.clone()),
        ("LockIndex", p.lock_index.to_string()),
        ("ModifyIndex", p.modify_index.to_string()),
        ("Session", p.session.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())),
        ("Value", render_value(&p.value_bytes(), b64)),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 6;
    rows.iter().map(|(k, v)| format!("{k:width$}{v}")).collect::<Vec<_>>().join("\n")
}

fn query_error(e: &str) -> i32 {
    eprintln!("Error querying Consul agent: {e}");
    1
}

fn unexpected(r: &crate::api::ApiResponse) -> String {
    format!("Unexpected response code: {} ({})", r.status.as_u16(), r.text().trim_end())
}

/// Reads `@file`, `-` (stdin) or a literal, as Consul's CLI does.
fn read_data(arg: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read(path).map_err(|e| format!("Failed to read file: {e}"));
    }
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(buf);
    }
    Ok(arg.as_bytes().to_vec())
}

async fn put(a: PutArgs) -> i32 {
    let (key, data) = match a.args.as_slice() {
        [] => {
            eprintln!("Error! Missing KEY argument");
            return 1;
        }
        [k] => (strip_slash(k), String::new()),
        [k, d] => (strip_slash(k), d.clone()),
        more => {
            eprintln!("Too many arguments (expected 1 or 2, got {})", more.len());
            return 1;
        }
    };
    let mut value = match read_data(&data) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Error! {e}");
            return 1;
        }
    };
    if a.base64.unwrap_or(false) {
        match base64::engine::general_purpose::STANDARD.decode(&value) {
            Ok(v) => value = v,
            Err(e) => {
                eprintln!("Error! Cannot base 64 decode data: {e}");
                return 1;
            }
        }
    }
    let cas = a.cas.unwrap_or(false);
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut q = format!("/v1/kv/{}?flags={}", encode(&key), a.flags);
    let mode = if let Some(s) = &a.acquire {
        q.push_str(&format!("&acquire={}", encode(s)));
        "acquire"
    } else if let Some(s) = &a.release {
        q.push_str(&format!("&release={}", encode(s)));
        "release"
    } else if cas {
        q.push_str(&format!("&cas={}", a.modify_index));
        "cas"
    } else {
        "set"
    };
    let resp = match c.call(Method::PUT, &q, Some(Bytes::from(value))).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error! Failed writing data: {e}");
            return 1;
        }
    };
    let ok: bool = resp.json().unwrap_or(false);
    match mode {
        "acquire" if ok => println!("Success! Lock acquired on: {key}"),
        "acquire" => {
            eprintln!("Error! Did not acquire lock");
            return 1;
        }
        "release" if ok => println!("Success! Lock released on: {key}"),
        "release" => {
            eprintln!("Error! Did not release lock");
            return 1;
        }
        "cas" if !ok => {
            eprintln!("Error! Did not write to {key}: CAS failed");
            return 1;
        }
        _ => println!("Success! Data written to: {key}"),
    }
    0
}

async fn delete(a: DeleteArgs) -> i32 {
    let key = match a.args.as_slice() {
        [] => String::new(),
        [k] => strip_slash(k),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let recurse = a.recurse.unwrap_or(false);
    let cas = a.cas.unwrap_or(false);
    if key.is_empty() && !recurse {
        eprintln!("Error! Missing KEY argument");
        return 1;
    }
    if cas && recurse {
        eprintln!("Cannot specify both -cas and -recurse!");
        return 1;
    }
    if cas && a.modify_index == 0 {
        eprintln!("Must specify -modify-index with -cas!");
        return 1;
    }
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let q = if recurse {
        format!("/v1/kv/{}?recurse", encode(&key))
    } else if cas {
        format!("/v1/kv/{}?cas={}", encode(&key), a.modify_index)
    } else {
        format!("/v1/kv/{}", encode(&key))
    };
    let resp = match c.call(Method::DELETE, &q, None).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error! Did not delete key {key}: {e}");
            return 1;
        }
    };
    if cas && !resp.json::<bool>().unwrap_or(false) {
        eprintln!("Error! Did not delete key {key}: CAS failed");
        return 1;
    }
    if recurse {
        println!("Success! Deleted keys with prefix: {key}");
    } else {
        println!("Success! Deleted key: {key}");
    }
    0
}

async fn export(a: ExportArgs) -> i32 {
    let prefix = match a.args.as_slice() {
        [] => String::new(),
        [p] => strip_slash(p),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = format!("/v1/kv/{}?recurse{}", encode(&prefix), stale_param(&a.http));
    let pairs: Vec<KvPair> = match c.request(Method::GET, &path, None).await {
        Ok(r) if r.status == StatusCode::NOT_FOUND => Vec::new(),
        Ok(r) if r.status.is_success() => match r.json() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Error querying Consul agent: {e}");
                return 1;
            }
        },
        Ok(r) => {
            eprintln!("Error querying Consul agent: {}", unexpected(&r));
            return 1;
        }
        Err(e) => {
            eprintln!("Error querying Consul agent: {e}");
            return 1;
        }
    };
    let out: Vec<ExportEntry> = pairs
        .into_iter()
        .map(|p| ExportEntry { key: p.key, flags: p.flags, value: p.value.unwrap_or_default() })
        .collect();
    match to_json_tabs(&out) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("Error exporting KV data: {e}");
            1
        }
    }
}

/// JSON indented with tabs, as Go's `json.MarshalIndent(v, "", "\t")`.
fn to_json_tabs<T: Serialize>(v: &T) -> Result<String, String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser).map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}

async fn import(a: ImportArgs) -> i32 {
    let data = match a.args.as_slice() {
        [] => {
            eprintln!("Error! Missing DATA argument");
            return 1;
        }
        [d] => d.clone(),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let raw = match read_data(&data) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error! {e}");
            return 1;
        }
    };
    let entries: Vec<ExportEntry> = match serde_json::from_slice(&raw) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Cannot unmarshal data: {e}");
            return 1;
        }
    };
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let total = entries.len();
    for (i, e) in entries.into_iter().enumerate() {
        let value = match base64::engine::general_purpose::STANDARD.decode(&e.value) {
            Ok(v) => v,
            Err(err) => {
                eprintln!("Error! Failed to base 64 decode value for key {}: {err}", e.key);
                return 1;
            }
        };
        let key = format!("{}{}", a.prefix, e.key);
        let q = format!("/v1/kv/{}?flags={}", encode(&key), e.flags);
        if let Err(err) = c.call(Method::PUT, &q, Some(Bytes::from(value))).await {
            eprintln!("Error! Failed writing data for key {key}: {err}");
            return 1;
        }
        println!("Imported: {key}");
        if total >= 100 && (i + 1) % 100 == 0 {
            eprintln!("==> {}/{total} keys imported", i + 1);
        }
    }
    0
}
