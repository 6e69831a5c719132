//! Session endpoints (Consul's `Session.*` RPCs) and the leader's TTL
//! timers. A session with a TTL is destroyed by the leader when it has not
//! been renewed for twice its TTL (Consul's grace factor): the TTL is a
//! lower bound. Timers live only on the leader; a new leader restarts every
//! timer at its full length, so a leader change never shortens a session.

use super::blocking::Interest;
use super::Server;
use crate::catalog::sessions::{topic_node_sessions, topic_session, Session, TOPIC_SESSIONS};
use crate::catalog::{Command, CommandResult};
use crate::rpc::method;
use crate::rpc::{QueryMeta, QueryOptions, RequestContext, RpcError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Consul invalidates a session after this many TTLs without renewal.
const TTL_GRACE: u32 = 2;

/// The leader's TTL deadlines, by session ID.
#[derive(Default)]
pub struct SessionTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
    kick: tokio::sync::Notify,
}

impl SessionTimers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ttl_of(s: &Session) -> Option<Duration> {
    if s.ttl.is_empty() {
        return None;
    }
    crate::duration::parse(&s.ttl).ok().filter(|d| !d.is_zero())
}

impl Server {
    pub async fn session_create(&self, session: Session) -> Result<String, RpcError> {
        let id = session.id.clone();
        match self.apply(Command::SessionCreate(session)).await? {
            CommandResult::Unit => Ok(id),
            CommandResult::Error(e) => Err(RpcError::Internal(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    pub async fn session_destroy(&self, id: &str) -> Result<(), RpcError> {
        match self.apply(Command::SessionDestroy { id: id.to_string() }).await? {
            CommandResult::Bool(_) | CommandResult::Unit => Ok(()),
            CommandResult::Error(e) => Err(RpcError::Internal(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    pub async fn session_info(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<Session>), RpcError> {
        let hub = self.consensus.store.catalog_hub().clone();
        let topic = topic_session(id);
        self.blocking(
            opts,
            || Interest(hub.watch_key(&topic)),
            |s| (s.sessions.index, s.sessions.get(id).cloned().into_iter().collect()),
        )
        .await
    }

    pub async fn session_node(
        &self,
        node: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<Session>), RpcError> {
        let hub = self.consensus.store.catalog_hub().clone();
        let topic = topic_node_sessions(node);
        self.blocking(
            opts,
            || Interest(hub.watch_key(&topic)),
            |s| (s.sessions.index, s.sessions.on_node(node).into_iter().cloned().collect()),
        )
        .await
    }

    pub async fn session_list(&self, opts: &QueryOptions) -> Result<(QueryMeta, Vec<Session>), RpcError> {
        let hub = self.consensus.store.catalog_hub().clone();
        self.blocking(
            opts,
            || Interest(hub.watch_key(TOPIC_SESSIONS)),
            |s| (s.sessions.index, s.sessions.list().cloned().collect()),
        )
        .await
    }

    /// Renews a session's TTL. Timers live on the leader, so a follower
    /// passes the renewal on.
    pub async fn session_renew(&self, ctx: &RequestContext, id: &str) -> Result<Vec<Session>, RpcError> {
        let renew = method::SessionRenew { id: id.to_string() };
        match self.forward_to_leader(ctx, &renew).await? {
            Some(sessions) => Ok(sessions),
            None => self.renew_local(id),
        }
    }

    /// Leader side of a renewal.
    pub(crate) fn renew_local(&self, id: &str) -> Result<Vec<Session>, RpcError> {
        if !self.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        let Some(session) = self.consensus.store.read(|s| s.sessions.get(id).cloned()) else {
            return Err(RpcError::NotFound(format!("Session id '{id}' not found")));
        };
        if let Some(ttl) = ttl_of(&session) {
            self.session_timers.lock().insert(id.to_string(), Instant::now() + ttl * TTL_GRACE);
            self.session_timers.kick.notify_one();
        }
        Ok(vec![session])
    }
}

/// Brings the deadlines in line with the sessions that exist: drops the
/// timers of sessions that are gone and arms one (at full length) for each
/// TTL session without one. `reset` first forgets every deadline, so all
/// restart at full length.
fn rescan(map: &mut HashMap<String, Instant>, sessions: &[Session], now: Instant, reset: bool) {
    if reset {
        map.clear();
    }
    let live: HashMap<&str, Duration> =
        sessions.iter().filter_map(|s| Some((s.id.as_str(), ttl_of(s)?))).collect();
    map.retain(|id, _| live.contains_key(id.as_str()));
    for (id, ttl) in live {
        map.entry(id.to_string()).or_insert(now + ttl * TTL_GRACE);
    }
}

/// The leader's TTL loop: destroys sessions whose TTL lapsed.
pub async fn run_ttl_timers(server: Arc<Server>, shutdown: CancellationToken) {
    let mut raft_status = server.consensus.watch_status();
    let hub = server.consensus.store.catalog_hub().clone();
    let timers = server.session_timers.clone();
    let mut was_leader = false;
    let mut seen_restore = 0;
    loop {
        let watch = hub.watch_key(TOPIC_SESSIONS);
        let changed = watch.notify().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let is_leader = server.consensus.is_leader();
        let restored_at = server.consensus.store.read(|s| s.restored_at);
        let restored = restored_at != seen_restore;
        seen_restore = restored_at;
        if !is_leader {
            timers.lock().clear();
        } else {
            let sessions: Vec<Session> =
                server.consensus.store.read(|s| s.sessions.list().cloned().collect());
            if restored {
                tracing::info!(target: "agent.server.session", sessions = sessions.len(), "state restored from a snapshot; re-arming session TTL timers");
            }
            // A new leader, and a leader whose state was just replaced by a
            // snapshot, start every timer afresh at its full length.
            rescan(&mut timers.lock(), &sessions, Instant::now(), !was_leader || restored);
        }
        was_leader = is_leader;
        let expired: Vec<String> = {
            let now = Instant::now();
            timers.lock().iter().filter(|(_, d)| **d <= now).map(|(id, _)| id.clone()).collect()
        };
        for id in expired {
            timers.lock().remove(&id);
            tracing::info!(target: "agent.server.session", session = %id, "session TTL expired; destroying it");
            if let Err(e) = server.session_destroy(&id).await {
                tracing::warn!(target: "agent.server.session", session = %id, error = %e, "failed to destroy expired session");
            }
        }
        let next = timers.lock().values().min().copied();
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = &mut changed => {}
            _ = timers.kick.notified() => {}
            r = raft_status.changed() => { if r.is_err() { return; } }
            _ = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl_session(id: &str, ttl: &str) -> Session {
        Session { id: id.into(), node: "n1".into(), ttl: ttl.into(), ..Default::default() }
    }

    #[test]
    fn rescan_rearms_on_reset_and_drops_vanished_sessions() {
        let t0 = Instant::now();
        let mut map = HashMap::new();
        rescan(
            &mut map,
            &[ttl_session("a", "10s"), ttl_session("b", "10s"), ttl_session("c", "")],
            t0,
            false,
        );
        assert_eq!(map.len(), 2, "only TTL sessions get timers");
        assert_eq!(map["a"], t0 + Duration::from_secs(20));

        // Later, without a reset, existing deadlines stand.
        let t1 = t0 + Duration::from_secs(15);
        rescan(&mut map, &[ttl_session("a", "10s"), ttl_session("b", "10s")], t1, false);
        assert_eq!(map["a"], t0 + Duration::from_secs(20));

        // A restore brings back "a" (with a new TTL), drops "b" and adds "d":
        // every timer restarts at full length from now.
        rescan(&mut map, &[ttl_session("a", "30s"), ttl_session("d", "10s")], t1, true);
        assert_eq!(map.len(), 2);
        assert_eq!(map["a"], t1 + Duration::from_secs(60));
        assert_eq!(map["d"], t1 + Duration::from_secs(20));
        assert!(!map.contains_key("b"));
    }
}
