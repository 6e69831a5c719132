//! Why `consul lock` could not take, keep or give back its lock, or run
//! its child. The texts are the ones the command prints after "Lock
//! acquisition failed: ", "Lock release failed: ", "Lock cleanup failed: "
//! and "Error starting handler: ".

use super::kv::ApiError;
use crate::watch::WatchError;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    // ----- the lock and the semaphore
    #[error("failed to create session: {0}")]
    CreateSession(#[source] ApiError),
    /// A KV call that needs no further words.
    #[error(transparent)]
    Api(#[from] ApiError),

    // ----- the single-holder lock (mutex)
    #[error("Lock already held")]
    LockHeld,
    #[error("Lock not held")]
    LockNotHeld,
    #[error("Existing key does not match lock use")]
    NotALock,
    #[error("failed to read lock: {0}")]
    ReadLock(#[source] ApiError),
    #[error("failed to acquire lock: {0}")]
    Acquire(#[source] ApiError),
    #[error("failed to release lock: {0}")]
    Release(#[source] ApiError),
    #[error("failed to remove lock: {0}")]
    RemoveLock(#[source] ApiError),

    // ----- the semaphore
    #[error("missing prefix")]
    MissingPrefix,
    #[error("semaphore limit must be positive")]
    LimitNotPositive,
    #[error("Semaphore already held")]
    SemaphoreHeld,
    #[error("Semaphore not held")]
    SemaphoreNotHeld,
    #[error("Existing key does not match semaphore use")]
    NotASemaphore,
    #[error("semaphore limit conflict (lock: {lock}, local: {local})")]
    LimitConflict { lock: i64, local: i64 },
    #[error("failed to make contender entry: {0}")]
    ContenderEntry(#[source] ApiError),
    #[error("failed to make contender entry: the key is held by another session")]
    ContenderHeld,
    #[error("failed to read prefix: {0}")]
    ReadPrefix(#[source] ApiError),
    #[error("lock decoding failed: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("lock encoding failed: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("failed to update lock: {0}")]
    UpdateLock(#[source] ApiError),
    #[error("failed to remove semaphore: {0}")]
    RemoveSemaphore(#[source] ApiError),

    // ----- the child
    /// No command to run.
    #[error(transparent)]
    Command(#[from] WatchError),
    #[error("{0}")]
    Spawn(#[source] std::io::Error),
    #[error("child exited before it could be tracked")]
    Untracked,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consul's texts (and ours where Consul has none), word for word.
    #[test]
    fn messages() {
        let api = || ApiError::Status(500, "No cluster leader".into());
        let text = |e: LockError| e.to_string();
        assert_eq!(
            text(LockError::CreateSession(api())),
            "failed to create session: Unexpected response code: 500 (No cluster leader)"
        );
        assert_eq!(text(LockError::Api(ApiError::Transport("EOF".into()))), "EOF");
        assert_eq!(text(LockError::LockHeld), "Lock already held");
        assert_eq!(text(LockError::LockNotHeld), "Lock not held");
        assert_eq!(text(LockError::NotALock), "Existing key does not match lock use");
        assert_eq!(
            text(LockError::ReadLock(api())),
            "failed to read lock: Unexpected response code: 500 (No cluster leader)"
        );
        assert_eq!(text(LockError::MissingPrefix), "missing prefix");
        assert_eq!(text(LockError::LimitNotPositive), "semaphore limit must be positive");
        assert_eq!(text(LockError::SemaphoreHeld), "Semaphore already held");
        assert_eq!(text(LockError::SemaphoreNotHeld), "Semaphore not held");
        assert_eq!(text(LockError::NotASemaphore), "Existing key does not match semaphore use");
        assert_eq!(
            text(LockError::LimitConflict { lock: 3, local: 2 }),
            "semaphore limit conflict (lock: 3, local: 2)"
        );
        assert_eq!(
            text(LockError::ContenderHeld),
            "failed to make contender entry: the key is held by another session"
        );
        let bad = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(text(LockError::Decode(bad)).starts_with("lock decoding failed: "));
        assert_eq!(text(LockError::Command(WatchError::NoCommand)), "handler has no command to run");
        assert_eq!(text(LockError::Untracked), "child exited before it could be tracked");
    }
}
