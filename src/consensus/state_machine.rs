//! openraft's state machine: applies committed log entries to the
//! in-memory `catalog::State`, wakes the watchers of what changed, and
//! builds and installs snapshots.
//!
//! Like Consul, the state lives in memory and is rebuilt on start from the
//! newest snapshot plus the log after it.

use super::disk_full::DiskFull;
use super::snapshot::{self, StoredSnapshot};
use super::typ::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::catalog::{Changes, Command, CommandResult, State, WatchHub};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, StorageIOError};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// The replicated state as readers see it. Shared by the state machine
/// (the only writer) and every reader.
pub struct Store {
    state: RwLock<State>,
    kv_hub: Arc<WatchHub>,
    catalog_hub: Arc<WatchHub>,
    applied_tx: watch::Sender<u64>,
    meta: Mutex<AppliedMeta>,
    /// Keys whose lock holder was invalidated, and until when they may not
    /// be re-acquired, by this server's monotonic clock from the moment it
    /// applied the invalidation. The leader consults it before proposing a
    /// lock (as Consul does) to refuse early; the binding check is
    /// `StateMachine::apply_command`'s, in log time.
    lock_delays: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Service names and tags (`/v1/catalog/services`) at the services
    /// table index they were computed at; cleared when the state is
    /// replaced wholesale, since a restored state may reuse an index.
    service_names: Mutex<Option<(u64, ServiceNames)>>,
}

/// Every service name with the union of its tags, shared by readers.
pub type ServiceNames = Arc<std::collections::BTreeMap<String, Vec<String>>>;

#[derive(Clone, Default)]
struct AppliedMeta {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl Store {
    fn new(state: State, meta: AppliedMeta) -> Arc<Store> {
        let applied = meta.last_applied.map(|l| l.index).unwrap_or(0);
        Arc::new(Store {
            state: RwLock::new(state),
            kv_hub: WatchHub::new(),
            catalog_hub: WatchHub::new(),
            applied_tx: watch::Sender::new(applied),
            meta: Mutex::new(meta),
            lock_delays: Mutex::default(),
            service_names: Mutex::default(),
        })
    }

