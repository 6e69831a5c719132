//! Manual outage recovery: `raft/peers.json`.
//!
//! When a majority of servers is lost for good, the survivors cannot elect
//! a leader and no Raft operation can remove the dead. The operator stops
//! every surviving server, puts the same `raft/peers.json` on each (by hand
//! or with `consul operator raft recover`) and starts them. At start, before
//! Raft runs, this module replaces the server's Raft configuration with the
//! file's, deletes the file and logs what it did. A malformed file, a file
//! without a voter, or one that does not list this server stops the agent
//! with the reason, leaves the file in place and changes nothing.
//!
//! # How the configuration is replaced
//!
//! openraft has no recovery call; it takes the newest membership from the
//! log (or the snapshot). So we append one membership entry after the last
//! entry and raise the vote above it:
//!
//! * index = last index + 1, where "last" is the newest of the log and the
//!   snapshot (if the snapshot is newer, the log is purged up to it first,
//!   as openraft itself would do at start);
//! * log id leader = (last term + 2^32, the leader that wrote the last
//!   entry);
//! * vote = (that term + 1, this server), saved durably before the entry is
//!   written (a vote above the log is harmless; a log above the vote is not).
//!
//! The entry is not committed. The first leader of the new configuration
//! commits it (or replaces it with its own copy) like any other entry.
//!
//! # Why this is safe enough, given the same file on every survivor
//!
//! * No two different entries share a log id. openraft's log ids carry the
//!   leader's node id as well as the term. The pair (T, L) with
//!   T = t + 2^32 is never used by a real leader: L led term t, and reaching
//!   term t + 2^32 takes 2^32 elections (over a century at one per second).
//!   Two survivors write the same log id only if their last entries were
//!   the same (t, L, i), which by Raft's log matching means identical logs
//!   before it; they then write the same configuration if they read the
//!   same file and know the same servers.
//! * The most up-to-date survivor wins the first election. Recovery ids
//!   order exactly as the survivors' last entries did (the same offset is
//!   added to every term, the leader and the index are kept), so no entry a
//!   survivor holds is overwritten by a survivor with less. In particular
//!   nothing that was committed and survived on any server is lost.
//! * Every survivor counts the same quorum: each listed server is a voter
//!   on each survivor, even one nobody knows yet (see `resolve`), so no
//!   survivor can elect itself with a smaller quorum than the others.
//!
//! What recovery cannot do: entries that only dead servers held are gone,
//! and entries that were never committed may become committed (as with
//! Consul). A dead server must never come back with its old data.
//!
//! Owns: reading this server's Raft state offline, building and writing the
//! recovery entry, and the peers.json life cycle. Must not run while Raft
//! runs (the daemon calls it before `Consensus::start`; the CLI holds the
//! data dir lock). The file format is `peers_file`, the id rules `resolve`.

mod peers_file;
mod resolve;

pub use peers_file::{
    check_specs, parse as parse_peers_json, parse_address, parse_id, render_addresses, render_ids, PeerSpec,
    Written,
};
pub use resolve::{placeholder_id, resolve, Known, Me, RecoveredServer, Source};

use super::log_store::LogStore;
use super::snapshot::{self, StoredSnapshot};
use super::typ::{raft_id, Entry, LogId, NodeId, RaftNode, Vote};
use super::wal::Wal;
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file name, in `data_dir/raft/`.
pub const PEERS_FILE: &str = "peers.json";
/// How far a recovery entry's term jumps past the last entry's.
pub const TERM_GAP: u64 = 1 << 32;
/// Refuse absurd files rather than read them into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;
const TARGET: &str = "agent.server.raft";

/// Where peers.json lives for a Raft directory.
pub fn peers_path(raft_dir: &Path) -> PathBuf {
    raft_dir.join(PEERS_FILE)
}

/// This server's Raft state as it is on disk.
#[derive(Clone, Debug, Default)]
pub struct LocalState {
    /// Last entry in the log (or the purge point when the log is empty).
    pub log_last: Option<LogId>,
    /// Last entry the newest snapshot covers.
    pub snapshot_last: Option<LogId>,
    pub vote: Option<Vote>,
    /// The newest configuration, from the log or the snapshot.
    pub config: Option<Membership<NodeId, RaftNode>>,
}

impl LocalState {
    /// The newest entry this server has, in the log or in a snapshot.
    pub fn last(&self) -> Option<LogId> {
        self.log_last.max(self.snapshot_last)
    }

    /// Every server of the newest configuration.
    pub fn config_nodes(&self) -> BTreeMap<NodeId, RaftNode> {
        self.config.as_ref().map(|m| m.nodes().map(|(id, n)| (*id, n.clone())).collect()).unwrap_or_default()
    }
}

