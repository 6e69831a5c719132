//! `consul acl token create|read|update|clone|delete|list`.

use super::format::{self, Format, Synthetic, NODE_TEMPLATE, SERVICE_TEMPLATE};
use super::model::{CloneBody, Link, Policy, TemplateVariables, Token, TokenExpanded, TokenListEntry};
use super::{api, emit, fail, input, output_format, B};
use crate::api::Client;
use crate::cli::HttpFlags;
use clap::{ArgAction, Args, Subcommand};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an ACL token
    Create(CreateArgs),
    /// Read an ACL token
    Read(ReadArgs),
    /// Update an ACL token
    Update(UpdateArgs),
    /// Clone an ACL token
    Clone(CloneArgs),
    /// Delete an ACL token
    Delete(DeleteArgs),
    /// List ACL tokens
    List(ListArgs),
}

pub async fn run(a: TokenArgs) -> i32 {
    match a.command {
        TokenCommand::Create(c) => create(c).await,
        TokenCommand::Read(r) => read(r).await,
        TokenCommand::Update(u) => update(u).await,
        TokenCommand::Clone(c) => clone(c).await,
        TokenCommand::Delete(d) => delete(d).await,
        TokenCommand::List(l) => list(l).await,
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Create the token with this Accessor ID. It must be a UUID")]
    pub accessor: String,
    #[arg(long, default_value = "", help = "Create the token with this Secret ID. It must be a UUID")]
    pub secret: String,
    #[arg(long, default_value = "", help = "A description of the token")]
    pub description: String,
    #[arg(
        long = "expires-ttl",
        default_value = "",
        help = "Duration of time this token should be valid for"
    )]
    pub expires_ttl: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Create this as a datacenter local token")]
    pub local: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long = "policy-id", action = ArgAction::Append, help = "ID of a policy to use for this token. May be specified multiple times")]
    pub policy_ids: Vec<String>,
    #[arg(long = "policy-name", action = ArgAction::Append, help = "Name of a policy to use for this token. May be specified multiple times")]
    pub policy_names: Vec<String>,
    #[arg(long = "role-id", action = ArgAction::Append, help = "ID of a role to use for this token. May be specified multiple times")]
    pub role_ids: Vec<String>,
    #[arg(long = "role-name", action = ArgAction::Append, help = "Name of a role to use for this token. May be specified multiple times")]
    pub role_names: Vec<String>,
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
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

fn print_token(fmt: Format, t: &Token, meta: bool) -> i32 {
    emit(&match fmt {
        Format::Pretty => format::token(t, meta),
        Format::Json => format::json(t),
    })
}

const NO_TEMPLATE_FILES: &str =
    "-templated-policy-file is not supported by this Consul yet; use -templated-policy with -var";

/// Policy links: names as given (the server resolves them), IDs through
/// the prefix lookup.
async fn policy_links(client: &Client, ids: &[String], names: &[String]) -> Result<Vec<Link>, String> {
    let mut out: Vec<Link> = names.iter().map(|n| Link { id: String::new(), name: n.clone() }).collect();
    for id in ids {
        let full =
            api::policy_id(client, id).await.map_err(|e| format!("Error resolving policy ID {id}: {e}"))?;
        out.push(Link { id: full, name: String::new() });
    }
    Ok(out)
}

async fn role_links(client: &Client, ids: &[String], names: &[String]) -> Result<Vec<Link>, String> {
    let mut out: Vec<Link> = names.iter().map(|n| Link { id: String::new(), name: n.clone() }).collect();
    for id in ids {
        let full =
            api::role_id(client, id).await.map_err(|e| format!("Error resolving role ID {id}: {e}"))?;
        out.push(Link { id: full, name: String::new() });
    }
    Ok(out)
}

