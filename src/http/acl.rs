//! `/v1/acl/*`: bootstrap, tokens, policies, roles and templated policies,
//! with Consul's JSON shapes. What a caller may do is decided by the
//! server's hook; this module only translates.

use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::acl::model::{Grants, Link, NodeIdentity, Policy, Role, ServiceIdentity, TemplatedPolicy, Token};
use crate::rpc::acl::AclTokenFilter;
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Largest ACL request body (rules included).
const BODY_LIMIT: u64 = 512 * 1024;

// --- Input -------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LinkIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ServiceIdentityIn {
    service_name: Option<String>,
    datacenters: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct NodeIdentityIn {
    node_name: Option<String>,
    datacenter: Option<String>,
}

/// `TemplateVariables`: Consul spells its one field `name` on the wire and
/// reads any case. The alias matters: inside the flattened grants the
/// case-insensitive decoder does not reach, so `Name` must be named.
#[derive(Deserialize, Default)]
struct TemplateVariablesIn {
    #[serde(alias = "Name", alias = "NAME")]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TemplatedPolicyIn {
    template_name: Option<String>,
    template_variables: Option<TemplateVariablesIn>,
    datacenters: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GrantsIn {
    policies: Option<Vec<LinkIn>>,
    service_identities: Option<Vec<ServiceIdentityIn>>,
    node_identities: Option<Vec<NodeIdentityIn>>,
    templated_policies: Option<Vec<TemplatedPolicyIn>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TokenIn {
    #[serde(rename = "AccessorID")]
    accessor_id: Option<String>,
    #[serde(rename = "SecretID")]
    secret_id: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    grants: GrantsIn,
    roles: Option<Vec<LinkIn>>,
    local: Option<bool>,
    auth_method: Option<String>,
    expiration_time: Option<String>,
    #[serde(rename = "ExpirationTTL")]
    expiration_ttl: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PolicyIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    rules: Option<String>,
    datacenters: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RoleIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    grants: GrantsIn,
}

fn links(v: Option<Vec<LinkIn>>) -> Vec<Link> {
    v.unwrap_or_default()
        .into_iter()
        .map(|l| Link { id: l.id.unwrap_or_default(), name: l.name.unwrap_or_default() })
        .collect()
}

fn grants(g: GrantsIn) -> Grants {
    Grants {
        policies: links(g.policies),
        service_identities: g
            .service_identities
            .unwrap_or_default()
            .into_iter()
            .map(|s| ServiceIdentity {
                service_name: s.service_name.unwrap_or_default(),
                datacenters: s.datacenters.unwrap_or_default(),
            })
            .collect(),
        node_identities: g
            .node_identities
            .unwrap_or_default()
            .into_iter()
            .map(|n| NodeIdentity {
                node_name: n.node_name.unwrap_or_default(),
                datacenter: n.datacenter.unwrap_or_default(),
            })
            .collect(),
        templated_policies: g
            .templated_policies
            .unwrap_or_default()
            .into_iter()
            .map(|t| TemplatedPolicy {
                template_name: t.template_name.unwrap_or_default(),
                name: t.template_variables.and_then(|v| v.name),
                datacenters: t.datacenters.unwrap_or_default(),
            })
            .collect(),
    }
}

/// Decodes an optional JSON body; `what` starts the 400's text as Consul
/// words it per endpoint (`Token decoding failed: ...`).
pub(super) async fn body_of<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> Result<T, HttpError> {
    let body = read_limited(headers, body, BODY_LIMIT).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    decode::from_slice(&body).map_err(|e| HttpError::bad_request(format!("{what}: {e}")))
}

/// Consul's ACL endpoints get the server's refusals back as plain error
/// strings, so its HTTP layer answers every one that is not an ACL error
/// (permission denied, ACL not found, ACL disabled) with a 500 carrying
/// the text; clients see `Unexpected response code: 500 (Invalid Policy:
/// ...)`. Only the HTTP layer's own checks (decoding, IDs in URL and body)
/// are 400s.
pub(super) fn from_server(e: crate::rpc::RpcError) -> HttpError {
    use crate::rpc::RpcError;
    match e {
        RpcError::BadRequest(m) | RpcError::NotFound(m) => {
            HttpError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, m)
        }
        other => other.into(),
    }
}

/// A read of a policy or role ID or name that names nothing: 404, as
/// Consul 1.15+ (py-consul reads it as "no such policy").
fn does_not_exist(what: &str) -> HttpError {
    HttpError::not_found(format!("Requested {what} does not exist: ACL not found"))
}

/// `ExpirationTTL`: a duration string, or a number of nanoseconds.
fn ttl_ns(v: Option<Value>) -> Result<Option<u64>, HttpError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => crate::duration::parse(&s)
            .map(|d| Some(d.as_nanos() as u64).filter(|n| *n > 0))
            .map_err(|e| HttpError::bad_request(format!("Token decoding failed: ExpirationTTL: {e}"))),
        Some(Value::Number(n)) => Ok(n.as_u64().filter(|n| *n > 0)),
        Some(other) => Err(HttpError::bad_request(format!(
            "Token decoding failed: ExpirationTTL: invalid value {other}"
        ))),
    }
}

