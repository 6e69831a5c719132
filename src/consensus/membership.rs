//! Forming and changing the Raft configuration: initialising a cluster,
//! adding a server as a non-voter, setting the voters (which promotes and
//! removes in one change) and removing servers. Errors keep openraft's own
//! wording, so log lines and API messages read as they always have.

use super::typ::{ClientWriteError, NodeId, Raft, RaftError, RaftNode};
use super::Consensus;
use openraft::error::{Fatal, InitializeError};
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};

/// Why a configuration change (or initialisation) did not happen.
#[derive(Clone, Debug, thiserror::Error)]
pub enum MembershipError {
    /// `initialize` on a server that already has a configuration or a log:
    /// the cluster is formed, so this is harmless.
    #[error("{0}")]
    AlreadyInitialized(String),
    /// Only the leader changes the configuration.
    #[error("{0}")]
    NotLeader(String),
    /// Raft refused the change (another one still in progress, a voter
    /// that is not in the configuration, ...).
    #[error("{0}")]
    Refused(String),
    /// Raft has stopped (shutdown, or a storage failure).
    #[error("{0}")]
    Stopped(String),
}

fn stopped(e: Fatal<NodeId>) -> MembershipError {
    MembershipError::Stopped(e.to_string())
}

fn write_error(e: RaftError<ClientWriteError>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            MembershipError::NotLeader(f.to_string())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            MembershipError::Refused(c.to_string())
        }
        RaftError::Fatal(f) => stopped(f),
    }
}

/// Whether this server already has a configuration (or a log).
pub(super) async fn is_initialized(raft: &Raft) -> Result<bool, MembershipError> {
    raft.is_initialized().await.map_err(stopped)
}

/// Forms a cluster of exactly `members`, all voters.
pub(super) async fn initialize(
    raft: &Raft,
    members: BTreeMap<NodeId, RaftNode>,
) -> Result<(), MembershipError> {
    raft.initialize(members).await.map_err(init_error)
}

fn init_error(e: RaftError<InitializeError<NodeId, RaftNode>>) -> MembershipError {
    match e {
        RaftError::APIError(e @ InitializeError::NotAllowed(_)) => {
            MembershipError::AlreadyInitialized(e.to_string())
        }
        RaftError::APIError(e @ InitializeError::NotInMembers(_)) => MembershipError::Refused(e.to_string()),
        RaftError::Fatal(f) => stopped(f),
    }
}

impl Consensus {
    /// Whether this server already has a configuration (or a log), so
    /// `initialize` would be refused.
    pub async fn is_initialized(&self) -> Result<bool, MembershipError> {
        is_initialized(&self.raft).await
    }

    /// Forms a new cluster of exactly `members`, all voters. Every server
    /// of a new cluster may call this with the same set: the calls after
    /// the first fail with `AlreadyInitialized`, which is harmless.
    pub async fn initialize(&self, members: BTreeMap<NodeId, RaftNode>) -> Result<(), MembershipError> {
        initialize(&self.raft, members).await
    }

    /// Adds a server as a non-voter (leader only). Does not wait for it to
    /// catch up.
    pub async fn add_nonvoter(&self, id: NodeId, node: RaftNode) -> Result<(), MembershipError> {
        self.raft.add_learner(id, node, false).await.map(|_| ()).map_err(write_error)
    }

    /// Makes exactly `voters` the voters (leader only): non-voters among
    /// them are promoted, and voters left out leave the configuration
    /// altogether (they are not kept as non-voters).
    pub async fn set_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), MembershipError> {
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Removes non-voters from the configuration (leader only).
    pub async fn remove_nonvoters(&self, ids: BTreeSet<NodeId>) -> Result<(), MembershipError> {
        self.raft
            .change_membership(ChangeMembers::RemoveNodes(ids), false)
            .await
            .map(|_| ())
            .map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::error::{ForwardToLeader, NotAllowed};

    /// Callers print these errors where they printed openraft's: the text
    /// must not change.
    #[test]
    fn errors_keep_openraft_wording() {
        let node = RaftNode { addr: "127.0.0.1:8300".into(), name: "s2".into(), node_id: "u2".into() };
        let cases: Vec<RaftError<ClientWriteError>> = vec![
            RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader::new(2, node))),
            RaftError::Fatal(Fatal::Stopped),
        ];
        for e in cases {
            let want = e.to_string();
            let got = write_error(e);
            assert_eq!(got.to_string(), want);
        }
        let not_allowed: RaftError<InitializeError<NodeId, RaftNode>> =
            RaftError::APIError(InitializeError::NotAllowed(NotAllowed {
                last_log_id: None,
                vote: openraft::Vote::new(1, 1),
            }));
        let want = not_allowed.to_string();
        let got = init_error(not_allowed);
        assert!(matches!(got, MembershipError::AlreadyInitialized(_)), "{got:?}");
        assert_eq!(got.to_string(), want);
        assert!(matches!(init_error(RaftError::Fatal(Fatal::Stopped)), MembershipError::Stopped(_)));
    }
}