async fn create(a: CreateArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if a.policy_ids.is_empty()
        && a.policy_names.is_empty()
        && a.role_ids.is_empty()
        && a.role_names.is_empty()
        && a.service_identities.is_empty()
        && a.node_identities.is_empty()
        && a.templated_policy.is_empty()
        && a.templated_policy_file.is_empty()
    {
        return fail("Cannot create a token without specifying -policy-name, -policy-id, -role-name, -role-id, -service-identity, -node-identity, or -templated-policy at least once");
    }
    if !a.templated_policy_file.is_empty() {
        return fail(NO_TEMPLATE_FILES);
    }
    let ttl = match input::expires_ttl(&a.expires_ttl) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut token = Token {
        accessor_id: a.accessor,
        secret_id: a.secret,
        description: a.description,
        local: a.local.unwrap_or(false),
        expiration_ttl: ttl.map(serde_json::Value::String),
        ..Token::default()
    };
    token.service_identities = match input::service_identities(&a.service_identities) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    token.node_identities = match input::node_identities(&a.node_identities) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    token.templated_policies = match input::templated_policies(&a.templated_policy, &a.vars) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    token.policies = match policy_links(&client, &a.policy_ids, &a.policy_names).await {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    token.roles = match role_links(&client, &a.role_ids, &a.role_names).await {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    match api::put::<_, Token>(&client, "/v1/acl/token", Some(&token)).await {
        Ok(t) => print_token(fmt, &t, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to create new token: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "accessor-id",
        default_value = "",
        help = "The Accessor ID of the token to read; a unique prefix will do"
    )]
    pub accessor_id: String,
    #[arg(long, default_value = "", help = "DEPRECATED. Use -accessor-id instead.")]
    pub id: String,
    #[arg(long = "self", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Read the token the request is made with (by its secret)")]
    pub self_: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Also show the policies and roles the token carries")]
    pub expanded: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

/// `-accessor-id`, else the deprecated `-id` with Consul's warning.
fn accessor_flag(accessor_id: &str, id: &str) -> Option<String> {
    if !accessor_id.is_empty() {
        return Some(accessor_id.to_string());
    }
    if id.is_empty() {
        return None;
    }
    eprintln!("Use the -accessor-id parameter to specify token by Accessor ID");
    Some(id.to_string())
}

async fn read(a: ReadArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (self_, expanded, meta) =
        (a.self_.unwrap_or(false), a.expanded.unwrap_or(false), a.meta.unwrap_or(false));
    let accessor = accessor_flag(&a.accessor_id, &a.id);
    if accessor.is_none() && !self_ {
        return fail("Must specify the -accessor-id parameter");
    }
    if self_ && expanded {
        return fail(
            "Cannot use both -expanded and -self. Instead, use -expanded and -accessor-id=<accessor id>.",
        );
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(partial) = accessor.filter(|_| !self_) else {
        return match api::get::<Token>(&client, "/v1/acl/token/self").await {
            Ok(t) => print_token(fmt, &t, meta),
            Err(e) => fail(format!("Error reading token: {e}")),
        };
    };
    let id = match api::token_accessor_id(&client, &partial).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining token ID: {e}")),
    };
    let path = api::path("/v1/acl/token/", &id);
    if !expanded {
        return match api::get::<Token>(&client, &path).await {
            Ok(t) => print_token(fmt, &t, meta),
            Err(e) => fail(format!("Error reading token {id:?}: {e}")),
        };
    }
    let e: TokenExpanded = match api::get(&client, &format!("{path}?expanded")).await {
        Ok(t) => t,
        Err(e) => return fail(format!("Error reading token {id:?}: {e}")),
    };
    match fmt {
        Format::Json => emit(&format::json(&e)),
        Format::Pretty => {
            let synthetic = synthetic_policies(&client, &e).await;
            emit(&format::token_expanded(&e, meta, &synthetic))
        }
    }
}

/// The policies identities and templates stand for, rendered by the agent
/// (a preview that fails leaves that entry's rules empty: the rest of the
/// token is still worth showing).
async fn synthetic_policies(client: &Client, e: &TokenExpanded) -> Synthetic {
    let mut wanted: Vec<(String, String)> = Vec::new();
    let roles = e.expanded_roles.as_deref().unwrap_or_default();
    let services = e.token.service_identities.iter().chain(roles.iter().flat_map(|r| &r.service_identities));
    wanted.extend(services.map(|s| (SERVICE_TEMPLATE.to_string(), s.service_name.clone())));
    let nodes = e.token.node_identities.iter().chain(roles.iter().flat_map(|r| &r.node_identities));
    wanted.extend(nodes.map(|n| (NODE_TEMPLATE.to_string(), n.node_name.clone())));
    wanted.extend(
        e.token
            .templated_policies
            .iter()
            .map(|t| (t.template_name.clone(), t.var_name().unwrap_or("").to_string())),
    );
    let mut out = Synthetic::new();
    for key in wanted {
        if out.contains_key(&key) {
            continue;
        }
        let body = TemplateVariables { name: key.1.clone() };
        let path = format!("/v1/acl/templated-policy/preview/{}", key.0);
        if let Ok(p) = api::post::<_, Policy>(client, &path, &body).await {
            out.insert(key, p);
        }
    }
    out
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "accessor-id",
        default_value = "",
        help = "The Accessor ID of the token to update; a unique prefix will do"
    )]
    pub accessor_id: String,
    #[arg(long, default_value = "", help = "DEPRECATED. Use -accessor-id instead.")]
    pub id: String,
    #[arg(long, default_value = "", help = "A description of the token")]
    pub description: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Show the content hash and Raft indices")]
    pub meta: Option<bool>,
    #[arg(long = "policy-id", action = ArgAction::Append, help = "ID of a policy to use for this token. Overwrites existing policies")]
    pub policy_ids: Vec<String>,
    #[arg(long = "append-policy-id", action = ArgAction::Append, help = "ID of a policy to add to this token")]
    pub append_policy_ids: Vec<String>,
    #[arg(long = "policy-name", action = ArgAction::Append, help = "Name of a policy to use for this token. Overwrites existing policies")]
    pub policy_names: Vec<String>,
    #[arg(long = "append-policy-name", action = ArgAction::Append, help = "Name of a policy to add to this token")]
    pub append_policy_names: Vec<String>,
    #[arg(long = "role-id", action = ArgAction::Append, help = "ID of a role to use for this token. Overwrites existing roles")]
    pub role_ids: Vec<String>,
    #[arg(long = "append-role-id", action = ArgAction::Append, help = "ID of a role to add to this token")]
    pub append_role_ids: Vec<String>,
    #[arg(long = "role-name", action = ArgAction::Append, help = "Name of a role to use for this token. Overwrites existing roles")]
    pub role_names: Vec<String>,
    #[arg(long = "append-role-name", action = ArgAction::Append, help = "Name of a role to add to this token")]
    pub append_role_names: Vec<String>,
    #[arg(long = "service-identity", action = ArgAction::Append, help = "Service identity to use for this token. Overwrites existing ones")]
    pub service_identities: Vec<String>,
    #[arg(long = "append-service-identity", action = ArgAction::Append, help = "Service identity to add to this token")]
    pub append_service_identities: Vec<String>,
    #[arg(long = "node-identity", action = ArgAction::Append, help = "Node identity to use for this token. Overwrites existing ones")]
    pub node_identities: Vec<String>,
    #[arg(long = "append-node-identity", action = ArgAction::Append, help = "Node identity to add to this token")]
    pub append_node_identities: Vec<String>,
    #[arg(
        long = "templated-policy",
        default_value = "",
        help = "Templated policy to use for this token. Overwrites existing ones"
    )]
    pub templated_policy: String,
    #[arg(
        long = "append-templated-policy",
        default_value = "",
        help = "Templated policy to add to this token"
    )]
    pub append_templated_policy: String,
    #[arg(
        long = "templated-policy-file",
        default_value = "",
        help = "Path to a file containing templated policies and variables"
    )]
    pub templated_policy_file: String,
    #[arg(long = "var", action = ArgAction::Append, help = "Templated policy variable, VariableName:Value")]
    pub vars: Vec<String>,
    #[arg(long = "merge-policies", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "DEPRECATED. Use -append-policy-id or -append-policy-name instead.")]
    pub merge_policies: Option<bool>,
    #[arg(long = "merge-roles", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "DEPRECATED. Use -append-role-id or -append-role-name instead.")]
    pub merge_roles: Option<bool>,
    #[arg(long = "merge-service-identities", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "DEPRECATED. Use -append-service-identity instead.")]
    pub merge_service_identities: Option<bool>,
    #[arg(long = "merge-node-identities", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "DEPRECATED. Use -append-node-identity instead.")]
    pub merge_node_identities: Option<bool>,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

