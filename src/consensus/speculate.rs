//! Sending a leader's new entries to the voters while the leader's own
//! fsync runs, not after it.
//!
//! openraft 0.9's core awaits the leader's log flush inline and only then
//! hands the entries to its replication streams, so a write costs the
//! leader's fsync, then a round trip with the follower's fsync: two syncs
//! in a row. Raft allows a leader to write its log in parallel with
//! replicating it (it counts itself towards a quorum only once its own
//! write is durable, which openraft still does). So when the leader's log
//! store is asked to append entries of the leader's own term, it first
//! sends them to every other voter in an ordinary AppendEntries of the
//! leader's vote, without a commit index. A follower that has the previous
//! entry appends and syncs them at once; when openraft's own AppendEntries
//! for the same entries arrives (after the leader's sync), the follower
//! already holds them and answers without a second sync. The answer to the
//! early request is kept: when openraft's replication then sends exactly
//! the same entries (same vote, same previous entry, same first and last
//! entry) to that voter, `network` waits for the early answer instead of
//! sending them again, so a write costs the longer of the two syncs plus
//! one round trip, not the leader's sync followed by a round trip. An
//! early "stored" answer means what the late one would: the follower holds
//! `prev` and these entries durably under this vote (as with any delayed
//! answer, Raft counts it only towards entries of the leader's own term,
//! and the leader still counts itself only after its own sync). The early
//! request carries the commit index the leader had saved when it sent it;
//! when openraft's late request carries a newer one, `network` still takes
//! the early answer (openraft learns at once that the voter holds the
//! entries) and has the newer index told by `commit_notice`: with the next
//! early request if one comes within a few milliseconds, else by a request
//! of its own. Any other early answer (a lagging follower's conflict, a
//! higher vote, an error) makes `network` send openraft's request as before.

use super::commit_notice::CommitNotices;
use super::typ::{AppendEntriesResponse, Entry, LogId, NodeId, Raft, RaftError, Vote};
use crate::rpc::client::RpcClient;
use crate::rpc::message::RaftRpc;
use crate::rpc::{method, RequestContext};
use openraft::RaftLogId;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Early requests remembered per voter. A single writer needs one; under
/// load openraft's replication batches several proposals into one request,
/// which matches none, so the oldest are simply forgotten.
const KEPT_PER_VOTER: usize = 8;

/// The AppendEntries request's wire form, borrowing the entries: postcard
/// encodes it exactly as openraft's `AppendEntriesRequest` (same fields,
/// same order; a test decodes one as the other).
#[derive(Serialize)]
struct AppendRef<'a> {
    vote: &'a Vote,
    prev_log_id: Option<LogId>,
    entries: &'a [Entry],
    leader_commit: Option<LogId>,
}

/// What an early request carried, to recognise openraft's own request for
/// the same entries. Entries of one leader's term are contiguous and a log
/// id names one entry, so the first and last ids and the count name them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    vote: Vote,
    prev: Option<LogId>,
    first: LogId,
    last: LogId,
    len: usize,
}

impl Span {
    fn of(vote: &Vote, prev: Option<LogId>, entries: &[Entry]) -> Option<Span> {
        Some(Span {
            vote: *vote,
            prev,
            first: *entries.first()?.get_log_id(),
            last: *entries.last()?.get_log_id(),
            len: entries.len(),
        })
    }
}

/// One early request in flight or answered: `answer` becomes
/// `Some(true)` when the voter stored the entries, `Some(false)` for any
/// other outcome.
struct Early {
    span: Span,
    /// The commit index the early request told the voter.
    commit: Option<u64>,
    sent_at: Instant,
    answer: watch::Receiver<Option<bool>>,
}

/// An early request matching one openraft is about to send.
pub struct EarlyAnswer {
    sent_at: Instant,
    commit: Option<u64>,
    answer: watch::Receiver<Option<bool>>,
}

impl EarlyAnswer {
    /// The commit index the early request carried (0 for none).
    pub fn commit(&self) -> u64 {
        self.commit.unwrap_or(0)
    }