/// Reads the log state, the vote and the newest configuration.
async fn read_state(log: &mut LogStore, snap: Option<&StoredSnapshot>) -> Result<LocalState, String> {
    let st = log.get_log_state().await.map_err(|e| format!("reading the raft log: {e}"))?;
    let vote = log.read_vote().await.map_err(|e| format!("reading the raft vote: {e}"))?;
    let first = st.last_purged_log_id.map(|l| l.index + 1).unwrap_or(0);
    let mut end = st.last_log_id.map(|l| l.index + 1).unwrap_or(0);
    let mut in_log: Option<(LogId, Membership<NodeId, RaftNode>)> = None;
    // Newest membership entry, scanning back in chunks.
    'scan: while end > first {
        let start = end.saturating_sub(64).max(first);
        let entries =
            log.try_get_log_entries(start..end).await.map_err(|e| format!("reading the raft log: {e}"))?;
        for e in entries.iter().rev() {
            if let EntryPayload::Membership(m) = &e.payload {
                in_log = Some((e.log_id, m.clone()));
                break 'scan;
            }
        }
        end = start;
    }
    let in_snap = snap
        .map(|s| (s.meta.last_membership.log_id().to_owned(), s.meta.last_membership.membership().clone()));
    let config = match (in_log, in_snap) {
        (Some((lid, m)), Some((sid, sm))) => Some(if Some(lid) >= sid { m } else { sm }),
        (Some((_, m)), None) => Some(m),
        (None, Some((_, sm))) => Some(sm),
        (None, None) => None,
    };
    Ok(LocalState {
        log_last: st.last_log_id,
        snapshot_last: snap.and_then(|s| s.meta.last_log_id),
        vote,
        config,
    })
}

/// Reads the member names and IPs of `data_dir/serf/local.snapshot`. Only a
/// hint: an unreadable file is logged and ignored.
fn gossip_hints(data_dir: &Path) -> Vec<(String, std::net::IpAddr)> {
    let path = data_dir.join("serf").join("local.snapshot");
    match crate::gossip::files::read_snapshot(&path) {
        Ok(Some(s)) => s.alive.into_iter().map(|(name, addr)| (name, addr.ip())).collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(target: TARGET, error = %e, "ignoring the gossip snapshot while resolving peers.json");
            Vec::new()
        }
    }
}

/// Opens this server's Raft state offline (the data dir must be locked
/// and Raft not running). Returns the open log for writing.
async fn open(raft_dir: &Path) -> Result<(LogStore, Option<StoredSnapshot>, LocalState), String> {
    let (mut log, torn) = LogStore::open(raft_dir)?;
    if torn > 0 {
        tracing::warn!(target: TARGET, bytes = torn, "discarded a torn tail of the raft log (an unacknowledged write cut short by a crash)");
    }
    let snap =
        snapshot::load_latest(&raft_dir.join("snapshots")).map_err(|e| format!("{e}; refusing to start"))?;
    let state = read_state(&mut log, snap.as_ref()).await?;
    Ok((log, snap, state))
}

/// What this server knows, for the offline `recover` command.
pub async fn inspect(raft_dir: &Path, data_dir: &Path) -> Result<(LocalState, Known), String> {
    let (_, _, state) = open(raft_dir).await?;
    let known = Known { config: state.config_nodes(), gossip: gossip_hints(data_dir) };
    Ok((state, known))
}

/// The entry that installs `servers` as the configuration, and the vote
/// to save before it (see the module doc for the numbers).
pub fn recovery_entry(
    state: &LocalState,
    servers: &[RecoveredServer],
    me: NodeId,
) -> Result<(Entry, Vote), String> {
    let last = state.last().ok_or("this server has no raft state")?;
    let vote_term = state.vote.map(|v| v.leader_id().term).unwrap_or(0);
    let overflow = || "raft term overflow".to_string();
    let term = last
        .leader_id
        .term
        .checked_add(TERM_GAP)
        .ok_or_else(overflow)?
        .max(vote_term.checked_add(1).ok_or_else(overflow)?);
    let voters: BTreeSet<NodeId> = servers.iter().filter(|s| s.voter).map(|s| s.id).collect();
    let nodes: BTreeMap<NodeId, RaftNode> = servers.iter().map(|s| (s.id, s.node.clone())).collect();
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, last.leader_id.node_id), last.index + 1),
        payload: EntryPayload::Membership(Membership::new(vec![voters], nodes)),
    };
    let vote = Vote::new(term.checked_add(1).ok_or_else(overflow)?, me);
    Ok((entry, vote))
}