/// Adds links not already present (by ID when the new one has one, else by name).
pub fn merge_links(existing: &mut Vec<Link>, new: Vec<Link>) {
    for link in new {
        let present =
            existing.iter().any(|l| if link.id.is_empty() { l.name == link.name } else { l.id == link.id });
        if !present {
            existing.push(link);
        }
    }
}

async fn update(a: UpdateArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let Some(partial) = accessor_flag(&a.accessor_id, &a.id) else {
        return fail("Cannot update a token without specifying the -accessor-id parameter");
    };
    if !a.templated_policy_file.is_empty() {
        return fail(NO_TEMPLATE_FILES);
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match api::token_accessor_id(&client, &partial).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining token ID: {e}")),
    };
    let mut t: Token = match api::get(&client, &api::path("/v1/acl/token/", &id)).await {
        Ok(t) => t,
        Err(e) => return fail(format!("Error when retrieving current token: {e}")),
    };
    if !a.description.is_empty() {
        t.description = a.description.clone();
    }
    if let Err(e) = apply_grants(&client, &a, &mut t).await {
        return fail(e);
    }
    match api::put::<_, Token>(&client, &api::path("/v1/acl/token/", &id), Some(&t)).await {
        Ok(t) => print_token(fmt, &t, a.meta.unwrap_or(false)),
        Err(e) => fail(format!("Failed to update token {id}: {e}")),
    }
}

