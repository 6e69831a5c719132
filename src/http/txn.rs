//! `/v1/txn`: atomic transactions of KV, Node, Service and Check
//! operations. This file only decodes the request into `TxnOp`s and renders
//! the outcome in Consul's JSON shapes; applying lives in `catalog::txn`.

use super::body::read_limited;
use super::error::{HttpError, HttpResult};
use super::input::{CatalogCheckIn, CatalogRegisterIn, CatalogServiceIn};
use super::kv::KvJson;
use super::query::{request_context, Params};
use super::response::{json_status, with_meta};
use super::views::{health_check, node_service, NodeJson};
use super::{decode, Ctx};
use crate::catalog::txn::{KvOp, KvVerb, TxnOp, TxnOutcome, TxnResultItem};
use crate::catalog::txn_catalog::{CatalogVerb, CheckOp, NodeOp, ServiceOp};
use crate::catalog::types::{HealthCheck, Node, NodeService};
use crate::rpc::{method, QueryMeta};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most operations in one transaction (Consul's current limit).
pub const MAX_TXN_OPS: usize = 128;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpIn {
    #[serde(rename = "KV")]
    kv: Option<KvOpIn>,
    node: Option<Value>,
    service: Option<Value>,
    check: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvOpIn {
    verb: String,
    key: Option<String>,
    value: Option<String>,
    flags: Option<u64>,
    index: Option<u64>,
    session: Option<String>,
}

/// `{"Verb": "...", "Node": {...}}`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeOpIn {
    verb: String,
    node: Option<Value>,
}

/// `{"Verb": "...", "Node": "name", "Service": {...}}`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceOpIn {
    verb: String,
    node: Option<String>,
    service: Option<Value>,
}

/// `{"Verb": "...", "Check": {...}}`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckOpIn {
    verb: String,
    check: Option<Value>,
}

/// A node as a Node op carries it (Consul's `Node`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct NodeIn {
    #[serde(rename = "ID")]
    id: Option<String>,
    node: Option<String>,
    address: Option<String>,
    datacenter: Option<String>,
    tagged_addresses: Option<BTreeMap<String, String>>,
    meta: Option<BTreeMap<String, String>>,
    modify_index: Option<u64>,
}

/// The CAS index a Service or Check object carries next to its fields.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ModifyIndexIn {
    modify_index: Option<u64>,
}

/// One entry of `Results`: `{"KV": ...}`, `{"Node": ...}`, ...
#[derive(Serialize)]
enum ResultJson<'a> {
    #[serde(rename = "KV")]
    Kv(KvJson<'a>),
    Node(NodeJson<'a>),
    Service(Value),
    Check(Value),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorJson<'a> {
    op_index: usize,
    what: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutcomeJson<'a> {
    results: Option<Vec<ResultJson<'a>>>,
    errors: Option<Vec<ErrorJson<'a>>>,
}

pub async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    if method != Method::PUT {
        return Err(super::method_not_allowed(&method, &["PUT"]));
    }
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let cfg = ctx.agent.config();
    let max_len = cfg.limits.txn_max_req_len.max(cfg.limits.kv_max_value_size);
    let body = read_limited(&headers, body, max_len)
        .await
        .map_err(|_| HttpError::too_large(format!("Request body too large, max size: {max_len} bytes")))?;
    let ops_in: Vec<OpIn> = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Failed to parse body: {e}")))?;
    if ops_in.len() > MAX_TXN_OPS {
        return Err(HttpError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            ops_in.len()
        )));
    }
    let dc = &cfg.datacenter;
    let mut ops = Vec::with_capacity(ops_in.len());
    for (i, op) in ops_in.into_iter().enumerate() {
        let bad = |e: String| HttpError::bad_request(format!("Failed to parse body: operation {i}: {e}"));
        let parsed = match op {
            OpIn { kv: Some(kv), node: None, service: None, check: None } => {
                TxnOp::Kv(kv_op(kv, cfg.limits.kv_max_value_size)?)
            }
            OpIn { kv: None, node: Some(v), service: None, check: None } => {
                TxnOp::Node(Box::new(node_op(v, dc).map_err(bad)?))
            }
            OpIn { kv: None, node: None, service: Some(v), check: None } => {
                TxnOp::Service(Box::new(service_op(v).map_err(bad)?))
            }
            OpIn { kv: None, node: None, service: None, check: Some(v) } => {
                TxnOp::Check(Box::new(check_op(v).map_err(bad)?))
            }
            _ => return Err(bad("exactly one of KV, Node, Service or Check must be given".into())),
        };
        ops.push(parsed);
    }
    let rc = request_context(&params, &headers)?;
    let (meta, outcome) = ctx.agent.call(rc, method::Txn { ops }).await?;
    let resp = render(&params, &outcome)?;
    Ok(match meta {
        Some(m) => read_meta(resp, &m),
        None => resp,
    })
}

/// A read-only transaction does not block, so Consul sends only the
/// staleness headers of its meta (`X-Consul-LastContact`,
/// `X-Consul-KnownLeader`, and the ACL-filtered flag), no index and no
/// effective consistency.
fn read_meta(resp: Response, meta: &QueryMeta) -> Response {
    let mut resp = with_meta(resp, meta);
    let h = resp.headers_mut();
    h.remove("X-Consul-Index");
    h.remove("X-Consul-Effective-Consistency");
    resp
}

