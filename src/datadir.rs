//! The data directory: its format marker, the lock that keeps two agents
//! from sharing it, and the node ID stored in it.
//!
//! Layout (where Consul operators look): `node-id`, `raft/` (log, vote,
//! snapshots), `serf/`, `services/`, `checks/`, plus our `consul-rs.format`
//! marker and `.lock`.

use std::fs::{self, File, OpenOptions};
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

impl DataDir {
    /// Opens (creating if needed) and locks a data directory, refusing one
    /// written by an incompatible version or held by another agent.
    pub fn open(path: &Path) -> Result<DataDir, String> {
        fs::create_dir_all(path).map_err(|e| format!("Error creating data dir {}: {e}", path.display()))?;
        let meta =
            fs::metadata(path).map_err(|e| format!("Error reading data dir {}: {e}", path.display()))?;
        if !meta.is_dir() {
            return Err(format!("data_dir {} is not a directory", path.display()));
        }
        let lock_path = path.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("Error opening {}: {e}", lock_path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(format!(
                "data_dir {} is in use by another agent (its lock {} is held); each agent needs its own data_dir",
                path.display(),
                lock_path.display()
            ));
        }
        if path.join("raft").join("raft.db").exists() {
            return Err(format!(
                "data_dir {} holds HashiCorp Consul's raft.db, which this agent cannot read; migrate with `consul snapshot save` on the old cluster and `consul snapshot restore` on the new one, or use an empty data_dir",
                path.display()
            ));
        }
        let marker_path = path.join(MARKER);
        match fs::read(&marker_path) {
            Ok(bytes) => {
                let m: Marker = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: unreadable format marker ({e})", marker_path.display()))?;
                if m.format != FORMAT {
                    return Err(format!(
                        "data_dir {} was written by {} in data format {}, but this agent reads format {FORMAT}; refusing to start",
                        path.display(),
                        m.written_by,
                        m.format
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let m =
                    Marker { format: FORMAT, written_by: format!("consul-rs {}", env!("CARGO_PKG_VERSION")) };
                let bytes = serde_json::to_vec(&m).map_err(|e| e.to_string())?;
                write_durably(&marker_path, &bytes)?;
            }
            Err(e) => return Err(format!("{}: {e}", marker_path.display())),
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
    pub fn node_id(&self, configured: Option<&str>) -> Result<uuid::Uuid, String> {
        let file = self.path.join("node-id");
        if let Some(id) = configured {
            let id =
                uuid::Uuid::parse_str(id).map_err(|e| format!("node_id {id:?} is not a valid UUID: {e}"))?;
            write_durably(&file, id.to_string().as_bytes())?;
            return Ok(id);
        }
        match fs::read_to_string(&file) {
            Ok(s) => uuid::Uuid::parse_str(s.trim())
                .map_err(|e| format!("{}: invalid node ID {:?}: {e}", file.display(), s.trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = uuid::Uuid::new_v4();
                write_durably(&file, id.to_string().as_bytes())?;
                Ok(id)
            }
            Err(e) => Err(format!("{}: {e}", file.display())),
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::fsutil::write_atomic(path, bytes, true).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_marker_and_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap();
        assert!(err.contains("in use by another agent"), "{err}");
        let id = d.node_id(None).unwrap();
        assert_eq!(d.node_id(None).unwrap(), id, "stable across calls");
        drop(d);
        fs::write(dir.path().join(MARKER), br#"{"format": 99, "written_by": "future"}"#).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap();
        assert!(err.contains("format 99"), "{err}");
    }
}
