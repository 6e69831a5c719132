//! `consul acl role create|read|update|delete|list`.

use super::format::{self, Format};
use super::model::{Link, Role};
use super::token::merge_links;
use super::{api, emit, fail, input, output_format, B};
use crate::api::Client;
use crate::cli::HttpFlags;
use clap::{ArgAction, Args, Subcommand};

#[derive(Args, Debug)]
pub struct RoleArgs {
    #[command(subcommand)]
    pub command: RoleCommand,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create an ACL role
    Create(CreateArgs),
    /// Read an ACL role
    Read(ReadArgs),
    /// Update an ACL role
    Update(UpdateArgs),
    /// Delete an ACL role
    Delete(DeleteArgs),
    /// Lists ACL roles
    List(ListArgs),
}

pub async fn run(a: RoleArgs) -> i32 {
    match a.command {
        RoleCommand::Create(c) => create(c).await,
        RoleCommand::Read(r) => read(r).await,
        RoleCommand::Update(u) => update(u).await,
        RoleCommand::Delete(d) => delete(d).await,
        RoleCommand::List(l) => list(l).await,
    }
}

fn print_role(fmt: Format, r: &Role, meta: bool) -> i32 {
    emit(&match fmt {
        Format::Pretty => format::role(r, meta),
        Format::Json => format::json(r),
    })
}

/// The grant flags `create` and `update` share.
#[derive(Args, Debug)]
pub struct Grants {
    #[arg(long = "policy-id", action = ArgAction::Append, help = "ID of a policy to use for this role. May be specified multiple times")]
    pub policy_ids: Vec<String>,
    #[arg(long = "policy-name", action = ArgAction::Append, help = "Name of a policy to use for this role. May be specified multiple times")]
    pub policy_names: Vec<String>,
    #[arg(long = "service-identity", action = ArgAction::Append, help = "SERVICENAME or SERVICENAME:DATACENTER1,DATACENTER2,... May be specified multiple times")]
    pub service_identities: Vec<String>,
    #[arg(long = "node-identity", action = ArgAction::Append, help = "NODENAME:DATACENTER. May be specified multiple times")]
    pub node_identities: Vec<String>,
    #[arg(
        long = "templated-policy",
        default_value = "",
        help = "The templated policy name. Use -var to give its variables"
    )]
    pub templated_policy: String,
    #[arg(
        long = "templated-policy-file",
        default_value = "",
        help = "Path to a file containing templated policies and variables"
    )]
    pub templated_policy_file: String,
    #[arg(long = "var", action = ArgAction::Append, help = "Templated policy variable, VariableName:Value. May be specified multiple times")]
    pub vars: Vec<String>,
}

impl Grants {
    fn is_empty(&self) -> bool {
        self.policy_ids.is_empty()
            && self.policy_names.is_empty()
            && self.service_identities.is_empty()
            && self.node_identities.is_empty()
            && self.templated_policy.is_empty()
            && self.templated_policy_file.is_empty()
    }

