//! Telling followers a new commit index without a request of its own
//! while writes flow.
//!
//! openraft sends every follower an AppendEntries without entries each
//! time the leader's commit index advances, only to carry the new index
//! (and, on its heartbeat timer, to keep the follower's election timer
//! quiet). Under a steady write load that is one more round trip per
//! follower per write: a wake-up, a decode and a pass through the
//! follower's Raft core on one side, a send and a wake-up on the other.
//! The next write's early request (`speculate`) carries the same index a
//! moment later. So while early requests flow to a voter, such a request
//! is not sent: the answer to the latest early request stands in for it
//! (waiting for that answer if it is still on its way). Stored and
//! carrying at least its commit index, nothing is left to tell. Stored but
//! carrying an older index (it was sent before the commit), the index is
//! handed to a task that waits (at most `WAIT`) for an early request that
//! carries it, and sends a request of its own if none does; openraft gets
//! its answer at once all the same, because its replication stream sends
//! one request at a time and the next entries may be waiting behind this
//! one. Refused, or nothing flowing: the request is sent as before. When
//! it stands in, it is a real answer: the voter took this leader's vote in
//! a recent request (the lease counts from its sending, not openraft's),
//! which also keeps the follower's election timer quiet.
//!
//! The cost: while writes flow, a follower may learn of a commit up to
//! `WAIT` later. Its `?stale` reads may lag that much more; a follower
//! serving a read at the leader's read index cannot wait: when the leader
//! hands out a read index (`read_index_given`), waiting requests are sent
//! at once, and none waits while a handed-out index is beyond what some
//! voter was told. An idle cluster never waits (no early request flowed
//! within `FLOWING`).

use super::typ::NodeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a commit-only request may wait for an early request to carry
/// its index: a few writes' spacing at 1,000 PUT/s (paced writes arrive
/// unevenly: at 2 ms a third of the waits ran out), far below any election
/// timeout, and a tenth of hashicorp/raft's `CommitTimeout` (50 ms by
/// default: how late Consul's Raft library may tell its followers of a
/// commit when no write follows).
pub const WAIT: Duration = Duration::from_millis(5);
/// Early requests "flow" to a voter when the last one went out within this.
const FLOWING: Duration = Duration::from_millis(10);

/// The latest early request a voter answered.
#[derive(Clone, Copy, Debug)]
struct Answered {
    sent_at: Instant,
    /// The commit index it carried.
    commit: u64,
    stored: bool,
}

struct Voter {
    last_early: Instant,
    /// The highest commit index a request this voter answered carried.
    told: u64,
    answered: watch::Sender<Option<Answered>>,
}

pub struct CommitNotices {
    /// `WAIT`, but for tests.
    wait: Duration,
    voters: Mutex<HashMap<NodeId, Voter>>,
    /// The highest read index handed to a follower.
    wanted: AtomicU64,
    /// Bumped when a read index is handed out: waiting requests go at once.
    flush: watch::Sender<u64>,
}

impl CommitNotices {
    pub fn new(wait: Duration) -> CommitNotices {
        CommitNotices {
            wait,
            voters: Mutex::new(HashMap::new()),
            wanted: AtomicU64::new(0),
            flush: watch::channel(0).0,
        }
    }

    fn with_voter<R>(&self, target: NodeId, f: impl FnOnce(&mut Voter) -> R) -> R {
        let mut voters = self.voters.lock().unwrap_or_else(|e| e.into_inner());
        let v = voters.entry(target).or_insert_with(|| Voter {
            // Long enough ago that nothing flows yet.
            last_early: Instant::now().checked_sub(FLOWING * 2).unwrap_or_else(Instant::now),
            told: 0,
            answered: watch::channel(None).0,
        });
        f(v)
    }

    /// An early request went out to `target`.
    pub fn early_sent(&self, target: NodeId) {
        self.with_voter(target, |v| v.last_early = Instant::now());
    }

