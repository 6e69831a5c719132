//! The mesh-facing read endpoints every Consul agent answers:
//! `/v1/catalog/connect/:service`, `/v1/health/connect/:service`,
//! `/v1/health/ingress/:service`, `/v1/catalog/gateway-services/:gateway`,
//! and the `?peer=` and `?merge-central-config` parameters of the catalog
//! and health reads. Data only: this agent serves no xDS and issues no
//! certificates.

use super::catalog::service_filter;
use super::error::HttpResult;
use super::query::{filter, passing, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::filter::schemas;
use crate::rpc::method;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{json, Value};

/// `/v1/catalog/connect/<service>`: the Connect-capable instances of a
/// service (its proxies and Connect-native instances), as `ServiceNode`s.
pub async fn catalog_connect(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    super::catalog::service_nodes(ctx, name, uri, headers, true).await
}

/// `/v1/health/connect/<service>`: like `/v1/health/service` over the
/// Connect-capable instances.
pub async fn health_connect(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    super::health::service_entries(ctx, name, uri, headers, true).await
}

/// `/v1/health/ingress/<service>`: the ingress gateways that route to the
/// service (from `ingress-gateway` config entries, `*` included), each
/// instance with its node and checks, as `/v1/health/service` shows them.
pub async fn health_ingress(
    State(ctx): State<Ctx>,
    Path(service): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let expr = filter(&params, schemas::service_health())?;
    let rc = request_context(&params, &headers)?;
    let mut filter = service_filter(&params)?;
    filter.passing_only = passing(&params)?;
    let (meta, entries) = ctx.agent.call(rc.clone(), method::HealthIngress { service, filter }).await?;
    super::health::service_health_reply(&ctx, &rc, &params, expr.as_ref(), meta, entries).await
}

/// `/v1/catalog/gateway-services/<gateway>`: the services a terminating or
/// ingress gateway fronts, from its config entry (`[]` without one).
pub async fn gateway_services(
    State(ctx): State<Ctx>,
    Path(gateway): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let (meta, mappings) = ctx.agent.call(rc, method::GatewayServices { gateway }).await?;
    let out: Vec<Value> = mappings.iter().map(|g| g.to_json()).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

/// `/v1/operator/usage` (Consul's `Usage` with its query meta in the body).
pub async fn operator_usage(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let (meta, u) = ctx.agent.call(rc, method::OperatorUsage {}).await?;
    let dc = ctx.agent.config().datacenter.clone();
    let body = json!({
        "Usage": {
            dc: {
                "Services": u.services,
                "ServiceInstances": u.service_instances,
                "ConnectServiceInstances": u.connect_service_instances,
                "BillableServiceInstances": u.billable_service_instances,
                "Nodes": u.nodes,
            }
        },
        "Index": meta.index.max(1),
        "LastContact": meta.last_contact.as_millis() as u64,
        "KnownLeader": meta.known_leader,
        "ConsistencyLevel": meta.consistency.header_value(),
        "NotModified": false,
        "Backend": 0,
        "ResultsFilteredByACLs": meta.filtered_by_acls,
    });
    Ok(with_meta(json(&params, &body)?, &meta))
}

/// `/v1/agent/version` (Consul's `version.BuildInfo` shape).
pub async fn agent_version(uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    json(
        &params,
        &json!({
            "SHA": crate::version::revision(),
            "BuildDate": "",
            "HumanVersion": crate::version::CONSUL_VERSION,
            "FIPS": "",
        }),
    )
}
