//! `/v1/catalog/*`.

use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::input::{CatalogDeregisterIn, CatalogRegisterIn};
use super::query::{caller, filter, keep, node_meta, request_context, Params};
use super::response::{json, with_meta};
use super::views::{node_service, service_node, NodeJson};
use super::views_ser::{ListJson, ServiceNodeJson};
use super::Ctx;
use crate::filter::{schemas, Filter};
use crate::rpc::ServiceFilter;
use crate::rpc::{method, QueryOptions, RequestContext};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const MAX_BODY: u64 = 1024 * 1024;

pub async fn register(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CatalogRegisterIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let reg = input.into_registration(&ctx.agent.config().datacenter).map_err(HttpError::bad_request)?;
    ctx.agent.check_dc(Some(&reg.node.datacenter))?;
    ctx.agent.call(caller(&params, &headers), method::CatalogRegister { registration: reg }).await?;
    json(&params, &true)
}

pub async fn deregister(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CatalogDeregisterIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    ctx.agent.check_dc(input.datacenter.as_deref())?;
    let d = input.into_deregistration().map_err(HttpError::bad_request)?;
    ctx.agent.call(caller(&params, &headers), method::CatalogDeregister { deregistration: d }).await?;
    json(&params, &true)
}

pub async fn datacenters(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    json(&params, &ctx.agent.datacenters().await?)
}

pub async fn nodes(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::node())?;
    let rc = request_context(&params, &headers)?;
    let (meta, mut nodes) =
        ctx.agent.call(rc.clone(), method::CatalogNodes { node_meta: node_meta(&params)? }).await?;
    if let Some(f) = &filter {
        nodes.retain(|n| f.matches(&serde_json::to_value(NodeJson::new(n)).unwrap_or_default()));
    }
    if super::mesh_params::peer_requested(&params) {
        nodes.clear();
    }
    ctx.agent.sort_near(&rc, params.get("near"), &mut nodes, |n| Some(n.node.as_str())).await?;
    let out: Vec<NodeJson> = nodes.iter().map(NodeJson::new).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn services(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::service_node())?;
    let rc = request_context(&params, &headers)?;
    let node_meta = node_meta(&params)?;
    let (meta, services) =
        ctx.agent.call(rc.clone(), method::CatalogServices { node_meta: node_meta.clone() }).await?;
    let services = match &filter {
        None => services,
        Some(f) => std::sync::Arc::new(filter_services(&ctx, &services, node_meta, &rc, f).await?),
    };
    let services = if super::mesh_params::peer_requested(&params) { Default::default() } else { services };
    Ok(with_meta(json(&params, &services)?, &meta))
}

/// Consul filters `/v1/catalog/services` per instance (its `ServiceNode`
/// records) and then groups names and tags. Our RPC answers with the grouped
/// view only, so the instances of each listed service are read right after
/// it, with the same consistency mode and without blocking (that already
/// happened). The index and headers stay those of the grouped read.
/// TODO(integration): one RPC returning every instance would make this a
/// single consistent read.
async fn filter_services(
    ctx: &Ctx,
    services: &BTreeMap<String, Vec<String>>,
    node_meta: Vec<(String, String)>,
    rc: &RequestContext,
    filter: &Filter,
) -> Result<BTreeMap<String, Vec<String>>, HttpError> {
    let read =
        RequestContext { query: QueryOptions { min_index: 0, max_wait: None, ..rc.query }, ..rc.clone() };
    let by_meta = ServiceFilter { tags: Vec::new(), node_meta, passing_only: false, connect: false };
    let mut out = BTreeMap::new();
    for name in services.keys() {
        let args = method::CatalogService { name: name.clone(), filter: by_meta.clone() };
        let (_, instances) = ctx.agent.call(read.clone(), args).await?;
        let mut tags: Option<BTreeSet<String>> = None;
        for (n, s) in &instances {
            if filter.matches(&service_node(n, s)) {
                tags.get_or_insert_with(BTreeSet::new).extend(s.tags.iter().cloned());
            }
        }
        if let Some(tags) = tags {
            out.insert(name.clone(), tags.into_iter().collect());
        }
    }
    Ok(out)
}

pub(crate) fn service_filter(params: &Params) -> Result<ServiceFilter, HttpError> {
    Ok(ServiceFilter {
        tags: params.all("tag").into_iter().map(str::to_string).collect(),
        node_meta: node_meta(params)?,
        passing_only: false,
        connect: false,
    })
}

pub async fn service(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    service_nodes(ctx, name, uri, headers, false).await
}

/// `/v1/catalog/service/<name>`, or with `connect` its Connect-capable
/// instances (`/v1/catalog/connect/<name>`): one handler, as in Consul.
pub(super) async fn service_nodes(
    ctx: Ctx,
    name: String,
    uri: Uri,
    headers: HeaderMap,
    connect: bool,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let expr = filter(&params, schemas::service_node())?;
    let rc = request_context(&params, &headers)?;
    let mut filter = service_filter(&params)?;
    filter.connect = connect;
    let (mut meta, mut instances) =
        ctx.agent.call(rc.clone(), method::CatalogService { name, filter }).await?;
    let mut services: Vec<_> = instances.iter_mut().map(|(_, s)| s).collect();
    let config_index = super::mesh_params::merge_requested(&ctx, &rc, &params, &mut services).await?;
    meta.index = meta.index.max(config_index);
    // `?filter` sees each entry's `Value` shape; the answer is written
    // straight from the entries (`views_ser`).
    if let Some(f) = &expr {
        instances.retain(|(n, s)| f.matches(&service_node(n, s)));
    }
    if super::mesh_params::peer_requested(&params) {
        instances.clear();
    }
    ctx.agent.sort_near(&rc, params.get("near"), &mut instances, |(n, _)| Some(n.node.as_str())).await?;
    let out = ListJson(&instances, |(n, s)| ServiceNodeJson(n, s));
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn node(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::node_service())?;
    let rc = request_context(&params, &headers)?;
    let (meta, mut found) = ctx.agent.call(rc, method::CatalogNode { name }).await?;
    if super::mesh_params::peer_requested(&params) {
        found = None;
    }
    let out = match &found {
        None => Value::Null,
        Some((n, services)) => {
            let mut map = Map::new();
            for s in services {
                let v = node_service(s);
                if keep(filter.as_ref(), &v) {
                    map.insert(s.id.clone(), v);
                }
            }
            json!({"Node": NodeJson::new(n), "Services": map})
        }
    };
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn node_services(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let filter = filter(&params, schemas::node_service())?;
    let rc = request_context(&params, &headers)?;
    let (mut meta, mut found) = ctx.agent.call(rc.clone(), method::CatalogNode { name }).await?;
    if super::mesh_params::peer_requested(&params) {
        found = None;
    }
    if let Some((_, services)) = found.as_mut() {
        let mut services: Vec<_> = services.iter_mut().collect();
        let config_index = super::mesh_params::merge_requested(&ctx, &rc, &params, &mut services).await?;
        meta.index = meta.index.max(config_index);
    }
    let out = match &found {
        // Consul answers its empty `NodeServiceList` value, not `null`.
        None => json!({"Node": null, "Services": null}),
        Some((n, services)) => {
            let mut list: Vec<Value> = services.iter().map(node_service).collect();
            list.retain(|v| keep(filter.as_ref(), v));
            json!({"Node": NodeJson::new(n), "Services": list})
        }
    };
    Ok(with_meta(json(&params, &out)?, &meta))
}
