//! openraft's `RaftLogStorage` over the segmented WAL (or over memory with
//! `-dev`), plus the vote, committed and purged pointers.
//!
//! Durability contract: `append` returns (and calls openraft's flushed
//! callback) only after the entries are synced to disk; `save_vote` syncs
//! before returning. The committed pointer is only a hint for faster
//! restarts and is written without a sync, by a task of its own (openraft's
//! core saves it between a commit and its apply, so a file write there
//! delayed every write's answer): losing it loses nothing. A node
//! restarted as leader of its old term may then underestimate what was
//! committed, so reads wait for the leadership barrier (an entry of the
//! leader's own term committed and applied, `reads::run_term_barriers`).

use super::disk_full::DiskFull;
use super::typ::{Entry, LogId, LogState, StorageError, TypeConfig, Vote};
use super::wal::{Loc, Wal, WalError, WalReader};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogId, RaftLogReader, StorageIOError};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Recent entries kept decoded in memory for replication reads.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Index {
    /// Index of `locs[0]` (disk mode).
    first: u64,
    locs: VecDeque<Loc>,
    cache: BTreeMap<u64, (Entry, usize)>,
    cache_bytes: usize,
    last_log_id: Option<LogId>,
    purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

struct Inner {
    /// `None` in memory mode (`-dev`).
    disk: Option<Disk>,
    index: RwLock<Index>,
    /// Set while an append or vote write waits for disk space.
    disk_full: DiskFull,
    /// Sends a leader's new entries to the voters while it syncs them.
    speculator: std::sync::OnceLock<Arc<super::speculate::Speculator>>,
    /// The latest committed pointer, for the task that writes the hint.
    committed_hint: std::sync::OnceLock<tokio::sync::watch::Sender<Option<LogId>>>,
    /// Test hook: while true, appends wait before writing (a held fsync).
    #[cfg(feature = "test-hooks")]
    hold: tokio::sync::watch::Sender<bool>,
}

struct Disk {
    meta_dir: PathBuf,
    wal: Mutex<Wal>,
    reader: WalReader,
}

/// The Raft log store. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

fn sto_read(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string())).into()
}

fn sto_write(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(openraft::AnyError::error(e.to_string())).into()
}

