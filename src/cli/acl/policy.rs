//! `consul acl policy create|read|update|delete|list`.

use super::format::{self, Format};
use super::model::{Policy, PolicyListEntry};
use super::{api, emit, fail, input, output_format, B};
use crate::cli::HttpFlags;
use clap::{ArgAction, Args, Subcommand};

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Create an ACL policy
    Create(CreateArgs),
    /// Read an ACL policy
    Read(ReadArgs),
    /// Update an ACL policy
    Update(UpdateArgs),
    /// Delete an ACL policy
    Delete(DeleteArgs),
    /// Lists ACL policies
    List(ListArgs),
}

pub async fn run(a: PolicyArgs) -> i32 {
    match a.command {
        PolicyCommand::Create(c) => create(c).await,
        PolicyCommand::Read(r) => read(r).await,
        PolicyCommand::Update(u) => update(u).await,
        PolicyCommand::Delete(d) => delete(d).await,
        PolicyCommand::List(l) => list(l).await,
    }
}

fn print_policy(fmt: Format, p: &Policy, meta: bool) -> i32 {
    emit(&match fmt {
        Format::Pretty => format::policy(p, meta),
        Format::Json => format::json(p),
    })
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The new policy's name. This flag is required.")]
    pub name: String,
    #[arg(long, default_value = "", help = "A description of the policy")]
    pub description: String,
    #[arg(long = "valid-datacenter", action = ArgAction::Append, help = "Datacenter that the policy should be valid within. May be specified multiple times")]
    pub datacenters: Vec<String>,
    #[arg(long, default_value = "", help = "The policy rules: the rules themselves, @file, or - for stdin")]
    pub rules: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn create(a: CreateArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.name.is_empty() {
        return fail("Missing required '-name' flag");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rules = match input::load_data_source(&a.rules) {
        Ok(r) => r,
        Err(e) => return fail(format!("Error loading rules: {e}")),
    };
    let policy = Policy {
        name: a.name,
        description: a.description,
        rules,
        datacenters: (!a.datacenters.is_empty()).then_some(a.datacenters),
        ..Policy::default()
    };
    match api::put::<_, Policy>(&client, "/v1/acl/policy", Some(&policy)).await {
        Ok(p) => print_policy(fmt, &p, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to create new policy: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the policy to read; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The name of the policy to read")]
    pub name: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn read(a: ReadArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.id.is_empty() && a.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (found, what) = if !a.id.is_empty() {
        let id = match api::policy_id(&client, &a.id).await {
            Ok(id) => id,
            Err(e) => return fail(format!("Error determining policy ID: {e}")),
        };
        match api::get_optional::<Policy>(&client, &api::path("/v1/acl/policy/", &id)).await {
            Ok(p) => (p, format!("ID {id:?}")),
            Err(e) => return fail(format!("Error reading policy {id:?}: {e}")),
        }
    } else {
        match api::get_optional::<Policy>(&client, &api::path("/v1/acl/policy/name/", &a.name)).await {
            Ok(p) => (p, format!("name {:?}", a.name)),
            Err(e) => return fail(format!("Error reading policy {:?}: {e}", a.name)),
        }
    };
    match found {
        Some(p) => print_policy(fmt, &p, a.meta.unwrap_or(false)),
        None => fail(format!("Policy not found with {what}")),
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the policy to update; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The policy's new name")]
    pub name: String,
    #[arg(long, default_value = "", help = "A description of the policy")]
    pub description: String,
    #[arg(long = "valid-datacenter", action = ArgAction::Append, help = "Datacenter that the policy should be valid within. May be specified multiple times")]
    pub datacenters: Vec<String>,
    #[arg(long, default_value = "", help = "The policy rules: the rules themselves, @file, or - for stdin")]
    pub rules: String,
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Replace the policy with only what the flags give instead of merging into it")]
    pub no_merge: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn update(a: UpdateArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.id.is_empty() {
        return fail("Cannot update a policy without specifying the -id parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match api::policy_id(&client, &a.id).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining policy ID: {e}")),
    };
    let rules = match input::load_data_source(&a.rules) {
        Ok(r) => r,
        Err(e) => return fail(format!("Error loading rules: {e}")),
    };
    let path = api::path("/v1/acl/policy/", &id);
    let updated = if a.no_merge.unwrap_or(false) {
        Policy {
            id: id.clone(),
            name: a.name,
            description: a.description,
            rules,
            datacenters: (!a.datacenters.is_empty()).then_some(a.datacenters),
            ..Policy::default()
        }
    } else {
        let mut p: Policy = match api::get_optional(&client, &path).await {
            Ok(Some(p)) => p,
            Ok(None) => return fail(format!("Policy not found with ID {id:?}")),
            Err(e) => return fail(format!("Error retrieving current policy: {e}")),
        };
        if !a.name.is_empty() {
            p.name = a.name;
        }
        if !a.description.is_empty() {
            p.description = a.description;
        }
        if !rules.is_empty() {
            p.rules = rules;
        }
        if !a.datacenters.is_empty() {
            p.datacenters = Some(a.datacenters);
        }
        p
    };
    match api::put::<_, Policy>(&client, &path, Some(&updated)).await {
        Ok(p) => print_policy(fmt, &p, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Error updating policy {id:?}: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the policy to delete; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The name of the policy to delete")]
    pub name: String,
}

async fn delete(a: DeleteArgs) -> i32 {
    if a.id.is_empty() && a.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = if !a.id.is_empty() {
        api::policy_id(&client, &a.id).await
    } else {
        match api::get_optional::<Policy>(&client, &api::path("/v1/acl/policy/name/", &a.name)).await {
            Ok(Some(p)) => Ok(p.id),
            Ok(None) => Err(format!("No such policy with name {}", a.name)),
            Err(e) => Err(format!("Failed to find policy with name {}: {e}", a.name)),
        }
    };
    let id = match id {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining policy ID: {e}")),
    };
    if let Err(e) = api::delete(&client, &api::path("/v1/acl/policy/", &id)).await {
        return fail(format!("Error deleting policy {id:?}: {e}"));
    }
    println!("Policy {id:?} deleted successfully");
    0
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
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
    let policies: Vec<PolicyListEntry> = match api::get(&client, "/v1/acl/policies").await {
        Ok(p) => p,
        Err(e) => return fail(format!("Failed to retrieve the policy list: {e}")),
    };
    emit(&match fmt {
        Format::Pretty => format::policy_list(&policies, a.meta.unwrap_or(false)),
        Format::Json => format::json(&policies),
    })
}
