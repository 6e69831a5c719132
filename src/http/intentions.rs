//! `/v1/connect/intentions`: intentions as Consul 1.9+ serves them, backed
//! by `service-intentions` config entries (list, exact get/upsert/delete,
//! match, check). Intentions by legacy ID are not kept here, so the ID
//! forms and the legacy `POST` are refused with a pointer to `/exact`.
//! Writes are read-modify-write of the destination's entry under CAS.

use super::body::read_limited;
use super::error::{HttpError, HttpResult};
use super::query::{caller, filter, keep, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::config_entry::intentions::{self, By, Intention};
use crate::config_entry::{self as ce, ConfigEntry};
use crate::rpc::{method, QueryMeta, RequestContext};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Map, Value};

/// How many times a write retries when another writer changed the entry.
const CAS_ATTEMPTS: usize = 20;

const BY_ID: &str = "Intentions by ID are not kept by this agent (intentions live in service-intentions \
                     config entries, without legacy IDs): use /v1/connect/intentions/exact?source=..&destination=..";

async fn all(ctx: &Ctx, rc: RequestContext) -> Result<(QueryMeta, Vec<Intention>), HttpError> {
    let (meta, entries) =
        ctx.agent.call(rc, method::ConfigEntryList { kind: ce::SERVICE_INTENTIONS.to_string() }).await?;
    let mut list: Vec<Intention> = entries.iter().flat_map(intentions::of_entry).collect();
    intentions::sort(&mut list);
    Ok((meta, list))
}

fn required<'a>(params: &'a Params, key: &str) -> Result<&'a str, HttpError> {
    match params.get(key) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(HttpError::bad_request(format!("required query parameter '{key}' not set"))),
    }
}

/// `GET /v1/connect/intentions` (list); `POST` (legacy create) is refused.
pub async fn list(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    match method {
        Method::GET => {
            let expr = filter(&params, crate::filter::schemas::intention())?;
            let (meta, list) = all(&ctx, request_context(&params, &headers)?).await?;
            let mut out: Vec<Value> = list.iter().map(Intention::to_json).collect();
            out.retain(|v| keep(expr.as_ref(), v));
            Ok(with_meta(json(&params, &out)?, &meta))
        }
        Method::POST => Err(HttpError::bad_request(BY_ID)),
        other => Err(super::method_not_allowed(&other, &["GET", "POST"])),
    }
}

/// `/v1/connect/intentions/:id`: legacy IDs are not kept.
pub async fn by_id(Path(_id): Path<String>) -> HttpResult {
    Err(HttpError::bad_request(BY_ID))
}

/// `GET /v1/connect/intentions/match?by=source|destination&name=X` (name repeatable).
pub async fn matches(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let by = match params.get("by") {
        Some("source") => By::Source,
        Some("destination") => By::Destination,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "'by' parameter must be either 'source' or 'destination', got {other:?}"
            )))
        }
        None => return Err(HttpError::bad_request("required query parameter 'by' not set")),
    };
    let names = params.all("name");
    if names.is_empty() {
        return Err(HttpError::bad_request("required query parameter 'name' not set"));
    }
    let (meta, list) = all(&ctx, request_context(&params, &headers)?).await?;
    let mut out = Map::new();
    for n in names {
        let found: Vec<Value> = intentions::matching(&list, by, n).iter().map(Intention::to_json).collect();
        out.insert(n.to_string(), Value::Array(found));
    }
    Ok(with_meta(json(&params, &Value::Object(out))?, &meta))
}

/// `GET /v1/connect/intentions/check?source=&destination=`: `{"Allowed": b}`.
/// Without a matching intention the answer is the ACL default policy
/// (allow when ACLs are off), as Consul decides.
pub async fn check(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let source = required(&params, "source")?;
    let destination = required(&params, "destination")?;
    let acl = &ctx.agent.config().acl;
    let default_allow = !acl.enabled || acl.default_policy.as_str() == "allow";
    let (meta, list) = all(&ctx, request_context(&params, &headers)?).await?;
    let allowed = intentions::decide(&list, source, destination, default_allow);
    Ok(with_meta(json(&params, &json!({ "Allowed": allowed }))?, &meta))
}