    /// Waits (at most `limit`) for the early answer; `Some(sent_at)` if the
    /// voter stored the entries, with the time the early request was sent
    /// (what the leader lease may count from: earlier than openraft's
    /// request, so never longer).
    pub async fn stored(mut self, limit: Duration) -> Option<Instant> {
        let answer = tokio::time::timeout(limit, self.answer.wait_for(Option::is_some)).await;
        match answer {
            Ok(Ok(a)) if *a == Some(true) => Some(self.sent_at),
            _ => None,
        }
    }
}

pub struct Speculator {
    me: NodeId,
    rpc: RpcClient,
    /// Set once openraft is started (the log store exists before it).
    raft: OnceLock<Raft>,
    timeout: Duration,
    /// Early requests per voter, oldest first.
    sent: Mutex<HashMap<NodeId, VecDeque<Early>>>,
    /// Commit indexes that early requests may carry for openraft.
    notices: Arc<CommitNotices>,
}

impl Speculator {
    pub fn new(me: NodeId, rpc: RpcClient, timeout: Duration, notices: Arc<CommitNotices>) -> Speculator {
        Speculator { me, rpc, raft: OnceLock::new(), timeout, sent: Mutex::new(HashMap::new()), notices }
    }

    pub fn notices(&self) -> &CommitNotices {
        &self.notices
    }

    /// How long an early request waits for its answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The early request to `target` carrying exactly `entries` after
    /// `prev` under `vote`, if there is one; forgets it and every older
    /// one (openraft sends in log order, so they can no longer match).
    pub fn take_matching(
        &self,
        target: NodeId,
        vote: &Vote,
        prev: Option<LogId>,
        entries: &[Entry],
    ) -> Option<EarlyAnswer> {
        let span = Span::of(vote, prev, entries)?;
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let queue = sent.get_mut(&target)?;
        while let Some(early) = queue.pop_front() {
            if early.span == span {
                return Some(EarlyAnswer {
                    sent_at: early.sent_at,
                    commit: early.commit,
                    answer: early.answer,
                });
            }
            if early.span.last.index > span.last.index {
                queue.push_front(early);
                return None;
            }
        }
        None
    }

    fn remember(&self, target: NodeId, early: Early) {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let queue = sent.entry(target).or_default();
        if queue.len() >= KEPT_PER_VOTER {
            queue.pop_front();
        }
        queue.push_back(early);
    }

    pub fn attach(&self, raft: Raft) {
        let _ = self.raft.set(raft);
    }

