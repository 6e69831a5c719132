//! The data directory: its format marker, the lock that keeps two agents
//! from sharing it, and the node ID stored in it.
//!
//! Layout (where Consul operators look): `node-id`, `raft/` (log, vote,
//! snapshots), `serf/`, `services/`, `checks/`, plus our `consul-rs.format`
//! marker and `.lock`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The on-disk format this build writes and reads.
pub const FORMAT: u32 = 1;
const MARKER: &str = "consul-rs.format";

/// An opened, locked data directory. The lock is held until drop.
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    format: u32,
    written_by: String,
}

/// Why a data directory could not be opened or its node ID not settled.
/// The texts are what `consul agent` prints after "Error starting agent: ".
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("Error creating data dir {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("Error reading data dir {}: {source}", .path.display())]
    Stat { path: PathBuf, source: io::Error },
    #[error("data_dir {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("Error opening {}: {source}", .path.display())]
    OpenLock { path: PathBuf, source: io::Error },
    /// Another agent (or `consul operator raft recover`) holds the lock.
    #[error(
        "data_dir {} is in use by another agent (its lock {} is held); each agent needs its own data_dir",
        .path.display(),
        .lock.display()
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error(
        "data_dir {} holds HashiCorp Consul's raft.db, which this agent cannot read; migrate with `consul snapshot save` on the old cluster and `consul snapshot restore` on the new one, or use an empty data_dir",
        .path.display()
    )]
    HashicorpRaftDb { path: PathBuf },
    #[error("{}: unreadable format marker ({source})", .path.display())]
    UnreadableMarker { path: PathBuf, source: serde_json::Error },
    #[error(
        "data_dir {} was written by {written_by} in data format {found}, but this agent reads format {}; refusing to start",
        .path.display(),
        FORMAT
    )]
    FormatMismatch { path: PathBuf, written_by: String, found: u32 },
    #[error("{0}")]
    EncodeMarker(#[source] serde_json::Error),
    /// Reading the format marker or the `node-id` file failed.
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("writing {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    /// The configured `node_id`.
    #[error("node_id {id:?} is not a valid UUID: {source}")]
    InvalidNodeId { id: String, source: uuid::Error },
    /// The stored `node-id` file.
    #[error("{}: invalid node ID {id:?}: {source}", .path.display())]
    CorruptNodeId { path: PathBuf, id: String, source: uuid::Error },
}

impl DataDir {
    /// Opens (creating if needed) and locks a data directory, refusing one
    /// written by an incompatible version or held by another agent.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let at = || path.to_path_buf();
        fs::create_dir_all(path).map_err(|source| DataDirError::Create { path: at(), source })?;
        let meta = fs::metadata(path).map_err(|source| DataDirError::Stat { path: at(), source })?;
        if !meta.is_dir() {
            return Err(DataDirError::NotADirectory { path: at() });
        }
        let lock_path = path.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| DataDirError::OpenLock { path: lock_path.clone(), source })?;
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(DataDirError::Locked { path: at(), lock: lock_path });
        }
        if path.join("raft").join("raft.db").exists() {
            return Err(DataDirError::HashicorpRaftDb { path: at() });
        }
        let marker_path = path.join(MARKER);
        match fs::read(&marker_path) {
            Ok(bytes) => {
                let m: Marker = serde_json::from_slice(&bytes)
                    .map_err(|source| DataDirError::UnreadableMarker { path: marker_path.clone(), source })?;
                if m.format != FORMAT {
                    return Err(DataDirError::FormatMismatch {
                        path: at(),
                        written_by: m.written_by,
                        found: m.format,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let m =
                    Marker { format: FORMAT, written_by: format!("consul-rs {}", env!("CARGO_PKG_VERSION")) };
                let bytes = serde_json::to_vec(&m).map_err(DataDirError::EncodeMarker)?;
                write_durably(&marker_path, &bytes)?;
            }
            Err(source) => return Err(DataDirError::Read { path: marker_path, source }),
        }
        Ok(DataDir { path: path.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn raft_dir(&self) -> PathBuf {
        self.path.join("raft")
    }

    /// The node ID: the configured one, else the one stored in `node-id`,
    /// else a new random UUID, which is then stored.
    pub fn node_id(&self, configured: Option<&str>) -> Result<uuid::Uuid, DataDirError> {
        let file = self.path.join("node-id");
        if let Some(id) = configured {
            let id = uuid::Uuid::parse_str(id)
                .map_err(|source| DataDirError::InvalidNodeId { id: id.to_string(), source })?;
            write_durably(&file, id.to_string().as_bytes())?;
            return Ok(id);
        }
        match fs::read_to_string(&file) {
            Ok(s) => uuid::Uuid::parse_str(s.trim()).map_err(|source| DataDirError::CorruptNodeId {
                path: file.clone(),
                id: s.trim().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = uuid::Uuid::new_v4();
                write_durably(&file, id.to_string().as_bytes())?;
                Ok(id)
            }
            Err(source) => Err(DataDirError::Read { path: file, source }),
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    crate::fsutil::write_atomic(path, bytes, true)
        .map_err(|source| DataDirError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_marker_and_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("in use by another agent"), "{err}");
        let id = d.node_id(None).unwrap();
        assert_eq!(d.node_id(None).unwrap(), id, "stable across calls");
        drop(d);
        fs::write(dir.path().join(MARKER), br#"{"format": 99, "written_by": "future"}"#).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("format 99"), "{err}");
    }

    /// The texts operators see after "Error starting agent: ", word for word.
    #[test]
    fn messages() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_path_buf();
        let shown = p.display().to_string();
        let d = DataDir::open(&p).unwrap();
        match DataDir::open(&p) {
            Err(e @ DataDirError::Locked { .. }) => assert_eq!(
                e.to_string(),
                format!("data_dir {shown} is in use by another agent (its lock {shown}/.lock is held); each agent needs its own data_dir")
            ),
            other => panic!("{:?}", other.err()),
        }
        let e = d.node_id(Some("nope")).unwrap_err();
        assert!(matches!(e, DataDirError::InvalidNodeId { .. }));
        assert!(e.to_string().starts_with("node_id \"nope\" is not a valid UUID: "), "{e}");
        fs::write(p.join("node-id"), "garbage\n").unwrap();
        let e = d.node_id(None).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{shown}/node-id: invalid node ID \"garbage\": ")), "{e}");
        drop(d);

        fs::write(p.join(MARKER), br#"{"format": 7, "written_by": "consul-rs 9.9"}"#).unwrap();
        assert_eq!(
            DataDir::open(&p).err().map(|e| e.to_string()),
            Some(format!("data_dir {shown} was written by consul-rs 9.9 in data format 7, but this agent reads format 1; refusing to start"))
        );
        fs::write(p.join(MARKER), b"{").unwrap();
        let e = DataDir::open(&p).err().unwrap();
        assert!(e.to_string().starts_with(&format!("{shown}/{MARKER}: unreadable format marker (")), "{e}");
        fs::remove_file(p.join(MARKER)).unwrap();

        fs::create_dir_all(p.join("raft")).unwrap();
        fs::write(p.join("raft/raft.db"), b"").unwrap();
        assert_eq!(
            DataDir::open(&p).err().map(|e| e.to_string()),
            Some(format!("data_dir {shown} holds HashiCorp Consul's raft.db, which this agent cannot read; migrate with `consul snapshot save` on the old cluster and `consul snapshot restore` on the new one, or use an empty data_dir"))
        );

        let file = p.join("a-file");
        fs::write(&file, b"").unwrap();
        assert_eq!(
            DataDir::open(&file).err().map(|e| e.to_string()),
            Some(format!("Error creating data dir {}: File exists (os error 17)", file.display()))
        );
    }
}
