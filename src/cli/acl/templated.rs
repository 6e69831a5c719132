//! `consul acl templated-policy list|read|preview`.

use super::format::{self, Format};
use super::model::{Policy, TemplatedPolicyResponse};
use super::{api, emit, fail, input, output_format, B};
use crate::cli::HttpFlags;
use clap::{ArgAction, Args, Subcommand};
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct TemplatedPolicyArgs {
    #[command(subcommand)]
    pub command: TemplatedPolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum TemplatedPolicyCommand {
    /// Lists ACL templated policies
    List(ListArgs),
    /// Read an ACL templated policy
    Read(ReadArgs),
    /// Preview the policy rendered by the ACL templated policy
    Preview(PreviewArgs),
}

pub async fn run(a: TemplatedPolicyArgs) -> i32 {
    match a.command {
        TemplatedPolicyCommand::List(l) => list(l).await,
        TemplatedPolicyCommand::Read(r) => read(r).await,
        TemplatedPolicyCommand::Preview(p) => preview(p).await,
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
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
    let all: BTreeMap<String, TemplatedPolicyResponse> =
        match api::get(&client, "/v1/acl/templated-policies").await {
            Ok(m) => m,
            Err(e) => return fail(format!("Failed to retrieve the templated policies list: {e}")),
        };
    emit(&match fmt {
        Format::Pretty => format::templated_policy_list(&all),
        Format::Json => format::json(&all),
    })
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The name of the templated policy to read")]
    pub name: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Also show the schema and the raw template")]
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
    let path = api::path("/v1/acl/templated-policy/name/", &a.name);
    let t: TemplatedPolicyResponse = match api::get(&client, &path).await {
        Ok(t) => t,
        Err(e) => return fail(format!("Error reading templated policy {:?}: {e}", a.name)),
    };
    emit(&match fmt {
        Format::Pretty => format::templated_policy(&t, a.meta.unwrap_or(false)),
        Format::Json => format::json(&t),
    })
}

#[derive(Args, Debug)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The templated policy name. Use -var to give its variables")]
    pub name: String,
    #[arg(long, default_value = "", help = "Path to a file containing templated policies and variables")]
    pub file: String,
    #[arg(long = "var", action = ArgAction::Append, help = "Templated policy variable, VariableName:Value")]
    pub vars: Vec<String>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn preview(a: PreviewArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.name.is_empty() && a.file.is_empty() {
        return fail("Cannot preview a templated policy without specifying -name or -file");
    }
    if !a.file.is_empty() {
        return fail("-file is not supported by this Consul yet; use -name with -var");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let parsed = match input::templated_policies(&a.name, &a.vars) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let [template] = parsed.as_slice() else {
        return fail("Can only preview a single templated policy at a time.");
    };
    let vars = template.template_variables.clone().unwrap_or_default();
    let path = api::path("/v1/acl/templated-policy/preview/", &template.template_name);
    let p: Policy = match api::post(&client, &path, &vars).await {
        Ok(p) => p,
        Err(e) => return fail(format!("Failed to generate the templated policy preview: {e}")),
    };
    emit(&match fmt {
        Format::Pretty => format::policy(&p, false),
        Format::Json => format::json(&p),
    })
}
