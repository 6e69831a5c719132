//! `/v1/health/*`.

use super::catalog::service_filter;
use super::error::{HttpError, HttpResult};
use super::query::{filter, node_meta, passing, request_context, Params};
use super::response::{json, with_meta};
use super::views::{health_check, node_service, NodeJson};
use super::views_ser::{HealthChecksJson, HealthEntryJson, ListJson};
use super::Ctx;
use crate::catalog::types::HealthCheck;
use crate::filter::{schemas, Filter};
use crate::rpc::message::ServiceHealth;
use crate::rpc::{method, QueryMeta, RequestContext};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{json, Value};

pub async fn service(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    service_entries(ctx, name, uri, headers, false).await
}

/// `/v1/health/service/<name>`, or with `connect` its Connect-capable
/// instances (`/v1/health/connect/<name>`): one handler, as in Consul.
pub(super) async fn service_entries(
    ctx: Ctx,
    name: String,
    uri: Uri,
    headers: HeaderMap,
    connect: bool,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let expr = filter(&params, schemas::service_health())?;
    let rc = request_context(&params, &headers)?;
    let mut filter = service_filter(&params)?;
    filter.passing_only = passing(&params)?;
    filter.connect = connect;
    let (meta, entries) = ctx.agent.call(rc.clone(), method::HealthService { name, filter }).await?;
    service_health_reply(&ctx, &rc, &params, expr.as_ref(), meta, entries).await
}

/// The answer of a `/v1/health/service`-shaped read (also
/// `/v1/health/ingress`): central config merged when asked, each instance
/// with its node and checks, then `?filter`, `?peer`, `?near`, and the
/// query-backend header Consul's handler sends.
pub(super) async fn service_health_reply(
    ctx: &Ctx,
    rc: &RequestContext,
    params: &Params,
    expr: Option<&Filter>,
    mut meta: QueryMeta,
    mut entries: Vec<ServiceHealth>,
) -> HttpResult {
    let mut services: Vec<_> = entries.iter_mut().map(|e| &mut e.service).collect();
    let config_index = super::mesh_params::merge_requested(ctx, rc, params, &mut services).await?;
    meta.index = meta.index.max(config_index);
    // `?filter` is evaluated on the old `Value` shape of each entry (the
    // filter's selectors walk it); the answer itself is written straight
    // from the entries (`views_ser`), with or without a filter.
    if let Some(f) = expr {
        entries.retain(|e| f.matches(&health_entry_value(e)));
    }
    if super::mesh_params::peer_requested(params) {
        entries.clear();
    }
    ctx.agent.sort_near(rc, params.get("near"), &mut entries, |e| Some(e.node.node.as_str())).await?;
    let out = ListJson(&entries, HealthEntryJson);
    let mut resp = with_meta(json(params, &out)?, &meta);
    resp.headers_mut()
        .insert("X-Consul-Query-Backend", axum::http::HeaderValue::from_static("blocking-query"));
    Ok(resp)
}

/// A health entry as the `?filter` selectors see it.
fn health_entry_value(e: &ServiceHealth) -> Value {
    json!({
        "Node": NodeJson::new(&e.node),
        "Service": node_service(&e.service),
        "Checks": e.checks.iter().map(health_check).collect::<Vec<_>>(),
    })
}

pub async fn node(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::health_check())?;
    let rc = request_context(&params, &headers)?;
    let (meta, mut checks) = ctx.agent.call(rc, method::HealthNode { name }).await?;
    retain_checks(filter.as_ref(), &params, &mut checks);
    Ok(with_meta(json(&params, &HealthChecksJson(&checks))?, &meta))
}

pub async fn checks(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::health_check())?;
    let rc = request_context(&params, &headers)?;
    let args = method::HealthChecks { service: name, node_meta: node_meta(&params)? };
    let (meta, mut checks) = ctx.agent.call(rc.clone(), args).await?;
    retain_checks(filter.as_ref(), &params, &mut checks);
    ctx.agent.sort_near(&rc, params.get("near"), &mut checks, |c| Some(c.node.as_str())).await?;
    Ok(with_meta(json(&params, &HealthChecksJson(&checks))?, &meta))
}

pub async fn state(
    State(ctx): State<Ctx>,
    Path(state): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::health_check())?;
    if !matches!(state.as_str(), "any" | "passing" | "warning" | "critical") {
        return Err(HttpError::bad_request("Invalid check state"));
    }
    let rc = request_context(&params, &headers)?;
    let args = method::HealthState { state: state.clone(), node_meta: node_meta(&params)? };
    let (meta, mut checks) = ctx.agent.call(rc.clone(), args).await?;
    retain_checks(filter.as_ref(), &params, &mut checks);
    ctx.agent.sort_near(&rc, params.get("near"), &mut checks, |c| Some(c.node.as_str())).await?;
    Ok(with_meta(json(&params, &HealthChecksJson(&checks))?, &meta))
}

/// `?filter` (on each check's `Value` shape, as the selectors expect) and
/// `?peer` (no peers here: nothing) applied to a list of checks.
fn retain_checks(filter: Option<&Filter>, params: &Params, checks: &mut Vec<HealthCheck>) {
    if let Some(f) = filter {
        checks.retain(|c| f.matches(&health_check(c)));
    }
    if super::mesh_params::peer_requested(params) {
        checks.clear();
    }
}