/// Writes `entry` as the next record of the WAL. Everything already in the
/// WAL is either right before it or covered by the purge point (then the
/// old records are dropped, so the WAL never has a gap).
fn append_entry(raft_dir: &Path, entry: &Entry) -> Result<(), String> {
    let dir = raft_dir.join("wal");
    let (mut wal, report) = Wal::open(&dir).map_err(|e| e.to_string())?;
    let index = entry.log_id.index;
    if let Some(last) = report.records.last() {
        if last.index >= index {
            return Err(format!(
                "internal error: the raft log already holds index {} (recovery entry {index})",
                last.index
            ));
        }
        if last.index + 1 != index {
            wal.clear().map_err(|e| e.to_string())?;
        }
    }
    let payload = postcard::to_allocvec(entry).map_err(|e| format!("encoding the recovery entry: {e}"))?;
    wal.append(&[(index, payload)]).map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads peers.json if it exists (bounded).
fn read_peers_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return Err(format!(
                "recovery failed to parse peers.json ({}): the file is too large ({} bytes)",
                path.display(),
                m.len()
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("recovery failed to read {}: {e}", path.display())),
    }
    std::fs::read(path).map(Some).map_err(|e| format!("recovery failed to read {}: {e}", path.display()))
}

/// Who this server is, from its Raft node.
pub fn me_from_node(node: &RaftNode) -> Result<Me, String> {
    let uuid =
        uuid::Uuid::parse_str(&node.node_id).map_err(|e| format!("node id {:?}: {e}", node.node_id))?;
    Ok(Me {
        id: raft_id(&uuid),
        node_id: uuid.to_string(),
        name: node.name.clone(),
        addr: node.addr.parse().ok(),
    })
}

/// At start, before Raft: applies `raft/peers.json` if present. Returns the
/// recovered configuration, or `None` when there is no file.
pub async fn recover_at_start(
    raft_dir: &Path,
    data_dir: &Path,
    this: &RaftNode,
) -> Result<Option<Vec<RecoveredServer>>, String> {
    let path = peers_path(raft_dir);
    let Some(bytes) = read_peers_file(&path)? else { return Ok(None) };
    let untouched = "the file was left in place and nothing was changed";
    tracing::warn!(target: TARGET, path = %path.display(), "found peers.json file, recovering Raft configuration...");
    let specs = parse_peers_json(&bytes)
        .map_err(|e| format!("recovery failed to parse peers.json ({}): {e}; {untouched}", path.display()))?;
    let me = me_from_node(this)?;
    let (mut log, _snap, state) = open(raft_dir).await?;
    if state.last().is_none() {
        return Err(format!(
            "refusing to recover from peers.json ({}): this server has no Raft data yet, so there is nothing to recover; remove the file to start it as a new server; {untouched}",
            path.display()
        ));
    }
    let known = Known { config: state.config_nodes(), gossip: gossip_hints(data_dir) };
    let servers = resolve(&specs, &me, &known)
        .map_err(|e| format!("recovery failed: peers.json ({}): {e}; {untouched}", path.display()))?;
    let (entry, vote) = recovery_entry(&state, &servers, me.id)?;

    // From here on the Raft state changes: vote first, then the entry.
    log.save_vote(&vote).await.map_err(|e| format!("recovery failed saving the vote: {e}"))?;
    if let (Some(snap_last), true) = (state.snapshot_last, state.snapshot_last > state.log_last) {
        log.purge(snap_last)
            .await
            .map_err(|e| format!("recovery failed purging the log up to the snapshot: {e}"))?;
    }
    drop(log);
    append_entry(raft_dir, &entry)
        .map_err(|e| format!("recovery failed writing the new configuration: {e}"))?;
    for s in &servers {
        tracing::warn!(
            target: TARGET,
            id = %s.node.node_id,
            name = %s.node.name,
            address = %s.node.addr,
            voter = s.voter,
            from = s.source.describe(),
            "recovered raft configuration: server"
        );
    }
    tracing::warn!(target: TARGET, index = entry.log_id.index, term = entry.log_id.leader_id.term, "recovered raft configuration written to the log");
    std::fs::remove_file(&path).map_err(|e| {
        format!(
            "recovery succeeded but failed to delete {}; delete it by hand before the next start: {e}",
            path.display()
        )
    })?;
    let _ = crate::fsutil::sync_dir(raft_dir);
    tracing::warn!(target: TARGET, "deleted peers.json file after successful recovery");
    Ok(Some(servers))
}

#[cfg(test)]
mod tests;