    /// `state`'s service names and tags, computed once per change of the
    /// services table. Call with the state read from this store.
    pub fn service_names(&self, state: &State) -> ServiceNames {
        let index = state.catalog.index.services;
        let mut cached = self.service_names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, names)) = cached.as_ref() {
            if *at == index {
                return names.clone();
            }
        }
        let names = Arc::new(state.catalog.service_names());
        *cached = Some((index, names.clone()));
        names
    }

    fn forget_derived(&self) {
        *self.service_names.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs `f` against the current state under a read lock. Keep `f`
    /// short and copy out what is needed: writers wait while it runs.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Reads the state together with the log id it reflects (taken under
    /// the same lock, as snapshots are).
    pub fn read_with_applied<R>(&self, f: impl FnOnce(&State, Option<LogId>) -> R) -> R {
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        let applied = self.lock_meta().last_applied;
        f(&guard, applied)
    }

    pub fn kv_hub(&self) -> &Arc<WatchHub> {
        &self.kv_hub
    }

    /// Watchers of catalog topics (`catalog::registry::topic_*`).
    pub fn catalog_hub(&self) -> &Arc<WatchHub> {
        &self.catalog_hub
    }

    /// The last applied raft index.
    pub fn applied_index(&self) -> u64 {
        *self.applied_tx.borrow()
    }

    /// Notifies on every applied batch.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    /// How long `key` may not be locked yet, if an invalidated session held it.
    pub fn lock_delay(&self, key: &str) -> Option<std::time::Duration> {
        let mut delays = self.lock_delays.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        match delays.get(key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                delays.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn membership(&self) -> StoredMembership {
        self.lock_meta().membership.clone()
    }

    fn lock_meta(&self) -> std::sync::MutexGuard<'_, AppliedMeta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, changes: Changes, applied: Option<LogId>) {
        if changes.everything {
            self.forget_derived();
            // A restore replaced the whole state; the old one is freed by now.
            release_freed_heap();
        }
        if !changes.lock_delays.is_empty() {
            let now = std::time::Instant::now();
            let mut delays = self.lock_delays.lock().unwrap_or_else(|e| e.into_inner());
            delays.retain(|_, until| *until > now);
            for (key, ns) in &changes.lock_delays {
                delays.insert(key.clone(), now + std::time::Duration::from_nanos(*ns));
            }
        }
        for key in &changes.kv_keys {
            self.kv_hub.key_changed(key);
        }
        for prefix in &changes.kv_trees {
            self.kv_hub.tree_changed(prefix);
        }
        if changes.everything {
            self.kv_hub.tree_changed("");
            self.catalog_hub.tree_changed("");
        }
        for topic in &changes.topics {
            self.catalog_hub.key_changed(topic);
        }
        if let Some(l) = applied {
            self.applied_tx.send_replace(l.index);
        }
    }
}

/// The openraft-facing state machine.
pub struct StateMachine {
    store: Arc<Store>,
    snapshot_dir: Option<PathBuf>,
    /// The newest snapshot, shared with builders (which replace it).
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    /// Lock-delays in log time: key → the leader's clock (Unix ms) before
    /// which a `KvLock` on it is refused. Set when an invalidation is
    /// applied, from the proposal's timestamp. The leader also refuses
    /// early (`Store::lock_delay`, before proposing), but only this check
    /// sees an invalidation that was proposed and not yet applied when the
    /// acquire was checked: both are judged here in log order.
    lock_delay_until_ms: std::collections::HashMap<String, u64>,
    /// Shared with the log store: set while a write waits for disk space.
    disk_full: DiskFull,
}

/// Prune expired log-time lock-delays once the map is this large.
const LOCK_DELAY_PRUNE_AT: usize = 1024;

impl StateMachine {
    /// Applies one command of a batch proposed at `at_ms` (leader clock),
    /// enforcing lock-delay in log order.
    fn apply_command(
        &mut self,
        state: &mut State,
        index: u64,
        at_ms: Option<u64>,
        cmd: &Command,
        changes: &mut Changes,
    ) -> CommandResult {
        if let (Some(at), Command::KvLock { key, .. }) = (at_ms, cmd) {
            let delayed = self.lock_delay_until_ms.get(key).is_some_and(|until| *until > at);
            if delayed && !crate::inject::enabled(crate::inject::Bug::NoLockDelay) {
                return CommandResult::Bool(false);
            }
        }
        let before = changes.lock_delays.len();
        let result = state.apply(index, cmd, changes);
        if let Some(at) = at_ms {
            if changes.lock_delays.len() > before && self.lock_delay_until_ms.len() >= LOCK_DELAY_PRUNE_AT {
                self.lock_delay_until_ms.retain(|_, until| *until > at);
            }
            for (key, ns) in &changes.lock_delays[before..] {
                self.lock_delay_until_ms.insert(key.clone(), at.saturating_add(ns / 1_000_000));
            }
        }
        result
    }
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, openraft::AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// Opens the state machine, loading the newest snapshot from
    /// `snapshot_dir` (none with `-dev`).
    pub fn open(
        snapshot_dir: Option<PathBuf>,
        disk_full: DiskFull,
    ) -> Result<(StateMachine, Arc<Store>), String> {
        let loaded = match &snapshot_dir {
            Some(dir) => snapshot::load_latest(dir).map_err(|e| format!("{e}; refusing to start"))?,
            None => None,
        };
        let (state, meta) = match &loaded {
            Some(s) => {
                let state: State =
                    State::decode(&s.data).map_err(|e| format!("decoding snapshot state: {e}"))?;
                (
                    state,
                    AppliedMeta {
                        last_applied: s.meta.last_log_id,
                        membership: s.meta.last_membership.clone(),
                    },
                )
            }
            None => (State::default(), AppliedMeta::default()),
        };
        let store = Store::new(state, meta);
        let sm = StateMachine {
            store: store.clone(),
            snapshot_dir,
            current: Arc::new(Mutex::new(loaded)),
            lock_delay_until_ms: Default::default(),
            disk_full,
        };
        Ok((sm, store))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let m = self.store.lock_meta().clone();
        Ok((m.last_applied, m.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommandResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        let mut changes = Changes::default();
        let mut last = None;
        let mut membership = None;
        {
            let store = self.store.clone();
            let mut state = store.state.write().unwrap_or_else(|e| e.into_inner());
            for entry in entries {
                last = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => responses.push(Vec::new()),
                    EntryPayload::Normal(proposal) => {
                        let index = entry.log_id.index;
                        let at = proposal.proposed_at_ms();
                        let results = proposal
                            .commands()
                            .iter()
                            .map(|cmd| self.apply_command(&mut state, index, at, cmd, &mut changes))
                            .collect();
                        responses.push(results);
                    }
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m));
                        responses.push(Vec::new());
                    }
                }
            }
            // Still under the state lock: a reader taking both (snapshots,
            // `read_with_applied`) must never see the new state with the
            // old applied index.
            let mut meta = store.lock_meta();
            if last.is_some() {
                meta.last_applied = last;
            }
            if let Some(m) = membership {
                meta.membership = m;
            }
        }
        self.store.publish(changes, last);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            snapshot_dir: self.snapshot_dir.clone(),
            current: self.current.clone(),
            disk_full: self.disk_full.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state: State = State::decode(&data).map_err(sm_err)?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        if let Some(dir) = &self.snapshot_dir {
            save_retrying(dir, &stored, &self.disk_full).await?;
        }
        {
            let mut guard = self.store.state.write().unwrap_or_else(|e| e.into_inner());
            *guard = state;
            self.store.forget_derived();
        }
        release_freed_heap();
        {
            let mut m = self.store.lock_meta();
            m.last_applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
        }
        // Everything may have changed: wake every watcher.
        self.store.catalog_hub.tree_changed("");
        self.store.publish(Changes { kv_trees: vec![String::new()], ..Changes::default() }, meta.last_log_id);
        *lock(&self.current) = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = lock(&self.current);
        Ok(current
            .as_ref()
            .map(|s| Snapshot { meta: s.meta.clone(), snapshot: Box::new(Cursor::new(s.data.clone())) }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serializes the state at the applied index into a snapshot.
pub struct SnapshotBuilder {
    store: Arc<Store>,
    snapshot_dir: Option<PathBuf>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    disk_full: DiskFull,
}

/// Saves a snapshot to disk, waiting and retrying while the disk is full
/// (openraft would stop on the error; see `consensus::disk_full`).
async fn save_retrying(
    dir: &std::path::Path,
    snap: &StoredSnapshot,
    disk_full: &DiskFull,
) -> Result<(), StorageError> {
    let (dir, snap) = (dir.to_path_buf(), snap.clone());
    let save = move || snapshot::save(&dir, &snap);
    let is_full = |e: &snapshot::SnapshotError| matches!(e, snapshot::SnapshotError::Io { source, .. } if crate::fsutil::is_disk_full(source));
    disk_full
        .retry_blocking("saving a raft snapshot", save, is_full)
        .await
        .map_err(snap_err)?
        .map_err(snap_err)?;
    Ok(())
}

/// Gives the heap the previous state occupied back to the kernel. After a
/// restore or an installed snapshot, glibc keeps the freed old state (and
/// the decode's temporaries) resident: a 5,000-node catalog's server went
/// from 250 MB to 520 MB on one `consul snapshot restore`, and 170 MB of
/// that was free heap. Restores are rare, so the trim's cost (a walk of the
/// free lists) does not matter.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free heap pages back to the kernel;
    // it touches no memory that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // Take the state and its applied index under one lock so they match.
        let (data, meta) = {
            let state = self.store.state.read().unwrap_or_else(|e| e.into_inner());
            let meta = self.store.lock_meta().clone();
            (postcard::to_allocvec(&*state).map_err(snap_err)?, meta)
        };
        let snapshot_id = match meta.last_applied {
            Some(l) => format!("{}-{}", l.leader_id.term, l.index),
            None => "0-0".to_string(),
        };
        let snap_meta =
            SnapshotMeta { last_log_id: meta.last_applied, last_membership: meta.membership, snapshot_id };
        let stored = StoredSnapshot { meta: snap_meta.clone(), data };
        if let Some(dir) = &self.snapshot_dir {
            save_retrying(dir, &stored, &self.disk_full).await?;
        }
        let data = stored.data.clone();
        *lock(&self.current) = Some(stored);
        Ok(Snapshot { meta: snap_meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::sessions::{Behavior, Session};
    use crate::catalog::types::{HealthCheck, Node, Registration};
    use crate::catalog::Proposal;
    use bytes::Bytes;

    fn entry(index: u64, proposal: Proposal) -> Entry {
        Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(proposal),
        }
    }

    fn lock(key: &str, session: &str) -> Command {
        Command::KvLock {
            key: key.into(),
            value: Bytes::from_static(b"v"),
            flags: 0,
            session: session.into(),
        }
    }

    fn session(id: &str) -> Command {
        Command::SessionCreate(Session {
            id: id.into(),
            node: "n1".into(),
            behavior: Behavior::Release,
            lock_delay_ns: 3_000_000_000,
            ..Default::default()
        })
    }

    /// F-2 in docs/reliability.md: an acquire proposed before the leader had
    /// applied an invalidation (so its early check passed) is still refused
    /// when applied after it, inside the lock-delay.
    #[tokio::test]
    async fn lock_delay_is_enforced_in_log_order() {
        let (mut sm, store) = StateMachine::open(None, DiskFull::default()).expect("open");
        let reg = Registration {
            node: Node { node: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
            checks: Vec::<HealthCheck>::new(),
            ..Default::default()
        };
        let t0 = 1_000_000u64;
        let setup = Proposal::Timed {
            at_unix_ms: t0,
            commands: vec![Command::Register(Box::new(reg)), session("a"), session("b"), lock("k", "a")],
        };
        let out = sm.apply(vec![entry(1, setup)]).await.expect("apply");
        assert_eq!(out[0][3], CommandResult::Bool(true));
        // Invalidation and the racing acquire land in the same batch, and in
        // the next one 10 ms later: both refused.
        let race = Proposal::Timed {
            at_unix_ms: t0 + 5,
            commands: vec![Command::SessionDestroy { id: "a".into() }, lock("k", "b")],
        };
        let later = Proposal::Timed { at_unix_ms: t0 + 15, commands: vec![lock("k", "b")] };
        let out = sm.apply(vec![entry(2, race), entry(3, later)]).await.expect("apply");
        assert_eq!(out[0][1], CommandResult::Bool(false), "acquire right after the invalidation");
        assert_eq!(out[1][0], CommandResult::Bool(false), "acquire 10 ms after the invalidation");
        assert_eq!(store.read(|s| s.kv.get("k").and_then(|e| e.session.clone())), None);
        // After the 3 s lock-delay (leader clock), the acquire succeeds.
        let after = Proposal::Timed { at_unix_ms: t0 + 5 + 3_000, commands: vec![lock("k", "b")] };
        let out = sm.apply(vec![entry(4, after)]).await.expect("apply");
        assert_eq!(out[0][0], CommandResult::Bool(true));
        // Entries from old logs carry no time and are applied as before.
        let old =
            Proposal::V1(vec![Command::SessionDestroy { id: "b".into() }, session("c"), lock("k", "c")]);
        let out = sm.apply(vec![entry(5, old)]).await.expect("apply");
        assert_eq!(out[0][2], CommandResult::Bool(true));
    }
}