    /// `target` answered the early request sent at `sent_at` carrying
    /// `commit`: `stored` if it took the entries.
    pub fn early_answered(&self, target: NodeId, sent_at: Instant, commit: u64, stored: bool) {
        self.with_voter(target, |v| {
            if stored {
                v.told = v.told.max(commit);
            }
            // Answers may arrive out of order: keep the latest request's.
            v.answered.send_if_modified(|a| {
                let newer = a.is_none_or(|a| a.sent_at <= sent_at);
                if newer {
                    *a = Some(Answered { sent_at, commit, stored });
                }
                newer
            });
        });
    }

    /// A request carrying `commit` was answered by `target`.
    pub fn told(&self, target: NodeId, commit: u64) {
        self.with_voter(target, |v| v.told = v.told.max(commit));
    }

    /// The leader handed a follower `index` as a read index: the follower
    /// waits until it has applied it, so it must learn that it is
    /// committed now.
    pub fn read_index_given(&self, index: u64) {
        self.wanted.fetch_max(index, Ordering::AcqRel);
        self.flush.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// When a wait that starts now must end.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.wait
    }

    /// For openraft's request to `target` that would only tell it
    /// `commit` (and keep it following): whether the answer to the latest
    /// early request stands in for it. Waits only while that answer is on
    /// its way, until `deadline` at most.
    pub async fn stand_in(&self, target: NodeId, commit: u64, deadline: Instant) -> Ride {
        // Subscribed before `wanted` is read: a read index handed out after
        // this point ends the wait.
        let mut flush = self.flush.subscribe();
        let now = Instant::now();
        let (mut answered, flowing, told, latest, in_flight) = self.with_voter(target, |v| {
            let latest = *v.answered.borrow();
            let in_flight = latest.is_none_or(|a| a.sent_at < v.last_early);
            (v.answered.subscribe(), now.duration_since(v.last_early) < FLOWING, v.told, latest, in_flight)
        });
        if !flowing || self.wanted.load(Ordering::Acquire) > told {
            return Ride::Send;
        }
        let answer = if in_flight {
            let next = async {
                tokio::select! {
                    changed = answered.changed() => changed.ok().and_then(|_| *answered.borrow_and_update()),
                    _ = flush.changed() => None,
                }
            };
            tokio::time::timeout_at(deadline.into(), next).await.ok().flatten()
        } else {
            latest
        };
        match answer {
            Some(a) if a.stored && a.commit >= commit => Ride::Carried(a.sent_at),
            Some(a) if a.stored => Ride::Behind(a.sent_at),
            _ => Ride::Send,
        }
    }

    /// Waits, until `deadline` at most, for an early request to `target`
    /// carrying at least `commit` to be stored: `false` if none was (the
    /// index must then be sent by a request of its own).
    pub async fn carried(&self, target: NodeId, commit: u64, deadline: Instant) -> bool {
        let mut flush = self.flush.subscribe();
        let (mut answered, told) = self.with_voter(target, |v| (v.answered.subscribe(), v.told));
        if self.wanted.load(Ordering::Acquire) > told {
            return false;
        }
        let wait = async {
            tokio::select! {
                a = answered.wait_for(|a| a.is_some_and(|a| !a.stored || a.commit >= commit)) => {
                    a.ok().and_then(|a| *a).is_some_and(|a| a.stored)
                }
                _ = flush.changed() => false,
            }
        };
        tokio::time::timeout_at(deadline.into(), wait).await.unwrap_or(false)
    }
}

