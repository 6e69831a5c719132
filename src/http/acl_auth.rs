//! `/v1/acl/auth-method*`, `/v1/acl/binding-rule*`, `/v1/acl/login` and
//! `/v1/acl/logout` with Consul's JSON shapes. The server decides who may
//! do what (`server::acl::auth`); this module only translates.

use super::acl::{acl_enabled, body_of, from_server, token_json};
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::acl::model::{AuthMethod, BindingRule};
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

// --- Auth methods ----------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AuthMethodIn {
    name: Option<String>,
    #[serde(rename = "Type")]
    method_type: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    #[serde(rename = "MaxTokenTTL")]
    max_token_ttl: Option<Value>,
    token_locality: Option<String>,
    config: Option<Value>,
}

fn ttl_ns(v: Option<Value>) -> Result<u64, HttpError> {
    let bad = |e: String| HttpError::bad_request(format!("AuthMethod decoding failed: MaxTokenTTL: {e}"));
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => {
            crate::duration::parse(&s).map(|d| d.as_nanos() as u64).map_err(|e| bad(e.to_string()))
        }
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(format!("invalid value {n}"))),
        Some(other) => Err(bad(format!("invalid value {other}"))),
    }
}

fn method_from(input: AuthMethodIn, name_from_path: Option<String>) -> Result<AuthMethod, HttpError> {
    let name = match (name_from_path, input.name.filter(|n| !n.is_empty())) {
        (Some(p), Some(b)) if p != b => {
            return Err(HttpError::bad_request("AuthMethod Name in URL and payload do not match"))
        }
        (Some(p), _) => p,
        (None, b) => b.unwrap_or_default(),
    };
    let method_type = input.method_type.unwrap_or_default();
    // Types Consul has but this agent does not serve are refused here, by
    // name, as a client error (the server refuses them too).
    if !method_type.is_empty() {
        if let Some(why) = crate::authmethod::unsupported_type(&method_type) {
            return Err(HttpError::bad_request(why));
        }
    }
    let config = match input.config {
        None | Some(Value::Null) => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => {
            return Err(HttpError::bad_request("AuthMethod decoding failed: Config: expected an object"))
        }
    };
    Ok(AuthMethod {
        name,
        method_type,
        display_name: input.display_name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        max_token_ttl_ns: ttl_ns(input.max_token_ttl)?,
        token_locality: input.token_locality.unwrap_or_default(),
        config,
        ..Default::default()
    })
}

/// A method in full, or (`full` false) the listing's stub without `Config`.
pub fn auth_method_json(m: &AuthMethod, full: bool) -> Value {
    let mut o = Map::new();
    o.insert("Name".into(), json!(m.name));
    o.insert("Type".into(), json!(m.method_type));
    if !m.display_name.is_empty() {
        o.insert("DisplayName".into(), json!(m.display_name));
    }
    o.insert("Description".into(), json!(m.description));
    if m.max_token_ttl_ns > 0 {
        let d = std::time::Duration::from_nanos(m.max_token_ttl_ns);
        o.insert("MaxTokenTTL".into(), json!(crate::duration::format(d)));
    }
    if !m.token_locality.is_empty() {
        o.insert("TokenLocality".into(), json!(m.token_locality));
    }
    if full {
        let config: Value = serde_json::from_str(&m.config).unwrap_or_else(|_| json!({}));
        o.insert("Config".into(), config);
    }
    o.insert("CreateIndex".into(), json!(m.create_index));
    o.insert("ModifyIndex".into(), json!(m.modify_index));
    Value::Object(o)
}

async fn method_write(
    ctx: &Ctx,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    name: Option<String>,
) -> HttpResult {
    acl_enabled(ctx)?;
    let params = Params::parse(uri.query());
    let create = name.is_none();
    let m = method_from(body_of(headers, body, "AuthMethod decoding failed").await?, name)?;
    let out = ctx
        .agent
        .call(caller(&params, headers), method::AclAuthMethodSet { method: m, create })
        .await
        .map_err(from_server)?;
    json(&params, &auth_method_json(&out, true))
}

pub async fn auth_method_create(
    State(ctx): State<Ctx>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    method_write(&ctx, &uri, &headers, body, None).await
}

pub async fn auth_method_item(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    match method {
        Method::GET => {
            let (meta, m) = ctx
                .agent
                .call(request_context(&params, &headers)?, method::AclAuthMethodRead { name })
                .await
                .map_err(from_server)?;
            // Consul answers a missing method with an empty 404.
            let m = m.ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, ""))?;
            Ok(with_meta(json(&params, &auth_method_json(&m, true))?, &meta))
        }
        Method::PUT => method_write(&ctx, &uri, &headers, body, Some(name)).await,
        Method::DELETE => {
            let ok = ctx
                .agent
                .call(caller(&params, &headers), method::AclAuthMethodDelete { name })
                .await
                .map_err(from_server)?;
            json(&params, &ok)
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT", "DELETE"])),
    }
}

pub async fn auth_method_list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let (meta, list) = ctx
        .agent
        .call(request_context(&params, &headers)?, method::AclAuthMethodList {})
        .await
        .map_err(from_server)?;
    let out: Vec<Value> = list.iter().map(|m| auth_method_json(m, false)).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

// --- Binding rules -----------------------------------------------------------------

