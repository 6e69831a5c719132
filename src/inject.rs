//! Test-only bug injection for the fault harness (tests/faults/). In a
//! build with the `test-hooks` feature, setting `CONSUL_RS_INJECT_BUG`
//! (comma-separated names) in an agent's environment turns on deliberately
//! wrong behaviour, so the harness can prove that it and its checkers catch
//! that class of bug. Unset, every guard is false and nothing here runs
//! beyond one environment read.
//!
//! Without the feature (every release build) `enabled` is a constant
//! `false`: no environment read, the variable's name is not even in the
//! binary, and the compiler drops the guarded code. The call sites are the
//! same in both builds, so they need no `cfg` of their own.
//!
//! Owns only the switch and the helpers the guarded sites call; the sites
//! themselves (one `if crate::inject::enabled(..)` each) live in
//! `server/mod.rs` (local-reads, no-lock-delay), `consensus/state_machine.rs`
//! (no-lock-delay) and `consensus/wal.rs` (ack-before-fsync). Must never be
//! set in production: the agent logs a loud warning the first time it
//! consults the switch.

#[cfg(feature = "test-hooks")]
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
#[cfg(feature = "test-hooks")]
use std::sync::{Mutex, OnceLock};
#[cfg(feature = "test-hooks")]
use std::time::{Duration, Instant};

/// The environment variable naming the bugs to inject.
#[cfg(feature = "test-hooks")]
pub const ENV: &str = "CONSUL_RS_INJECT_BUG";

/// A deliberately injected bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Default-consistency reads are answered from local state on any
    /// server, without asking the leader for a read index.
    LocalReads,
    /// Raft log appends are acknowledged without `fdatasync`; the data
    /// reaches disk only when an emulated kernel writeback flushes it.
    AckBeforeFsync,
    /// A lock on a key whose holder's session was invalidated can be taken
    /// again at once: the session's lock-delay is ignored.
    NoLockDelay,
}

impl Bug {
    pub const ALL: [Bug; 3] = [Bug::LocalReads, Bug::AckBeforeFsync, Bug::NoLockDelay];

    /// The name used in `CONSUL_RS_INJECT_BUG`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::LocalReads => "local-reads",
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::NoLockDelay => "no-lock-delay",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name.trim())
    }

    #[cfg(feature = "test-hooks")]
    fn effect(self) -> &'static str {
        match self {
            Bug::LocalReads => "default-consistency reads are served from local state without the leader",
            Bug::AckBeforeFsync => "raft log appends are acknowledged before (and without) fsync",
            Bug::NoLockDelay => "KV lock-delay after session invalidation is ignored",
        }
    }
}

#[cfg(feature = "test-hooks")]
static ENABLED: OnceLock<Vec<Bug>> = OnceLock::new();

#[cfg(feature = "test-hooks")]
fn parse_list(raw: &str) -> (Vec<Bug>, Vec<String>) {
    let mut bugs = Vec::new();
    let mut unknown = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match Bug::parse(part) {
            Some(b) if !bugs.contains(&b) => bugs.push(b),
            Some(_) => {}
            None => unknown.push(part.to_string()),
        }
    }
    (bugs, unknown)
}

#[cfg(feature = "test-hooks")]
fn load() -> Vec<Bug> {
    let Ok(raw) = std::env::var(ENV) else { return Vec::new() };
    let (bugs, unknown) = parse_list(&raw);
    for name in unknown {
        tracing::warn!(target: "agent", name = %name, "ignoring unknown bug name in {ENV}");
    }
    for b in &bugs {
        tracing::warn!(target: "agent", bug = b.name(), "TEST-ONLY BUG INJECTED: {}; never run this in production", b.effect());
    }
    bugs
}

/// Whether `bug` is injected in this process. Reads the environment once;
/// the first call logs every injected bug at WARN.
#[cfg(feature = "test-hooks")]
pub fn enabled(bug: Bug) -> bool {
    ENABLED.get_or_init(load).contains(&bug)
}

