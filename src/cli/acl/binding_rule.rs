//! `consul acl binding-rule create|read|update|delete|list` with Consul's
//! flags, messages and pretty/JSON output.

use super::format::{self, Format};
use super::{api, emit, fail, output_format, B};
use crate::api::Client;
use crate::cli::HttpFlags;
use clap::{ArgAction, Args, Subcommand};
use serde_json::{json, Map, Value};
use std::fmt::Write;

#[derive(Args, Debug)]
pub struct BindingRuleArgs {
    #[command(subcommand)]
    pub command: BindingRuleCommand,
}

#[derive(Subcommand, Debug)]
pub enum BindingRuleCommand {
    /// Create an ACL binding rule
    Create(CreateArgs),
    /// Read an ACL binding rule
    Read(ReadArgs),
    /// Update an ACL binding rule
    Update(UpdateArgs),
    /// Delete an ACL binding rule
    Delete(IdArgs),
    /// Lists ACL binding rules
    List(ListArgs),
}

pub async fn run(a: BindingRuleArgs) -> i32 {
    match a.command {
        BindingRuleCommand::Create(c) => create(c).await,
        BindingRuleCommand::Read(r) => read(r).await,
        BindingRuleCommand::Update(u) => update(u).await,
        BindingRuleCommand::Delete(d) => delete(d).await,
        BindingRuleCommand::List(l) => list(l).await,
    }
}

fn s<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn bind_var_name(r: &Value) -> &str {
    r.get("BindVars").and_then(|v| v.get("Name")).and_then(Value::as_str).unwrap_or_default()
}

/// One rule as Consul's pretty formatter prints it (`indent`: the list's).
fn pretty_rule(out: &mut String, r: &Value, show_meta: bool, indent: &str) {
    let _ = writeln!(out, "{indent}AuthMethod:   {}", s(r, "AuthMethod"));
    let _ = writeln!(out, "{indent}Description:  {}", s(r, "Description"));
    let _ = writeln!(out, "{indent}BindType:     {}", s(r, "BindType"));
    let _ = writeln!(out, "{indent}BindName:     {}", s(r, "BindName"));
    if !bind_var_name(r).is_empty() {
        let pad = if indent.is_empty() { "     " } else { "      " };
        let _ = writeln!(out, "{indent}BindVars:     \n{pad}- Name: {}", bind_var_name(r));
    }
    let _ = writeln!(out, "{indent}Selector:     {}", s(r, "Selector"));
    if show_meta {
        let _ = writeln!(out, "{indent}Create Index: {}", r["CreateIndex"]);
        let _ = writeln!(out, "{indent}Modify Index: {}", r["ModifyIndex"]);
    }
}

pub fn pretty(r: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ID:           {}", s(r, "ID"));
    pretty_rule(&mut out, r, show_meta, "");
    out
}

fn pretty_list(list: &[Value], show_meta: bool) -> String {
    let mut out = String::new();
    for r in list {
        let _ = writeln!(out, "{}:", s(r, "ID"));
        pretty_rule(&mut out, r, show_meta, "   ");
    }
    out
}

fn print(fmt: Format, r: &Value, meta: bool) -> i32 {
    emit(&match fmt {
        Format::Pretty => pretty(r, meta),
        Format::Json => format::json(r),
    })
}

/// A full binding rule ID from a unique prefix.
async fn rule_id(client: &Client, partial: &str) -> Result<String, String> {
    if partial.len() == 36 {
        return Ok(partial.to_string());
    }
    let rules: Vec<Value> = api::get(client, "/v1/acl/binding-rules").await?;
    api::unique_prefix(rules.iter().map(|r| s(r, "ID")), partial, "binding rule")
}

/// `-bind-vars Name=value`: only `Name` exists (templated policies).
fn bind_vars(raw: &[String]) -> Result<Option<Value>, String> {
    let mut out = Map::new();
    for kv in raw {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!("Error parsing -bind-vars: {kv:?} is not key=value"));
        };
        out.insert(k.to_string(), json!(v));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

#[derive(Args, Debug)]
pub struct Fields {
    #[arg(long, default_value = "", help = "A description of the binding rule.")]
    pub description: String,
    #[arg(
        long,
        default_value = "",
        help = "Selector is an expression that matches against verified identity attributes returned from the auth method during login."
    )]
    pub selector: String,
    #[arg(
        long = "bind-type",
        default_value = "",
        help = "Type of binding to perform (\"service\", \"node\", \"role\", \"policy\" or \"templated-policy\")."
    )]
    pub bind_type: String,
    #[arg(
        long = "bind-name",
        default_value = "",
        help = "Name to bind on match. Can use ${var} interpolation."
    )]
    pub bind_name: String,
    #[arg(long = "bind-vars", action = ArgAction::Append, help = "Templated policy variables. Can only be used when -bind-type is templated-policy. May be specified multiple times as key=value.")]
    pub bind_vars: Vec<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that binding rule metadata such as the raft indices should be shown for each entry.")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

