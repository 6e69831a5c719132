//! `consul acl auth-method create|read|update|delete|list` with Consul's
//! flags, messages and pretty/JSON output. Only type `jwt` is served by
//! this agent; the command passes any type on and prints the agent's
//! refusal.

use super::format::{self, Format};
use super::{api, emit, fail, output_format, B};
use crate::cli::HttpFlags;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::fmt::Write;

#[derive(Args, Debug)]
pub struct AuthMethodArgs {
    #[command(subcommand)]
    pub command: AuthMethodCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuthMethodCommand {
    /// Create an ACL auth method
    Create(CreateArgs),
    /// Read an ACL auth method
    Read(ReadArgs),
    /// Update an ACL auth method
    Update(UpdateArgs),
    /// Delete an ACL auth method
    Delete(NameArgs),
    /// Lists ACL auth methods
    List(ListArgs),
}

pub async fn run(a: AuthMethodArgs) -> i32 {
    match a.command {
        AuthMethodCommand::Create(c) => create(c).await,
        AuthMethodCommand::Read(r) => read(r).await,
        AuthMethodCommand::Update(u) => update(u).await,
        AuthMethodCommand::Delete(d) => delete(d).await,
        AuthMethodCommand::List(l) => list(l).await,
    }
}

fn s<'a>(m: &'a Value, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// One method as Consul's pretty formatter prints it.
pub fn pretty(m: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:          {}", s(m, "Name"));
    let _ = writeln!(out, "Type:          {}", s(m, "Type"));
    if !s(m, "DisplayName").is_empty() {
        let _ = writeln!(out, "DisplayName:   {}", s(m, "DisplayName"));
    }
    let _ = writeln!(out, "Description:   {}", s(m, "Description"));
    if !s(m, "MaxTokenTTL").is_empty() {
        let _ = writeln!(out, "MaxTokenTTL:   {}", s(m, "MaxTokenTTL"));
    }
    if !s(m, "TokenLocality").is_empty() {
        let _ = writeln!(out, "TokenLocality: {}", s(m, "TokenLocality"));
    }
    if show_meta {
        let _ = writeln!(out, "Create Index:  {}", m["CreateIndex"]);
        let _ = writeln!(out, "Modify Index:  {}", m["ModifyIndex"]);
    }
    let _ = writeln!(out, "Config:");
    let config = m.get("Config").cloned().unwrap_or(json!({}));
    out.push_str(&serde_json::to_string_pretty(&config).unwrap_or_default());
    out
}

fn pretty_list(list: &[Value], show_meta: bool) -> String {
    let mut out = String::new();
    for m in list {
        let _ = writeln!(out, "{}:", s(m, "Name"));
        let _ = writeln!(out, "   Type:         {}", s(m, "Type"));
        if !s(m, "DisplayName").is_empty() {
            let _ = writeln!(out, "   DisplayName:  {}", s(m, "DisplayName"));
        }
        let _ = writeln!(out, "   Description:  {}", s(m, "Description"));
        if show_meta {
            let _ = writeln!(out, "   Create Index: {}", m["CreateIndex"]);
            let _ = writeln!(out, "   Modify Index: {}", m["ModifyIndex"]);
        }
    }
    out
}

fn print(fmt: Format, m: &Value, meta: bool) -> i32 {
    emit(&match fmt {
        Format::Pretty => pretty(m, meta),
        Format::Json => format::json(m),
    })
}

/// `-config`: JSON text, `@file`, or `-` for stdin (Consul's rule for
/// flag values that may come from a file).
fn config_value(raw: &str) -> Result<Value, String> {
    let text = if let Some(path) = raw.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| format!("Failed to read file: {e}"))?
    } else if raw == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("Failed to read stdin: {e}"))?
    } else {
        raw.to_string()
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("Error parsing JSON for auth method config: {e}"))?;
    if !v.is_object() {
        return Err("Error parsing JSON for auth method config: expected an object".into());
    }
    Ok(v)
}

#[derive(Args, Debug)]
pub struct Common {
    #[arg(
        long = "display-name",
        default_value = "",
        help = "An optional name to use instead of the name when displaying this auth method in a UI."
    )]
    pub display_name: String,
    #[arg(long, default_value = "", help = "A description of the auth method.")]
    pub description: String,
    #[arg(
        long = "max-token-ttl",
        default_value = "",
        help = "Duration of time all tokens created by this auth method should be valid for"
    )]
    pub max_token_ttl: String,
    #[arg(
        long = "token-locality",
        default_value = "",
        help = "Defines the kind of token that this auth method should produce. This can be either 'local' or 'global'. If empty the value of 'local' is assumed."
    )]
    pub token_locality: String,
    #[arg(
        long,
        default_value = "",
        help = "The configuration for the auth method. Must be JSON. May be prefixed with '@' to indicate that the value is a file path to load the config from. '-' may also be given to indicate that the config is available on stdin"
    )]
    pub config: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that auth method metadata such as the raft indices should be shown for each entry.")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