/// What the answer to the latest early request says for a request that
/// would only tell a voter a commit index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ride {
    /// Stored, carrying at least that index: the request has nothing left
    /// to tell. The instant is when the early request was sent.
    Carried(Instant),
    /// Stored, carrying an older index: the voter follows this leader, and
    /// the index has still to reach it (`carried`, or a request of its own).
    Behind(Instant),
    /// The request must be sent: nothing flows, a read index is waiting on
    /// it, the early request was refused, or its answer did not come in time.
    Send,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::task::JoinHandle;

    /// Notices for voter 2, waiting at most `wait`.
    fn notices(wait: Duration) -> Arc<CommitNotices> {
        Arc::new(CommitNotices::new(wait))
    }

    /// An early request to voter 2, sent now, answered at once.
    fn early(n: &CommitNotices, commit: u64, stored: bool) -> Instant {
        n.early_sent(2);
        let sent_at = Instant::now();
        n.early_answered(2, sent_at, commit, stored);
        sent_at
    }

    /// `f(n)` in its own task, started before this returns (the test
    /// runtime has one thread), with how long it took.
    async fn in_task<T: Send + 'static, F>(n: &Arc<CommitNotices>, f: F) -> JoinHandle<(T, Duration)>
    where
        F: FnOnce(Arc<CommitNotices>) -> futures::future::BoxFuture<'static, T> + Send + 'static,
    {
        let n = n.clone();
        let task = tokio::spawn(async move {
            let t = Instant::now();
            (f(n).await, t.elapsed())
        });
        tokio::time::sleep(Duration::from_micros(200)).await;
        task
    }

    const LONG: Duration = Duration::from_secs(30);

    async fn stand_in(n: &CommitNotices, commit: u64) -> Ride {
        tokio::time::timeout(Duration::from_secs(5), n.stand_in(2, commit, n.deadline()))
            .await
            .expect("no wait")
    }

    #[tokio::test]
    async fn the_latest_early_answer_stands_in_at_once() {
        let n = notices(LONG);
        let sent = early(&n, 10, true);
        assert_eq!(stand_in(&n, 10).await, Ride::Carried(sent));
        assert_eq!(stand_in(&n, 11).await, Ride::Behind(sent), "an older index is still to tell");
        early(&n, 12, false);
        assert_eq!(stand_in(&n, 11).await, Ride::Send, "refused");
    }

    #[tokio::test]
    async fn nothing_stands_in_when_no_early_request_flows() {
        let n = notices(LONG);
        assert_eq!(stand_in(&n, 10).await, Ride::Send);
    }

    #[tokio::test]
    async fn an_early_request_on_its_way_is_waited_for() {
        let n = notices(LONG);
        early(&n, 9, true);
        n.early_sent(2);
        let waiting = in_task(&n, |n| Box::pin(async move { n.stand_in(2, 10, n.deadline()).await })).await;
        let sent = Instant::now();
        n.early_answered(2, sent, 10, true);
        let (got, took) = waiting.await.unwrap();
        assert_eq!(got, Ride::Carried(sent));
        assert!(took < LONG);
        // No answer in time: sent.
        let n = notices(Duration::from_millis(20));
        n.early_sent(2);
        assert_eq!(n.stand_in(2, 10, n.deadline()).await, Ride::Send);
    }

    #[tokio::test]
    async fn a_read_index_handed_out_stops_stand_ins_until_the_voter_is_told() {
        let n = notices(LONG);
        n.early_sent(2);
        let waiting = in_task(&n, |n| Box::pin(async move { n.stand_in(2, 10, n.deadline()).await })).await;
        n.read_index_given(10);
        let (got, took) = waiting.await.unwrap();
        assert_eq!(got, Ride::Send, "the wait ends");
        assert!(took < LONG);
        // The voter was told less than the index handed out.
        early(&n, 9, true);
        assert_eq!(stand_in(&n, 9).await, Ride::Send);
        assert!(!n.carried(2, 9, n.deadline()).await);
        // Once told, answers stand in again.
        n.told(2, 10);
        let sent = early(&n, 10, true);
        assert_eq!(stand_in(&n, 10).await, Ride::Carried(sent));
    }

    #[tokio::test]
    async fn carried_waits_for_an_early_request_with_the_index() {
        let n = notices(LONG);
        early(&n, 9, true);
        let waiting = in_task(&n, |n| Box::pin(async move { n.carried(2, 10, n.deadline()).await })).await;
        early(&n, 9, true);
        tokio::time::sleep(Duration::from_micros(200)).await;
        assert!(!waiting.is_finished(), "an older index does not do");
        early(&n, 10, true);
        let (got, took) = waiting.await.unwrap();
        assert!(got);
        assert!(took < LONG);
        // A refusal, or no such request in time, means send.
        let waiting = in_task(&n, |n| Box::pin(async move { n.carried(2, 11, n.deadline()).await })).await;
        early(&n, 12, false);
        assert!(!waiting.await.unwrap().0);
        let n = notices(Duration::from_millis(20));
        assert!(!n.carried(2, 11, n.deadline()).await);
    }
}
