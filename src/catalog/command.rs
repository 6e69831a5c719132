//! The Raft log payload: what a write asks the state machine to do.
//!
//! This is a stable on-disk format (API boundary): variants are only ever
//! appended, never reordered, and a `Proposal` carries its version so a
//! future reader can tell formats apart. A golden test pins the encoding.

use super::coordinates::CoordinateEntry;
use super::queries::PreparedQuery;
use super::sessions::Session;
use super::txn::{TxnOp, TxnOpBeforeMesh, TxnOutcome};
use super::types::{Deregistration, Registration};
use crate::acl::model::{AuthMethod, BindingRule, Policy, Role, Token};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One state change. Times (lock delays, TTLs) are stamped in by the leader
/// before the command is proposed, so applying is deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    KvSet {
        key: String,
        value: Bytes,
        flags: u64,
    },
    KvCas {
        key: String,
        value: Bytes,
        flags: u64,
        index: u64,
    },
    KvDelete {
        key: String,
    },
    KvDeleteCas {
        key: String,
        index: u64,
    },
    KvDeleteTree {
        prefix: String,
    },
    /// A transaction written before services had mesh fields (old logs
    /// only; `Txn` below replaced it).
    TxnBeforeMesh {
        ops: Vec<TxnOpBeforeMesh>,
    },
    /// Drops KV tombstones at or below `index`.
    TombstoneReap {
        index: u64,
    },
    /// A registration written before services had mesh fields (old logs
    /// only; `Register` below replaced it).
    RegisterBeforeMesh(Box<super::before_mesh::Registration>),
    /// Removes a node (with everything on it), a service or a check.
    Deregister(Deregistration),
    /// Creates a session (its ID chosen by the proposer).
    SessionCreate(Session),
    /// Destroys a session, releasing or deleting its locks.
    SessionDestroy {
        id: String,
    },
    /// `PUT /v1/kv/<key>?acquire=<session>`.
    KvLock {
        key: String,
        value: Bytes,
        flags: u64,
        session: String,
    },
    /// `PUT /v1/kv/<key>?release=<session>`.
    KvUnlock {
        key: String,
        value: Bytes,
        flags: u64,
        session: String,
    },
    /// Stores the autopilot configuration (`cas`: only if the stored
    /// ModifyIndex equals it; 0 = only if none is stored).
    AutopilotSet {
        config: super::operator::AutopilotConfig,
        cas: Option<u64>,
    },
    /// Replaces the whole state with a snapshot's (`consul snapshot
    /// restore`): the postcard encoding of a `State`, checked by the agent
    /// before proposing and decoded again by every replica.
    Restore {
        state: Bytes,
    },
    /// `/v1/acl/bootstrap`: refused unless no bootstrap happened yet or
    /// `reset_index` names the one that did (`acl-bootstrap-reset`).
    AclBootstrap {
        token: Box<Token>,
        reset_index: u64,
    },
    /// Creates or replaces a token (by AccessorID).
    AclTokenSet(Box<Token>),
    AclTokenDelete {
        accessor: String,
    },
    AclPolicySet(Box<Policy>),
    AclPolicyDelete {
        id: String,
    },
    AclRoleSet(Box<Role>),
    AclRoleDelete {
        id: String,
    },
    /// Sets the servers' shared secret (`AclTable::server_secret`) unless set.
    AclServerSecret {
        secret: String,
    },
    /// Network coordinates reported by agents, batched by a server.
    CoordinateBatchUpdate(Vec<CoordinateEntry>),
    /// Creates or replaces a prepared query (validated by the server).
    QuerySet(Box<PreparedQuery>),
    QueryDelete {
        id: String,
    },
    /// Registers a node, optionally a service, and checks in the catalog.
    Register(Box<Registration>),
    /// An atomic transaction (`/v1/txn`).
    Txn {
        ops: Vec<TxnOp>,
    },
    /// A secondary datacenter's copy of the primary's ACL changes.
    AclReplicate(Box<super::acl::AclReplicationDiff>),
    /// Creates or replaces an auth method (validated by the server).
    AclAuthMethodSet(Box<AuthMethod>),
    /// Deletes an auth method with its binding rules and the tokens its
    /// logins created.
    AclAuthMethodDelete {
        name: String,
    },
    AclBindingRuleSet(Box<BindingRule>),
    AclBindingRuleDelete {
        id: String,
    },
    /// Creates or replaces a config entry (validated by the server); with
    /// `cas`, only if the stored ModifyIndex equals it (0: only if absent).
    ConfigEntrySet {
        entry: Box<crate::config_entry::ConfigEntry>,
        cas: Option<u64>,
    },
    /// Deletes a config entry; with `cas`, only if its ModifyIndex equals it.
    ConfigEntryDelete {
        kind: String,
        name: String,
        cas: Option<u64>,
    },
}

