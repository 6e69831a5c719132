//! `/v1/internal/ui/*`: the reads Consul's web UI makes that are catalog
//! data this agent holds — every node with its services and checks
//! (`nodes`), one node (`node/:node`) and a per-service summary
//! (`services`). Shapes follow Consul's `NodeInfo` and
//! `ServiceListingSummary`. The UI's mesh views (topology, gateway
//! services, intentions by gateway, metrics proxy) and the peering views
//! (exported services) answer 501: see docs/compatibility.md.

use super::error::{HttpError, HttpResult};
use super::query::{request_context, Params};
use super::response::{json, with_meta};
use super::views::{health_check, node_service};
use super::Ctx;
use crate::catalog::mesh::KIND_CONNECT_PROXY;
use crate::catalog::types::{CRITICAL, PASSING, WARNING};
use crate::rpc::{method, NodeDump};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The service meta key Consul reads an instance's external source from.
const META_EXTERNAL_SOURCE: &str = "external-source";

/// `?filter=` on these endpoints filters Consul's `NodeInfo` and summary
/// shapes, which this agent has no filter schema for: refused rather than
/// silently ignored.
fn refuse_filter(params: &Params) -> Result<(), HttpError> {
    if params.get("filter").is_some_and(|f| !f.is_empty()) {
        return Err(HttpError::bad_request(
            "filter is not supported on /v1/internal/ui endpoints by this agent",
        ));
    }
    Ok(())
}

/// Consul's `NodeInfo`: the node's fields (no datacenter, no indexes),
/// then its services and checks, empty lists as `[]`.
fn node_info(d: &NodeDump) -> Value {
    json!({
        "ID": d.node.id,
        "Node": d.node.node,
        "Address": d.node.address,
        "TaggedAddresses": d.node.tagged_addresses,
        "Meta": d.node.meta,
        "Services": d.services.iter().map(node_service).collect::<Vec<_>>(),
        "Checks": d.checks.iter().map(health_check).collect::<Vec<_>>(),
    })
}

async fn dump(
    ctx: &Ctx,
    params: &Params,
    headers: &HeaderMap,
    node: Option<String>,
) -> Result<(crate::rpc::QueryMeta, Vec<NodeDump>), HttpError> {
    ctx.agent.check_dc(params.dc())?;
    refuse_filter(params)?;
    let rc = request_context(params, headers)?;
    let (meta, mut dump) = ctx.agent.call(rc, method::InternalNodeDump { node }).await?;
    // No peering here: a named peer has nothing imported.
    if super::mesh_params::peer_requested(params) {
        dump.clear();
    }
    Ok((meta, dump))
}