fn token_from(input: TokenIn, accessor_from_path: Option<String>) -> Result<Token, HttpError> {
    let accessor_id = match (accessor_from_path, input.accessor_id.filter(|a| !a.is_empty())) {
        (Some(p), Some(b)) if p != b => {
            return Err(HttpError::bad_request("Token Accessor ID in URL and payload do not match"))
        }
        (Some(p), _) => p,
        (None, b) => b.unwrap_or_default(),
    };
    let expiration_time_ms = match input.expiration_time.filter(|t| !t.is_empty()) {
        Some(t) => Some(parse_rfc3339_ms(&t).ok_or_else(|| {
            HttpError::bad_request(format!("Token decoding failed: ExpirationTime: invalid time {t:?}"))
        })?),
        None => None,
    };
    Ok(Token {
        accessor_id,
        secret_id: input.secret_id.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        grants: grants(input.grants),
        roles: links(input.roles),
        local: input.local.unwrap_or(false),
        auth_method: input.auth_method.unwrap_or_default(),
        expiration_time_ms,
        expiration_ttl_ns: ttl_ns(input.expiration_ttl)?,
        ..Default::default()
    })
}

// --- Output ------------------------------------------------------------------

fn links_json(l: &[Link]) -> Value {
    Value::Array(l.iter().map(|l| json!({"ID": l.id, "Name": l.name})).collect())
}

fn grants_into(m: &mut Map<String, Value>, g: &Grants) {
    if !g.policies.is_empty() {
        m.insert("Policies".into(), links_json(&g.policies));
    }
    if !g.service_identities.is_empty() {
        let v = g
            .service_identities
            .iter()
            .map(|s| {
                let mut o = json!({"ServiceName": s.service_name});
                if !s.datacenters.is_empty() {
                    o["Datacenters"] = json!(s.datacenters);
                }
                o
            })
            .collect();
        m.insert("ServiceIdentities".into(), Value::Array(v));
    }
    if !g.node_identities.is_empty() {
        let v = g
            .node_identities
            .iter()
            .map(|n| json!({"NodeName": n.node_name, "Datacenter": n.datacenter}))
            .collect();
        m.insert("NodeIdentities".into(), Value::Array(v));
    }
    if !g.templated_policies.is_empty() {
        let v = g
            .templated_policies
            .iter()
            .map(|t| {
                let mut o = json!({"TemplateName": t.template_name});
                if let Some(n) = &t.name {
                    o["TemplateVariables"] = json!({"name": n});
                }
                if !t.datacenters.is_empty() {
                    o["Datacenters"] = json!(t.datacenters);
                }
                o
            })
            .collect();
        m.insert("TemplatedPolicies".into(), Value::Array(v));
    }
}

fn hash_json(h: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(h))
}

