//! Request bodies with a size cap, as Consul's 413 answers have it.
//!
//! A body over its endpoint's cap is refused without being stored. So that
//! a client still uploading it can read the 413 (instead of a reset from a
//! connection closed under its feet), up to `DRAIN_MAX` bytes of it are read
//! and thrown away first, within `DRAIN_TIME`; anything bigger or slower
//! just gets the answer and the close.

use super::error::HttpError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use futures::StreamExt;
use std::time::Duration;

/// Most bytes of an oversized body read and discarded before answering.
const DRAIN_MAX: u64 = 8 * 1024 * 1024;
/// Longest time spent discarding an oversized body.
const DRAIN_TIME: Duration = Duration::from_secs(10);

fn too_large(detail: String, limit: u64) -> HttpError {
    HttpError::too_large(format!(
        "Request body{detail} too large, max size: {limit} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
    ))
}

/// Reads a request body, refusing more than `limit` bytes with Consul's 413.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, HttpError> {
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if let Some(len) = announced.filter(|len| *len > limit) {
        if len - limit <= DRAIN_MAX {
            drain(&mut stream, len).await;
        }
        return Err(too_large(format!("({len} bytes)"), limit));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| HttpError::bad_request(format!("reading the request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            drain(&mut stream, DRAIN_MAX).await;
            return Err(too_large(String::new(), limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads and discards up to `max` bytes, for at most `DRAIN_TIME`.
async fn drain(stream: &mut axum::body::BodyDataStream, max: u64) {
    let mut seen = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen >= max {
                break;
            }
        }
    })
    .await;
}