impl Command {
    /// A rough encoded size, for bounding batches.
    pub fn approx_size(&self) -> usize {
        match self {
            Command::KvSet { key, value, .. } | Command::KvCas { key, value, .. } => {
                24 + key.len() + value.len()
            }
            Command::KvDelete { key } | Command::KvDeleteCas { key, .. } => 16 + key.len(),
            Command::KvDeleteTree { prefix } => 16 + prefix.len(),
            Command::Txn { ops } => ops
                .iter()
                .map(|op| match op {
                    super::txn::TxnOp::Kv(kv) => 40 + kv.key.len() + kv.value.len() + kv.session.len(),
                    super::txn::TxnOp::Node(_) => 256,
                    super::txn::TxnOp::Service(s) => {
                        256 + s.service.proxy.config.len() + 128 * s.service.proxy.upstreams.len()
                    }
                    super::txn::TxnOp::Check(c) => 256 + c.check.output.len() + c.check.notes.len(),
                })
                .sum(),
            Command::TxnBeforeMesh { ops } => 256 * ops.len(),
            Command::RegisterBeforeMesh(r) => {
                256 + r.checks.iter().map(|c| 128 + c.output.len() + c.notes.len()).sum::<usize>()
            }
            Command::TombstoneReap { .. } => 16,
            Command::Register(r) => {
                256 + r.service.as_ref().map_or(0, |s| s.proxy.config.len() + 128 * s.proxy.upstreams.len())
                    + r.checks.iter().map(|c| 128 + c.output.len() + c.notes.len()).sum::<usize>()
            }
            Command::Deregister(_) => 64,
            Command::SessionCreate(s) => 128 + s.name.len() + s.node.len(),
            Command::SessionDestroy { .. } => 64,
            Command::KvLock { key, value, session, .. } | Command::KvUnlock { key, value, session, .. } => {
                32 + key.len() + value.len() + session.len()
            }
            Command::AutopilotSet { .. } => 64,
            Command::Restore { state } => 16 + state.len(),
            Command::AclBootstrap { token, .. } | Command::AclTokenSet(token) => {
                512 + token.description.len()
            }
            Command::AclPolicySet(p) => 256 + p.rules.len() + p.description.len(),
            Command::AclRoleSet(r) => 512 + r.description.len(),
            Command::AclTokenDelete { .. }
            | Command::AclPolicyDelete { .. }
            | Command::AclRoleDelete { .. }
            | Command::AclServerSecret { .. } => 64,
            Command::QuerySet(q) => 512 + q.service.tags.iter().map(String::len).sum::<usize>(),
            Command::QueryDelete { .. } => 64,
            Command::AclReplicate(diff) => diff.approx_size(),
            Command::AclAuthMethodSet(m) => 256 + m.config.len() + m.description.len(),
            Command::AclBindingRuleSet(r) => 256 + r.selector.len() + r.bind_name.len(),
            Command::AclAuthMethodDelete { .. } | Command::AclBindingRuleDelete { .. } => 64,
            Command::ConfigEntrySet { entry, .. } => {
                64 + entry.kind.len() + entry.name.len() + entry.body.len()
            }
            Command::ConfigEntryDelete { kind, name, .. } => 32 + kind.len() + name.len(),
            Command::CoordinateBatchUpdate(batch) => {
                16 + batch.iter().map(|e| 128 + e.node.len() + e.segment.len()).sum::<usize>()
            }
        }
    }
}

/// The result of applying one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Bool(bool),
    Txn(TxnOutcome),
    Unit,
    /// The command was refused; nothing changed.
    Error(String),
}

/// One Raft log entry's payload: a batch of commands proposed together so
/// concurrent writers share one log append and one fsync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// Written by earlier versions; still read from old logs.
    V1(Vec<Command>),
    /// The commands with the proposing leader's wall clock (Unix
    /// milliseconds) when it formed the batch. Time-dependent rules that
    /// must hold in log order (lock-delay) are judged against it while
    /// applying, so every server reaches the same result.
    Timed { at_unix_ms: u64, commands: Vec<Command> },
}

impl Proposal {
    pub fn commands(&self) -> &[Command] {
        match self {
            Proposal::V1(c) | Proposal::Timed { commands: c, .. } => c,
        }
    }

    /// The leader's clock when it proposed this batch, if recorded.
    pub fn proposed_at_ms(&self) -> Option<u64> {
        match self {
            Proposal::V1(_) => None,
            Proposal::Timed { at_unix_ms, .. } => Some(*at_unix_ms),
        }
    }

    /// A batch stamped with the proposing leader's wall clock (Unix
    /// milliseconds). The caller reads the clock: the catalog never does,
    /// so applying stays a pure function of the log.
    pub fn timed(at_unix_ms: u64, commands: Vec<Command>) -> Proposal {
        Proposal::Timed { at_unix_ms, commands }
    }
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proposal({} commands)", self.commands().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the log encoding: if this changes, old data dirs stop reading.
    #[test]
    fn golden_encoding() {
        let p = Proposal::V1(vec![
            Command::KvSet { key: "a".into(), value: Bytes::from_static(b"xy"), flags: 3 },
            Command::KvDelete { key: "b".into() },
        ]);
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(bytes, vec![0, 2, 0, 1, b'a', 2, b'x', b'y', 3, 2, 1, b'b']);
        let back: Proposal = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, p);
    }

    /// The same for the stamped form, so the time passed in lands where
    /// the clock read used to.
    #[test]
    fn golden_encoding_timed() {
        let p = Proposal::timed(300, vec![Command::KvDelete { key: "b".into() }]);
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(bytes, vec![1, 0xac, 0x02, 1, 2, 1, b'b']);
        assert_eq!(p.proposed_at_ms(), Some(300));
        let back: Proposal = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, p);
    }
}