impl LogStore {
    /// An in-memory log for `-dev`.
    pub fn memory() -> LogStore {
        LogStore {
            inner: Arc::new(Inner {
                disk: None,
                index: RwLock::default(),
                disk_full: DiskFull::default(),
                speculator: std::sync::OnceLock::new(),
                committed_hint: std::sync::OnceLock::new(),
                #[cfg(feature = "test-hooks")]
                hold: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Opens the log under `raft_dir` (`wal/` and `meta/`), recovering a
    /// torn tail. Returns how many torn bytes were cut, for the log.
    pub fn open(raft_dir: &Path) -> Result<(LogStore, u64), String> {
        let wal_dir = raft_dir.join("wal");
        let meta_dir = raft_dir.join("meta");
        std::fs::create_dir_all(&meta_dir).map_err(|e| format!("{}: {e}", meta_dir.display()))?;
        let (wal, report) = Wal::open(&wal_dir).map_err(|e| e.to_string())?;
        let reader = wal.reader();
        let mut idx = Index {
            vote: read_meta(&meta_dir.join("vote"))?,
            committed: read_meta(&meta_dir.join("committed")).unwrap_or(None),
            purged: read_meta(&meta_dir.join("purged"))?,
            ..Index::default()
        };
        let purged_index = idx.purged.map(|l| l.index);
        let mut expected: Option<u64> = None;
        for rec in report.records {
            if purged_index.is_some_and(|p| rec.index <= p) {
                continue;
            }
            if let Some(want) = expected {
                if rec.index != want {
                    return Err(format!(
                        "raft log has a gap: expected index {want}, found {}; refusing to start",
                        rec.index
                    ));
                }
            } else {
                if let Some(p) = purged_index {
                    if rec.index != p + 1 {
                        return Err(format!(
                            "raft log starts at index {} but entries through {p} were purged; refusing to start",
                            rec.index
                        ));
                    }
                }
                idx.first = rec.index;
            }
            expected = Some(rec.index + 1);
            idx.locs.push_back(rec.loc);
        }
        if let Some(last) = idx.locs.back() {
            let bytes = reader.read(*last).map_err(|e| e.to_string())?;
            let entry: Entry =
                postcard::from_bytes(&bytes).map_err(|e| format!("decoding last raft log entry: {e}"))?;
            idx.last_log_id = Some(entry.log_id);
        } else {
            idx.last_log_id = idx.purged;
            idx.first = purged_index.map(|p| p + 1).unwrap_or(1);
        }
        let store = LogStore {
            inner: Arc::new(Inner {
                disk: Some(Disk { meta_dir, wal: Mutex::new(wal), reader }),
                index: RwLock::new(idx),
                disk_full: DiskFull::default(),
                speculator: std::sync::OnceLock::new(),
                committed_hint: std::sync::OnceLock::new(),
                #[cfg(feature = "test-hooks")]
                hold: tokio::sync::watch::channel(false).0,
            }),
        };
        Ok((store, report.torn_tail_bytes))
    }

    /// Set while a write of this log waits for disk space (shared with the
    /// state machine's snapshot writes).
    pub fn disk_full(&self) -> &DiskFull {
        &self.inner.disk_full
    }

    /// Test hook: while `on`, every append waits before it writes, as if
    /// its fsync took that long (tests of what a slow disk must not delay).
    #[cfg(feature = "test-hooks")]
    pub fn hold_appends(&self, on: bool) {
        self.inner.hold.send_replace(on);
    }

    /// Test hook: how many appends are waiting in `hold_appends`.
    #[cfg(feature = "test-hooks")]
    pub fn held_appends(&self) -> usize {
        self.inner.hold.receiver_count()
    }

    /// From now on, a leader's appends are sent ahead to the voters (see
    /// `speculate`). Memory-mode logs have no sync to overlap.
    pub(super) fn set_speculator(&self, s: Arc<super::speculate::Speculator>) {
        if self.inner.disk.is_some() {
            let _ = self.inner.speculator.set(s);
        }
    }

    /// The vote as last saved (updated before `save_vote` returns, so
    /// before openraft answers a candidate it granted).
    pub fn vote(&self) -> Option<Vote> {
        self.read_index().vote
    }

    /// The last log id (for `consul info`).
    pub fn last_log_id(&self) -> Option<LogId> {
        self.read_index().last_log_id
    }

    /// The last committed log id this node knows of (for `consul info`).
    pub fn committed(&self) -> Option<LogId> {
        self.read_index().committed
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.inner.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.inner.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The entries with indexes in `[start, end)` that the log holds: what
    /// openraft's reader returns (public for the fuzzing harness).
    pub fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let mut out = Vec::new();
        let mut misses: Vec<(u64, Loc)> = Vec::new();
        {
            let idx = self.read_index();
            let last = idx.last_log_id.map(|l| l.index).unwrap_or(0);
            let lo = start.max(idx.purged.map(|p| p.index + 1).unwrap_or(0));
            let hi = end.min(last + 1);
            for i in lo..hi {
                if let Some((e, _)) = idx.cache.get(&i) {
                    out.push((i, Some(e.clone())));
                } else if self.inner.disk.is_some() && i >= idx.first {
                    match idx.locs.get((i - idx.first) as usize) {
                        Some(loc) => {
                            misses.push((i, *loc));
                            out.push((i, None));
                        }
                        None => break,
                    }
                } else {
                    break;
                }
            }
        }
        if !misses.is_empty() {
            let Some(disk) = &self.inner.disk else { return Err(sto_read("log entry missing")) };
            let mut decoded = BTreeMap::new();
            for (i, loc) in misses {
                let bytes = disk.reader.read(loc).map_err(sto_read)?;
                let entry: Entry = postcard::from_bytes(&bytes).map_err(sto_read)?;
                decoded.insert(i, entry);
            }
            for (i, slot) in out.iter_mut() {
                if slot.is_none() {
                    *slot = decoded.remove(i);
                }
            }
        }
        Ok(out.into_iter().filter_map(|(_, e)| e).collect())
    }

    fn save_meta<T: serde::Serialize>(
        &self,
        name: &str,
        value: &T,
        durable: bool,
    ) -> Result<(), StorageError> {
        self.write_meta(name, value, durable).map_err(sto_write)
    }

    fn write_meta<T: serde::Serialize>(&self, name: &str, value: &T, durable: bool) -> std::io::Result<()> {
        let Some(disk) = &self.inner.disk else { return Ok(()) };
        let bytes = serde_json::to_vec(value)?;
        crate::fsutil::write_atomic(&disk.meta_dir.join(name), &bytes, durable)?;
        if durable {
            crate::metrics::incr("consul.raft.meta.syncs", 1);
        }
        Ok(())
    }

    /// Appends to the WAL; while that fails for lack of space, waits and
    /// tries again (a failed append left the WAL's length unchanged, so the
    /// retry rewrites the same bytes at the same offset and syncs them).
    /// Any other error is returned (and is fatal to openraft).
    async fn append_retrying(&self, records: Vec<(u64, Vec<u8>)>) -> Result<Vec<Loc>, StorageError> {
        let this = self.clone();
        let append = move || -> Result<Vec<Loc>, WalError> {
            let Some(disk) = &this.inner.disk else { return Ok(Vec::new()) };
            let mut wal = disk.wal.lock().unwrap_or_else(|e| e.into_inner());
            wal.append(&records)
        };
        self.inner
            .disk_full
            .retry_blocking("appending to the raft log", append, WalError::is_disk_full)
            .await
            .map_err(sto_write)?
            .map_err(sto_write)
    }

    /// Hands the committed pointer to the task that writes its hint file
    /// (started on first use), so the caller (openraft's core, between a
    /// commit and its apply) never waits for a file write. The task writes
    /// the latest value it has when it gets to it, so values only grow.
    fn hint_committed(&self, committed: Option<LogId>) {
        let Some(disk) = &self.inner.disk else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside a runtime (tools and tests): write it here.
            if let Err(e) = self.save_meta("committed", &committed, false) {
                tracing::warn!(target: "agent.server.raft", error = %e, "failed to save the committed index hint");
            }
            return;
        };
        let tx = self.inner.committed_hint.get_or_init(|| {
            let (tx, rx) = tokio::sync::watch::channel(committed);
            runtime.spawn(write_committed_hints(disk.meta_dir.join("committed"), rx));
            tx
        });
        tx.send_replace(committed);
    }

    fn insert_cached(idx: &mut Index, entries: Vec<(Entry, usize)>, disk_mode: bool) {
        for (e, size) in entries {
            idx.last_log_id = Some(e.log_id);
            idx.cache_bytes += size;
            idx.cache.insert(e.log_id.index, (e, size));
        }
        if disk_mode {
            while idx.cache_bytes > CACHE_BYTES {
                let Some((_, (_, size))) = idx.cache.pop_first() else { break };
                idx.cache_bytes -= size;
            }
        }
    }
}

/// Least time between two writes of the committed hint. Each write creates
/// and renames a file; on ext4 the next WAL `fdatasync` commits that
/// metadata in its journal transaction, so a hint per write made every
/// write's sync (on all three servers sharing a disk in the benchmarks)
/// carry it. A hint at most this old costs a restart nothing but applying
/// those entries when the leader next says they are committed.
const HINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Writes the latest committed pointer `rx` holds to `path` (no sync: a
/// hint, see the module doc), at most once per `HINT_EVERY`; ends when the
/// log store is gone. Holds only the path, not the store, so it does not
/// keep the store alive.
async fn write_committed_hints(path: PathBuf, mut rx: tokio::sync::watch::Receiver<Option<LogId>>) {
    // The value the channel was created with counts as a change.
    rx.mark_changed();
    while rx.changed().await.is_ok() {
        let committed = *rx.borrow_and_update();
        let path = path.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(&committed)?;
            crate::fsutil::write_atomic(&path, &bytes, false)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(target: "agent.server.raft", error = %e, "failed to save the committed index hint")
            }
            Err(_) => return,
        }
        tokio::time::sleep(HINT_EVERY).await;
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match crate::fsutil::read_optional(path) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: unreadable ({e}); refusing to start", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(x) => x.saturating_add(1),
        Bound::Excluded(x) => *x,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = range_to_bounds(&range);
        self.read_entries(start, end)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let idx = self.read_index();
        Ok(LogState { last_purged_log_id: idx.purged, last_log_id: idx.last_log_id.or(idx.purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote_err = |e| StorageError::from_io_error(ErrorSubject::Vote, ErrorVerb::Write, e);
        let (this, v) = (self.clone(), *vote);
        let write = move || this.write_meta("vote", &v, true);
        self.inner
            .disk_full
            .retry_blocking("saving the raft vote", write, crate::fsutil::is_disk_full)
            .await
            .map_err(|e| vote_err(std::io::Error::other(e)))?
            .map_err(vote_err)?;
        self.write_index().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.read_index().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_index().committed = committed;
        self.hint_committed(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_index().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        #[cfg(feature = "test-hooks")]
        {
            let mut held = self.inner.hold.subscribe();
            let _ = held.wait_for(|on| !*on).await;
        }
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let Some(s) = self.inner.speculator.get() {
            let (vote, prev, committed) = {
                let idx = self.read_index();
                (idx.vote, idx.last_log_id, idx.committed)
            };
            s.appending(vote, prev, committed, &entries);
        }
        let mut encoded = Vec::with_capacity(entries.len());
        for e in &entries {
            encoded.push((e.get_log_id().index, postcard::to_allocvec(e).map_err(sto_write)?));
        }
        let sizes: Vec<usize> = encoded.iter().map(|(_, b)| b.len()).collect();
        let locs = match &self.inner.disk {
            None => Vec::new(),
            Some(_) => {
                let locs = self.append_retrying(encoded).await?;
                crate::metrics::incr("consul.raft.wal.syncs", 1);
                crate::metrics::incr("consul.raft.wal.entries", locs.len() as u64);
                locs
            }
        };
        {
            let disk_mode = self.inner.disk.is_some();
            let mut idx = self.write_index();
            if disk_mode {
                if idx.locs.is_empty() {
                    if let Some(first) = entries.first() {
                        idx.first = first.log_id.index;
                    }
                }
                idx.locs.extend(locs);
            }
            LogStore::insert_cached(&mut idx, entries.into_iter().zip(sizes).collect(), disk_mode);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let from = log_id.index;
        // The entry before `from` becomes the last one (entries before it are untouched).
        let prev = if from == 0 { None } else { self.read_entries(from - 1, from)?.pop().map(|e| e.log_id) };
        let cut_loc = {
            let idx = self.read_index();
            if from >= idx.first {
                idx.locs.get((from - idx.first) as usize).copied()
            } else {
                None
            }
        };
        if let (Some(loc), Some(_)) = (cut_loc, &self.inner.disk) {
            let this = self.clone();
            tokio::task::spawn_blocking(move || -> Result<(), WalError> {
                let Some(disk) = &this.inner.disk else { return Ok(()) };
                disk.wal.lock().unwrap_or_else(|e| e.into_inner()).truncate_at(loc)
            })
            .await
            .map_err(sto_write)?
            .map_err(sto_write)?;
        }
        let mut idx = self.write_index();
        if from >= idx.first {
            let keep = (from - idx.first) as usize;
            idx.locs.truncate(keep);
        }
        let removed: Vec<u64> = idx.cache.range(from..).map(|(k, _)| *k).collect();
        for k in removed {
            if let Some((_, size)) = idx.cache.remove(&k) {
                idx.cache_bytes -= size;
            }
        }
        idx.last_log_id = prev.or(idx.purged);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point durably first: a restart must never find
        // a hole between it and the first entry on disk.
        let this = self.clone();
        let lid = log_id;
        tokio::task::spawn_blocking(move || this.save_meta("purged", &Some(lid), true))
            .await
            .map_err(sto_write)??;
        {
            let mut idx = self.write_index();
            idx.purged = Some(log_id);
            if idx.last_log_id.is_none_or(|l| l.index < log_id.index) {
                idx.last_log_id = Some(log_id);
            }
            let keep_from = log_id.index + 1;
            if idx.first < keep_from {
                let drop_n = ((keep_from - idx.first) as usize).min(idx.locs.len());
                idx.locs.drain(..drop_n);
                idx.first = keep_from;
            }
            let stale: Vec<u64> = idx.cache.range(..keep_from).map(|(k, _)| *k).collect();
            for k in stale {
                if let Some((_, size)) = idx.cache.remove(&k) {
                    idx.cache_bytes -= size;
                }
            }
        }
        if self.inner.disk.is_some() {
            let this = self.clone();
            let keep_from = log_id.index + 1;
            tokio::task::spawn_blocking(move || -> Result<usize, WalError> {
                let Some(disk) = &this.inner.disk else { return Ok(0) };
                disk.wal.lock().unwrap_or_else(|e| e.into_inner()).purge_before(keep_from)
            })
            .await
            .map_err(sto_write)?
            .map_err(sto_write)?;
        }
        Ok(())
    }
}