impl Common {
    fn apply(&self, m: &mut Map<String, Value>) -> Result<(), String> {
        if !self.display_name.is_empty() {
            m.insert("DisplayName".into(), json!(self.display_name));
        }
        if !self.description.is_empty() {
            m.insert("Description".into(), json!(self.description));
        }
        if !self.max_token_ttl.is_empty() {
            crate::duration::parse(&self.max_token_ttl)
                .map_err(|e| format!("Error parsing max token ttl: {e}"))?;
            m.insert("MaxTokenTTL".into(), json!(self.max_token_ttl));
        }
        if !self.token_locality.is_empty() {
            m.insert("TokenLocality".into(), json!(self.token_locality));
        }
        if !self.config.is_empty() {
            m.insert("Config".into(), config_value(&self.config)?);
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long = "type", default_value = "", help = "The new auth method's type. This flag is required.")]
    pub method_type: String,
    #[arg(long, default_value = "", help = "The new auth method's name. This flag is required.")]
    pub name: String,
    #[command(flatten)]
    pub common: Common,
}

async fn create(a: CreateArgs) -> i32 {
    let fmt = match output_format(&a.common.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.method_type.is_empty() {
        return fail("Missing required '-type' flag");
    }
    if a.name.is_empty() {
        return fail("Missing required '-name' flag");
    }
    let mut m = Map::new();
    m.insert("Name".into(), json!(a.name));
    m.insert("Type".into(), json!(a.method_type));
    if let Err(e) = a.common.apply(&mut m) {
        return fail(e);
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match api::put::<_, Value>(&client, "/v1/acl/auth-method", Some(&Value::Object(m))).await {
        Ok(out) => print(fmt, &out, a.common.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to create new auth method: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The name of the auth method to read.")]
    pub name: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that auth method metadata such as the raft indices should be shown for each entry.")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn read(a: ReadArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.name.is_empty() {
        return fail("Must specify the -name parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match api::get_optional::<Value>(&client, &api::path("/v1/acl/auth-method/", &a.name)).await {
        Ok(Some(m)) => print(fmt, &m, a.meta.unwrap_or(false)),
        Ok(None) => fail(format!("Auth method not found with name {:?}", a.name)),
        Err(e) => fail(format!("Error reading auth method {:?}: {e}", a.name)),
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The auth method name.")]
    pub name: String,
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Do not merge the current auth method information with what is provided to the command. Instead overwrite all fields with the exception of the name which is immutable.")]
    pub no_merge: Option<bool>,
    #[command(flatten)]
    pub common: Common,
}

async fn update(a: UpdateArgs) -> i32 {
    let fmt = match output_format(&a.common.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.name.is_empty() {
        return fail("Cannot update an auth method without specifying the -name parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = api::path("/v1/acl/auth-method/", &a.name);
    let current = match api::get_optional::<Value>(&client, &path).await {
        Ok(Some(m)) => m,
        Ok(None) => return fail(format!("Auth method not found with name {:?}", a.name)),
        Err(e) => return fail(format!("Error when retrieving current auth method: {e}")),
    };
    let mut m = Map::new();
    if a.no_merge.unwrap_or(false) {
        m.insert("Name".into(), json!(a.name));
        m.insert("Type".into(), current["Type"].clone());
    } else if let Value::Object(cur) = current {
        m = cur;
        m.remove("CreateIndex");
        m.remove("ModifyIndex");
    }
    if let Err(e) = a.common.apply(&mut m) {
        return fail(e);
    }
    match api::put::<_, Value>(&client, &path, Some(&Value::Object(m))).await {
        Ok(out) => print(fmt, &out, a.common.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to update auth method: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct NameArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The name of the auth method to delete.")]
    pub name: String,
}

async fn delete(a: NameArgs) -> i32 {
    if a.name.is_empty() {
        return fail("Must specify the -name parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match api::delete(&client, &api::path("/v1/acl/auth-method/", &a.name)).await {
        Ok(()) => emit(&format!("Auth-method {:?} deleted successfully", a.name)),
        Err(e) => fail(format!("Error deleting auth method {:?}: {e}", a.name)),
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that auth method metadata such as the raft indices should be shown for each entry.")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn list(a: ListArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match api::get::<Vec<Value>>(&client, "/v1/acl/auth-methods").await {
        Ok(list) => emit(&match fmt {
            Format::Pretty => pretty_list(&list, a.meta.unwrap_or(false)),
            Format::Json => format::json(&list),
        }),
        Err(e) => fail(format!("Failed to retrieve the auth method list: {e}")),
    }
}