/// `GET /v1/internal/ui/nodes`.
pub async fn nodes(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let (meta, dump) = dump(&ctx, &params, &headers, None).await?;
    let out: Vec<Value> = dump.iter().map(node_info).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

/// `GET /v1/internal/ui/node/:node`: the node, or a 404 with an empty body.
pub async fn node(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    let (meta, dump) = dump(&ctx, &params, &headers, Some(name)).await?;
    match dump.first() {
        Some(d) => Ok(with_meta(json(&params, &node_info(d))?, &meta)),
        None => Ok(with_meta(StatusCode::NOT_FOUND.into_response(), &meta)),
    }
}

/// `GET /v1/internal/ui/node/` without a name.
pub async fn node_missing() -> HttpResult {
    Err(HttpError::bad_request("Missing node name"))
}

/// What the summary of one service name accumulates.
#[derive(Default)]
struct Summary {
    kind: String,
    datacenter: String,
    tags: BTreeSet<String>,
    nodes: BTreeSet<String>,
    /// In first-seen order, as Consul lists them.
    external_sources: Vec<String>,
    instances: u64,
    /// Checks by (node, check id), so a node check counts once per service.
    checks: BTreeMap<(String, String), String>,
    /// Every proxy instance of this (destination) service is transparent.
    transparent_proxy: Option<bool>,
    connect_native: bool,
    has_proxy: bool,
}

/// Consul's `ServiceListingSummary` list, sorted by name. A proxy's
/// checks count for its destination too, and a destination with only
/// proxies registered still gets an entry (with no instances), as Consul's
/// summary does.
fn summarize(dump: &[NodeDump]) -> Vec<Value> {
    let mut by_name: BTreeMap<String, Summary> = BTreeMap::new();
    for d in dump {
        let node_checks: Vec<_> = d.checks.iter().filter(|c| c.service_id.is_empty()).collect();
        for svc in &d.services {
            let checks: Vec<_> = node_checks
                .iter()
                .copied()
                .chain(d.checks.iter().filter(|c| c.service_id == svc.id))
                .collect();
            let sum = by_name.entry(svc.service.clone()).or_default();
            sum.nodes.insert(d.node.node.clone());
            sum.kind = svc.kind.clone();
            sum.datacenter = d.node.datacenter.clone();
            sum.instances += 1;
            sum.connect_native |= svc.connect.native;
            sum.tags.extend(svc.tags.iter().cloned());
            if let Some(source) = svc.meta.get(META_EXTERNAL_SOURCE).filter(|s| !s.is_empty()) {
                if !sum.external_sources.contains(source) {
                    sum.external_sources.push(source.clone());
                }
            }
            for c in &checks {
                sum.checks.insert((c.node.clone(), c.check_id.clone()), c.status.clone());
            }
            if svc.kind == KIND_CONNECT_PROXY {
                let dest = by_name.entry(svc.proxy.destination_service_name.clone()).or_default();
                dest.has_proxy = true;
                for c in &checks {
                    dest.checks.insert((c.node.clone(), c.check_id.clone()), c.status.clone());
                }
                let transparent = svc.proxy.mode == "transparent";
                dest.transparent_proxy = Some(dest.transparent_proxy.unwrap_or(true) && transparent);
            }
        }
    }
    by_name
        .into_iter()
        .map(|(name, s)| {
            let count = |status: &str| s.checks.values().filter(|v| v.as_str() == status).count();
            let list = |set: BTreeSet<String>| if set.is_empty() { Value::Null } else { json!(set) };
            let mut m = Map::new();
            if !s.kind.is_empty() {
                m.insert("Kind".into(), json!(s.kind));
            }
            m.insert("Name".into(), json!(name));
            m.insert("Datacenter".into(), json!(s.datacenter));
            m.insert("Tags".into(), list(s.tags));
            m.insert("Nodes".into(), list(s.nodes));
            m.insert(
                "ExternalSources".into(),
                if s.external_sources.is_empty() { Value::Null } else { json!(s.external_sources) },
            );
            m.insert("InstanceCount".into(), json!(s.instances));
            m.insert("ChecksPassing".into(), json!(count(PASSING)));
            m.insert("ChecksWarning".into(), json!(count(WARNING)));
            m.insert("ChecksCritical".into(), json!(count(CRITICAL)));
            // Gateway links come from ingress/terminating gateway config
            // entries; this agent does not link gateways to services yet
            // (as /v1/catalog/gateway-services), so there are none here.
            m.insert("GatewayConfig".into(), json!({}));
            m.insert("TransparentProxy".into(), json!(s.transparent_proxy.unwrap_or(false)));
            m.insert("ConnectNative".into(), json!(s.connect_native));
            m.insert("ConnectedWithProxy".into(), json!(s.has_proxy));
            m.insert("ConnectedWithGateway".into(), json!(false));
            Value::Object(m)
        })
        .collect()
}

/// `GET /v1/internal/ui/services`.
pub async fn services(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let (meta, dump) = dump(&ctx, &params, &headers, None).await?;
    Ok(with_meta(json(&params, &summarize(&dump))?, &meta))
}
