//! What a server does when its disk fills up while writing Raft state.
//!
//! openraft 0.9 treats any error from the log store or a snapshot write as
//! fatal: its core stops and only a restart brings the server back. A full
//! disk is not corruption, though: nothing was acknowledged, and the same
//! write succeeds once space is freed. So the storage layer retries such
//! writes (the log append rewrites the same bytes at the same offset; a
//! snapshot rewrites its temp file) every `RETRY_EVERY`, and meanwhile the
//! server refuses new writes up front with the disk's own error instead of
//! queueing them behind the stuck append. The one batch that was being
//! appended when the disk filled up stays pending: it may commit once space
//! returns, and its callers were told so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a write that failed for lack of space is retried.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Shared flag: set while some Raft write is waiting for disk space.
/// Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct DiskFull {
    waiting: Arc<Mutex<Option<String>>>,
}

impl DiskFull {
    /// Records that `what` failed for lack of space (logged once per episode).
    pub fn note(&self, what: &str, error: &dyn std::fmt::Display) {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            tracing::error!(target: "agent.server.raft", %error, "{what} failed: disk full; refusing new writes and retrying every {}s until space is freed", RETRY_EVERY.as_secs());
        }
        *w = Some(format!("{what} failed: {error}"));
    }

    /// Records that a write succeeded again.
    pub fn clear(&self) {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if w.take().is_some() {
            tracing::info!(target: "agent.server.raft", "disk space available again; raft writes resumed");
        }
    }

    /// Runs the blocking write `op` on the blocking pool until it succeeds
    /// or fails for a reason other than lack of space (`is_full`), waiting
    /// `RETRY_EVERY` between attempts and keeping the flag set meanwhile.
    /// The outer error is the blocking task's own failure.
    pub async fn retry_blocking<T, E>(
        &self,
        what: &str,
        op: impl Fn() -> Result<T, E> + Send + Sync + 'static,
        is_full: impl Fn(&E) -> bool,
    ) -> Result<Result<T, E>, tokio::task::JoinError>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let op = Arc::new(op);
        loop {
            let attempt = op.clone();
            match tokio::task::spawn_blocking(move || attempt()).await? {
                Ok(v) => {
                    self.clear();
                    return Ok(Ok(v));
                }
                Err(e) if is_full(&e) => {
                    self.note(what, &e);
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    /// The error of the write waiting for space, if any.
    pub fn message(&self) -> Option<String> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
