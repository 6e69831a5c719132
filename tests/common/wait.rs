//! Waiting for a condition: poll it until it holds or a deadline passes,
//! never a fixed sleep. The condition is checked once more after the
//! deadline, so a slow last poll still counts. Deadlines are on tokio's
//! clock in the async flavours (a test on a paused clock waits in virtual
//! time) and on the real clock in the blocking one.

use std::future::Future;
use std::time::Duration;

/// How often the async flavours poll: often enough that a test waits
/// little past the moment the condition starts to hold.
const POLL: Duration = Duration::from_millis(20);

/// Polls the async `cond` until it is true or `timeout` has passed;
/// whether it became true.
pub async fn wait_until<F, Fut>(timeout: Duration, cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(timeout, cond).await.is_some()
}

/// Polls `cond` (one that needs no `.await`) until it is true, giving how
/// long that took, or `None` if `timeout` passed first.
pub async fn wait_elapsed(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    poll(timeout, || std::future::ready(cond())).await
}

async fn poll<F, Fut>(timeout: Duration, mut cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if cond().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Blocks the calling thread, polling `cond` every `every` until it is
/// true or `timeout` has passed; whether it became true. For tests without
/// a runtime, and conditions that block (a request into a namespace).
pub fn wait_blocking(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(every);
    }
}