    /// Called by the log store before it writes `entries` after `prev`,
    /// with the vote and the commit index it has saved: sends them on
    /// (with that commit index, which openraft saved only once it was
    /// committed) if this server is the leader of that vote and they are
    /// its own new entries.
    pub fn appending(
        &self,
        vote: Option<Vote>,
        prev: Option<LogId>,
        committed: Option<LogId>,
        entries: &[Entry],
    ) {
        let Some(raft) = self.raft.get() else { return };
        let Some(vote) = vote else { return };
        if !own_new_entries(self.me, &vote, prev, entries) {
            return;
        }
        let targets: Vec<(NodeId, SocketAddr)> = {
            // The server metrics: the full ones are republished several
            // times per write.
            let m = raft.server_metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter(|id| *id != self.me)
                .filter_map(|id| Some((id, membership.get_node(&id)?.addr.parse().ok()?)))
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let Some(span) = Span::of(&vote, prev, entries) else { return };
        let req = AppendRef { vote: &vote, prev_log_id: prev, entries, leader_commit: committed };
        let Ok(payload) = postcard::to_allocvec(&req) else { return };
        let payload = bytes::Bytes::from(payload);
        let commit = committed.map(|c| c.index);
        for (target, addr) in targets {
            let call = method::Raft { kind: RaftRpc::AppendEntries, target, payload: payload.clone() };
            let (rpc, timeout) = (self.rpc.clone(), self.timeout);
            let (tell, answer) = watch::channel(None);
            let sent_at = Instant::now();
            self.remember(target, Early { span, commit, sent_at, answer });
            self.notices.early_sent(target);
            let notices = self.notices.clone();
            tokio::spawn(async move {
                let reply = rpc.call(addr, RequestContext::default(), &call, timeout).await;
                let stored = reply.is_ok_and(|bytes| {
                    matches!(
                        postcard::from_bytes::<Result<AppendEntriesResponse, RaftError>>(&bytes),
                        Ok(Ok(AppendEntriesResponse::Success))
                    )
                });
                let _ = tell.send(Some(stored));
                notices.early_answered(target, sent_at, commit.unwrap_or(0), stored);
            });
        }
    }
}

/// Whether `entries` (following `prev`) are new entries of `vote`'s term
/// proposed by `me` as its committed leader: only those may be sent ahead.
fn own_new_entries(me: NodeId, vote: &Vote, prev: Option<LogId>, entries: &[Entry]) -> bool {
    let Some(first) = entries.first() else { return false };
    vote.is_committed()
        && vote.leader_id().voted_for() == Some(me)
        && entries.iter().all(|e| e.get_log_id().leader_id == *vote.leader_id())
        && first.get_log_id().index == prev.map_or(0, |p| p.index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::typ::AppendEntriesRequest;
    use openraft::{CommittedLeaderId, EntryPayload};

    /// The leader 7's speculator (sending nothing: no Raft is attached).
    fn speculator() -> Speculator {
        Speculator::new(
            7,
            RpcClient::new(),
            Duration::from_secs(1),
            Arc::new(CommitNotices::new(Duration::ZERO)),
        )
    }

    fn entry(term: u64, node: NodeId, index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, node), index), payload: EntryPayload::Blank }
    }

    #[test]
    fn encodes_as_openrafts_append_entries_request() {
        let vote = Vote::new_committed(4, 7);
        let entries = vec![entry(4, 7, 10), entry(4, 7, 11)];
        let prev = Some(LogId::new(CommittedLeaderId::new(3, 2), 9));
        let bytes = postcard::to_allocvec(&AppendRef {
            vote: &vote,
            prev_log_id: prev,
            entries: &entries,
            leader_commit: None,
        })
        .unwrap();
        let req: AppendEntriesRequest = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(req.vote, vote);
        assert_eq!(req.prev_log_id, prev);
        assert_eq!(req.entries.len(), 2);
        assert_eq!(req.entries[1].log_id, entries[1].log_id);
        assert_eq!(req.leader_commit, None);
    }

    fn early(s: &Speculator, target: NodeId, vote: &Vote, prev: Option<LogId>, entries: &[Entry]) {
        let (tell, answer) = watch::channel(None);
        let span = Span::of(vote, prev, entries).unwrap();
        s.remember(target, Early { span, commit: None, sent_at: Instant::now(), answer });
        // Answered at once ("stored"), and the sender gone, as after a
        // real early request's task ends.
        tell.send_replace(Some(true));
        drop(tell);
    }

    #[tokio::test]
    async fn openrafts_request_for_the_same_entries_takes_the_early_answer() {
        let s = speculator();
        let vote = Vote::new_committed(4, 7);
        let prev = Some(LogId::new(CommittedLeaderId::new(4, 7), 9));
        early(&s, 2, &vote, prev, &[entry(4, 7, 10)]);
        assert!(s.take_matching(3, &vote, prev, &[entry(4, 7, 10)]).is_none(), "another voter's");
        assert!(s.take_matching(2, &vote, prev, &[]).is_none(), "a heartbeat");
        let got = s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).expect("same entries");
        assert!(got.stored(Duration::from_secs(1)).await.is_some());
        assert!(s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).is_none(), "used once");
        // A request of another vote matches nothing (and the early one
        // before it can match no later request: it is forgotten).
        early(&s, 2, &vote, prev, &[entry(4, 7, 10)]);
        let other_vote = Vote::new_committed(5, 7);
        assert!(s.take_matching(2, &other_vote, prev, &[entry(4, 7, 10)]).is_none(), "another vote");
    }

    #[tokio::test]
    async fn a_request_spanning_two_early_ones_sends_its_own() {
        let s = speculator();
        let vote = Vote::new_committed(4, 7);
        let p9 = Some(LogId::new(CommittedLeaderId::new(4, 7), 9));
        let p10 = Some(LogId::new(CommittedLeaderId::new(4, 7), 10));
        early(&s, 2, &vote, p9, &[entry(4, 7, 10)]);
        early(&s, 2, &vote, p10, &[entry(4, 7, 11)]);
        early(&s, 2, &vote, Some(LogId::new(CommittedLeaderId::new(4, 7), 11)), &[entry(4, 7, 12)]);
        assert!(s.take_matching(2, &vote, p9, &[entry(4, 7, 10), entry(4, 7, 11)]).is_none());
        // Both it covered are forgotten; the later one is kept.
        assert!(s.take_matching(2, &vote, p10, &[entry(4, 7, 11)]).is_none());
        let p11 = Some(LogId::new(CommittedLeaderId::new(4, 7), 11));
        assert!(s.take_matching(2, &vote, p11, &[entry(4, 7, 12)]).is_some());
    }

    #[tokio::test]
    async fn the_early_answer_says_which_commit_index_it_carried() {
        let s = speculator();
        let vote = Vote::new_committed(4, 7);
        let prev = Some(LogId::new(CommittedLeaderId::new(4, 7), 9));
        let remember = |commit: Option<u64>| {
            let (tell, answer) = watch::channel(Some(true));
            let span = Span::of(&vote, prev, &[entry(4, 7, 10)]).unwrap();
            s.remember(2, Early { span, commit, sent_at: Instant::now(), answer });
            drop(tell);
        };
        remember(Some(8));
        assert_eq!(s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).map(|e| e.commit()), Some(8));
        remember(None);
        assert_eq!(s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).map(|e| e.commit()), Some(0));
    }

    #[tokio::test]
    async fn an_early_refusal_or_silence_is_no_answer() {
        let s = speculator();
        let vote = Vote::new_committed(4, 7);
        let prev = Some(LogId::new(CommittedLeaderId::new(4, 7), 9));
        let span = Span::of(&vote, prev, &[entry(4, 7, 10)]).unwrap();
        let (tell, answer) = watch::channel(None);
        s.remember(2, Early { span, commit: None, sent_at: Instant::now(), answer });
        tell.send_replace(Some(false));
        let got = s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).unwrap();
        assert!(got.stored(Duration::from_secs(1)).await.is_none(), "refused");
        let (tell, answer) = watch::channel(None);
        s.remember(2, Early { span, commit: None, sent_at: Instant::now(), answer });
        let got = s.take_matching(2, &vote, prev, &[entry(4, 7, 10)]).unwrap();
        assert!(got.stored(Duration::from_millis(20)).await.is_none(), "no answer in time");
        drop(tell);
    }

    #[test]
    fn only_the_leaders_own_new_entries_go_ahead() {
        let vote = Vote::new_committed(4, 7);
        let prev = Some(LogId::new(CommittedLeaderId::new(4, 7), 9));
        assert!(own_new_entries(7, &vote, prev, &[entry(4, 7, 10)]));
        assert!(!own_new_entries(8, &vote, prev, &[entry(4, 7, 10)]), "another server's vote");
        assert!(!own_new_entries(7, &Vote::new(4, 7), prev, &[entry(4, 7, 10)]), "not yet leader");
        assert!(!own_new_entries(7, &vote, prev, &[entry(3, 7, 10)]), "an older term's entry");
        assert!(!own_new_entries(7, &vote, prev, &[entry(4, 7, 11)]), "not right after prev");
        assert!(!own_new_entries(7, &vote, prev, &[]), "nothing to send");
    }
}