fn kv_op(kv: KvOpIn, max_value_size: u64) -> Result<KvOp, HttpError> {
    let verb = KvVerb::parse(&kv.verb).ok_or_else(|| {
        HttpError::bad_request(format!("Failed to parse body: unknown KV verb {:?}", kv.verb))
    })?;
    let value = match kv.value {
        None => Default::default(),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| {
                HttpError::bad_request(format!("Failed to parse body: failed to decode value: {e}"))
            })?
            .into(),
    };
    let key = kv.key.unwrap_or_default();
    let value_len = bytes::Bytes::len(&value) as u64;
    if value_len > max_value_size {
        return Err(HttpError::too_large(format!(
            "Value for key {key:?} is too large ({value_len} > {max_value_size} bytes)"
        )));
    }
    Ok(KvOp {
        verb,
        key,
        value,
        flags: kv.flags.unwrap_or(0),
        index: kv.index.unwrap_or(0),
        session: kv.session.unwrap_or_default(),
    })
}

fn catalog_verb(kind: &str, verb: &str) -> Result<CatalogVerb, String> {
    CatalogVerb::parse(verb).ok_or_else(|| format!("unknown {kind} verb {verb:?}"))
}

/// Whether the verb writes the whole object (and so needs all its fields).
fn writes_object(verb: CatalogVerb) -> bool {
    matches!(verb, CatalogVerb::Set | CatalogVerb::Cas)
}

fn node_op(v: Value, dc: &str) -> Result<NodeOp, String> {
    let op: NodeOpIn = decode::from_value(v)?;
    let verb = catalog_verb("Node", &op.verb)?;
    let n: NodeIn = decode::from_value(op.node.unwrap_or(Value::Null)).map_err(|e| format!("Node: {e}"))?;
    let modify_index = n.modify_index.unwrap_or(0);
    let mut node = if writes_object(verb) {
        // The catalog register body shares the node's fields and checks.
        let reg = CatalogRegisterIn {
            id: n.id,
            node: n.node,
            address: n.address,
            datacenter: n.datacenter,
            tagged_addresses: n.tagged_addresses,
            node_meta: n.meta,
            skip_node_update: Some(true),
            ..Default::default()
        };
        reg.into_registration(dc)?.node
    } else {
        let node = Node {
            id: n.id.unwrap_or_default().to_ascii_lowercase(),
            node: n.node.unwrap_or_default(),
            ..Default::default()
        };
        if node.id.is_empty() && node.node.is_empty() {
            return Err("Must provide node ID or name".into());
        }
        node
    };
    node.modify_index = modify_index;
    Ok(NodeOp { verb, node })
}

fn service_op(v: Value) -> Result<ServiceOp, String> {
    let op: ServiceOpIn = decode::from_value(v)?;
    let verb = catalog_verb("Service", &op.verb)?;
    let node = op.node.unwrap_or_default();
    if node.is_empty() {
        return Err("Must provide node".into());
    }
    let raw = op.service.unwrap_or(Value::Null);
    let idx: ModifyIndexIn = decode::from_value(raw.clone()).map_err(|e| format!("Service: {e}"))?;
    let s: CatalogServiceIn = decode::from_value(raw).map_err(|e| format!("Service: {e}"))?;
    let mut service = if writes_object(verb) {
        let reg = CatalogRegisterIn {
            node: Some(node.clone()),
            service: Some(s),
            skip_node_update: Some(true),
            ..Default::default()
        };
        reg.into_registration("")?.service.unwrap_or_default()
    } else {
        let id = s.id.filter(|i| !i.is_empty()).or(s.service).unwrap_or_default();
        if id.is_empty() {
            return Err("Must provide service ID".into());
        }
        NodeService { id, ..Default::default() }
    };
    service.modify_index = idx.modify_index.unwrap_or(0);
    Ok(ServiceOp { verb, node, service })
}

fn check_op(v: Value) -> Result<CheckOp, String> {
    let op: CheckOpIn = decode::from_value(v)?;
    let verb = catalog_verb("Check", &op.verb)?;
    let raw = op.check.unwrap_or(Value::Null);
    let idx: ModifyIndexIn = decode::from_value(raw.clone()).map_err(|e| format!("Check: {e}"))?;
    let c: CatalogCheckIn = decode::from_value(raw).map_err(|e| format!("Check: {e}"))?;
    let node = c.node.clone().unwrap_or_default();
    if node.is_empty() {
        return Err("Must provide node".into());
    }
    let mut check = if writes_object(verb) {
        let reg = CatalogRegisterIn {
            node: Some(node),
            checks: Some(vec![c]),
            skip_node_update: Some(true),
            ..Default::default()
        };
        reg.into_registration("")?.checks.into_iter().next().unwrap_or_default()
    } else {
        HealthCheck { node, check_id: c.check_id.unwrap_or_default(), ..Default::default() }
    };
    if check.check_id.is_empty() {
        return Err("Must provide check ID".into());
    }
    check.modify_index = idx.modify_index.unwrap_or(0);
    Ok(CheckOp { verb, check })
}

fn render(params: &Params, outcome: &TxnOutcome) -> HttpResult {
    if !outcome.errors.is_empty() {
        let errors =
            outcome.errors.iter().map(|e| ErrorJson { op_index: e.op_index, what: &e.what }).collect();
        return json_status(
            params,
            StatusCode::CONFLICT,
            &OutcomeJson { results: None, errors: Some(errors) },
        );
    }
    let results = outcome
        .results
        .iter()
        .map(|r| match r {
            TxnResultItem::Kv { entry, with_value } => ResultJson::Kv(KvJson::new(entry, *with_value)),
            TxnResultItem::Node(n) => ResultJson::Node(NodeJson::new(n)),
            TxnResultItem::Service(s) => ResultJson::Service(node_service(s)),
            TxnResultItem::Check(c) => ResultJson::Check(health_check(c)),
        })
        .collect();
    json_status(params, StatusCode::OK, &OutcomeJson { results: Some(results), errors: None })
}
