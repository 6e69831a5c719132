//! Blocking queries (`?index=N&wait=D`): run the read; if its index has not
//! passed N, sleep until something the read depends on changes or the wait
//! (plus jitter, up to wait/16, as Consul) runs out, then run it again.
//! Watchers are registered before each read so no change is missed.
//!
//! With ACLs on, a blocking call's caller (`Caller`, set by
//! `Server::serve`) also wakes the wait when any token, policy or role
//! changes; the query resolves its token again and ends the wait only when
//! what the token grants changed (or it no longer resolves, or it
//! expired), so the answer is decided again under the new ACL state
//! (`serve` checks the call again and filters the reply). Consul resolves
//! the token once before its loop and keeps serving under it until the
//! wait ends; issue 22 asks that such a change count as a change.

use super::Server;
use crate::catalog::acl::TOPIC_ACL;
use crate::catalog::{State, Watch};
use crate::rpc::{QueryMeta, QueryOptions, RpcError};
use rand::Rng;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What a blocked query waits on: one watch (a KV key or prefix, or a
/// catalog topic).
pub struct Interest(pub Watch);

tokio::task_local! {
    /// The caller of the blocking call being served, when ACLs decide
    /// what it may read.
    static CALLER: Caller;
}

/// Whose token a blocking call resolves again after an ACL change, and
/// what it resolved to when the call was authorised.
pub(crate) struct Caller {
    secret: Option<String>,
    seen: Seen,
}

/// What a caller's token resolved to: the digest of its grants (0: it did
/// not resolve) and when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    fingerprint: u64,
    expires_ms: Option<u64>,
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
    /// What `secret` resolves to now, for `Caller`.
    fn caller_seen(&self, secret: Option<&str>) -> Seen {
        match self.consensus.store.read(|st| self.identity(st, secret)) {
            Ok(id) => Seen { fingerprint: id.fingerprint(), expires_ms: id.expires_ms() },
            Err(_) => Seen { fingerprint: 0, expires_ms: None },
        }
    }

    /// What a blocking call's caller resolved to when the call began: a
    /// parked request's later runs keep the first run's answer, so a change
    /// while it was parked is seen as one.
    pub(crate) fn first_seen(&self, secret: Option<&str>) -> Seen {
        let parking = PARKING.try_with(|p| p.clone()).ok();
        if let Some(seen) = parking.as_ref().and_then(|p| lock(p).seen) {
            return seen;
        }
        let seen = self.caller_seen(secret);
        if let Some(p) = parking {
            lock(&p).seen = Some(seen);
        }
        seen
    }

    /// Runs a blocking call's handler `f` as `secret`'s, which resolved to
    /// `seen` when the call began: its wait also ends when that token's
    /// grants change (see the module comment).
    pub(crate) async fn as_caller<F: Future>(&self, secret: Option<String>, seen: Seen, f: F) -> F::Output {
        CALLER.scope(Caller { secret, seen }, f).await
    }

    /// Whether the blocking caller's token now resolves to something other
    /// than what it was authorised as.
    fn caller_changed(&self) -> bool {
        CALLER.try_with(|c| self.caller_seen(c.secret.as_deref()) != c.seen).unwrap_or(false)
    }

    /// The consistency check `opts` asks for, then `query` read once.
    async fn read_once<T>(
        &self,
        opts: &QueryOptions,
        query: &impl Fn(&State) -> (u64, T),
    ) -> Result<(QueryMeta, T), RpcError> {
        // Boxed: a parked query's future is as large as its largest step,
        // and this one (read index, RPCs to the leader) dwarfs the sleep it
        // spends its life in; boxed, it is allocated only while it runs
        // (issue 22: bytes per idle watcher).
        let mut meta = Box::pin(self.check_consistency(opts)).await?;
        let (index, value) = self.consensus.store.read(query);
        meta.index = index.max(1);
        Ok((meta, value))
    }

    /// Runs `query` under Consul's blocking-query rules. `interest`
    /// registers the watchers for exactly what `query` reads.
    pub async fn blocking<T>(
        &self,
        opts: &QueryOptions,
        interest: impl Fn() -> Interest,
        query: impl Fn(&State) -> (u64, T),
    ) -> Result<(QueryMeta, T), RpcError> {
        // A request that may park (`serve_parking`) keeps its deadline
        // across runs; so does whether its last wait ended by a change.
        let parking = match opts.min_index {
            0 => None,
            _ => PARKING.try_with(|p| p.clone()).ok(),
        };
        let (first_deadline, mut woke) = match &parking {
            Some(p) => {
                let p = lock(p);
                (p.deadline, p.woke)
            }
            None => (None, false),
        };
        let deadline = (opts.min_index > 0).then(|| {
            first_deadline.unwrap_or_else(|| {
                Instant::now()
                    + wait_budget(
                        opts.max_wait,
                        self.settings.default_query_time,
                        self.settings.max_query_time,
                    )
            })
        });
        // Not a blocking query: read once, registering no watch (most
        // reads are these).
        let Some(deadline) = deadline else { return self.read_once(opts, &query).await };
        if let Some(p) = &parking {
            lock(p).deadline = Some(deadline);
        }
        // The caller whose token to watch (blocking calls with ACLs on):
        // its expiry also ends the wait.
        let caller_expires = CALLER.try_with(|c| c.seen.expires_ms).ok();
        loop {
            // Registered, and their change counts taken, before the read and
            // before the caller's token is looked at (below), so a change
            // in between is not missed.
            let Interest(watch) = interest();
            let changes = watch.changes();
            let acl = caller_expires.map(|_| {
                let w = self.consensus.store.catalog_hub().watch_key(TOPIC_ACL);
                let c = w.changes();
                (w, c)
            });
            let (meta, value) = self.read_once(opts, &query).await?;
            if meta.index > opts.min_index || Instant::now() >= deadline {
                return Ok((meta, value));
            }
            if caller_expires.is_some() && self.caller_changed() {
                // The answer is decided again (`serve`): same data, under
                // the token's new grants (or a refusal).
                crate::metrics::incr("consul.blocking_query.acl_wakeups", 1);
                return Ok((meta, value));
            }
            if woke {
                crate::metrics::incr("consul.blocking_query.spurious_wakeups", 1);
            }
            // Hold nothing of the result while asleep: a parked query pins
            // its watcher only, never data proportional to what it reads.
            // It is read again when it wakes (also at the deadline).
            drop(value);
            let wake_at = match caller_expires.flatten().and_then(expiry_instant) {
                Some(at) => at.min(deadline),
                None => deadline,
            };
            let ticket = Ticket { watch, changes, acl, wake_at };
            if let Some(p) = &parking {
                // The request unwinds to `serve_parking`, which waits on the
                // ticket alone and runs the request again.
                lock(p).ticket = Some(ticket);
                return Err(RpcError::Parked);
            }
            let parked = Parked::new();
            woke = ticket.wait().await;
            drop(parked);
        }
    }
}

