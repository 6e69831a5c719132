//! `/v1/query`: prepared queries (create, list, read, update, delete,
//! execute, explain) in Consul's JSON shapes.

use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{json, with_meta};
use super::views::{health_check, node_service, NodeJson};
use super::Ctx;
use crate::catalog::queries::{PreparedQuery, QueryFailover, QueryTemplate, ServiceQuery};
use crate::rpc::message::QueryExecution;
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;

const MAX_BODY: u64 = 1024 * 1024;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TemplateIn {
    #[serde(rename = "Type")]
    kind: Option<String>,
    regexp: Option<String>,
    remove_empty_tags: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct FailoverIn {
    nearest_n: Option<i64>,
    datacenters: Option<Vec<String>>,
    targets: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ServiceIn {
    service: Option<String>,
    failover: Option<FailoverIn>,
    #[serde(rename = "IgnoreCheckIDs")]
    ignore_check_ids: Option<Vec<String>>,
    only_passing: Option<bool>,
    near: Option<String>,
    tags: Option<Vec<String>>,
    node_meta: Option<BTreeMap<String, String>>,
    service_meta: Option<BTreeMap<String, String>>,
    peer: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DnsIn {
    #[serde(rename = "TTL")]
    ttl: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct QueryIn {
    name: Option<String>,
    session: Option<String>,
    token: Option<String>,
    template: Option<TemplateIn>,
    service: Option<ServiceIn>,
    #[serde(rename = "DNS")]
    dns: Option<DnsIn>,
}

impl QueryIn {
    fn into_query(self, id: String) -> Result<PreparedQuery, HttpError> {
        let t = self.template.unwrap_or_default();
        let s = self.service.unwrap_or_default();
        let f = s.failover.unwrap_or_default();
        // Cluster peering does not exist here: refuse rather than ignore.
        if f.targets.as_ref().is_some_and(|t| !t.is_empty()) || s.peer.as_ref().is_some_and(|p| !p.is_empty())
        {
            return Err(HttpError::bad_request(
                "Failover.Targets and Peer need cluster peering, which this agent does not support",
            ));
        }
        Ok(PreparedQuery {
            id,
            name: self.name.unwrap_or_default(),
            session: self.session.unwrap_or_default(),
            token: self.token.unwrap_or_default(),
            template: QueryTemplate {
                kind: t.kind.unwrap_or_default(),
                regexp: t.regexp.unwrap_or_default(),
                remove_empty_tags: t.remove_empty_tags.unwrap_or(false),
            },
            service: ServiceQuery {
                service: s.service.unwrap_or_default(),
                failover: QueryFailover {
                    nearest_n: f.nearest_n.unwrap_or(0),
                    datacenters: f.datacenters.unwrap_or_default(),
                },
                ignore_check_ids: s.ignore_check_ids.unwrap_or_default(),
                only_passing: s.only_passing.unwrap_or(false),
                near: s.near.unwrap_or_default(),
                tags: s.tags.unwrap_or_default(),
                node_meta: s.node_meta.unwrap_or_default(),
                service_meta: s.service_meta.unwrap_or_default(),
            },
            dns_ttl: self.dns.and_then(|d| d.ttl).unwrap_or_default(),
            create_index: 0,
            modify_index: 0,
        })
    }
}

/// Go's JSON for a nil slice or map is `null`.
fn list_or_null<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

fn map_or_null(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// A stored query as Consul shows it.
pub fn query_json(q: &PreparedQuery) -> Value {
    let s = &q.service;
    json!({
        "ID": q.id,
        "Name": q.name,
        "Session": q.session,
        "Token": q.token,
        "Template": {
            "Type": q.template.kind,
            "Regexp": q.template.regexp,
            "RemoveEmptyTags": q.template.remove_empty_tags,
        },
        "Service": {
            "Service": s.service,
            "Failover": {
                "NearestN": s.failover.nearest_n,
                "Datacenters": list_or_null(&s.failover.datacenters),
            },
            "OnlyPassing": s.only_passing,
            "IgnoreCheckIDs": list_or_null(&s.ignore_check_ids),
            "Near": s.near,
            "Tags": list_or_null(&s.tags),
            "NodeMeta": map_or_null(&s.node_meta),
            "ServiceMeta": map_or_null(&s.service_meta),
            "Peer": "",
            "Connect": {"Enabled": false},
        },
        "DNS": {"TTL": q.dns_ttl},
        "CreateIndex": q.create_index,
        "ModifyIndex": q.modify_index,
    })
}

/// An execution's answer as Consul shows it.
pub fn execution_json(e: &QueryExecution) -> Value {
    json!({
        "Service": e.service,
        "Nodes": e.nodes.iter().map(|h| json!({
            "Node": NodeJson::new(&h.node),
            "Service": node_service(&h.service),
            "Checks": h.checks.iter().map(health_check).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "DNS": {"TTL": e.dns_ttl},
        "Datacenter": e.datacenter,
        "Failovers": e.failovers,
    })
}

async fn decode_body(headers: &HeaderMap, body: Body) -> Result<QueryIn, HttpError> {
    let bytes = read_limited(headers, body, MAX_BODY).await?;
    if bytes.is_empty() {
        return Ok(QueryIn::default());
    }
    decode::from_slice(&bytes).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))
}

/// `GET|POST /v1/query`.
pub async fn general(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    match method {
        Method::GET => {
            let rc = request_context(&params, &headers)?;
            let (meta, list) = ctx.agent.call(rc, method::QueryList {}).await?;
            let out: Vec<Value> = list.iter().map(query_json).collect();
            Ok(with_meta(json(&params, &out)?, &meta))
        }
        Method::POST => {
            let q = decode_body(&headers, body).await?.into_query(String::new())?;
            let id = ctx
                .agent
                .call(caller(&params, &headers), method::QuerySet { query: q, create: true })
                .await?;
            json(&params, &json!({ "ID": id }))
        }
        other => Err(super::method_not_allowed(&other, &["GET", "POST"])),
    }
}

/// `/v1/query/:id`, `/v1/query/:id/execute`, `/v1/query/:id/explain`.
pub async fn specific(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    if let Some(key) = rest.strip_suffix("/execute") {
        if method != Method::GET {
            return Err(super::method_not_allowed(&method, &["GET"]));
        }
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        return execute(&ctx, key, &params, &headers, peer).await;
    }
    if let Some(key) = rest.strip_suffix("/explain") {
        if method != Method::GET {
            return Err(super::method_not_allowed(&method, &["GET"]));
        }
        let rc = request_context(&params, &headers)?;
        let (meta, q) = ctx.agent.call(rc, method::QueryExplain { key: key.to_string() }).await?;
        return Ok(with_meta(json(&params, &json!({ "Query": query_json(&q) }))?, &meta));
    }
    let id = rest;
    match method {
        Method::GET => {
            let rc = request_context(&params, &headers)?;
            let (meta, list) = ctx.agent.call(rc, method::QueryGet { id }).await?;
            let out: Vec<Value> = list.iter().map(query_json).collect();
            Ok(with_meta(json(&params, &out)?, &meta))
        }
        Method::PUT => {
            let q = decode_body(&headers, body).await?.into_query(id)?;
            ctx.agent.call(caller(&params, &headers), method::QuerySet { query: q, create: false }).await?;
            Ok(StatusCode::OK.into_response())
        }
        Method::DELETE => {
            ctx.agent.call(caller(&params, &headers), method::QueryDelete { id }).await?;
            Ok(StatusCode::OK.into_response())
        }
        other => Err(super::method_not_allowed(&other, &["GET", "PUT", "DELETE"])),
    }
}

async fn execute(
    ctx: &Ctx,
    key: &str,
    params: &Params,
    headers: &HeaderMap,
    peer: Option<String>,
) -> HttpResult {
    let limit = match params.get("limit") {
        None | Some("") => 0,
        Some(l) => l
            .parse::<i64>()
            .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("Bad limit: {e}")))?
            .max(0) as u64,
    };
    // `_ip`: the client's address, or the first one a proxy forwarded.
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_string());
    let args = method::QueryExecute {
        key: key.to_string(),
        limit,
        near: params.get("near").unwrap_or_default().to_string(),
        agent_node: ctx.agent.node_name(),
        source_ip: forwarded.or(peer).unwrap_or_default(),
    };
    let rc = request_context(params, headers)?;
    let (meta, mut out) = ctx.agent.call(rc, args).await?;
    translate_wan(ctx, &mut out);
    Ok(with_meta(json(params, &execution_json(&out))?, &meta))
}

/// `translate_wan_addrs`: instances that came from another datacenter are
/// shown with their WAN addresses where they have one.
fn translate_wan(ctx: &Ctx, out: &mut QueryExecution) {
    let cfg = ctx.agent.config();
    if !cfg.translate_wan_addrs || out.datacenter == cfg.datacenter {
        return;
    }
    for h in &mut out.nodes {
        if let Some(wan) = h.node.tagged_addresses.get("wan") {
            h.node.address = wan.clone();
        }
        if let Some(wan) = h.service.tagged_addresses.get("wan") {
            h.service.address = wan.address.clone();
            h.service.port = wan.port;
        }
    }
}
