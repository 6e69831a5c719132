//! The replicated state: every table the state machine holds, and the one
//! `apply` that changes it. Deterministic: no IO, no clock, no randomness.

use super::acl::{AclTable, TOPIC_ACL};
use super::auth::AuthTable;
use super::command::{Command, CommandResult};
use super::config_entries::{ConfigEntryTable, TOPIC_CONFIG_ENTRIES};
use super::coordinates::{CoordinateTable, TOPIC_COORDINATES};
use super::kv::KvTable;
use super::queries::{QueryTable, TOPIC_QUERIES};
use super::registry::before_mesh::RegistryBeforeMesh;
use super::registry::Registry;
use super::sessions::{topic_node_sessions, topic_session, Behavior, Session, SessionTable, TOPIC_SESSIONS};
use super::txn;
use super::types::{Registration, CRITICAL};
use serde::{Deserialize, Serialize};

/// Per-table raft indexes: the index of the last write to each table, so
/// list queries report (and block on) the right index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableIndexes {
    pub kvs: u64,
}

/// What an apply changed, so the state machine can wake the right watchers.
#[derive(Debug, Default)]
pub struct Changes {
    pub kv_keys: Vec<String>,
    pub kv_trees: Vec<String>,
    /// Catalog watch topics (see `registry::topic_*`, `sessions::topic_*`).
    pub topics: Vec<String>,
    /// Keys whose lock was lost by an invalidated session, with the
    /// session's lock delay (ns): they cannot be re-acquired for that long.
    pub lock_delays: Vec<(String, u64)>,
    /// The whole state was replaced (a snapshot restore): wake everyone.
    pub everything: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.kv_keys.is_empty()
            && self.kv_trees.is_empty()
            && self.topics.is_empty()
            && self.lock_delays.is_empty()
            && !self.everything
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub kv: KvTable,
    pub index: TableIndexes,
    pub catalog: Registry,
    pub sessions: SessionTable,
    /// Set by the operator API; `None` until first written.
    pub autopilot: Option<super::operator::AutopilotConfig>,
    /// Tokens, policies and roles (added after the first release: older
    /// encodings decode through `State::decode`).
    pub acl: AclTable,
    /// Network coordinates of the nodes (added after the ACL tables; older
    /// encodings decode through `State::decode`).
    pub coordinates: CoordinateTable,
    /// Prepared queries (added after the coordinate table).
    pub queries: QueryTable,
    /// Auth methods and binding rules (added after the prepared-query
    /// table; older encodings decode through `State::decode`).
    pub auth: AuthTable,
    /// Config entries (added after the auth-method tables).
    pub config_entries: ConfigEntryTable,
    /// The raft index of the last snapshot restore this replica applied
    /// (0: none since it started). Local bookkeeping, not replicated
    /// state: the leader's session TTL timers watch it to re-arm.
    #[serde(skip)]
    pub restored_at: u64,
}

/// `State` as encoded before services carried mesh fields.
#[derive(Deserialize)]
struct StateBeforeMesh {
    kv: KvTable,
    index: TableIndexes,
    catalog: RegistryBeforeMesh,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
    acl: AclTable,
    coordinates: CoordinateTable,
    queries: QueryTable,
}

/// `State` before the config-entry table (main between the auth-method and
/// config-entry merges).
#[derive(Deserialize)]
struct StateBeforeConfigEntries {
    kv: KvTable,
    index: TableIndexes,
    catalog: Registry,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
    acl: AclTable,
    coordinates: CoordinateTable,
    queries: QueryTable,
    auth: AuthTable,
}

/// `State` with today's service rows but before the auth-method tables
/// (main between the mesh and auth-method merges).
#[derive(Deserialize)]
struct StateBeforeAuth {
    kv: KvTable,
    index: TableIndexes,
    catalog: Registry,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
    acl: AclTable,
    coordinates: CoordinateTable,
    queries: QueryTable,
}

/// Decodes `T` from all of `bytes`; trailing bytes mean another layout.
fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes)?;
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

/// `State` as encoded before the prepared-query table was added.
#[derive(Deserialize)]
struct StateBeforeQueries {
    kv: KvTable,
    index: TableIndexes,
    catalog: RegistryBeforeMesh,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
    acl: AclTable,
    coordinates: CoordinateTable,
}