pub fn token_json(t: &Token) -> Value {
    let mut m = Map::new();
    m.insert("AccessorID".into(), json!(t.accessor_id));
    m.insert("SecretID".into(), json!(t.secret_id));
    m.insert("Description".into(), json!(t.description));
    grants_into(&mut m, &t.grants);
    if !t.roles.is_empty() {
        m.insert("Roles".into(), links_json(&t.roles));
    }
    m.insert("Local".into(), json!(t.local));
    if !t.auth_method.is_empty() {
        m.insert("AuthMethod".into(), json!(t.auth_method));
    }
    // No `ExpirationTTL`: Consul turns it into `ExpirationTime` on create
    // and never stores or returns it.
    if let Some(ms) = t.expiration_time_ms {
        m.insert("ExpirationTime".into(), json!(rfc3339_nanos(ms.saturating_mul(1_000_000))));
    }
    m.insert("CreateTime".into(), json!(rfc3339_nanos(t.create_time_ns)));
    m.insert("Hash".into(), hash_json(&t.hash));
    m.insert("CreateIndex".into(), json!(t.create_index));
    m.insert("ModifyIndex".into(), json!(t.modify_index));
    Value::Object(m)
}

/// A policy in full, or (`with_rules` false) the listing's stub, which has
/// no `Rules` and always a `Datacenters` key (`null` when empty), as Consul's.
fn policy_json(p: &Policy, with_rules: bool) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(p.id));
    m.insert("Name".into(), json!(p.name));
    m.insert("Description".into(), json!(p.description));
    if with_rules {
        m.insert("Rules".into(), json!(p.rules));
    }
    if !p.datacenters.is_empty() {
        m.insert("Datacenters".into(), json!(p.datacenters));
    } else if !with_rules {
        m.insert("Datacenters".into(), Value::Null);
    }
    m.insert("Hash".into(), hash_json(&p.hash));
    m.insert("CreateIndex".into(), json!(p.create_index));
    m.insert("ModifyIndex".into(), json!(p.modify_index));
    Value::Object(m)
}

fn role_json(r: &Role) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(r.id));
    m.insert("Name".into(), json!(r.name));
    m.insert("Description".into(), json!(r.description));
    grants_into(&mut m, &r.grants);
    m.insert("Hash".into(), hash_json(&r.hash));
    m.insert("CreateIndex".into(), json!(r.create_index));
    m.insert("ModifyIndex".into(), json!(r.modify_index));
    Value::Object(m)
}

// --- Handlers ----------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct BootstrapIn {
    bootstrap_secret: Option<String>,
}

pub async fn bootstrap(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    let input: BootstrapIn = body_of(&headers, body, "Request decoding failed").await?;
    let t = ctx
        .agent
        .call(caller(&params, &headers), method::AclBootstrap { secret: input.bootstrap_secret })
        .await
        .map_err(from_server)?;
    // Consul's bootstrap answer also carries the secret as `ID` (the
    // pre-1.4 field some scripts still read).
    let mut out = token_json(&t);
    out["ID"] = json!(t.secret_id);
    json(&params, &out)
}

pub async fn token_create(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    let token = token_from(body_of(&headers, body, "Token decoding failed").await?, None)?;
    let t = ctx
        .agent
        .call(caller(&params, &headers), method::AclTokenSet { token, create: true })
        .await
        .map_err(from_server)?;
    json(&params, &token_json(&t))
}

pub async fn token_self(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let t =
        ctx.agent.call(request_context(&params, &headers)?, method::AclTokenSelf {}).await.map_err(|e| {
            match e {
                // An unknown or expired secret: Consul's 404.
                crate::rpc::RpcError::NotFound(m) => HttpError::not_found(m),
                e => from_server(e),
            }
        })?;
    json(&params, &token_json(&t))
}

