//! Waiting for an answer from a driver task that ends at shutdown.
//!
//! The gossip handle, the proposer and the read barrier hand requests to a
//! driver task over a tokio channel and wait on a oneshot reply. When the
//! driver stops, its receiver drains the channel — but a sender that had
//! already reserved a slot can push its request after that drain, and the
//! request (with its reply sender) then lives as long as the last channel
//! sender, which the waiting caller itself keeps alive: waiting on the
//! reply alone could wait forever (the gossip handle hung exactly so).
//!
//! Owns: that wait. Depends on nothing in the crate.

use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long a consensus caller still waits for its answer once the driver
/// stopped: work the driver already took (a batch being written, a quorum
/// round) is answered as soon as Raft returns, which at shutdown is quickly.
/// A driver that answers everything it owes before it stops (gossip's)
/// needs no grace.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The reply, or `None` when the driver dropped it or stopped without
/// answering within `grace`.
pub async fn reply_or_stop<T>(
    mut rx: oneshot::Receiver<T>,
    stop: &CancellationToken,
    grace: Duration,
) -> Option<T> {
    tokio::select! {
        biased;
        r = &mut rx => return r.ok(),
        _ = stop.cancelled() => {}
    }
    tokio::time::timeout(grace, rx).await.ok().and_then(Result::ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reply_comes_through_before_and_after_the_stop() {
        let stop = CancellationToken::new();
        let (tx, rx) = oneshot::channel();
        tx.send(7).unwrap();
        assert_eq!(reply_or_stop(rx, &stop, STOP_GRACE).await, Some(7));
        // Stopped, but the work was taken: its answer still arrives.
        stop.cancel();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(8);
        });
        assert_eq!(reply_or_stop(rx, &stop, STOP_GRACE).await, Some(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_nobody_will_answer_ends_after_the_grace() {
        let stop = CancellationToken::new();
        // The reply sender stays alive and silent, as in a channel nobody
        // will ever read again.
        let (_tx, rx) = oneshot::channel::<u32>();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stopper.cancel();
        });
        let started = tokio::time::Instant::now();
        assert_eq!(reply_or_stop(rx, &stop, STOP_GRACE).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(3) + STOP_GRACE);
    }
}
