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

    /// The error of the write waiting for space, if any.
    pub fn message(&self) -> Option<String> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
