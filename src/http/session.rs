//! `/v1/session/*`: create, destroy, info, node, list, renew.

use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::agent::Serve;
use crate::catalog::sessions::{Behavior, ServiceCheckRef, Session};
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ServiceCheckIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SessionIn {
    name: Option<String>,
    node: Option<String>,
    pub lock_delay: Option<Value>,
    checks: Option<Vec<String>>,
    node_checks: Option<Vec<String>>,
    service_checks: Option<Vec<ServiceCheckIn>>,
    behavior: Option<String>,
    #[serde(rename = "TTL")]
    ttl: Option<String>,
}

/// Consul's LockDelay: a duration string, or a number (below 1000 it
/// means seconds, else nanoseconds).
pub fn lock_delay(v: Option<Value>) -> Result<Duration, String> {
    match v {
        None | Some(Value::Null) => Ok(Duration::from_secs(15)),
        Some(Value::String(s)) if s.is_empty() => Ok(Duration::from_secs(15)),
        Some(Value::String(s)) => {
            crate::duration::parse(&s).map_err(|e| format!("Request decode failed: LockDelay: {e}"))
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(x) if x < 1000 => Ok(Duration::from_secs(x)),
            Some(x) => Ok(Duration::from_nanos(x)),
            None => Err("Request decode failed: LockDelay: invalid number".into()),
        },
        Some(other) => Err(format!("Request decode failed: LockDelay: invalid value {other}")),
    }
}

pub fn session_json(s: &Session) -> Value {
    json!({
        "ID": s.id,
        "Name": s.name,
        "Node": s.node,
        "LockDelay": s.lock_delay_ns,
        "Behavior": s.behavior.as_str(),
        "TTL": s.ttl,
        "NodeChecks": s.node_checks,
        // Consul's nil slice: `null` when the session has none.
        "ServiceChecks": if s.service_checks.is_empty() {
            Value::Null
        } else {
            s.service_checks.iter().map(|c| json!({"ID": c.id, "Namespace": c.namespace})).collect()
        },
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

pub async fn create(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, 64 * 1024).await?;
    let input: SessionIn = if body.iter().all(u8::is_ascii_whitespace) {
        SessionIn::default()
    } else {
        decode::from_slice(&body)
            .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?
    };
    let cfg = ctx.agent.config();
    let behavior = match input.behavior.as_deref().unwrap_or("") {
        "" | "release" => Behavior::Release,
        "delete" => Behavior::Delete,
        other => return Err(HttpError::bad_request(format!("Invalid Behavior setting '{other}'"))),
    };
    let ttl = input.ttl.clone().unwrap_or_default();
    if !ttl.is_empty() {
        let d = crate::duration::parse(&ttl)
            .map_err(|e| HttpError::bad_request(format!("Request decode failed: TTL: {e}")))?;
        let max = Duration::from_secs(86400);
        if d != Duration::ZERO && (d < cfg.session_ttl_min || d > max) {
            return Err(HttpError::bad_request(format!(
                "Invalid Session TTL '{ttl}', must be between [{}={}]",
                crate::duration::format(cfg.session_ttl_min),
                crate::duration::format(max)
            )));
        }
    }
    // No check fields at all: bind to the node's serfHealth, as Consul does.
    let node_checks = match (&input.checks, &input.node_checks, &input.service_checks) {
        (None, None, None) => vec![crate::catalog::types::SERF_HEALTH.to_string()],
        (checks, node_checks, _) => {
            let mut v = node_checks.clone().unwrap_or_default();
            v.extend(checks.clone().unwrap_or_default());
            v.dedup();
            v
        }
    };
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        name: input.name.unwrap_or_default(),
        node: input.node.filter(|n| !n.is_empty()).unwrap_or_else(|| cfg.node_name.clone()),
        lock_delay_ns: lock_delay(input.lock_delay).map_err(HttpError::bad_request)?.as_nanos() as u64,
        behavior,
        ttl,
        node_checks,
        service_checks: input
            .service_checks
            .unwrap_or_default()
            .into_iter()
            .map(|c| ServiceCheckRef {
                id: c.id.unwrap_or_default(),
                namespace: c.namespace.unwrap_or_default(),
            })
            .collect(),
        create_index: 0,
        modify_index: 0,
    };
    let id = ctx.agent.call(caller(&params, &headers), method::SessionCreate { session }).await?;
    json(&params, &json!({"ID": id}))
}

pub async fn destroy(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    ctx.agent.call(caller(&params, &headers), method::SessionDestroy { id }).await?;
    json(&params, &true)
}

pub async fn destroy_missing() -> HttpResult {
    Err(HttpError::bad_request("Missing session"))
}

/// `info`, `node` and `list`: reads that answer a list of sessions.
async fn query<M>(ctx: &Ctx, uri: &Uri, headers: &HeaderMap, args: M) -> HttpResult
where
    M: Serve<Reply = (crate::rpc::QueryMeta, Vec<crate::catalog::sessions::Session>)>,
{
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, headers)?;
    let (meta, sessions) = ctx.agent.call(rc, args).await?;
    let out: Vec<Value> = sessions.iter().map(session_json).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn info(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    query(&ctx, &uri, &headers, method::SessionInfo { id }).await
}

pub async fn node(
    State(ctx): State<Ctx>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    query(&ctx, &uri, &headers, method::SessionNode { node }).await
}

pub async fn list(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    query(&ctx, &uri, &headers, method::SessionList {}).await
}

pub async fn renew(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let sessions = ctx.agent.call(caller(&params, &headers), method::SessionRenew { id }).await?;
    let out: Vec<Value> = sessions.iter().map(session_json).collect();
    json(&params, &out)
}
