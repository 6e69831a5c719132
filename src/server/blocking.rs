//! Blocking queries (`?index=N&wait=D`): run the read; if its index has not
//! passed N, sleep until something the read depends on changes or the wait
//! (plus jitter, up to wait/16, as Consul) runs out, then run it again.
//! Watchers are registered before each read so no change is missed.

use super::Server;
use crate::catalog::{State, Watch};
use crate::rpc::{QueryMeta, QueryOptions, RpcError};
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// What a blocked query waits on: one watch (a KV key or prefix, or a
/// catalog topic).
pub struct Interest(pub Watch);

impl Interest {
    fn notify(&self) -> &tokio::sync::Notify {
        self.0.notify()
    }
}

/// Counts queries parked waiting for a change (`consul.blocking_query.parked`),
/// also when the waiting request is dropped.
struct Parked;

impl Parked {
    fn new() -> Parked {
        crate::metrics::gauge_add("consul.blocking_query.parked", 1);
        Parked
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        crate::metrics::gauge_add("consul.blocking_query.parked", -1);
    }
}

/// The wait a query asked for, clamped to `max_query_time`, plus jitter.
pub fn wait_budget(requested: Option<Duration>, default: Duration, max: Duration) -> Duration {
    let wait = requested.filter(|w| !w.is_zero()).unwrap_or(default).min(max);
    let jitter_cap = wait.as_nanos() / 16;
    let jitter = if jitter_cap > 0 {
        Duration::from_nanos(rand::rng().random_range(0..jitter_cap as u64))
    } else {
        Duration::ZERO
    };
    wait + jitter
}

impl Server {
    /// Runs `query` under Consul's blocking-query rules. `interest`
    /// registers the watchers for exactly what `query` reads.
    pub async fn blocking<T>(
        &self,
        opts: &QueryOptions,
        interest: impl Fn() -> Interest,
        query: impl Fn(&State) -> (u64, T),
    ) -> Result<(QueryMeta, T), RpcError> {
        let deadline = (opts.min_index > 0).then(|| {
            Instant::now()
                + wait_budget(opts.max_wait, self.settings.default_query_time, self.settings.max_query_time)
        });
        let mut woke = false;
        loop {
            let watch = interest();
            let notified = watch.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Boxed: a parked query's future is as large as its largest
            // step, and this one (read index, RPCs to the leader) dwarfs the
            // sleep it spends its life in; boxed, it is allocated only while
            // it runs (issue 22: bytes per idle watcher).
            let mut meta = Box::pin(self.check_consistency(opts)).await?;
            let (index, value) = self.consensus.store.read(&query);
            meta.index = index.max(1);
            let Some(deadline) = deadline else { return Ok((meta, value)) };
            if meta.index > opts.min_index || Instant::now() >= deadline {
                return Ok((meta, value));
            }
            if woke {
                crate::metrics::incr("consul.blocking_query.spurious_wakeups", 1);
            }
            // Hold nothing of the result while asleep: a parked query pins
            // its watcher only, never data proportional to what it reads.
            // It is read again when it wakes (also at the deadline).
            drop(value);
            let parked = Parked::new();
            tokio::select! {
                _ = &mut notified => {
                    woke = true;
                    crate::metrics::incr("consul.blocking_query.wakeups", 1);
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            drop(parked);
        }
    }
}
