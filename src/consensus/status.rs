//! What the rest of the server may know about Raft, in our own types: this
//! server's role, the term and leader, the configuration, and (on the
//! leader) how far each follower has replicated. openraft's metrics are
//! translated here so nothing outside `consensus` depends on their shape.

use super::typ::{LogId, NodeId, RaftMetrics, RaftNode, RaftServerMetrics, StoredMembership};
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// This server's part in Raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    /// In the configuration as a non-voter, or not in it yet.
    Learner,
    Shutdown,
}

impl From<openraft::ServerState> for Role {
    fn from(s: openraft::ServerState) -> Role {
        match s {
            openraft::ServerState::Leader => Role::Leader,
            openraft::ServerState::Follower => Role::Follower,
            openraft::ServerState::Candidate => Role::Candidate,
            openraft::ServerState::Learner => Role::Learner,
            openraft::ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// A place in the Raft log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    pub index: u64,
    pub term: u64,
}

impl From<LogId> for LogPosition {
    fn from(l: LogId) -> LogPosition {
        LogPosition { index: l.index, term: l.leader_id.term }
    }
}

/// A Raft configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Log index of the entry that holds it (`None` before any).
    pub index: Option<u64>,
    /// Every server in it, voters and non-voters, by Raft id.
    pub nodes: BTreeMap<NodeId, RaftNode>,
    /// The voters (of both halves while a change is in its joint phase).
    pub voters: BTreeSet<NodeId>,
}

impl Membership {
    pub fn contains(&self, id: NodeId) -> bool {
        self.nodes.contains_key(&id)
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub(super) fn from_stored(stored: &StoredMembership) -> Membership {
        let m = stored.membership();
        Membership {
            index: stored.log_id().map(|l| l.index),
            nodes: m.nodes().map(|(id, n)| (*id, n.clone())).collect(),
            voters: m.voter_ids().collect(),
        }
    }
}

/// Raft as this server sees it at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Index of the last entry the state machine applied.
    pub applied_index: Option<u64>,
    /// The last entry the latest snapshot covers.
    pub snapshot: Option<LogPosition>,
    /// The latest configuration in the log (possibly not committed yet).
    pub membership: Membership,
    /// On the leader: the last index each other server is known to hold
    /// (`None` until it first answers). `None` on every other server.
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
}

impl From<&RaftMetrics> for RaftStatus {
    fn from(m: &RaftMetrics) -> RaftStatus {
        RaftStatus {
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(LogPosition::from),
            membership: Membership::from_stored(&m.membership_config),
            replication: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect()),
        }
    }
}

/// Raft has stopped: its status will not change again.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("raft has stopped")]
pub struct Stopped;

/// Wakes whenever this server's role, the leader, the term or the
/// configuration changes, so loops that follow leadership re-check it
/// without polling. Not on every applied entry or replication step:
/// openraft republishes its full metrics on every turn of its core (several
/// per write, and each heartbeat), and waking every leadership loop on each
/// cost every write a handful of task wake-ups and thread switches.
pub struct StatusWatch(pub(super) watch::Receiver<RaftServerMetrics>);

impl StatusWatch {
    /// Waits for the next change.
    pub async fn changed(&mut self) -> Result<(), Stopped> {
        self.0.changed().await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, ServerState};
    use std::sync::Arc;

    fn node(name: &str) -> RaftNode {
        RaftNode { addr: format!("{name}:8300"), name: name.into(), node_id: format!("id-{name}") }
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn status_translates_openraft_metrics() {
        // A joint configuration ({1,2} → {2,3}) with 4 as a non-voter.
        let nodes: BTreeMap<NodeId, RaftNode> =
            [(1, node("a")), (2, node("b")), (3, node("c")), (4, node("d"))].into_iter().collect();
        let joint = openraft::Membership::new(vec![[1, 2].into(), [2, 3].into()], nodes.clone());
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_term = 7;
        m.current_leader = Some(1);
        m.last_applied = Some(log_id(7, 40));
        m.snapshot = Some(log_id(6, 30));
        m.membership_config = Arc::new(StoredMembership::new(Some(log_id(7, 38)), joint));
        m.replication = Some([(2, Some(log_id(7, 39))), (3, None)].into_iter().collect());

        let s = RaftStatus::from(&m);
        assert_eq!(s.role, Role::Leader);
        assert_eq!((s.term, s.leader, s.applied_index), (7, Some(1), Some(40)));
        assert_eq!(s.snapshot, Some(LogPosition { index: 30, term: 6 }));
        assert_eq!(s.membership.index, Some(38));
        assert_eq!(s.membership.nodes, nodes);
        assert_eq!(s.membership.voters, [1, 2, 3].into_iter().collect());
        assert!(s.membership.contains(4) && !s.membership.is_voter(4));
        assert_eq!(s.replication, Some([(2, Some(39)), (3, None)].into_iter().collect()));

        let follower = RaftStatus::from(&RaftMetrics::new_initial(2));
        assert_eq!(follower.role, Role::Follower);
        assert_eq!(follower.membership, Membership::default());
        assert_eq!(follower.replication, None);
    }

    /// Writes do not wake the leadership loops (`StatusWatch`): on the old
    /// full-metrics channel every write woke each of them several times.
    /// Raft stopping still does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_do_not_wake_the_status_watch() {
        use crate::catalog::Command;
        use crate::consensus::{Consensus, ConsensusConfig};
        use std::time::Duration;
        let tasks = tokio_util::task::TaskTracker::new();
        let me = RaftNode { addr: "127.0.0.1:8300".into(), name: "s1".into(), node_id: "id-s1".into() };
        let c = Consensus::start(
            ConsensusConfig::dev_single(1, me),
            crate::rpc::client::RpcClient::new(),
            &tasks,
        )
        .await
        .unwrap();
        assert!(c.wait_for_leader(Duration::from_secs(10)).await, "no leader");
        let set = |i: u32| Command::KvSet { key: format!("k{i}"), value: b"v".to_vec().into(), flags: 0 };
        // Leadership is settled once a write went through.
        c.proposer.propose(set(0)).await.unwrap();
        assert!(c.is_leader());
        let mut watch = c.watch_status();
        watch.0.mark_unchanged();
        let mut full_metrics = c.raft.metrics();
        full_metrics.mark_unchanged();
        for i in 1..=20 {
            c.proposer.propose(set(i)).await.unwrap();
        }
        assert!(full_metrics.has_changed().unwrap(), "writes change openraft's full metrics");
        assert!(!watch.0.has_changed().unwrap(), "20 writes woke the status watch");
        c.shutdown().await;
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("stopping raft did not wake the status watch")
            .ok();
    }
}
