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
/// service. Which gateway routes where is defined by `ingress-gateway`
/// config entries, which this build does not store yet: the answer is `[]`
/// with the index headers of the service's health read.
pub async fn health_ingress(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    filter(&params, schemas::service_health())?;
    let rc = request_context(&params, &headers)?;
    let mut filter = service_filter(&params)?;
    filter.passing_only = passing(&params)?;
    let (meta, _) = ctx.agent.call(rc, method::HealthService { name, filter }).await?;
    Ok(with_meta(json(&params, &Vec::<Value>::new())?, &meta))
}

/// `/v1/catalog/gateway-services/<gateway>`: the services a terminating or
/// ingress gateway fronts, from their config entries. Not stored by this
/// build yet: `[]` with the index headers of the gateway's catalog read.
pub async fn gateway_services(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let filter = service_filter(&params)?;
    let (meta, _) = ctx.agent.call(rc, method::CatalogService { name, filter }).await?;
    Ok(with_meta(json(&params, &Vec::<Value>::new())?, &meta))
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
