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
//! early request is not used: a follower that lags or moved on simply
//! rejects it, and openraft's replication carries on as before.

use super::typ::{Entry, LogId, NodeId, Raft, Vote};
use crate::rpc::client::RpcClient;
use crate::rpc::message::RaftRpc;
use crate::rpc::{method, RequestContext};
use openraft::RaftLogId;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

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

pub struct Speculator {
    me: NodeId,
    rpc: RpcClient,
    /// Set once openraft is started (the log store exists before it).
    raft: OnceLock<Raft>,
    timeout: Duration,
}

impl Speculator {
    pub fn new(me: NodeId, rpc: RpcClient, timeout: Duration) -> Speculator {
        Speculator { me, rpc, raft: OnceLock::new(), timeout }
    }

    pub fn attach(&self, raft: Raft) {
        let _ = self.raft.set(raft);
    }

    /// Called by the log store before it writes `entries` after `prev`,
    /// with the vote it has saved: sends them on if this server is the
    /// leader of that vote and they are its own new entries.
    pub fn appending(&self, vote: Option<Vote>, prev: Option<LogId>, entries: &[Entry]) {
        let Some(raft) = self.raft.get() else { return };
        let Some(vote) = vote else { return };
        if !own_new_entries(self.me, &vote, prev, entries) {
            return;
        }
        let targets: Vec<(NodeId, SocketAddr)> = {
            let m = raft.metrics();
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
        let req = AppendRef { vote: &vote, prev_log_id: prev, entries, leader_commit: None };
        let Ok(payload) = postcard::to_allocvec(&req) else { return };
        let payload = bytes::Bytes::from(payload);
        for (target, addr) in targets {
            let call = method::Raft { kind: RaftRpc::AppendEntries, target, payload: payload.clone() };
            let (rpc, timeout) = (self.rpc.clone(), self.timeout);
            tokio::spawn(async move {
                // The answer is openraft's replication's business.
                let _ = rpc.call(addr, RequestContext::default(), &call, timeout).await;
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