/// Consul's update rules: the plain flags replace, the `-append-*` flags
/// and the deprecated `-merge-*` switches add. Identities given by neither
/// are cleared, as Consul's command does.
async fn apply_grants(client: &Client, a: &UpdateArgs, t: &mut Token) -> Result<(), String> {
    if !a.append_service_identities.is_empty() && !a.service_identities.is_empty() {
        return Err("Cannot combine the use of service-identity flag with append-service-identity. To set or overwrite existing service identities, use -service-identity. To append to existing service identities, use -append-service-identity.".into());
    }
    if !a.append_node_identities.is_empty() && !a.node_identities.is_empty() {
        return Err("Cannot combine the use of node-identity flag with append-node-identity. To set or overwrite existing node identities, use -node-identity. To append to existing node identities, use -append-node-identity.".into());
    }
    if !a.templated_policy.is_empty() && !a.append_templated_policy.is_empty() {
        return Err("Cannot combine the use of templated-policy flag with append-templated-policy. To set or overwrite existing templated policies, use -templated-policy. To append to existing templated policies, use -append-templated-policy.".into());
    }
    let append_services = !a.append_service_identities.is_empty();
    let services = input::service_identities(if append_services {
        &a.append_service_identities
    } else {
        &a.service_identities
    })?;
    let append_nodes = !a.append_node_identities.is_empty();
    let nodes =
        input::node_identities(if append_nodes { &a.append_node_identities } else { &a.node_identities })?;

    if a.merge_policies.unwrap_or(false) {
        eprintln!("merge-policies is deprecated and will be removed in a future Consul version. Use `append-policy-name` or `append-policy-id` instead.");
        let new = policy_links(client, &a.policy_ids, &a.policy_names).await?;
        merge_links(&mut t.policies, new);
    } else {
        let replace = !a.policy_ids.is_empty() || !a.policy_names.is_empty();
        let append = !a.append_policy_ids.is_empty() || !a.append_policy_names.is_empty();
        if replace && append {
            return Err("Cannot combine the use of policy-id/policy-name flags with append- variants. To set or overwrite existing policies, use -policy-id or -policy-name. To append to existing policies, use -append-policy-id or -append-policy-name.".into());
        }
        if replace {
            t.policies = policy_links(client, &a.policy_ids, &a.policy_names).await?;
        } else {
            let new = policy_links(client, &a.append_policy_ids, &a.append_policy_names).await?;
            t.policies.extend(new);
        }
    }

    if a.merge_roles.unwrap_or(false) {
        eprintln!("merge-roles is deprecated and will be removed in a future Consul version. Use `append-role-name` or `append-role-id` instead.");
        let new = role_links(client, &a.role_ids, &a.role_names).await?;
        merge_links(&mut t.roles, new);
    } else {
        let replace = !a.role_ids.is_empty() || !a.role_names.is_empty();
        let append = !a.append_role_ids.is_empty() || !a.append_role_names.is_empty();
        if replace && append {
            return Err("Cannot combine the use of role-id/role-name flags with append- variants. To set or overwrite existing roles, use -role-id or -role-name. To append to existing roles, use -append-role-id or -append-role-name.".into());
        }
        if replace {
            t.roles = role_links(client, &a.role_ids, &a.role_names).await?;
        } else {
            let new = role_links(client, &a.append_role_ids, &a.append_role_names).await?;
            t.roles.extend(new);
        }
    }

    if a.merge_service_identities.unwrap_or(false) || append_services {
        for s in services {
            match t.service_identities.iter_mut().find(|e| e.service_name == s.service_name) {
                Some(existing) => *existing = s,
                None => t.service_identities.push(s),
            }
        }
    } else {
        t.service_identities = services;
    }

    if a.merge_node_identities.unwrap_or(false) || append_nodes {
        for n in nodes {
            if !t.node_identities.contains(&n) {
                t.node_identities.push(n);
            }
        }
    } else {
        t.node_identities = nodes;
    }

    if !a.append_templated_policy.is_empty() {
        t.templated_policies.extend(input::templated_policies(&a.append_templated_policy, &a.vars)?);
    } else if !a.templated_policy.is_empty() {
        t.templated_policies = input::templated_policies(&a.templated_policy, &a.vars)?;
    } else if !a.vars.is_empty() {
        return Err("Cannot specify -var without -templated-policy".into());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct CloneArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "accessor-id",
        default_value = "",
        help = "The Accessor ID of the token to clone; a unique prefix or 'anonymous' will do"
    )]
    pub accessor_id: String,
    #[arg(long, default_value = "", help = "DEPRECATED. Use -accessor-id instead.")]
    pub id: String,
    #[arg(long, default_value = "", help = "A description of the new cloned token")]
    pub description: String,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
}

