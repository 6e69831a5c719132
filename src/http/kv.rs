//! `/v1/kv/<key>`: GET (recurse, keys, separator, raw), PUT (flags, cas,
//! acquire, release) and DELETE (recurse, cas), as Consul's KVS endpoint.

use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{empty, json, with_meta};
use super::Ctx;
use crate::catalog::{Command, KvEntry};
use crate::rpc::method;
use crate::rpc::RequestContext;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use serde::Serialize;

/// A KV entry as Consul's JSON has it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvJson<'a> {
    pub lock_index: u64,
    pub key: &'a str,
    pub flags: u64,
    /// Base64, or null when empty (Go marshals a nil byte slice as null).
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl<'a> KvJson<'a> {
    pub fn new(e: &'a KvEntry, with_value: bool) -> Self {
        KvJson {
            lock_index: e.lock_index,
            key: &e.key,
            flags: e.flags,
            value: (with_value && !e.value.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
            session: e.session.as_deref(),
            create_index: e.create_index,
            modify_index: e.modify_index,
        }
    }
}

/// Extracts and decodes the key from the raw path.
pub fn key_from_path(uri: &Uri) -> Result<String, HttpError> {
    let raw = uri.path();
    let rest = raw.strip_prefix("/v1/kv/").or_else(|| raw.strip_prefix("/v1/kv")).unwrap_or("");
    let lower = rest.to_ascii_lowercase();
    let traversal = |p: &str| p.split('/').any(|seg| seg == "..");
    if traversal(rest) || lower.contains("%2e%2e") {
        return Err(HttpError::bad_request("URL path contains invalid traversal sequence"));
    }
    percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| HttpError::bad_request("Invalid key: the key is not valid UTF-8"))
}

pub async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let key = key_from_path(&uri)?;
    // A GET may park for minutes as a blocking query: it keeps only what it
    // needs, not the request's URI and headers (over HTTP/1.1 they share
    // the connection's read buffer), and the PUT and DELETE steps are boxed
    // so their larger futures do not size it (issue 22: bytes per watcher).
    drop(uri);
    match method {
        Method::GET => {
            let rc = request_context(&params, &headers)?;
            drop(headers);
            get(&ctx, &params, rc, &key).await
        }
        Method::PUT => Box::pin(put(&ctx, &params, &headers, &key, body)).await,
        Method::DELETE => Box::pin(delete(&ctx, &params, &headers, &key)).await,
        _ => Err(super::method_not_allowed(&method, &["GET", "PUT", "DELETE"])),
    }
}

async fn get(ctx: &Ctx, params: &Params, rc: RequestContext, key: &str) -> HttpResult {
    if params.has("keys") {
        let sep = params.get("separator").or_else(|| params.get("seperator")).filter(|s| !s.is_empty());
        let args = method::KvKeys { prefix: key.to_string(), separator: sep.map(str::to_string) };
        let (meta, keys) = ctx.agent.call(rc, args).await?;
        if keys.is_empty() && !key.is_empty() {
            return Ok(with_meta(empty(StatusCode::NOT_FOUND), &meta));
        }
        return Ok(with_meta(json(params, &keys)?, &meta));
    }
    if params.has("recurse") {
        let (meta, entries) = ctx.agent.call(rc, method::KvList { prefix: key.to_string() }).await?;
        if entries.is_empty() {
            return Ok(with_meta(empty(StatusCode::NOT_FOUND), &meta));
        }
        let out: Vec<KvJson> = entries.iter().map(|e| KvJson::new(e, true)).collect();
        return Ok(with_meta(json(params, &out)?, &meta));
    }
    if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    let (meta, entry) = ctx.agent.call(rc, method::KvGet { key: key.to_string() }).await?;
    let Some(entry) = entry else { return Ok(with_meta(empty(StatusCode::NOT_FOUND), &meta)) };
    if params.has("raw") {
        let mut resp = Response::new(Body::from(entry.value.clone()));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
        h.insert("Content-Security-Policy", HeaderValue::from_static("sandbox"));
        return Ok(with_meta(resp, &meta));
    }
    Ok(with_meta(json(params, &[KvJson::new(&entry, true)])?, &meta))
}

async fn put(ctx: &Ctx, params: &Params, headers: &HeaderMap, key: &str, body: Body) -> HttpResult {
    if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    params.conflicting(&["cas", "acquire", "release"])?;
    let flags = params.u64("flags", "flags")?.unwrap_or(0);
    let cas = params.u64("cas", "cas index")?;
    let limit = ctx.agent.config().limits.kv_max_value_size;
    let value = super::body::read_limited(headers, body, limit).await?;
    let cmd = if let Some(session) = params.get("acquire") {
        Command::KvLock { key: key.to_string(), value, flags, session: session.to_string() }
    } else if let Some(session) = params.get("release") {
        Command::KvUnlock { key: key.to_string(), value, flags, session: session.to_string() }
    } else {
        match cas {
            Some(index) => Command::KvCas { key: key.to_string(), value, flags, index },
            None => Command::KvSet { key: key.to_string(), value, flags },
        }
    };
    let ok = ctx.agent.call(caller(params, headers), method::KvApply { command: cmd }).await?;
    json(params, &ok)
}

async fn delete(ctx: &Ctx, params: &Params, headers: &HeaderMap, key: &str) -> HttpResult {
    params.conflicting(&["recurse", "cas"])?;
    let recurse = params.has("recurse");
    if !recurse && key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    let cmd = match params.u64("cas", "cas index")? {
        Some(index) => Command::KvDeleteCas { key: key.to_string(), index },
        None if recurse => Command::KvDeleteTree { prefix: key.to_string() },
        None => Command::KvDelete { key: key.to_string() },
    };
    let is_cas = matches!(cmd, Command::KvDeleteCas { .. });
    let ok = ctx.agent.call(caller(params, headers), method::KvApply { command: cmd }).await?;
    json(params, &(ok || !is_cas))
}
