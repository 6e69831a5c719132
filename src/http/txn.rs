//! `/v1/txn`: atomic transactions of KV operations.

use super::error::{HttpError, HttpResult};
use super::kv::{read_limited, KvJson};
use super::query::{query_options, Params};
use super::response::{json_status, with_meta};
use super::{decode, Ctx};
use crate::catalog::txn::{KvOp, KvVerb, TxnOp, TxnOutcome, TxnResultItem};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResultJson<'a> {
    #[serde(rename = "KV")]
    kv: KvJson<'a>,
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

pub async fn handle(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
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
    let ops_in: Vec<OpIn> =
        decode::from_slice(&body).map_err(|e| HttpError::bad_request(format!("Failed to parse body: {e}")))?;
    if ops_in.len() > MAX_TXN_OPS {
        return Err(HttpError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            ops_in.len()
        )));
    }
    let mut ops = Vec::with_capacity(ops_in.len());
    for (i, op) in ops_in.into_iter().enumerate() {
        if op.node.is_some() || op.service.is_some() || op.check.is_some() {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("operation {i}: Node, Service and Check transaction operations are not supported yet"),
            ));
        }
        let Some(kv) = op.kv else {
            return Err(HttpError::bad_request(format!("Failed to parse body: operation {i} has no KV, Node, Service or Check")));
        };
        let verb = KvVerb::parse(&kv.verb)
            .ok_or_else(|| HttpError::bad_request(format!("Failed to parse body: operation {i}: unknown KV verb {:?}", kv.verb)))?;
        let value = match kv.value {
            None => Default::default(),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| HttpError::bad_request(format!("Failed to parse body: failed to decode value: {e}")))?
                .into(),
        };
        let key = kv.key.unwrap_or_default();
        let value_len = bytes::Bytes::len(&value) as u64;
        if value_len > cfg.limits.kv_max_value_size {
            return Err(HttpError::too_large(format!(
                "Value for key {key:?} is too large ({value_len} > {} bytes)",
                cfg.limits.kv_max_value_size
            )));
        }
        ops.push(TxnOp::Kv(KvOp {
            verb,
            key,
            value,
            flags: kv.flags.unwrap_or(0),
            index: kv.index.unwrap_or(0),
            session: kv.session.unwrap_or_default(),
        }));
    }
    let opts = query_options(&params, &headers)?;
    let (meta, outcome) = ctx.agent.txn(ops, &opts).await?;
    let resp = render(&params, &outcome)?;
    Ok(match meta {
        Some(m) => with_meta(resp, &m),
        None => resp,
    })
}

fn render(params: &Params, outcome: &TxnOutcome) -> HttpResult {
    if !outcome.errors.is_empty() {
        let errors = outcome.errors.iter().map(|e| ErrorJson { op_index: e.op_index, what: &e.what }).collect();
        return json_status(params, StatusCode::CONFLICT, &OutcomeJson { results: None, errors: Some(errors) });
    }
    let results = outcome
        .results
        .iter()
        .map(|r| match r {
            TxnResultItem::Kv { entry, with_value } => ResultJson { kv: KvJson::new(entry, *with_value) },
        })
        .collect();
    json_status(params, StatusCode::OK, &OutcomeJson { results: Some(results), errors: None })
}