/// `State` as encoded before the coordinate table was added.
#[derive(Deserialize)]
struct StateBeforeCoordinates {
    kv: KvTable,
    index: TableIndexes,
    catalog: RegistryBeforeMesh,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
    acl: AclTable,
}

/// `State` as encoded before the ACL tables were added.
#[derive(Deserialize)]
struct StateBeforeAcl {
    kv: KvTable,
    index: TableIndexes,
    catalog: RegistryBeforeMesh,
    sessions: SessionTable,
    autopilot: Option<super::operator::AutopilotConfig>,
}

impl State {
    /// Applies one command at raft `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command, changes: &mut Changes) -> CommandResult {
        match cmd {
            Command::KvSet { key, value, flags } => {
                self.kv.set(index, key, value.clone(), *flags);
                self.kv_written(index, key, changes);
                CommandResult::Bool(true)
            }
            Command::KvCas { key, value, flags, index: cas } => {
                let ok = self.kv.cas(index, key, value.clone(), *flags, *cas);
                if ok {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::KvDelete { key } => {
                if self.kv.delete(index, key) {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(true)
            }
            Command::KvDeleteCas { key, index: cas } => {
                let existed = self.kv.get(key).is_some();
                let ok = self.kv.delete_cas(index, key, *cas);
                if ok && existed {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::KvDeleteTree { prefix } => {
                let deleted = self.kv.delete_tree(index, prefix);
                if !deleted.is_empty() {
                    self.index.kvs = index;
                    changes.kv_trees.push(prefix.clone());
                }
                CommandResult::Bool(true)
            }
            Command::TxnBeforeMesh { ops } => {
                let ops: Vec<txn::TxnOp> = ops.iter().cloned().map(Into::into).collect();
                self.apply(index, &Command::Txn { ops }, changes)
            }
            Command::RegisterBeforeMesh(reg) => {
                let reg: Registration = (**reg).clone().into();
                self.apply(index, &Command::Register(Box::new(reg)), changes)
            }
            Command::Txn { ops } => {
                let mut touched = txn::TxnChanges::default();
                let sessions = &self.sessions;
                let outcome = txn::apply(&mut self.kv, &mut self.catalog, index, ops, &mut touched, &|id| {
                    sessions.get(id).is_some()
                });
                if !touched.kv_keys.is_empty() {
                    self.index.kvs = index;
                    changes.kv_keys.extend(touched.kv_keys);
                }
                changes.topics.extend(touched.topics);
                // As for a plain registration: sessions tied to a node that
                // went away or to a check now missing or critical die, after
                // the transaction's own ops.
                for node in &touched.nodes {
                    self.check_node_sessions(index, node, changes);
                }
                CommandResult::Txn(outcome)
            }
            Command::TombstoneReap { index: upto } => {
                self.kv.reap_tombstones(*upto);
                CommandResult::Unit
            }
            Command::Register(reg) => match self.catalog.register(index, reg) {
                Ok(topics) => {
                    changes.topics.extend(topics);
                    self.check_node_sessions(index, &reg.node.node, changes);
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(e),
            },
            Command::Deregister(d) => match self.catalog.deregister(index, d) {
                Ok(topics) => {
                    changes.topics.extend(topics);
                    self.check_node_sessions(index, &d.node, changes);
                    if self.catalog.node(&d.node).is_none() && self.coordinates.remove_node(index, &d.node) {
                        changes.topics.push(TOPIC_COORDINATES.to_string());
                    }
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(e),
            },
            Command::SessionCreate(s) => match self.validate_session(s) {
                Ok(()) => {
                    self.sessions.insert(index, s.clone());
                    session_topics(s, changes);
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(e),
            },
            Command::SessionDestroy { id } => {
                self.invalidate_session(index, id, changes);
                CommandResult::Bool(true)
            }
            Command::KvLock { key, value, flags, session } => {
                if self.sessions.get(session).is_none() {
                    return CommandResult::Error(format!("invalid session {session:?}"));
                }
                let ok = self.kv.lock(index, key, value.clone(), *flags, session);
                if ok {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::KvUnlock { key, value, flags, session } => {
                // Releasing with a session that no longer exists is simply
                // not a release (Consul answers false, not an error): its
                // locks were already freed when it was invalidated.
                if self.sessions.get(session).is_none() {
                    return CommandResult::Bool(false);
                }
                let ok = self.kv.unlock(index, key, value.clone(), *flags, session);
                if ok {
                    self.kv_written(index, key, changes);
                }
                CommandResult::Bool(ok)
            }
            Command::AutopilotSet { config, cas } => CommandResult::Bool(
                super::operator::AutopilotConfig::set(&mut self.autopilot, index, config, *cas),
            ),
            Command::AclBootstrap { token, reset_index } => {
                let r = self.acl.bootstrap(index, token, *reset_index);
                self.acl_result(r, changes)
            }
            Command::AclTokenSet(token) => {
                let r = self.acl.set_token(index, token);
                self.acl_result(r, changes)
            }
            Command::AclTokenDelete { accessor } => {
                let r = self.acl.delete_token(index, accessor);
                self.acl_result(r, changes)
            }
            Command::AclPolicySet(policy) => {
                let r = self.acl.set_policy(index, policy);
                self.acl_result(r, changes)
            }
            Command::AclPolicyDelete { id } => {
                let r = self.acl.delete_policy(index, id);
                self.acl_result(r, changes)
            }
            Command::AclRoleSet(role) => {
                let r = self.acl.set_role(index, role);
                self.acl_result(r, changes)
            }
            Command::AclRoleDelete { id } => {
                let r = self.acl.delete_role(index, id);
                self.acl_result(r, changes)
            }
            Command::AclServerSecret { secret } => {
                self.acl.set_server_secret(secret);
                CommandResult::Bool(true)
            }
            Command::AclReplicate(diff) => {
                self.acl.replicate(index, diff);
                self.acl_result(Ok(()), changes)
            }
            Command::QuerySet(q) => {
                let sessions = &self.sessions;
                match self.queries.set(index, (**q).clone(), |id| sessions.get(id).is_some()) {
                    Ok(()) => {
                        changes.topics.push(TOPIC_QUERIES.to_string());
                        CommandResult::Unit
                    }
                    Err(e) => CommandResult::Error(e),
                }
            }
            Command::QueryDelete { id } => {
                if self.queries.delete(index, id) {
                    changes.topics.push(TOPIC_QUERIES.to_string());
                }
                CommandResult::Unit
            }
            Command::AclAuthMethodSet(m) => {
                let r = self.auth.set_method(index, m);
                self.acl_result(r, changes)
            }
            Command::AclAuthMethodDelete { name } => {
                if self.auth.delete_method(index, name) {
                    // Its logins' tokens go with it (Consul deletes them too).
                    let doomed: Vec<String> = self
                        .acl
                        .tokens()
                        .filter(|t| t.auth_method == *name)
                        .map(|t| t.accessor_id.clone())
                        .collect();
                    for accessor in doomed {
                        let _ = self.acl.delete_token(index, &accessor);
                    }
                    changes.topics.push(TOPIC_ACL.to_string());
                }
                CommandResult::Bool(true)
            }
            Command::AclBindingRuleSet(rule) => {
                let r = self.auth.set_rule(index, rule);
                self.acl_result(r, changes)
            }
            Command::AclBindingRuleDelete { id } => {
                self.auth.delete_rule(index, id);
                changes.topics.push(TOPIC_ACL.to_string());
                CommandResult::Bool(true)
            }
            Command::ConfigEntrySet { entry, cas } => {
                let ok = self.config_entries.set(index, (**entry).clone(), *cas);
                if ok {
                    changes.topics.push(TOPIC_CONFIG_ENTRIES.to_string());
                }
                CommandResult::Bool(ok)
            }
            Command::ConfigEntryDelete { kind, name, cas } => {
                let before = self.config_entries.index;
                let ok = self.config_entries.delete(index, kind, name, *cas);
                if self.config_entries.index != before {
                    changes.topics.push(TOPIC_CONFIG_ENTRIES.to_string());
                }
                CommandResult::Bool(ok)
            }
            Command::CoordinateBatchUpdate(batch) => {
                let catalog = &self.catalog;
                if self.coordinates.apply_batch(index, batch, |n| catalog.node(n).is_some()) > 0 {
                    changes.topics.push(TOPIC_COORDINATES.to_string());
                }
                CommandResult::Bool(true)
            }
            Command::Restore { state } => match State::decode(state) {
                Ok(mut restored) => {
                    restored.raise_indexes(index);
                    restored.restored_at = index;
                    *self = restored;
                    changes.everything = true;
                    CommandResult::Unit
                }
                Err(e) => CommandResult::Error(format!("snapshot state does not decode: {e}")),
            },
        }
    }

    /// After a restore, every table's index becomes the restore's raft
    /// index, so blocking queries see their index move forward (never back)
    /// and return the restored data.
    fn raise_indexes(&mut self, index: u64) {
        self.index.kvs = index;
        let ci = &mut self.catalog.index;
        ci.nodes = index;
        ci.services = index;
        ci.checks = index;
        ci.by_service.values_mut().for_each(|v| *v = index);
        ci.by_node.values_mut().for_each(|v| *v = index);
        self.sessions.index = index;
        self.acl.raise_indexes(index);
        self.coordinates.index = index;
        self.queries.index = index;
        self.auth.raise_indexes(index);
        self.config_entries.index = index;
    }

    /// An ACL apply's outcome; a change wakes the ACL topic.
    fn acl_result(&mut self, r: Result<(), String>, changes: &mut Changes) -> CommandResult {
        match r {
            Ok(()) => {
                changes.topics.push(TOPIC_ACL.to_string());
                CommandResult::Bool(true)
            }
            Err(e) => CommandResult::Error(e),
        }
    }

    /// Decodes an encoded state (a snapshot, a restore), also one written
    /// by an older release (before the mesh fields of services, the
    /// prepared queries, the coordinates or the ACL tables existed).
    pub fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
        // The current layout and the one just before the mesh fields differ
        // inside the service rows, not at the end: only a decode that
        // consumes every byte is taken as a match.
        let current = match decode_exact::<State>(bytes) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        if let Ok(old) = decode_exact::<StateBeforeConfigEntries>(bytes) {
            return Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog,
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: old.acl,
                coordinates: old.coordinates,
                queries: old.queries,
                auth: old.auth,
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            });
        }
        if let Ok(old) = decode_exact::<StateBeforeAuth>(bytes) {
            return Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog,
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: old.acl,
                coordinates: old.coordinates,
                queries: old.queries,
                auth: AuthTable::default(),
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            });
        }
        if let Ok(old) = decode_exact::<StateBeforeMesh>(bytes) {
            return Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog.into(),
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: old.acl,
                coordinates: old.coordinates,
                queries: old.queries,
                auth: AuthTable::default(),
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            });
        }
        if let Ok(old) = postcard::from_bytes::<StateBeforeQueries>(bytes) {
            return Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog.into(),
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: old.acl,
                coordinates: old.coordinates,
                queries: QueryTable::default(),
                auth: AuthTable::default(),
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            });
        }
        if let Ok(old) = postcard::from_bytes::<StateBeforeCoordinates>(bytes) {
            return Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog.into(),
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: old.acl,
                coordinates: CoordinateTable::default(),
                queries: QueryTable::default(),
                auth: AuthTable::default(),
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            });
        }
        match postcard::from_bytes::<StateBeforeAcl>(bytes) {
            Ok(old) => Ok(State {
                kv: old.kv,
                index: old.index,
                catalog: old.catalog.into(),
                sessions: old.sessions,
                autopilot: old.autopilot,
                acl: AclTable::default(),
                coordinates: CoordinateTable::default(),
                queries: QueryTable::default(),
                auth: AuthTable::default(),
                config_entries: ConfigEntryTable::default(),
                restored_at: 0,
            }),
            Err(_) => Err(current),
        }
    }

    fn kv_written(&mut self, index: u64, key: &str, changes: &mut Changes) {
        self.index.kvs = index;
        changes.kv_keys.push(key.to_string());
    }

    /// A new session must name a registered node and checks of that node
    /// that exist and are not critical (Consul's rules).
    fn validate_session(&self, s: &Session) -> Result<(), String> {
        if self.sessions.get(&s.id).is_some() {
            return Err(format!("session {:?} already exists", s.id));
        }
        if self.catalog.node(&s.node).is_none() {
            return Err(format!("Missing node registration for node {:?}", s.node));
        }
        for id in s.check_ids() {
            match self.catalog.check(&s.node, id) {
                None => return Err(format!("Missing check '{id}' registration")),
                Some(c) if c.status == CRITICAL => return Err(format!("Check '{id}' is in critical state")),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Invalidates the sessions of `node` whose node is gone or whose
    /// checks are missing or critical.
    fn check_node_sessions(&mut self, index: u64, node: &str, changes: &mut Changes) {
        let node_gone = self.catalog.node(node).is_none();
        let doomed: Vec<String> = self
            .sessions
            .on_node(node)
            .into_iter()
            .filter(|s| {
                node_gone
                    || s.check_ids()
                        .any(|id| self.catalog.check(node, id).is_none_or(|c| c.status == CRITICAL))
            })
            .map(|s| s.id.clone())
            .collect();
        for id in doomed {
            self.invalidate_session(index, &id, changes);
        }
    }

    /// Removes a session and releases or deletes the locks it held.
    pub fn invalidate_session(&mut self, index: u64, id: &str, changes: &mut Changes) {
        let Some(s) = self.sessions.remove(index, id) else { return };
        // A query bound to the session dies with it.
        if self.queries.session_ended(index, id) {
            changes.topics.push(TOPIC_QUERIES.to_string());
        }
        for key in self.kv.held_by(id) {
            match s.behavior {
                Behavior::Release => self.kv.release_invalidated(index, &key),
                Behavior::Delete => {
                    self.kv.delete(index, &key);
                }
            }
            self.kv_written(index, &key, changes);
            if s.lock_delay_ns > 0 {
                changes.lock_delays.push((key, s.lock_delay_ns));
            }
        }
        session_topics(&s, changes);
    }

    /// The index a KV read reports for a missing key or an empty prefix:
    /// the table's, never 0.
    pub fn kvs_index(&self) -> u64 {
        self.index.kvs.max(1)
    }
}

fn session_topics(s: &Session, changes: &mut Changes) {
    changes.topics.push(TOPIC_SESSIONS.to_string());
    changes.topics.push(topic_session(&s.id));
    changes.topics.push(topic_node_sessions(&s.node));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn session(id: &str, node: &str, behavior: Behavior) -> Session {
        Session {
            id: id.into(),
            node: node.into(),
            behavior,
            lock_delay_ns: 15_000_000_000,
            node_checks: vec!["serfHealth".into()],
            ..Default::default()
        }
    }

    fn register_node(s: &mut State, index: u64, node: &str, status: &str) {
        use crate::catalog::types::{HealthCheck, Node, Registration};
        let reg = Registration {
            node: Node { node: node.into(), address: "10.0.0.1".into(), ..Default::default() },
            checks: vec![HealthCheck {
                check_id: "serfHealth".into(),
                name: "Serf".into(),
                status: status.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut c = Changes::default();
        assert_eq!(s.apply(index, &Command::Register(Box::new(reg)), &mut c), CommandResult::Unit);
    }

    #[test]
    fn locks_follow_their_session() {
        let mut s = State::default();
        let mut c = Changes::default();
        let lock = |key: &str, session: &str| Command::KvLock {
            key: key.into(),
            value: Bytes::from_static(b"v"),
            flags: 0,
            session: session.into(),
        };
        assert!(
            matches!(
                s.apply(1, &Command::SessionCreate(session("s1", "n1", Behavior::Release)), &mut c),
                CommandResult::Error(_)
            ),
            "node must exist"
        );
        register_node(&mut s, 2, "n1", "passing");
        assert_eq!(
            s.apply(3, &Command::SessionCreate(session("s1", "n1", Behavior::Release)), &mut c),
            CommandResult::Unit
        );
        assert_eq!(
            s.apply(4, &Command::SessionCreate(session("s2", "n1", Behavior::Delete)), &mut c),
            CommandResult::Unit
        );
        assert_eq!(s.apply(5, &lock("a", "s1"), &mut c), CommandResult::Bool(true));
        assert_eq!(s.apply(6, &lock("a", "s2"), &mut c), CommandResult::Bool(false), "held by s1");
        assert_eq!(s.apply(7, &lock("a", "s1"), &mut c), CommandResult::Bool(true), "re-acquire by holder");
        assert_eq!(s.kv.get("a").unwrap().lock_index, 1);
        assert_eq!(s.apply(8, &lock("b", "s2"), &mut c), CommandResult::Bool(true));
        // The node's serfHealth goes critical: both sessions die; a is released, b deleted.
        let mut c = Changes::default();
        register_node(&mut s, 9, "n1", CRITICAL);
        let _ = &mut c;
        assert!(s.sessions.get("s1").is_none() && s.sessions.get("s2").is_none());
        assert_eq!(s.kv.get("a").unwrap().session, None);
        assert_eq!(s.kv.get("a").unwrap().lock_index, 1);
        assert!(s.kv.get("b").is_none());
        // A critical check refuses new sessions.
        let mut c = Changes::default();
        assert!(
            matches!(s.apply(10, &Command::SessionCreate(session("s3", "n1", Behavior::Release)), &mut c), CommandResult::Error(e) if e.contains("critical"))
        );
    }

    #[test]
    fn invalidation_reports_lock_delays() {
        let mut s = State::default();
        register_node(&mut s, 1, "n1", "passing");
        let mut c = Changes::default();
        s.apply(2, &Command::SessionCreate(session("s1", "n1", Behavior::Release)), &mut c);
        s.apply(
            3,
            &Command::KvLock { key: "k".into(), value: Bytes::new(), flags: 0, session: "s1".into() },
            &mut c,
        );
        let mut c = Changes::default();
        s.apply(4, &Command::SessionDestroy { id: "s1".into() }, &mut c);
        assert_eq!(c.lock_delays, vec![("k".to_string(), 15_000_000_000)]);
    }

    /// A state encoded before the ACL tables existed (a snapshot taken by
    /// an older release) still decodes, with empty ACL tables.
    #[test]
    fn state_from_before_acl_decodes() {
        let mut s = State::default();
        let mut c = Changes::default();
        s.apply(3, &Command::KvSet { key: "a".into(), value: Bytes::from_static(b"v"), flags: 0 }, &mut c);
        let old = postcard::to_allocvec(&(&s.kv, &s.index, &s.catalog, &s.sessions, &s.autopilot)).unwrap();
        let back = State::decode(&old).unwrap();
        assert_eq!(back.kv.get("a").unwrap().value, Bytes::from_static(b"v"));
        assert_eq!(back.acl.max_index(), 0);
        let now = postcard::to_allocvec(&s).unwrap();
        assert_eq!(State::decode(&now).unwrap().kv.get("a").unwrap().value, Bytes::from_static(b"v"));
        assert!(State::decode(b"\xff\xff").is_err());
    }

    /// A state encoded before the coordinate table existed decodes with an
    /// empty table and keeps its ACL tables; coordinates round-trip.
    #[test]
    fn state_from_before_coordinates_decodes() {
        let mut s = State::default();
        let mut c = Changes::default();
        s.apply(3, &Command::KvSet { key: "a".into(), value: Bytes::from_static(b"v"), flags: 0 }, &mut c);
        s.acl.set_server_secret("secret");
        let old =
            postcard::to_allocvec(&(&s.kv, &s.index, &s.catalog, &s.sessions, &s.autopilot, &s.acl)).unwrap();
        let back = State::decode(&old).unwrap();
        assert_eq!(back.kv.get("a").unwrap().value, Bytes::from_static(b"v"));
        assert_eq!(back.acl.server_secret, "secret");
        assert!(back.coordinates.is_empty());

        let node = crate::catalog::coordinates::CoordinateEntry {
            node: "n1".into(),
            segment: String::new(),
            coord: crate::coordinate::Coordinate::origin(&Default::default()),
        };
        // Unknown node: dropped, nothing woken.
        let mut c = Changes::default();
        s.apply(4, &Command::CoordinateBatchUpdate(vec![node.clone()]), &mut c);
        assert!(s.coordinates.is_empty() && c.topics.is_empty());
        s.coordinates.apply_batch(5, std::slice::from_ref(&node), |_| true);
        // Before prepared queries: coordinates kept, no queries.
        let old = postcard::to_allocvec(&(
            &s.kv,
            &s.index,
            &s.catalog,
            &s.sessions,
            &s.autopilot,
            &s.acl,
            &s.coordinates,
        ))
        .unwrap();
        let back = State::decode(&old).unwrap();
        assert_eq!(back.coordinates.list(), vec![node.clone()]);
        assert_eq!(back.queries.list().count(), 0);
        let now = postcard::to_allocvec(&s).unwrap();
        assert_eq!(State::decode(&now).unwrap().coordinates.list(), vec![node]);
    }

    /// A whole state encoded by the release before the mesh fields (a
    /// service row in the old layout) decodes, the service intact; and a
    /// Raft log entry of that release (a `Register` at its old position)
    /// still applies.
    #[test]
    fn state_and_log_from_before_mesh_decode() {
        use crate::catalog::before_mesh;
        use crate::catalog::command::Proposal;
        use crate::catalog::types::Node;
        let old_reg = before_mesh::Registration {
            node: Node { node: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
            service: Some(before_mesh::NodeService {
                id: "web1".into(),
                service: "web".into(),
                port: 80,
                ..Default::default()
            }),
            ..Default::default()
        };
        // The log: main encoded `Command::Register` at this variant index
        // with the old layout, which `RegisterBeforeMesh` now reads.
        let entry = postcard::to_allocvec(&Proposal::timed(
            1,
            vec![Command::RegisterBeforeMesh(Box::new(old_reg.clone()))],
        ))
        .unwrap();
        let p: Proposal = postcard::from_bytes(&entry).unwrap();
        let mut s = State::default();
        let mut c = Changes::default();
        assert_eq!(s.apply(3, &p.commands()[0], &mut c), CommandResult::Unit);
        assert_eq!(s.catalog.service("n1", "web1").unwrap().port, 80);
        assert!(c.topics.iter().any(|t| t == "svc:web"));

        // The snapshot: every table as today, the registry's service rows
        // in the old layout (postcard concatenates the fields of a struct).
        let registry_now = postcard::to_allocvec(&s.catalog).unwrap();
        let mut old_registry = Vec::new();
        {
            // Re-encode the registry with the old service row: nodes first,
            // then the services map, then by_name, checks, index.
            let full: (
                std::collections::BTreeMap<String, Node>,
                std::collections::BTreeMap<(String, String), crate::catalog::types::NodeService>,
            ) = postcard::take_from_bytes(&registry_now).map(|(v, _)| v).unwrap();
            let (_, rest) = postcard::take_from_bytes::<(
                std::collections::BTreeMap<String, Node>,
                std::collections::BTreeMap<(String, String), crate::catalog::types::NodeService>,
            )>(&registry_now)
            .unwrap();
            let old_services: std::collections::BTreeMap<(String, String), before_mesh::NodeService> = full
                .1
                .iter()
                .map(|(k, v)| {
                    let o = before_mesh::NodeService {
                        id: v.id.clone(),
                        service: v.service.clone(),
                        port: v.port,
                        weights: v.weights,
                        create_index: v.create_index,
                        modify_index: v.modify_index,
                        ..Default::default()
                    };
                    (k.clone(), o)
                })
                .collect();
            old_registry.extend(postcard::to_allocvec(&(&full.0, &old_services)).unwrap());
            old_registry.extend_from_slice(rest);
        }
        let mut old = Vec::new();
        old.extend(postcard::to_allocvec(&(&s.kv, &s.index)).unwrap());
        old.extend(old_registry);
        old.extend(
            postcard::to_allocvec(&(&s.sessions, &s.autopilot, &s.acl, &s.coordinates, &s.queries)).unwrap(),
        );
        assert!(postcard::from_bytes::<State>(&old).is_err() || decode_exact::<State>(&old).is_err());
        let back = State::decode(&old).unwrap();
        let svc = back.catalog.service("n1", "web1").unwrap();
        assert_eq!((svc.service.as_str(), svc.port), ("web", 80));
        assert!(svc.proxy.destination_service_name.is_empty());
        // Today's encoding round-trips with the mesh fields.
        let mut s2 = back.clone();
        let mut reg: Registration = old_reg.into();
        let svc = reg.service.as_mut().unwrap();
        svc.kind = "connect-proxy".into();
        svc.proxy.destination_service_name = "api".into();
        svc.proxy.config = r#"{"a":1}"#.into();
        let mut c = Changes::default();
        assert_eq!(s2.apply(9, &Command::Register(Box::new(reg)), &mut c), CommandResult::Unit);
        let now = postcard::to_allocvec(&s2).unwrap();
        let back = State::decode(&now).unwrap();
        let svc = back.catalog.service("n1", "web1").unwrap();
        assert_eq!(svc.proxy.destination_service_name, "api");
        assert_eq!(back.catalog.connect_instances("API").len(), 1);
    }

    /// A state encoded before the auth-method tables decodes with empty
    /// ones; deleting a method takes its rules and its logins' tokens.
    #[test]
    fn state_from_before_auth_decodes_and_method_delete_cascades() {
        use crate::acl::model::{AuthMethod, BindingRule, Token};
        let mut s = State::default();
        let mut c = Changes::default();
        s.apply(3, &Command::KvSet { key: "a".into(), value: Bytes::from_static(b"v"), flags: 0 }, &mut c);
        let old = postcard::to_allocvec(&(
            &s.kv,
            &s.index,
            &s.catalog,
            &s.sessions,
            &s.autopilot,
            &s.acl,
            &s.coordinates,
            &s.queries,
        ))
        .unwrap();
        let back = State::decode(&old).unwrap();
        assert_eq!(back.kv.get("a").unwrap().value, Bytes::from_static(b"v"));
        assert_eq!(back.auth.methods().count(), 0);
        // And one from before the config-entry table (auth tables present).
        let before_ce = postcard::to_allocvec(&(
            &s.kv,
            &s.index,
            &s.catalog,
            &s.sessions,
            &s.autopilot,
            &s.acl,
            &s.coordinates,
            &s.queries,
            &s.auth,
        ))
        .unwrap();
        let back = State::decode(&before_ce).unwrap();
        assert_eq!(back.kv.get("a").unwrap().value, Bytes::from_static(b"v"));
        assert!(back.config_entries.is_empty());

        let m = AuthMethod { name: "m".into(), method_type: "jwt".into(), ..Default::default() };
        s.apply(4, &Command::AclAuthMethodSet(Box::new(m)), &mut c);
        let r = BindingRule { id: "r".into(), auth_method: "m".into(), ..Default::default() };
        s.apply(5, &Command::AclBindingRuleSet(Box::new(r)), &mut c);
        let login = Token {
            accessor_id: "a1".into(),
            secret_id: "s1".into(),
            auth_method: "m".into(),
            ..Default::default()
        };
        let plain = Token { accessor_id: "a2".into(), secret_id: "s2".into(), ..Default::default() };
        s.apply(6, &Command::AclTokenSet(Box::new(login)), &mut c);
        s.apply(7, &Command::AclTokenSet(Box::new(plain)), &mut c);
        let now = postcard::to_allocvec(&s).unwrap();
        assert_eq!(State::decode(&now).unwrap().auth.rule("r").unwrap().create_index, 5);
        s.apply(8, &Command::AclAuthMethodDelete { name: "m".into() }, &mut c);
        assert!(s.auth.rule("r").is_none());
        assert!(s.acl.token("a1").is_none());
        assert!(s.acl.token("a2").is_some());
    }

    #[test]
    fn failed_cas_changes_nothing() {
        let mut s = State::default();
        let mut c = Changes::default();
        s.apply(3, &Command::KvSet { key: "a".into(), value: Bytes::new(), flags: 0 }, &mut c);
        let mut c2 = Changes::default();
        let r =
            s.apply(4, &Command::KvCas { key: "a".into(), value: Bytes::new(), flags: 0, index: 1 }, &mut c2);
        assert_eq!(r, CommandResult::Bool(false));
        assert!(c2.is_empty());
        assert_eq!(s.index.kvs, 3);
    }
}
