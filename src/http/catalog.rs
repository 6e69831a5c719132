//! `/v1/catalog/*`.

use super::decode;
use super::error::{HttpError, HttpResult};
use super::input::{CatalogDeregisterIn, CatalogRegisterIn};
use super::kv::read_limited;
use super::query::{no_filter, node_meta, query_options, Params};
use super::response::{json, with_meta};
use super::views::{node_service, service_node, NodeJson};
use super::Ctx;
use crate::server::catalog::ServiceFilter;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde_json::{json, Map, Value};

const MAX_BODY: u64 = 1024 * 1024;

pub async fn register(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CatalogRegisterIn =
        decode::from_slice(&body).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let reg = input.into_registration(&ctx.agent.config().datacenter).map_err(HttpError::bad_request)?;
    ctx.agent.check_dc(Some(&reg.node.datacenter))?;
    ctx.agent.catalog_register(reg).await?;
    json(&params, &true)
}

pub async fn deregister(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CatalogDeregisterIn =
        decode::from_slice(&body).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    ctx.agent.check_dc(input.datacenter.as_deref())?;
    let d = input.into_deregistration().map_err(HttpError::bad_request)?;
    ctx.agent.catalog_deregister(d).await?;
    json(&params, &true)
}

pub async fn datacenters(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    json(&params, &[ctx.agent.config().datacenter.clone()])
}

pub async fn nodes(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    no_filter(&params)?;
    let opts = query_options(&params, &headers)?;
    let (meta, nodes) = ctx.agent.catalog_nodes(&node_meta(&params)?, &opts).await?;
    let out: Vec<NodeJson> = nodes.iter().map(NodeJson::new).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn services(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    no_filter(&params)?;
    let opts = query_options(&params, &headers)?;
    let (meta, services) = ctx.agent.catalog_services(&node_meta(&params)?, &opts).await?;
    Ok(with_meta(json(&params, &services)?, &meta))
}

pub(crate) fn service_filter(params: &Params) -> Result<ServiceFilter, HttpError> {
    Ok(ServiceFilter {
        tags: params.all("tag").into_iter().map(str::to_string).collect(),
        node_meta: node_meta(params)?,
        passing_only: false,
    })
}

pub async fn service(State(ctx): State<Ctx>, Path(name): Path<String>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    no_filter(&params)?;
    let opts = query_options(&params, &headers)?;
    let filter = service_filter(&params)?;
    let (meta, instances) = ctx.agent.catalog_service(&name, &filter, &opts).await?;
    let out: Vec<Value> = instances.iter().map(|(n, s)| service_node(n, s)).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn node(State(ctx): State<Ctx>, Path(name): Path<String>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    no_filter(&params)?;
    let opts = query_options(&params, &headers)?;
    let (meta, found) = ctx.agent.catalog_node(&name, &opts).await?;
    let out = match &found {
        None => Value::Null,
        Some((n, services)) => {
            let mut map = Map::new();
            for s in services {
                map.insert(s.id.clone(), node_service(s));
            }
            json!({"Node": NodeJson::new(n), "Services": map})
        }
    };
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn node_services(State(ctx): State<Ctx>, Path(name): Path<String>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    no_filter(&params)?;
    let opts = query_options(&params, &headers)?;
    let (meta, found) = ctx.agent.catalog_node(&name, &opts).await?;
    let out = match &found {
        None => Value::Null,
        Some((n, services)) => {
            let list: Vec<Value> = services.iter().map(node_service).collect();
            json!({"Node": NodeJson::new(n), "Services": list})
        }
    };
    Ok(with_meta(json(&params, &out)?, &meta))
}
