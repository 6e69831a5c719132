//! Building responses: JSON (minified, or indented with `?pretty` as
//! Consul's `json.MarshalIndent(.., "", "    ")`), and the `X-Consul-*`
//! headers of reads.

use super::error::HttpError;
use super::query::Params;
use crate::rpc::QueryMeta;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

/// Serializes `value` as the response body.
pub fn json<T: Serialize + ?Sized>(params: &Params, value: &T) -> Result<Response, HttpError> {
    json_status(params, StatusCode::OK, value)
}

pub fn json_status<T: Serialize + ?Sized>(
    params: &Params,
    status: StatusCode,
    value: &T,
) -> Result<Response, HttpError> {
    let body = if params.pretty() {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        value.serialize(&mut ser).map_err(internal)?;
        buf.push(b'\n');
        buf
    } else {
        serde_json::to_vec(value).map_err(internal)?
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// An empty 200, as Consul's agent write endpoints answer.
pub fn empty_ok() -> Response {
    Response::new(Body::empty())
}

/// An empty response with a status (e.g. KV 404).
pub fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

fn internal(e: serde_json::Error) -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to encode response: {e}"))
}

/// Adds the headers of a read: index (never 0), leader facts, consistency.
pub fn with_meta(mut resp: Response, meta: &QueryMeta) -> Response {
    let h = resp.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from(meta.index.max(1)));
    h.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
    );
    h.insert("X-Consul-LastContact", HeaderValue::from(meta.last_contact.as_millis() as u64));
    h.insert("X-Consul-Effective-Consistency", HeaderValue::from_static(meta.consistency.header_value()));
    if meta.filtered_by_acls {
        h.insert("X-Consul-Results-Filtered-By-ACLs", HeaderValue::from_static("true"));
    }
    resp
}