/// `GET|PUT|DELETE /v1/connect/intentions/exact?source=&destination=`.
pub async fn exact(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let source = required(&params, "source")?.to_string();
    let destination = required(&params, "destination")?.to_string();
    match method {
        Method::GET => {
            let (meta, list) = all(&ctx, request_context(&params, &headers)?).await?;
            match list.iter().find(|i| i.source == source && i.destination == destination) {
                Some(i) => Ok(with_meta(json(&params, &i.to_json())?, &meta)),
                None => Err(HttpError::not_found("Intention not found")),
            }
        }
        Method::PUT => {
            let bytes = read_limited(&headers, body, super::config::MAX_BODY).await?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| HttpError::bad_request(format!("Failed to decode request body: {e}")))?;
            let src = source_from_legacy(&v, &source)?;
            modify(&ctx, &params, &headers, &destination, |sources| {
                sources.retain(|s| s.get("Name").and_then(Value::as_str) != Some(source.as_str()));
                sources.push(Value::Object(src.clone()));
            })
            .await?;
            json(&params, &true)
        }
        Method::DELETE => {
            modify(&ctx, &params, &headers, &destination, |sources| {
                sources.retain(|s| s.get("Name").and_then(Value::as_str) != Some(source.as_str()));
            })
            .await?;
            json(&params, &true)
        }
        other => Err(super::method_not_allowed(&other, &["GET", "PUT", "DELETE"])),
    }
}

/// A source written from a legacy intention body (`Action`,
/// `Description`, `Permissions`, `Meta`).
fn source_from_legacy(v: &Value, source: &str) -> Result<Map<String, Value>, HttpError> {
    let obj = v
        .as_object()
        .ok_or_else(|| HttpError::bad_request("Failed to decode request body: not a JSON object"))?;
    let mut src = Map::new();
    src.insert("Name".into(), json!(source));
    for (k, val) in obj {
        match k.to_ascii_lowercase().as_str() {
            "action" => {
                src.insert("Action".into(), val.clone());
            }
            "description" => {
                src.insert("Description".into(), val.clone());
            }
            "permissions" if !val.is_null() => {
                src.insert("Permissions".into(), val.clone());
            }
            "meta" if !val.is_null() => {
                src.insert("LegacyMeta".into(), val.clone());
            }
            // Identifying fields are taken from the query; the rest
            // (indexes, precedence, types) are computed.
            _ => {}
        }
    }
    Ok(src)
}

/// Read-modify-write of the destination's `service-intentions` entry under
/// CAS; deletes the entry when no source is left.
async fn modify(
    ctx: &Ctx,
    params: &Params,
    headers: &HeaderMap,
    destination: &str,
    change: impl Fn(&mut Vec<Value>),
) -> Result<(), HttpError> {
    for _ in 0..CAS_ATTEMPTS {
        let rc = RequestContext {
            query: crate::rpc::QueryOptions {
                consistency: crate::rpc::Consistency::Consistent,
                ..Default::default()
            },
            ..caller(params, headers)
        };
        let (_, existing) = ctx
            .agent
            .call(
                rc,
                method::ConfigEntryGet { kind: ce::SERVICE_INTENTIONS.into(), name: destination.into() },
            )
            .await?;
        let cas = existing.as_ref().map_or(0, |e| e.modify_index);
        let mut fields = existing.as_ref().map(ConfigEntry::fields).unwrap_or_default();
        let mut sources = fields.get("Sources").and_then(Value::as_array).cloned().unwrap_or_default();
        change(&mut sources);
        let ok = if sources.is_empty() {
            if existing.is_none() {
                return Ok(());
            }
            ctx.agent
                .call(
                    caller(params, headers),
                    method::ConfigEntryDelete {
                        kind: ce::SERVICE_INTENTIONS.into(),
                        name: destination.into(),
                        cas: Some(cas),
                    },
                )
                .await?
        } else {
            fields.insert("Sources".into(), Value::Array(sources));
            let entry = ConfigEntry::new(ce::SERVICE_INTENTIONS, destination, &fields);
            ctx.agent
                .call(caller(params, headers), method::ConfigEntryApply { entry, cas: Some(cas) })
                .await?
        };
        if ok {
            return Ok(());
        }
    }
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("intentions of {destination:?} kept changing; gave up after {CAS_ATTEMPTS} attempts"),
    ))
}