/// Serves a request that may be a blocking query as a parkable one: `run`
/// serves it once; when a blocking query in it would wait, it leaves a
/// `Ticket` (what it waits on and until when) and unwinds instead, and
/// this waits on the ticket alone and then runs the request again (the
/// whole request: its ACL check and consistency mode are applied again,
/// as Consul's loop re-runs its query). So an idle watcher costs its
/// ticket and what `run` captures, not a suspended handler and every
/// middleware around it (issue 22: at most 4 KiB per idle watcher).
/// A run that does not park returns its output.
pub async fn serve_parking<R, Fut: Future<Output = R>>(mut run: impl FnMut() -> Fut) -> R {
    let parking = Arc::new(Mutex::new(Parking::default()));
    loop {
        let out = PARKING.scope(parking.clone(), run()).await;
        let Some(ticket) = lock(&parking).ticket.take() else { return out };
        drop(out);
        let parked = Parked::new();
        let woke = ticket.wait().await;
        drop((parked, ticket));
        lock(&parking).woke = woke;
    }
}

tokio::task_local! {
    /// Set by `serve_parking` around each run of a request that may park.
    static PARKING: Arc<Mutex<Parking>>;
}

/// What a parkable request keeps between its runs.
#[derive(Default)]
struct Parking {
    /// When the wait ends, fixed by the first run (with its jitter).
    deadline: Option<Instant>,
    /// What the caller's token resolved to when the first run began.
    seen: Option<Seen>,
    /// The last wait ended because the data changed.
    woke: bool,
    /// Left by a run that would wait.
    ticket: Option<Ticket>,
}

/// What a waiting blocking query waits on: its data's watch (and the
/// change count it read at), the ACL tables' watch when its caller's
/// token matters, and when to give up.
struct Ticket {
    watch: Watch,
    changes: u64,
    acl: Option<(Watch, u64)>,
    wake_at: Instant,
}

impl Ticket {
    /// Waits for a change or the deadline; whether the data changed.
    async fn wait(&self) -> bool {
        let acl_changed = async {
            match &self.acl {
                Some((w, c)) => w.changed_since(*c).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.watch.changed_since(self.changes) => {
                crate::metrics::incr("consul.blocking_query.wakeups", 1);
                true
            }
            // Looked at on the next run (`caller_changed`): a change to
            // other tokens parks the query again.
            _ = acl_changed => false,
            _ = tokio::time::sleep_until(self.wake_at) => false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain assignments under this lock: poisoning leaves nothing half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instant a token expiring at Unix ms `expires_ms` expires (just
/// after, so it no longer resolves when the wait ends).
fn expiry_instant(expires_ms: u64) -> Option<Instant> {
    let now_ms = super::acl::now_ms();
    let left = Duration::from_millis(expires_ms.saturating_sub(now_ms) + 1);
    Instant::now().checked_add(left)
}