/// Without `test-hooks` no bug can be injected: a constant, so every guarded
/// branch is dead code the compiler removes.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub const fn enabled(_bug: Bug) -> bool {
    false
}

/// How old written bytes must be before the emulated kernel writeback has
/// made them durable (`ack-before-fsync`). Linux writes dirty pages back
/// after about 30 s; 3 s keeps the window of acknowledged but volatile
/// entries short, yet always there while appends flow.
#[cfg(feature = "test-hooks")]
const WRITEBACK_AFTER: Duration = Duration::from_secs(3);

#[cfg(feature = "test-hooks")]
#[derive(Default)]
struct SegmentSync {
    /// Bytes an emulated power loss keeps.
    synced_len: u64,
    /// Appends not yet written back: (when, end offset).
    pending: VecDeque<(Instant, u64)>,
}

#[cfg(feature = "test-hooks")]
static SEGMENTS: OnceLock<Mutex<HashMap<PathBuf, SegmentSync>>> = OnceLock::new();

/// The file next to a WAL segment that records how many of its bytes are
/// durable while `ack-before-fsync` is injected. The harness reads it to
/// emulate a power loss (cut every byte past it); it is not part of the WAL
/// format and the WAL ignores it.
pub fn synced_marker(segment: &Path) -> PathBuf {
    let mut name = segment.as_os_str().to_owned();
    name.push(".synced");
    PathBuf::from(name)
}

/// Called instead of `fdatasync` by a WAL append under `ack-before-fsync`:
/// bytes `[start, end)` of `segment` were written but not synced. Emulates
/// a disk whose kernel writes data back `WRITEBACK_AFTER` after it was
/// written, and publishes the durable length in `synced_marker(segment)`.
/// Bytes the file already had when this process first appended to it count
/// as durable (an earlier incarnation wrote them).
#[cfg(feature = "test-hooks")]
pub fn unsynced_append(segment: &Path, start: u64, end: u64) {
    let map = SEGMENTS.get_or_init(Mutex::default);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let state = map
        .entry(segment.to_path_buf())
        .or_insert(SegmentSync { synced_len: start, pending: VecDeque::new() });
    // A truncation synced the file at `start`: nothing past it survives.
    state.synced_len = state.synced_len.min(start);
    state.pending.retain(|(_, e)| *e <= start);
    state.pending.push_back((now, end));
    while let Some((at, e)) = state.pending.front().copied() {
        if now.duration_since(at) < WRITEBACK_AFTER {
            break;
        }
        state.synced_len = e;
        state.pending.pop_front();
    }
    let marker = synced_marker(segment);
    let tmp = synced_marker(&marker);
    let written =
        std::fs::write(&tmp, state.synced_len.to_string()).and_then(|()| std::fs::rename(&tmp, &marker));
    if let Err(e) = written {
        tracing::warn!(target: "agent.server.raft", path = %marker.display(), error = %e, "failed to record the synced length");
    }
}

/// Without `test-hooks` its only caller sits behind `enabled(..)`, which is
/// constant `false` then: it is never called and does nothing.
#[cfg(not(feature = "test-hooks"))]
pub fn unsynced_append(_segment: &Path, _start: u64, _end: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "test-hooks")]
    fn names_round_trip_and_unknown_names_are_reported() {
        for b in Bug::ALL {
            assert_eq!(Bug::parse(b.name()), Some(b));
        }
        let (bugs, unknown) = parse_list(" local-reads, nope ,local-reads,no-lock-delay");
        assert_eq!(bugs, vec![Bug::LocalReads, Bug::NoLockDelay]);
        assert_eq!(unknown, vec!["nope".to_string()]);
    }

    #[test]
    fn marker_sits_next_to_the_segment() {
        assert_eq!(synced_marker(Path::new("/d/wal/0001.seg")), PathBuf::from("/d/wal/0001.seg.synced"));
    }
}