#[derive(Deserialize, Default)]
struct BindVarsIn {
    #[serde(alias = "Name", alias = "NAME")]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct BindingRuleIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    description: Option<String>,
    auth_method: Option<String>,
    selector: Option<String>,
    bind_type: Option<String>,
    bind_name: Option<String>,
    bind_vars: Option<BindVarsIn>,
}

fn rule_from(input: BindingRuleIn, id_from_path: Option<String>) -> Result<BindingRule, HttpError> {
    let id = match (id_from_path, input.id.filter(|i| !i.is_empty())) {
        (Some(p), Some(b)) if p != b => {
            return Err(HttpError::bad_request("BindingRule ID in URL and payload do not match"))
        }
        (Some(p), _) => p,
        (None, b) => b.unwrap_or_default(),
    };
    Ok(BindingRule {
        id,
        description: input.description.unwrap_or_default(),
        auth_method: input.auth_method.unwrap_or_default(),
        selector: input.selector.unwrap_or_default(),
        bind_type: input.bind_type.unwrap_or_default(),
        bind_name: input.bind_name.unwrap_or_default(),
        bind_vars_name: input.bind_vars.and_then(|v| v.name).filter(|n| !n.is_empty()),
        ..Default::default()
    })
}

pub fn binding_rule_json(r: &BindingRule) -> Value {
    let mut o = Map::new();
    o.insert("ID".into(), json!(r.id));
    o.insert("Description".into(), json!(r.description));
    o.insert("AuthMethod".into(), json!(r.auth_method));
    o.insert("Selector".into(), json!(r.selector));
    o.insert("BindType".into(), json!(r.bind_type));
    o.insert("BindName".into(), json!(r.bind_name));
    if let Some(n) = &r.bind_vars_name {
        o.insert("BindVars".into(), json!({"Name": n}));
    }
    o.insert("CreateIndex".into(), json!(r.create_index));
    o.insert("ModifyIndex".into(), json!(r.modify_index));
    Value::Object(o)
}

async fn rule_write(ctx: &Ctx, uri: &Uri, headers: &HeaderMap, body: Body, id: Option<String>) -> HttpResult {
    acl_enabled(ctx)?;
    let params = Params::parse(uri.query());
    let create = id.is_none();
    let rule = rule_from(body_of(headers, body, "BindingRule decoding failed").await?, id)?;
    let out = ctx
        .agent
        .call(caller(&params, headers), method::AclBindingRuleSet { rule, create })
        .await
        .map_err(from_server)?;
    json(&params, &binding_rule_json(&out))
}

pub async fn binding_rule_create(
    State(ctx): State<Ctx>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    rule_write(&ctx, &uri, &headers, body, None).await
}

pub async fn binding_rule_item(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    match method {
        Method::GET => {
            let (meta, r) = ctx
                .agent
                .call(request_context(&params, &headers)?, method::AclBindingRuleRead { id })
                .await
                .map_err(from_server)?;
            let r = r.ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, ""))?;
            Ok(with_meta(json(&params, &binding_rule_json(&r))?, &meta))
        }
        Method::PUT => rule_write(&ctx, &uri, &headers, body, Some(id)).await,
        Method::DELETE => {
            let ok = ctx
                .agent
                .call(caller(&params, &headers), method::AclBindingRuleDelete { id })
                .await
                .map_err(from_server)?;
            json(&params, &ok)
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT", "DELETE"])),
    }
}

pub async fn binding_rule_list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let auth_method = params.get("authmethod").filter(|s| !s.is_empty()).map(str::to_string);
    let (meta, list) = ctx
        .agent
        .call(request_context(&params, &headers)?, method::AclBindingRuleList { auth_method })
        .await
        .map_err(from_server)?;
    let out: Vec<Value> = list.iter().map(binding_rule_json).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

// --- Login and logout --------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LoginIn {
    auth_method: Option<String>,
    bearer_token: Option<String>,
    meta: Option<BTreeMap<String, String>>,
}

/// `/v1/acl/login`: no token needed; the bearer token is the credential.
pub async fn login(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let input: LoginIn = body_of(&headers, body, "Failed to decode request body").await?;
    let bearer_token = input.bearer_token.unwrap_or_default();
    let limit = crate::authmethod::jwt::MAX_TOKEN_BYTES;
    if bearer_token.len() > limit {
        return Err(HttpError::bad_request(format!(
            "BearerToken is {} bytes, more than the {limit} accepted",
            bearer_token.len()
        )));
    }
    let args = method::AclLogin {
        auth_method: input.auth_method.unwrap_or_default(),
        bearer_token,
        meta: input.meta.unwrap_or_default(),
    };
    // The caller's own token (if any) plays no part in a login.
    let mut rc = caller(&params, &headers);
    rc.token = None;
    let t = ctx.agent.call(rc, args).await.map_err(from_server)?;
    json(&params, &token_json(&t))
}

/// `/v1/acl/logout`: deletes the caller's own token if `login` made it.
/// No token: 401; a secret that names no token: 403 `ACL not found`; a
/// token not made by a login: 403, as Consul.
pub async fn logout(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    acl_enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let rc = caller(&params, &headers);
    if rc.token.as_deref().is_none_or(str::is_empty) {
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, "Supplied token does not exist"));
    }
    let ok = ctx.agent.call(rc, method::AclLogout {}).await.map_err(from_server)?;
    json(&params, &ok)
}
