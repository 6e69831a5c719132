//! What the lock and the semaphore share: their settings, the time budget
//! of a `-timeout` acquisition, the handle of a held lock and the
//! monitor's retry rule.

use super::kv::ApiError;
use super::LockError;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long one blocking read waits while contending (Consul: 15s).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);
/// Pause after an acquire refused without a holder, i.e. during
/// lock-delay, so the loop does not spin (Consul: 5s).
pub const RETRY_TIME: Duration = Duration::from_secs(5);
/// `consul lock`'s pause between monitor retries (1s).
pub const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Settings {
    pub session_name: String,
    /// Failed monitor reads tolerated in a row before the lock counts as lost.
    pub monitor_retries: u32,
    pub monitor_retry_time: Duration,
    /// `Some(t)`: give up acquiring after `t` (`-timeout`); `None`: wait forever.
    pub timeout: Option<Duration>,
}

/// The time left for one acquisition.
pub struct Budget {
    start: Instant,
    attempts: u32,
    timeout: Option<Duration>,
}

impl Budget {
    pub fn new(timeout: Option<Duration>) -> Budget {
        Budget { start: Instant::now(), attempts: 0, timeout }
    }

    /// The wait for the next blocking read, or `None` when the time is up.
    pub fn next_wait(&mut self) -> Option<Duration> {
        let first = self.attempts == 0;
        self.attempts += 1;
        match self.timeout {
            None => Some(DEFAULT_WAIT),
            Some(t) if first => Some(t),
            Some(t) => t.checked_sub(self.start.elapsed()).filter(|left| !left.is_zero()),
        }
    }

    /// A pause, shortened to the time left.
    pub fn pause(&self, want: Duration) -> Duration {
        match self.timeout {
            None => want,
            Some(t) => want.min(t.saturating_sub(self.start.elapsed())),
        }
    }
}

/// A held lock or semaphore slot: its monitor stops with it.
pub struct Held {
    pub monitor: JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

/// Why cleanup did not remove the coordination key.
#[derive(Debug)]
pub enum CleanupError {
    /// Someone else holds or contends for it: not an error for the CLI.
    InUse,
    Failed(LockError),
}

/// The monitor's retry rule: retryable errors are ridden out up to
/// `retries` times in a row, `pause` apart.
pub struct Retries {
    left: u32,
    limit: u32,
    pause: Duration,
}

impl Retries {
    pub fn new(limit: u32, pause: Duration) -> Retries {
        Retries { left: limit, limit, pause }
    }

    /// After a successful read.
    pub fn reset(&mut self) {
        self.left = self.limit;
    }

    /// After a failed read: `Some(pause)` to retry, `None` to give up.
    pub fn on_error(&mut self, e: &ApiError) -> Option<Duration> {
        if self.left > 0 && e.retryable() {
            self.left -= 1;
            Some(self.pause)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_without_timeout_waits_forever() {
        let mut b = Budget::new(None);
        for _ in 0..3 {
            assert_eq!(b.next_wait(), Some(DEFAULT_WAIT));
        }
        assert_eq!(b.pause(RETRY_TIME), RETRY_TIME);
    }

    #[test]
    fn budget_with_timeout_runs_out() {
        let mut b = Budget::new(Some(Duration::from_millis(30)));
        assert_eq!(b.next_wait(), Some(Duration::from_millis(30)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.next_wait(), None);
        assert_eq!(b.pause(RETRY_TIME), Duration::ZERO);
    }

    #[test]
    fn retries_reset_after_success() {
        let mut r = Retries::new(2, Duration::from_millis(1));
        let e = ApiError::Status(500, String::new());
        assert!(r.on_error(&e).is_some());
        assert!(r.on_error(&e).is_some());
        assert!(r.on_error(&e).is_none());
        r.reset();
        assert!(r.on_error(&e).is_some());
        assert!(r.on_error(&ApiError::Status(404, String::new())).is_none());
    }
}
