//! `/v1/config` (config entries: apply with `?cas`, read one, list a kind,
//! delete with `?cas`) and `/v1/discovery-chain/:service`, in Consul's
//! JSON shapes. Decoding happens here (Consul's 400 `Request decoding
//! failed: ...`); normalization and validation on the server.

use super::body::read_limited;
use super::error::{HttpError, HttpResult};
use super::query::{caller, filter, keep, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::config_entry::{self as ce, ConfigEntry};
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};

/// Largest config entry body accepted.
pub const MAX_BODY: u64 = 1024 * 1024;

fn decoding_failed(e: impl std::fmt::Display) -> HttpError {
    HttpError::bad_request(format!("Request decoding failed: {e}"))
}

/// `?cas=N` (Go's `strconv.ParseUint` error text, a 500 as in Consul).
fn cas(params: &Params) -> Result<Option<u64>, HttpError> {
    match params.get("cas") {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("strconv.ParseUint: parsing {v:?}: invalid syntax"),
            )
        }),
    }
}

/// Decodes a submitted entry body into the stored shape (not validated).
pub fn decode_entry(bytes: &[u8]) -> Result<ConfigEntry, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(decoding_failed("EOF"));
    }
    let raw: Value = serde_json::from_slice(bytes).map_err(decoding_failed)?;
    let (kind, name, fields) = ce::decode(&raw).map_err(decoding_failed)?;
    Ok(ConfigEntry::new(&kind, &name, &fields))
}

/// `PUT /v1/config[?cas=N]`: `true`, or `false` when the CAS failed.
pub async fn apply(
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
    let bytes = read_limited(&headers, body, MAX_BODY).await?;
    let entry = decode_entry(&bytes)?;
    let cas = cas(&params)?;
    let ok = ctx.agent.call(caller(&params, &headers), method::ConfigEntryApply { entry, cas }).await?;
    json(&params, &ok)
}

/// `GET /v1/config/:kind`, `GET|DELETE /v1/config/:kind/:name`.
pub async fn item(
    State(ctx): State<Ctx>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let (kind, name) = match rest.split_once('/') {
        Some((k, n)) => (k.to_string(), Some(n.to_string())),
        None => (rest.clone(), None),
    };
    match method {
        Method::GET => match name {
            Some(name) => {
                let rc = request_context(&params, &headers)?;
                let (meta, found) = ctx
                    .agent
                    .call(rc, method::ConfigEntryGet { kind: kind.clone(), name: name.clone() })
                    .await?;
                match found {
                    Some(e) => Ok(with_meta(json(&params, &e.to_json())?, &meta)),
                    None => {
                        Err(HttpError::not_found(format!("Config entry not found for {kind:?} / {name:?}")))
                    }
                }
            }
            None => {
                // An unknown kind is refused by the server with Consul's
                // text; a known one filters on its own fields.
                let expr = match super::config_filter::schema(&kind) {
                    Some(schema) => filter(&params, &schema)?,
                    None => None,
                };
                let rc = request_context(&params, &headers)?;
                let (meta, list) = ctx.agent.call(rc, method::ConfigEntryList { kind }).await?;
                let mut out: Vec<Value> = list.iter().map(ConfigEntry::to_json).collect();
                out.retain(|v| keep(expr.as_ref(), v));
                Ok(with_meta(json(&params, &out)?, &meta))
            }
        },
        Method::DELETE => {
            let Some(name) = name else {
                return Err(HttpError::not_found("Must provide both a kind and name to delete"));
            };
            ce::check_kind(&kind).map_err(|e| HttpError::bad_request(e.to_string()))?;
            let cas = cas(&params)?;
            let deleted = ctx
                .agent
                .call(caller(&params, &headers), method::ConfigEntryDelete { kind, name, cas })
                .await?;
            // Consul answers the CAS outcome only to CAS deletes.
            match cas {
                Some(_) => json(&params, &deleted),
                None => json(&params, &json!({})),
            }
        }
        other => Err(super::method_not_allowed(&other, &["GET", "DELETE"])),
    }
}

/// `GET|POST /v1/discovery-chain/:service[?compile-dc=]`; POST may carry
/// `OverrideProtocol`, `OverrideConnectTimeout`, `OverrideMeshGateway`.
pub async fn discovery_chain(
    State(ctx): State<Ctx>,
    Path(service): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let mut overrides = (String::new(), String::new(), String::new());
    match method {
        Method::GET => {}
        Method::POST => {
            let bytes = read_limited(&headers, body, MAX_BODY).await?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
                let obj = v
                    .as_object()
                    .ok_or_else(|| HttpError::bad_request("Request decode failed: not a JSON object"))?;
                for (k, val) in obj {
                    match k.to_ascii_lowercase().replace('_', "").as_str() {
                        "overrideprotocol" => overrides.0 = val.as_str().unwrap_or("").to_string(),
                        "overrideconnecttimeout" => {
                            overrides.1 = match val {
                                Value::String(s) => {
                                    crate::duration::parse(s).map(crate::duration::format).map_err(|e| {
                                        HttpError::bad_request(format!("Request decode failed: {e}"))
                                    })?
                                }
                                Value::Number(n) => {
                                    crate::duration::format_nanos(i128::from(n.as_i64().unwrap_or(0)))
                                }
                                _ => String::new(),
                            }
                        }
                        "overridemeshgateway" => {
                            overrides.2 = val
                                .as_object()
                                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("mode")))
                                .and_then(|(_, v)| v.as_str())
                                .unwrap_or("")
                                .to_string()
                        }
                        _ => {}
                    }
                }
            }
        }
        other => return Err(super::method_not_allowed(&other, &["GET", "POST"])),
    }
    let rc = request_context(&params, &headers)?;
    let args = method::DiscoveryChainGet {
        service,
        compile_dc: params.get("compile-dc").unwrap_or_default().to_string(),
        overrides,
    };
    let (meta, chain) = ctx.agent.call(rc, args).await?;
    let v: Value = serde_json::from_str(&chain)
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("bad chain: {e}")))?;
    Ok(with_meta(json(&params, &v)?, &meta))
}
