//! The two files the gossip layer keeps in `data_dir/serf/`:
//!
//! * keyring (`local.keyring` / `remote.keyring`): Consul's format, a JSON
//!   array of base64 keys, primary first, written with mode 0600;
//! * snapshot (`local.snapshot` / `remote.snapshot`): our own format, one
//!   JSON object:
//!   `{"version":1,"node":"n1","left":false,"member_time":7,"event_time":3,
//!     "query_time":1,"alive":[{"name":"n2","addr":"10.0.0.2:8301"}]}`.
//!   It records the Lamport clocks (so a restarted node's intents and
//!   events are newer than its old ones, and old events are not replayed),
//!   the members that were alive (to rejoin them), and whether the node
//!   left gracefully (the agent's `rejoin_after_leave` decides then).
//!
//! Both are replaced atomically (write to a temporary file, fsync, rename).
//!
//! Owns: file formats and atomic writes. Must not decide when to write.

use crate::gossip::crypto::{decode_key, KeyringError};
use crate::gossip::serf::SnapshotData;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a keyring or snapshot file could not be read or written; every
/// text names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("failed to read keyring file {}: {source}", .path.display())]
    ReadKeyring { path: PathBuf, source: std::io::Error },
    #[error("failed to parse keyring file {}: {source}", .path.display())]
    ParseKeyring { path: PathBuf, source: serde_json::Error },
    #[error("keyring file {} contains no keys", .path.display())]
    EmptyKeyring { path: PathBuf },
    #[error("keyring file {}: {source}", .path.display())]
    BadKey { path: PathBuf, source: KeyringError },
    #[error("failed to write keyring file {}: {source}", .path.display())]
    WriteKeyring { path: PathBuf, source: std::io::Error },
    #[error("snapshot file {} is too large ({size} bytes)", .path.display())]
    SnapshotTooLarge { path: PathBuf, size: u64 },
    #[error("failed to read snapshot file {}: {source}", .path.display())]
    ReadSnapshot { path: PathBuf, source: std::io::Error },
    #[error("failed to parse snapshot file {}: {source}", .path.display())]
    ParseSnapshot { path: PathBuf, source: serde_json::Error },
    #[error("snapshot file {} has unsupported version {version}", .path.display())]
    SnapshotVersion { path: PathBuf, version: u32 },
    #[error("failed to write snapshot file {}: {source}", .path.display())]
    WriteSnapshot { path: PathBuf, source: std::io::Error },
    /// Serializing what we write failed (not expected for these types).
    #[error(transparent)]
    Encode(serde_json::Error),
}

/// Reads a keyring file; `Ok(None)` if it does not exist.
pub fn read_keyring(path: &Path) -> Result<Option<Vec<String>>, FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FileError::ReadKeyring { path: path.to_path_buf(), source }),
    };
    let keys: Vec<String> = serde_json::from_str(&text)
        .map_err(|source| FileError::ParseKeyring { path: path.to_path_buf(), source })?;
    if keys.is_empty() {
        return Err(FileError::EmptyKeyring { path: path.to_path_buf() });
    }
    for k in &keys {
        decode_key(k).map_err(|source| FileError::BadKey { path: path.to_path_buf(), source })?;
    }
    Ok(Some(keys))
}

pub fn write_keyring(path: &Path, keys: &[String]) -> Result<(), FileError> {
    let json = serde_json::to_string(keys).map_err(FileError::Encode)?;
    write_atomic(path, json.as_bytes(), true)
        .map_err(|source| FileError::WriteKeyring { path: path.to_path_buf(), source })
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u32,
    node: String,
    left: bool,
    member_time: u64,
    event_time: u64,
    query_time: u64,
    alive: Vec<SnapshotMember>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotMember {
    name: String,
    addr: SocketAddr,
}

const SNAPSHOT_VERSION: u32 = 1;
/// Refuse absurd snapshot files rather than read them into memory.
const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

/// Reads a snapshot; `Ok(None)` if it does not exist.
pub fn read_snapshot(path: &Path) -> Result<Option<SnapshotData>, FileError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_SNAPSHOT_BYTES => {
            return Err(FileError::SnapshotTooLarge { path: path.to_path_buf(), size: m.len() })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FileError::ReadSnapshot { path: path.to_path_buf(), source }),
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| FileError::ReadSnapshot { path: path.to_path_buf(), source })?;
    let f: SnapshotFile = serde_json::from_str(&text)
        .map_err(|source| FileError::ParseSnapshot { path: path.to_path_buf(), source })?;
    if f.version != SNAPSHOT_VERSION {
        return Err(FileError::SnapshotVersion { path: path.to_path_buf(), version: f.version });
    }
    Ok(Some(SnapshotData {
        member_time: f.member_time,
        event_time: f.event_time,
        query_time: f.query_time,
        left: f.left,
        alive: f.alive.into_iter().map(|m| (m.name, m.addr)).collect(),
    }))
}

pub fn write_snapshot(path: &Path, node: &str, s: &SnapshotData, durable: bool) -> Result<(), FileError> {
    let f = SnapshotFile {
        version: SNAPSHOT_VERSION,
        node: node.to_string(),
        left: s.left,
        member_time: s.member_time,
        event_time: s.event_time,
        query_time: s.query_time,
        alive: s
            .alive
            .iter()
            .map(|(name, addr)| SnapshotMember { name: name.clone(), addr: *addr })
            .collect(),
    };
    let json = serde_json::to_vec(&f).map_err(FileError::Encode)?;
    write_atomic(path, &json, durable)
        .map_err(|source| FileError::WriteSnapshot { path: path.to_path_buf(), source })
}

fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_file_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serf/local.keyring");
        assert_eq!(read_keyring(&p).unwrap(), None);
        let keys = vec![
            "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=".to_string(),
            "EXz7LFN8hpQ4id8EDYiFoQ==".to_string(),
        ];
        write_keyring(&p, &keys).unwrap();
        assert_eq!(read_keyring(&p).unwrap(), Some(keys));
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("[\"pUqJ"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&p, "[\"YWJj\"]").unwrap();
        assert!(read_keyring(&p).unwrap_err().to_string().contains("16, 24 or 32"));
        std::fs::write(&p, "not json").unwrap();
        assert!(read_keyring(&p).is_err());
    }

    #[test]
    fn snapshot_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("local.snapshot");
        assert_eq!(read_snapshot(&p).unwrap(), None);
        let s = SnapshotData {
            member_time: 7,
            event_time: 3,
            query_time: 1,
            left: true,
            alive: vec![("n2".into(), "10.0.0.2:8301".parse().unwrap())],
        };
        write_snapshot(&p, "n1", &s, true).unwrap();
        assert_eq!(read_snapshot(&p).unwrap(), Some(s));
        std::fs::write(&p, "{\"version\":9}").unwrap();
        assert!(read_snapshot(&p).is_err());
        std::fs::write(&p, "\u{0}\u{1}garbage").unwrap();
        assert!(read_snapshot(&p).is_err());
    }
}