    /// The grants as a role carries them (policy ID prefixes resolved).
    async fn resolve(&self, client: &Client) -> Result<Role, String> {
        if !self.templated_policy_file.is_empty() {
            return Err(
                "-templated-policy-file is not supported by this Consul yet; use -templated-policy with -var"
                    .into(),
            );
        }
        let mut policies: Vec<Link> =
            self.policy_names.iter().map(|n| Link { id: String::new(), name: n.clone() }).collect();
        for id in &self.policy_ids {
            let full = api::policy_id(client, id)
                .await
                .map_err(|e| format!("Error resolving policy ID {id}: {e}"))?;
            policies.push(Link { id: full, name: String::new() });
        }
        Ok(Role {
            policies,
            service_identities: input::service_identities(&self.service_identities)?,
            node_identities: input::node_identities(&self.node_identities)?,
            templated_policies: input::templated_policies(&self.templated_policy, &self.vars)?,
            ..Role::default()
        })
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The new role's name. This flag is required.")]
    pub name: String,
    #[arg(long, default_value = "", help = "A description of the role")]
    pub description: String,
    #[command(flatten)]
    pub grants: Grants,
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
    if a.grants.is_empty() {
        return fail("Cannot create a role without specifying -policy-name, -policy-id, -service-identity, -node-identity, or -templated-policy at least once");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut role = match a.grants.resolve(&client).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    role.name = a.name;
    role.description = a.description;
    match api::put::<_, Role>(&client, "/v1/acl/role", Some(&role)).await {
        Ok(r) => print_role(fmt, &r, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to create new role: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the role to read; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The name of the role to read")]
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
        let id = match api::role_id(&client, &a.id).await {
            Ok(id) => id,
            Err(e) => return fail(format!("Error determining role ID: {e}")),
        };
        match api::get_optional::<Role>(&client, &api::path("/v1/acl/role/", &id)).await {
            Ok(r) => (r, format!("ID {id:?}")),
            Err(e) => return fail(format!("Error reading role {id:?}: {e}")),
        }
    } else {
        match api::get_optional::<Role>(&client, &api::path("/v1/acl/role/name/", &a.name)).await {
            Ok(r) => (r, format!("name {:?}", a.name)),
            Err(e) => return fail(format!("Error reading role {:?}: {e}", a.name)),
        }
    };
    match found {
        Some(r) => print_role(fmt, &r, a.meta.unwrap_or(false)),
        None => fail(format!("Role not found with {what}")),
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the role to update; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The role's new name")]
    pub name: String,
    #[arg(long, default_value = "", help = "A description of the role")]
    pub description: String,
    #[command(flatten)]
    pub grants: Grants,
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Replace the role with only what the flags give instead of merging into it")]
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
        return fail("Cannot update a role without specifying the -id parameter");
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match api::role_id(&client, &a.id).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining role ID: {e}")),
    };
    let given = match a.grants.resolve(&client).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let path = api::path("/v1/acl/role/", &id);
    let updated = if a.no_merge.unwrap_or(false) {
        Role { id: id.clone(), name: a.name, description: a.description, ..given }
    } else {
        let mut r: Role = match api::get_optional(&client, &path).await {
            Ok(Some(r)) => r,
            Ok(None) => return fail(format!("Role not found with ID {id:?}")),
            Err(e) => return fail(format!("Error retrieving current role: {e}")),
        };
        if !a.name.is_empty() {
            r.name = a.name;
        }
        if !a.description.is_empty() {
            r.description = a.description;
        }
        merge_links(&mut r.policies, given.policies);
        for s in given.service_identities {
            match r.service_identities.iter_mut().find(|e| e.service_name == s.service_name) {
                Some(existing) => *existing = s,
                None => r.service_identities.push(s),
            }
        }
        for n in given.node_identities {
            if !r.node_identities.contains(&n) {
                r.node_identities.push(n);
            }
        }
        for t in given.templated_policies {
            if !r.templated_policies.contains(&t) {
                r.templated_policies.push(t);
            }
        }
        r
    };
    match api::put::<_, Role>(&client, &path, Some(&updated)).await {
        Ok(r) => print_role(fmt, &r, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Error updating role {id:?}: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "The ID of the role to delete; a unique prefix will do")]
    pub id: String,
    #[arg(long, default_value = "", help = "The name of the role to delete")]
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
        api::role_id(&client, &a.id).await
    } else {
        match api::get_optional::<Role>(&client, &api::path("/v1/acl/role/name/", &a.name)).await {
            Ok(Some(r)) => Ok(r.id),
            Ok(None) => Err(format!("No such role with name {}", a.name)),
            Err(e) => Err(e),
        }
    };
    let id = match id {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining role ID: {e}")),
    };
    if let Err(e) = api::delete(&client, &api::path("/v1/acl/role/", &id)).await {
        return fail(format!("Error deleting role {id:?}: {e}"));
    }
    println!("Role {id:?} deleted successfully");
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
    let roles: Vec<Role> = match api::get(&client, "/v1/acl/roles").await {
        Ok(r) => r,
        Err(e) => return fail(format!("Failed to retrieve the role list: {e}")),
    };
    emit(&match fmt {
        Format::Pretty => format::role_list(&roles, a.meta.unwrap_or(false)),
        Format::Json => format::json(&roles),
    })
}