/// `/v1/acl/token/:id` (GET, PUT, DELETE) and `/v1/acl/token/:id/clone` (PUT).
pub async fn token_item(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    if let Some(id) = rest.strip_suffix("/clone") {
        if method != Method::PUT {
            return Err(super::method_not_allowed(&method, &["PUT"]));
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase")]
        struct CloneIn {
            description: Option<String>,
        }
        let input: CloneIn = body_of(&headers, body, "Token decoding failed").await?;
        let args = method::AclTokenClone { accessor: id.to_string(), description: input.description };
        let t = ctx.agent.call(caller(&params, &headers), args).await.map_err(from_server)?;
        return json(&params, &token_json(&t));
    }
    let id = rest;
    match method {
        Method::GET => {
            let rc = request_context(&params, &headers)?;
            let (meta, t) = ctx
                .agent
                .call(rc.clone(), method::AclTokenRead { accessor: id.clone() })
                .await
                .map_err(from_server)?;
            // A token that is not there stays a 403 `ACL not found` (the
            // client libraries' suites, run against Consul 1.20-1.22, expect
            // an error here, while a missing policy or role reads as 404).
            let Some(t) = t else {
                return Err(HttpError::new(axum::http::StatusCode::FORBIDDEN, "ACL not found"));
            };
            let mut out = token_json(&t);
            if params.has("expanded") {
                expand(&ctx, rc, &t, &mut out).await?;
            }
            Ok(with_meta(json(&params, &out)?, &meta))
        }
        Method::PUT => {
            let token = token_from(body_of(&headers, body, "Token decoding failed").await?, Some(id))?;
            let t = ctx
                .agent
                .call(caller(&params, &headers), method::AclTokenSet { token, create: false })
                .await
                .map_err(from_server)?;
            json(&params, &token_json(&t))
        }
        Method::DELETE => {
            let ok = ctx
                .agent
                .call(caller(&params, &headers), method::AclTokenDelete { accessor: id })
                .await
                .map_err(from_server)?;
            json(&params, &ok)
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT", "DELETE"])),
    }
}

/// `?expanded`: the token with every policy and role it reaches, in full.
async fn expand(
    ctx: &Ctx,
    rc: crate::rpc::RequestContext,
    t: &Token,
    out: &mut Value,
) -> Result<(), HttpError> {
    let (_, policies) = ctx.agent.call(rc.clone(), method::AclPolicyList {}).await?;
    let (_, roles) = ctx.agent.call(rc, method::AclRoleList { policy: None }).await?;
    let my_roles: Vec<&Role> = roles.iter().filter(|r| t.roles.iter().any(|l| l.id == r.id)).collect();
    let mut wanted: Vec<&str> = t.grants.policies.iter().map(|l| l.id.as_str()).collect();
    for r in &my_roles {
        wanted.extend(r.grants.policies.iter().map(|l| l.id.as_str()));
    }
    let expanded: Vec<Value> =
        policies.iter().filter(|p| wanted.contains(&p.id.as_str())).map(|p| policy_json(p, true)).collect();
    let cfg = ctx.agent.config();
    out["ExpandedPolicies"] = Value::Array(expanded);
    out["ExpandedRoles"] = Value::Array(my_roles.iter().map(|r| role_json(r)).collect());
    out["NamespaceDefaultPolicyIDs"] = Value::Null;
    out["NamespaceDefaultRoleIDs"] = Value::Null;
    out["AgentACLDefaultPolicy"] = json!(cfg.acl.default_policy.as_str());
    out["AgentACLDownPolicy"] = json!(cfg.acl.down_policy.as_str());
    out["ResolvedByAgent"] = json!(cfg.node_name);
    Ok(())
}

pub async fn token_list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let filter = AclTokenFilter {
        policy: params.get("policy").filter(|s| !s.is_empty()).map(str::to_string),
        role: params.get("role").filter(|s| !s.is_empty()).map(str::to_string),
        service_name: params.get("servicename").filter(|s| !s.is_empty()).map(str::to_string),
        auth_method: params.get("authmethod").filter(|s| !s.is_empty()).map(str::to_string),
    };
    let (meta, tokens) = ctx
        .agent
        .call(request_context(&params, &headers)?, method::AclTokenList { filter })
        .await
        .map_err(from_server)?;
    let out: Vec<Value> = tokens.iter().map(token_json).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

fn policy_from(input: PolicyIn, id_from_path: Option<String>) -> Result<Policy, HttpError> {
    let id = match (id_from_path, input.id.filter(|i| !i.is_empty())) {
        (Some(p), Some(b)) if p != b => {
            return Err(HttpError::bad_request("Policy ID in URL and payload do not match"))
        }
        (Some(p), _) => p,
        (None, b) => b.unwrap_or_default(),
    };
    let rules = input.rules.unwrap_or_default();
    Ok(Policy {
        id,
        name: input.name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        rules,
        datacenters: input.datacenters.unwrap_or_default(),
        ..Default::default()
    })
}

pub async fn policy_create(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    let policy = policy_from(body_of(&headers, body, "Policy decoding failed").await?, None)?;
    if !policy.id.is_empty() {
        return Err(HttpError::bad_request("Cannot specify the ID when creating a new policy"));
    }
    let p = ctx
        .agent
        .call(caller(&params, &headers), method::AclPolicySet { policy, create: true })
        .await
        .map_err(from_server)?;
    json(&params, &policy_json(&p, true))
}

pub async fn policy_item(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    match method {
        Method::GET => policy_read(&ctx, &params, &headers, id, false).await,
        Method::PUT => {
            let policy = policy_from(body_of(&headers, body, "Policy decoding failed").await?, Some(id))?;
            let p = ctx
                .agent
                .call(caller(&params, &headers), method::AclPolicySet { policy, create: false })
                .await
                .map_err(from_server)?;
            json(&params, &policy_json(&p, true))
        }
        Method::DELETE => {
            let ok = ctx
                .agent
                .call(caller(&params, &headers), method::AclPolicyDelete { id })
                .await
                .map_err(from_server)?;
            json(&params, &ok)
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT", "DELETE"])),
    }
}

pub async fn policy_by_name(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    policy_read(&ctx, &params, &headers, name, true).await
}

async fn policy_read(
    ctx: &Ctx,
    params: &Params,
    headers: &HeaderMap,
    key: String,
    by_name: bool,
) -> HttpResult {
    let (meta, p) = ctx
        .agent
        .call(request_context(params, headers)?, method::AclPolicyRead { key, by_name })
        .await
        .map_err(from_server)?;
    let p = p.ok_or_else(|| does_not_exist("policy"))?;
    Ok(with_meta(json(params, &policy_json(&p, true))?, &meta))
}

pub async fn policy_list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let (meta, list) = ctx
        .agent
        .call(request_context(&params, &headers)?, method::AclPolicyList {})
        .await
        .map_err(from_server)?;
    let out: Vec<Value> = list.iter().map(|p| policy_json(p, false)).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

fn role_from(input: RoleIn, id_from_path: Option<String>) -> Result<Role, HttpError> {
    let id = match (id_from_path, input.id.filter(|i| !i.is_empty())) {
        (Some(p), Some(b)) if p != b => {
            return Err(HttpError::bad_request("Role ID in URL and payload do not match"))
        }
        (Some(p), _) => p,
        (None, b) => b.unwrap_or_default(),
    };
    Ok(Role {
        id,
        name: input.name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        grants: grants(input.grants),
        ..Default::default()
    })
}

pub async fn role_create(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    let role = role_from(body_of(&headers, body, "Role decoding failed").await?, None)?;
    if !role.id.is_empty() {
        // Consul's create is an update with an empty ID in the URL.
        return Err(HttpError::bad_request("Role ID in URL and payload do not match"));
    }
    let r = ctx
        .agent
        .call(caller(&params, &headers), method::AclRoleSet { role, create: true })
        .await
        .map_err(from_server)?;
    json(&params, &role_json(&r))
}

pub async fn role_item(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    match method {
        Method::GET => role_read(&ctx, &params, &headers, id, false).await,
        Method::PUT => {
            let role = role_from(body_of(&headers, body, "Role decoding failed").await?, Some(id))?;
            let r = ctx
                .agent
                .call(caller(&params, &headers), method::AclRoleSet { role, create: false })
                .await
                .map_err(from_server)?;
            json(&params, &role_json(&r))
        }
        Method::DELETE => {
            let ok = ctx
                .agent
                .call(caller(&params, &headers), method::AclRoleDelete { id })
                .await
                .map_err(from_server)?;
            json(&params, &ok)
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT", "DELETE"])),
    }
}

pub async fn role_by_name(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    role_read(&ctx, &params, &headers, name, true).await
}

async fn role_read(
    ctx: &Ctx,
    params: &Params,
    headers: &HeaderMap,
    key: String,
    by_name: bool,
) -> HttpResult {
    let (meta, r) = ctx
        .agent
        .call(request_context(params, headers)?, method::AclRoleRead { key, by_name })
        .await
        .map_err(from_server)?;
    let r = r.ok_or_else(|| does_not_exist("role"))?;
    Ok(with_meta(json(params, &role_json(&r))?, &meta))
}

pub async fn role_list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let policy = params.get("policy").filter(|s| !s.is_empty()).map(str::to_string);
    let (meta, list) = ctx
        .agent
        .call(request_context(&params, &headers)?, method::AclRoleList { policy })
        .await
        .map_err(from_server)?;
    let out: Vec<Value> = list.iter().map(role_json).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

/// Unknown `/v1/acl/...` paths: 401 with ACLs off (as every ACL endpoint
/// then answers); Consul's auth-method and binding-rule endpoints, which
/// this agent does not have, 501 as other missing Consul endpoints; else 404.
pub async fn other(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    if !ctx.agent.config().acl.enabled {
        return Err(HttpError::new(axum::http::StatusCode::UNAUTHORIZED, "ACL support disabled"));
    }
    let path = uri.path();
    if ["/v1/acl/auth-method", "/v1/acl/binding-rule"].iter().any(|p| path.starts_with(p)) {
        return Err(HttpError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            format!("{path}: this Consul endpoint is not implemented by this agent yet"),
        ));
    }
    Err(HttpError::not_found("Invalid URL path: not a recognized HTTP API endpoint\n"))
}

// --- Time ----------------------------------------------------------------------

/// Parses an RFC 3339 time (`2006-01-02T15:04:05.999999999Z07:00`) to Unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d, h, mi, sec) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let ms_digits: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = ms_digits.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 60 + rest[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

/// Unix nanoseconds as Go's JSON writes a `time.Time` in UTC (RFC 3339
/// with as many fraction digits as needed: `2024-05-01T10:00:00.5Z`).
pub fn rfc3339_nanos(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let frac = ns % 1_000_000_000;
    let whole = crate::logging::format_unix_millis(secs * 1000);
    let base = whole.strip_suffix(".000Z").unwrap_or(&whole);
    if frac == 0 {
        return format!("{base}Z");
    }
    let digits = format!("{frac:09}");
    format!("{base}.{}Z", digits.trim_end_matches('0'))
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// --- Templated policies (built in: served by the agent itself) -----------------

fn template_json(t: &crate::acl::Template) -> Value {
    json!({"TemplateName": t.name, "Schema": t.schema, "Template": t.template, "Description": t.description})
}

pub(super) fn acl_enabled(ctx: &Ctx) -> Result<(), HttpError> {
    if ctx.agent.config().acl.enabled {
        Ok(())
    } else {
        Err(HttpError::new(axum::http::StatusCode::UNAUTHORIZED, "ACL support disabled"))
    }
}

pub async fn templated_policy_list(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let out: Map<String, Value> =
        crate::acl::identity::templates().iter().map(|t| (t.name.to_string(), template_json(t))).collect();
    json(&params, &out)
}

fn template_named(name: &str) -> Result<&'static crate::acl::Template, HttpError> {
    crate::acl::identity::template(name)
        .ok_or_else(|| HttpError::not_found(format!("Invalid templated policy Name: {name}")))
}

pub async fn templated_policy_read(State(ctx): State<Ctx>, Path(name): Path<String>, uri: Uri) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    json(&params, &template_json(template_named(&name)?))
}

pub async fn templated_policy_preview(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let t = template_named(&name)?;
    let vars: TemplateVariablesIn = body_of(&headers, body, "Request decoding failed").await?;
    let p = crate::acl::identity::preview(t, vars.name.as_deref())
        .map_err(|e| HttpError::bad_request(format!("validation error for templated policy {name}: {e}")))?;
    let mut out = json!({"ID": p.id, "Name": p.name, "Description": p.description, "Rules": p.rules,
        "CreateIndex": 0, "ModifyIndex": 0});
    if !p.datacenters.is_empty() {
        out["Datacenters"] = json!(p.datacenters);
    }
    json(&params, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_logging_format() {
        let ms = 1_700_000_123_456u64;
        let text = crate::logging::format_unix_millis(ms as i64);
        assert_eq!(parse_rfc3339_ms(&text), Some(ms));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("2018-10-24T12:25:06.921933-04:00"), Some(1_540_398_306_921));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2018-13-24T12:25:06Z"), None);
    }

    #[test]
    fn create_time_prints_like_go() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nanos(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339_nanos(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339_ms(&rfc3339_nanos(1_700_000_000_120_000_000)), Some(1_700_000_000_120));
    }
}
