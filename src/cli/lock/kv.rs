//! The few KV and session calls `consul lock` makes, with errors that
//! keep the HTTP status so the lock monitor can tell a retryable failure
//! (no answer, or a 500 while the servers elect a leader) from a real one.

use crate::api::{encode, Client};
use base64::Engine;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No HTTP answer at all.
    #[error("{0}")]
    Transport(String),
    /// A non-2xx answer.
    #[error("Unexpected response code: {0} ({1})")]
    Status(u16, String),
}

impl ApiError {
    /// Consul's `IsRetryableError`: a network error or a 500.
    pub fn retryable(&self) -> bool {
        matches!(self, ApiError::Transport(_) | ApiError::Status(500, _))
    }
}

/// A KV entry as the lock needs it.
#[derive(Debug, Clone, Default)]
pub struct Pair {
    pub key: String,
    pub flags: u64,
    pub value: Option<Vec<u8>>,
    pub session: String,
    pub modify_index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PairJson {
    key: String,
    #[serde(default)]
    flags: u64,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    modify_index: u64,
}

impl PairJson {
    fn into_pair(self) -> Result<Pair, ApiError> {
        let value = match self.value {
            None => None,
            Some(v) => Some(base64::engine::general_purpose::STANDARD.decode(v).map_err(|e| {
                ApiError::Transport(format!("failed to decode the value of {}: {e}", self.key))
            })?),
        };
        Ok(Pair {
            key: self.key,
            flags: self.flags,
            value,
            session: self.session.unwrap_or_default(),
            modify_index: self.modify_index,
        })
    }
}

/// Blocking and consistency options of a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Read {
    pub wait_index: u64,
    pub wait: Option<Duration>,
    pub consistent: bool,
}

impl Read {
    fn query(&self) -> String {
        let mut q = Vec::new();
        if self.consistent {
            q.push("consistent".to_string());
        }
        if self.wait_index > 0 {
            q.push(format!("index={}", self.wait_index));
        }
        if let Some(w) = self.wait {
            // Go's client sends the wait in milliseconds.
            q.push(format!("wait={}ms", w.as_millis().max(1)));
        }
        q.join("&")
    }
}

async fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<crate::api::ApiResponse, ApiError> {
    client.request(method, path, body).await.map_err(ApiError::Transport)
}

fn with_query(path: String, q: &str) -> String {
    if q.is_empty() {
        path
    } else if path.contains('?') {
        format!("{path}&{q}")
    } else {
        format!("{path}?{q}")
    }
}

fn status_error(r: &crate::api::ApiResponse) -> ApiError {
    ApiError::Status(r.status.as_u16(), r.text().trim_end().to_string())
}

fn decode_pairs(r: &crate::api::ApiResponse) -> Result<Vec<Pair>, ApiError> {
    let list: Vec<PairJson> = serde_json::from_slice(&r.body)
        .map_err(|e| ApiError::Transport(format!("failed to decode KV entries: {e}")))?;
    list.into_iter().map(PairJson::into_pair).collect()
}

/// `GET /v1/kv/<key>`: the entry (if any) and the index.
pub async fn get(client: &Client, key: &str, read: Read) -> Result<(Option<Pair>, u64), ApiError> {
    let r = send(client, Method::GET, &with_query(format!("/v1/kv/{}", encode(key)), &read.query()), None)
        .await?;
    let index = r.index().unwrap_or(0);
    if r.status == StatusCode::NOT_FOUND {
        return Ok((None, index));
    }
    if !r.status.is_success() {
        return Err(status_error(&r));
    }
    Ok((decode_pairs(&r)?.into_iter().next(), index))
}

/// `GET /v1/kv/<prefix>?recurse`: every entry under the prefix.
pub async fn list(client: &Client, prefix: &str, read: Read) -> Result<(Vec<Pair>, u64), ApiError> {
    let path = with_query(format!("/v1/kv/{}?recurse", encode(prefix)), &read.query());
    let r = send(client, Method::GET, &path, None).await?;
    let index = r.index().unwrap_or(0);
    if r.status == StatusCode::NOT_FOUND {
        return Ok((Vec::new(), index));
    }
    if !r.status.is_success() {
        return Err(status_error(&r));
    }
    Ok((decode_pairs(&r)?, index))
}

/// A PUT that answers `true` or `false`.
async fn put_bool(client: &Client, path: String, value: &[u8]) -> Result<bool, ApiError> {
    let r = send(client, Method::PUT, &path, Some(Bytes::copy_from_slice(value))).await?;
    if !r.status.is_success() {
        return Err(status_error(&r));
    }
    Ok(r.text().contains("true"))
}

fn flags_param(flags: u64) -> String {
    if flags == 0 {
        String::new()
    } else {
        format!("&flags={flags}")
    }
}

pub async fn acquire(
    client: &Client,
    key: &str,
    session: &str,
    flags: u64,
    value: &[u8],
) -> Result<bool, ApiError> {
    put_bool(
        client,
        format!("/v1/kv/{}?acquire={}{}", encode(key), encode(session), flags_param(flags)),
        value,
    )
    .await
}

pub async fn release(client: &Client, key: &str, session: &str, flags: u64) -> Result<bool, ApiError> {
    put_bool(client, format!("/v1/kv/{}?release={}{}", encode(key), encode(session), flags_param(flags)), b"")
        .await
}

/// Check-and-set: `index` 0 creates the key only if it does not exist.
pub async fn cas(client: &Client, key: &str, flags: u64, value: &[u8], index: u64) -> Result<bool, ApiError> {
    put_bool(client, format!("/v1/kv/{}?cas={index}{}", encode(key), flags_param(flags)), value).await
}

pub async fn delete(client: &Client, key: &str) -> Result<(), ApiError> {
    let r = send(client, Method::DELETE, &format!("/v1/kv/{}", encode(key)), None).await?;
    if !r.status.is_success() {
        return Err(status_error(&r));
    }
    Ok(())
}

pub async fn delete_cas(client: &Client, key: &str, index: u64) -> Result<bool, ApiError> {
    let r = send(client, Method::DELETE, &format!("/v1/kv/{}?cas={index}", encode(key)), None).await?;
    if !r.status.is_success() {
        return Err(status_error(&r));
    }
    Ok(r.text().contains("true"))
}

/// Go's `path.Join` for KV paths: empty segments dropped.
pub fn join(prefix: &str, name: &str) -> String {
    prefix
        .split('/')
        .chain(name.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_go() {
        assert_eq!(join("a/b", ".lock"), "a/b/.lock");
        assert_eq!(join("a/b/", ".lock"), "a/b/.lock");
        assert_eq!(join("a//b", "s"), "a/b/s");
        assert_eq!(join("", ".lock"), ".lock");
    }

    #[test]
    fn read_options() {
        assert_eq!(Read::default().query(), "");
        let r = Read { wait_index: 7, wait: Some(Duration::from_secs(15)), consistent: true };
        assert_eq!(r.query(), "consistent&index=7&wait=15000ms");
    }

    #[test]
    fn retryable_errors() {
        assert!(ApiError::Transport("refused".into()).retryable());
        assert!(ApiError::Status(500, "No cluster leader".into()).retryable());
        assert!(!ApiError::Status(403, "denied".into()).retryable());
        assert_eq!(ApiError::Status(500, "x".into()).to_string(), "Unexpected response code: 500 (x)");
    }
}
