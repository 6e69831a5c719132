//! The session a lock or semaphore holds its keys with: created with the
//! lock's name and a TTL, kept alive by renewing at half the TTL (the
//! server may change the TTL in its answer), destroyed when the lock is
//! given up. Consul's API lock does the same.

use super::kv::ApiError;
use crate::api::{encode, Client};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Consul's TTL for sessions its lock helpers create.
pub const SESSION_TTL: Duration = Duration::from_secs(15);

/// Pause between renewals that failed to get an answer.
const RENEW_RETRY: Duration = Duration::from_secs(1);

/// A session this process created and keeps alive.
pub struct ManagedSession {
    pub id: String,
    client: Client,
    stop: CancellationToken,
    renewer: JoinHandle<()>,
}

impl ManagedSession {
    /// Creates the session (`behavior` `delete` for semaphores) and starts
    /// renewing it. Checks are left to the server default, the node's
    /// `serfHealth`, and lock-delay to its default.
    pub async fn create(
        client: &Client,
        name: &str,
        behavior: Option<&str>,
    ) -> Result<ManagedSession, ApiError> {
        let mut body = json!({"Name": name, "TTL": crate::duration::format(SESSION_TTL)});
        if let Some(b) = behavior {
            body["Behavior"] = Value::String(b.to_string());
        }
        let r = client
            .request(Method::PUT, "/v1/session/create", Some(Bytes::from(body.to_string())))
            .await
            .map_err(ApiError::Transport)?;
        if !r.status.is_success() {
            return Err(ApiError::Status(r.status.as_u16(), r.text().trim_end().to_string()));
        }
        let v: Value = r.json().map_err(ApiError::Transport)?;
        let id = v.get("ID").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let id = id.ok_or_else(|| {
            ApiError::Transport(format!("session create answered without an ID: {}", r.text()))
        })?;
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew_periodically(client.clone(), id.clone(), SESSION_TTL, stop.clone()));
        Ok(ManagedSession { id, client: client.clone(), stop, renewer })
    }

    /// Stops renewing and destroys the session (best effort: if the agent
    /// is gone the TTL ends it).
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.renewer.await;
        let _ = self
            .client
            .request(Method::PUT, &format!("/v1/session/destroy/{}", encode(&self.id)), None)
            .await;
    }
}

/// Renews at half the TTL; retries every second after a failed call until
/// a whole TTL has passed without a renewal; stops when the server says
/// the session no longer exists.
async fn renew_periodically(client: Client, id: String, ttl: Duration, stop: CancellationToken) {
    let mut ttl = ttl;
    let mut wait = ttl / 2;
    let mut last_renewal = Instant::now();
    loop {
        if last_renewal.elapsed() > ttl {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let path = format!("/v1/session/renew/{}", encode(&id));
        match client.request(Method::PUT, &path, None).await {
            Ok(r) if r.status == StatusCode::NOT_FOUND => return,
            Ok(r) if r.status.is_success() => {
                let entries: Vec<Value> = r.json().unwrap_or_default();
                let Some(entry) = entries.first() else { return };
                if let Some(new_ttl) =
                    entry.get("TTL").and_then(Value::as_str).and_then(|t| crate::duration::parse(t).ok())
                {
                    if !new_ttl.is_zero() {
                        ttl = new_ttl;
                    }
                }
                wait = ttl / 2;
                last_renewal = Instant::now();
            }
            _ => wait = RENEW_RETRY,
        }
    }
}