async fn clone(a: CloneArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let Some(partial) = accessor_flag(&a.accessor_id, &a.id) else {
        return fail("Cannot update a token without specifying the -accessor-id parameter");
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match api::token_accessor_id(&client, &partial).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining token Accessor ID: {e}")),
    };
    let body = CloneBody { description: &a.description };
    let path = format!("{}/clone", api::path("/v1/acl/token/", &id));
    match api::put::<_, Token>(&client, &path, Some(&body)).await {
        Ok(t) => print_token(fmt, &t, false),
        Err(e) => fail(format!("Error cloning token: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "accessor-id",
        default_value = "",
        help = "The Accessor ID of the token to delete; a unique prefix will do"
    )]
    pub accessor_id: String,
    #[arg(long, default_value = "", help = "DEPRECATED. Use -accessor-id instead.")]
    pub id: String,
}

async fn delete(a: DeleteArgs) -> i32 {
    let Some(partial) = accessor_flag(&a.accessor_id, &a.id) else {
        return fail("Must specify the -accessor-id parameter");
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match api::token_accessor_id(&client, &partial).await {
        Ok(id) => id,
        Err(e) => return fail(format!("Error determining token ID: {e}")),
    };
    if let Err(e) = api::delete(&client, &api::path("/v1/acl/token/", &id)).await {
        return fail(format!("Error deleting token {id:?}: {e}"));
    }
    println!("Token {id:?} deleted successfully");
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
    let tokens: Vec<TokenListEntry> = match api::get(&client, "/v1/acl/tokens").await {
        Ok(t) => t,
        Err(e) => return fail(format!("Failed to retrieve the token list: {e}")),
    };
    emit(&match fmt {
        Format::Pretty => format::token_list(&tokens, a.meta.unwrap_or(false)),
        Format::Json => format::json(&tokens),
    })
}
