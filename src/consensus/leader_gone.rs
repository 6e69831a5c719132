//! Campaigning as soon as a dead leader's lease is over, instead of one
//! randomised election timeout later.
//!
//! openraft 0.9 makes a follower wait its leader lease (`election_timeout_max`)
//! plus its randomised election timeout after the last heartbeat before it
//! campaigns: [1.5 s, 2 s) at `raft_multiplier` 1, against [1 s, 2 s) in
//! HashiCorp Raft and etcd. Those waits exist because silence alone cannot
//! tell a dead leader from a slow one. A leader whose process is gone can
//! be told apart: its server RPC port refuses connections (the kernel
//! answers a connect with a reset), while a paused, overloaded or
//! partitioned leader's port accepts or stays silent. So a follower that has
//! heard nothing for two heartbeats connects to the leader's port; only on
//! a refusal does it campaign, and not before the lease it gave that leader
//! is over (the promise `lease` relies on; the other voters keep theirs too
//! and refuse votes until then). A small random delay after the lease keeps
//! the followers from campaigning in the same instant; openraft orders two
//! candidates of one term by node id, so a tie resolves in one round anyway.
//! Anything else (no refusal, a new leader, contact again) leaves the
//! election to openraft's own timer.

use super::typ::{NodeId, Raft};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Watch {
    pub raft: Raft,
    pub me: NodeId,
    /// When a leader's AppendEntries last arrived (unix ms; 0 = never).
    pub last_contact_ms: Arc<AtomicU64>,
    pub heartbeat: Duration,
    /// `election_timeout_max`: how long this server promised a leader not
    /// to vote for anyone else after its last AppendEntries.
    pub follower_lease: Duration,
    /// A restarted server neither votes nor campaigns until then.
    pub votes_held_until: Option<Instant>,
}

/// What a connection attempt to the leader's RPC port says about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// Refused: nothing listens there, the leader's process is gone.
    Gone,
    /// Accepted, timed out or failed otherwise: it may be alive.
    MaybeAlive,
}

pub(super) async fn probe(addr: &str, timeout: Duration) -> Probe {
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else { return Probe::MaybeAlive };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Gone,
        _ => Probe::MaybeAlive,
    }
}

impl Watch {
    fn silence(&self) -> Option<Duration> {
        let at = self.last_contact_ms.load(Ordering::Relaxed);
        (at != 0).then(|| Duration::from_millis(super::unix_ms_now().saturating_sub(at)))
    }

    /// The leader this server follows and its address, if it is a voter
    /// among several, not the leader, and allowed to campaign.
    fn followed_leader(&self) -> Option<(NodeId, String)> {
        if self.votes_held_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        if !membership.voter_ids().any(|id| id == self.me) || membership.voter_ids().count() < 2 {
            return None;
        }
        let leader = m.current_leader.filter(|l| *l != self.me)?;
        Some((leader, membership.get_node(&leader)?.addr.clone()))
    }

    /// Whether some leader other than `dead` (or this server) is known now.
    fn other_leader_known(&self, dead: NodeId) -> bool {
        self.raft.metrics().borrow().current_leader.is_some_and(|l| l != dead)
    }

    pub(super) async fn run(self, stop: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = self.watch() => {}
            _ = stop.cancelled() => {}
        }
    }

    async fn watch(&self) {
        let quiet = self.heartbeat * 2;
        loop {
            tokio::time::sleep(self.heartbeat).await;
            let Some((leader, addr)) = self.followed_leader() else { continue };
            let Some(silence) = self.silence().filter(|s| *s >= quiet) else { continue };
            if probe(&addr, self.heartbeat).await != Probe::Gone {
                continue;
            }
            tracing::info!(target: "agent.server.raft", leader = %addr, silent_ms = silence.as_millis() as u64, "the leader's RPC port refuses connections: campaigning once the lease given to it is over");
            self.campaign(leader, &addr).await;
        }
    }

    /// Campaigns (again, after a short random pause, while the election
    /// fails) until a new leader is known, the old one answers again or
    /// its port accepts connections.
    async fn campaign(&self, dead: NodeId, addr: &str) {
        loop {
            // The lease runs from the last AppendEntries this server took.
            let Some(silence) = self.silence() else { return };
            let spread = (self.heartbeat.as_millis() as u64 / 2).max(6);
            let jitter = Duration::from_millis(rand::rng().random_range(5..=spread));
            let wait = self.follower_lease.saturating_sub(silence) + jitter;
            tokio::time::sleep(wait).await;
            if self.other_leader_known(dead) || self.silence().is_none_or(|s| s < self.follower_lease) {
                return;
            }
            if probe(addr, self.heartbeat).await != Probe::Gone {
                return;
            }
            if self.votes_held_until.is_some_and(|t| Instant::now() < t) {
                return;
            }
            tracing::info!(target: "agent.server.raft", "campaigning: the leader is gone and its lease is over");
            if self.raft.trigger().elect().await.is_err() {
                return;
            }
            // Give the round time to finish before judging it.
            tokio::time::sleep(self.heartbeat).await;
            if self.other_leader_known(dead) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_gone_and_a_listening_one_maybe_alive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(probe(&addr, Duration::from_secs(2)).await, Probe::MaybeAlive);
        drop(listener);
        assert_eq!(probe(&addr, Duration::from_secs(2)).await, Probe::Gone);
        assert_eq!(probe("not an address", Duration::from_secs(2)).await, Probe::MaybeAlive);
    }
}
