//! The leader's lease, and the commit index its reads start from, both
//! observed from the leader's outgoing AppendEntries (`network`) rather
//! than asked of openraft's core: the core awaits every log fsync inline
//! (openraft 0.9's `append_to_log`), so anything that asks it queues
//! behind the write in flight. See `reads` for how reads use this.
//!
//! Why a lease is safe here: a follower that accepted an AppendEntries of
//! this leader's vote refuses votes for `election_timeout_max` after it
//! processed it (openraft's follower-side leader lease), and does not
//! campaign before that either. The processing happens after we sent the
//! request, so from a quorum's acknowledgements of requests sent at or
//! after `t`, no other leader can be elected before `t + election_timeout_max`
//! as measured by those followers' clocks. The leader trusts
//! `LEASE_FRACTION` of that on its own clock. A restarted server forgets
//! when it last heard the leader, so it neither grants votes nor campaigns
//! for `election_timeout_max` after it starts (`Consensus::start`).

use super::typ::{NodeId, Vote};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The part of the followers' lease (`election_timeout_max`) the leader
/// trusts. Safe while the servers' monotonic clocks run at rates within
/// ±11 % of each other ((1 + ρ) · 0.8 ≤ (1 − ρ) for ρ ≤ 1/9); NTP slews
/// them by at most 0.05 %. A leader whose monotonic clock stops while the
/// others' run (a VM paused by a hypervisor that hides the pause from the
/// guest) breaks that bound; `?consistent` reads never use the lease.
pub const LEASE_FRACTION: f64 = 0.8;

/// Tracks, per follower, the send time of the latest AppendEntries of the
/// current vote that it accepted, and the highest commit index sent.
#[derive(Default)]
pub struct LeaseTracker {
    acks: Mutex<HashMap<NodeId, (Vote, Instant)>>,
    commit_sent: AtomicU64,
}

impl LeaseTracker {
    /// An AppendEntries carrying `vote`, sent at `sent_at`, was accepted by
    /// `target` (any answer but a higher vote: the follower took our vote,
    /// which restarts its lease).
    pub fn accepted(&self, target: NodeId, vote: Vote, sent_at: Instant) {
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let entry = acks.entry(target).or_insert((vote, sent_at));
        if entry.0 != vote || entry.1 < sent_at {
            *entry = (vote, sent_at);
        }
    }

    /// Some server answered with a higher vote: this leader's lease is over
    /// (it keeps none until new acknowledgements arrive).
    pub fn higher_vote_seen(&self) {
        self.acks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// An AppendEntries told a follower that `index` is committed.
    pub fn commit_sent(&self, index: u64) {
        self.commit_sent.fetch_max(index, Ordering::AcqRel);
    }

    /// The highest commit index this server ever sent to a follower: no
    /// follower can have applied past it, and it is committed.
    pub fn max_commit_sent(&self) -> u64 {
        self.commit_sent.load(Ordering::Acquire)
    }

    /// Whether `me`, leading with `vote`, holds the lease at `now`: every
    /// configuration of `joint` (one, or two during a joint change) has a
    /// majority that accepted `vote` in requests sent within `lease` before
    /// `now` (`me` counts for itself).
    pub fn held(
        &self,
        me: NodeId,
        vote: &Vote,
        joint: &[BTreeSet<NodeId>],
        lease: Duration,
        now: Instant,
    ) -> bool {
        let acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |id: &NodeId| {
            *id == me
                || acks.get(id).is_some_and(|(v, at)| v == vote && now.saturating_duration_since(*at) < lease)
        };
        !joint.is_empty()
            && joint.iter().all(|config| config.iter().filter(|id| fresh(id)).count() * 2 > config.len())
    }
}

/// The lease a leader may trust for an `election_timeout_max` of `follower_ms`.
pub fn leader_lease(follower_ms: u64) -> Duration {
    Duration::from_secs_f64(follower_ms as f64 / 1000.0 * LEASE_FRACTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn lease_needs_a_fresh_majority_of_the_current_vote() {
        let t = LeaseTracker::default();
        let vote = Vote::new_committed(3, 1);
        let lease = Duration::from_millis(800);
        let start = Instant::now();
        let joint = [set(&[1, 2, 3])];
        assert!(!t.held(1, &vote, &joint, lease, start), "no acknowledgement yet");
        t.accepted(2, Vote::new_committed(2, 1), start);
        assert!(!t.held(1, &vote, &joint, lease, start), "an older term's acknowledgement");
        t.accepted(2, vote, start);
        assert!(t.held(1, &vote, &joint, lease, start + Duration::from_millis(799)));
        assert!(!t.held(1, &vote, &joint, lease, start + Duration::from_millis(800)), "expired");
        t.higher_vote_seen();
        assert!(!t.held(1, &vote, &joint, lease, start), "a higher vote ends it");
    }

    #[test]
    fn joint_configurations_need_both_majorities() {
        let t = LeaseTracker::default();
        let vote = Vote::new_committed(1, 1);
        let now = Instant::now();
        t.accepted(2, vote, now);
        let joint = [set(&[1, 2, 3]), set(&[4, 5, 6])];
        assert!(!t.held(1, &vote, &joint, Duration::from_secs(1), now));
        t.accepted(4, vote, now);
        t.accepted(5, vote, now);
        assert!(t.held(1, &vote, &joint, Duration::from_secs(1), now));
    }

    #[test]
    fn single_voter_holds_it_alone() {
        let t = LeaseTracker::default();
        let vote = Vote::new_committed(1, 7);
        assert!(t.held(7, &vote, &[set(&[7])], Duration::from_secs(1), Instant::now()));
        assert!(!t.held(7, &vote, &[set(&[7, 8])], Duration::from_secs(1), Instant::now()));
    }
}