impl Fields {
    fn apply(&self, r: &mut Map<String, Value>) -> Result<(), String> {
        if !self.description.is_empty() {
            r.insert("Description".into(), json!(self.description));
        }
        if !self.selector.is_empty() {
            r.insert("Selector".into(), json!(self.selector));
        }
        if !self.bind_type.is_empty() {
            r.insert("BindType".into(), json!(self.bind_type));
        }
        if !self.bind_name.is_empty() {
            r.insert("BindName".into(), json!(self.bind_name));
        }
        if let Some(v) = bind_vars(&self.bind_vars)? {
            r.insert("BindVars".into(), v);
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long,
        default_value = "",
        help = "The auth method's name for which this binding rule applies. This flag is required."
    )]
    pub method: String,
    #[command(flatten)]
    pub fields: Fields,
}

async fn create(a: CreateArgs) -> i32 {
    let fmt = match output_format(&a.fields.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.method.is_empty() {
        return fail("Missing required '-method' flag");
    }
    if a.fields.bind_name.is_empty() {
        return fail("Missing required '-bind-name' flag");
    }
    let mut r = Map::new();
    r.insert("AuthMethod".into(), json!(a.method));
    // Consul's default bind type.
    r.insert("BindType".into(), json!("service"));
    if let Err(e) = a.fields.apply(&mut r) {
        return fail(e);
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match api::put::<_, Value>(&client, "/v1/acl/binding-rule", Some(&Value::Object(r))).await {
        Ok(out) => print(fmt, &out, a.fields.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to create new binding rule: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long,
        default_value = "",
        help = "The ID of the binding rule to read. It may be specified as a unique ID prefix but will error if the prefix matches multiple binding rule IDs"
    )]
    pub id: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that binding rule metadata such as the raft indices should be shown for each entry.")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn read(a: ReadArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.id.is_empty() {
        return fail("Must specify the -id parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match rule_id(&client, &a.id).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining binding rule ID: {e}")),
    };
    match api::get_optional::<Value>(&client, &api::path("/v1/acl/binding-rule/", &id)).await {
        Ok(Some(r)) => print(fmt, &r, a.meta.unwrap_or(false)),
        Ok(None) => fail(format!("Binding rule not found with ID {id:?}")),
        Err(e) => fail(format!("Error reading binding rule {id:?}: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long,
        default_value = "",
        help = "The ID of the binding rule to update. It may be specified as a unique ID prefix but will error if the prefix matches multiple binding rule IDs"
    )]
    pub id: String,
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Do not merge the current binding rule information with what is provided to the command. Instead overwrite all fields with the exception of the binding rule ID which is immutable.")]
    pub no_merge: Option<bool>,
    #[command(flatten)]
    pub fields: Fields,
}

async fn update(a: UpdateArgs) -> i32 {
    let fmt = match output_format(&a.fields.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.id.is_empty() {
        return fail("Cannot update a binding rule without specifying the -id parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match rule_id(&client, &a.id).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining binding rule ID: {e}")),
    };
    let path = api::path("/v1/acl/binding-rule/", &id);
    let current = match api::get_optional::<Value>(&client, &path).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail(format!("Binding rule not found with ID {id:?}")),
        Err(e) => return fail(format!("Error when retrieving current binding rule: {e}")),
    };
    let mut r = Map::new();
    if a.no_merge.unwrap_or(false) {
        if a.fields.bind_name.is_empty() {
            return fail("Missing required '-bind-name' flag");
        }
        r.insert("ID".into(), json!(id));
        r.insert("AuthMethod".into(), current["AuthMethod"].clone());
        r.insert("BindType".into(), json!("service"));
    } else if let Value::Object(cur) = current {
        r = cur;
        r.remove("CreateIndex");
        r.remove("ModifyIndex");
    }
    if let Err(e) = a.fields.apply(&mut r) {
        return fail(e);
    }
    match api::put::<_, Value>(&client, &path, Some(&Value::Object(r))).await {
        Ok(out) => print(fmt, &out, a.fields.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to update binding rule: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long,
        default_value = "",
        help = "The ID of the binding rule to delete. It may be specified as a unique ID prefix but will error if the prefix matches multiple binding rule IDs"
    )]
    pub id: String,
}

async fn delete(a: IdArgs) -> i32 {
    if a.id.is_empty() {
        return fail("Must specify the -id parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match rule_id(&client, &a.id).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining binding rule ID: {e}")),
    };
    match api::delete(&client, &api::path("/v1/acl/binding-rule/", &id)).await {
        Ok(()) => emit(&format!("Binding rule {id:?} deleted successfully")),
        Err(e) => fail(format!("Error deleting binding rule {id:?}: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Only show rules linked to the auth method with the given name.")]
    pub method: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Indicates that binding rule metadata such as the raft indices should be shown for each entry.")]
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
    let mut path = "/v1/acl/binding-rules".to_string();
    if !a.method.is_empty() {
        path.push_str(&format!("?authmethod={}", crate::api::encode(&a.method)));
    }
    match api::get::<Vec<Value>>(&client, &path).await {
        Ok(list) => emit(&match fmt {
            Format::Pretty => pretty_list(&list, a.meta.unwrap_or(false)),
            Format::Json => format::json(&list),
        }),
        Err(e) => fail(format!("Failed to retrieve the binding rule list: {e}")),
    }
}
