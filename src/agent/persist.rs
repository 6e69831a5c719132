//! Services and checks registered over the API (and maintenance flags, and
//! TTL check states) are saved under the data dir so they survive a
//! restart, as Consul's `services/`, `checks/` and `checks/state/`:
//! a tool such as Registrator registers once and never again.
//!
//! Files are our own JSON (see docs/agent.md); each is replaced atomically.

use crate::definition::{CheckDef, ServiceDef};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Why a registration could not be saved or removed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    /// The file or directory that could not be written or removed.
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
struct ServiceFile {
    service: ServiceDef,
}

#[derive(Serialize, Deserialize)]
struct CheckFile {
    check: CheckDef,
}

/// A check's last status and output (TTL checks and maintenance).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckState {
    pub status: String,
    pub output: String,
    /// When a TTL check expires (unix milliseconds); 0 when not a TTL check.
    pub expires_unix_ms: u64,
}

/// Where an agent keeps its persisted registrations (`None`: `-dev`).
#[derive(Clone, Debug)]
pub struct Persist {
    dir: Option<PathBuf>,
}

impl Persist {
    pub fn new(data_dir: Option<&Path>) -> Persist {
        Persist { dir: data_dir.map(Path::to_path_buf) }
    }

    fn path(&self, sub: &str, id: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(sub).join(fsutil::file_name_for(id)))
    }

    fn write(&self, sub: &str, id: &str, bytes: Vec<u8>) -> Result<(), PersistError> {
        let Some(path) = self.path(sub, id) else { return Ok(()) };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| PersistError::Io { path: parent.to_path_buf(), source })?;
        }
        fsutil::write_atomic(&path, &bytes, true).map_err(|source| PersistError::Io { path, source })
    }

    fn remove(&self, sub: &str, id: &str) -> Result<(), PersistError> {
        let Some(path) = self.path(sub, id) else { return Ok(()) };
        fsutil::remove_optional(&path).map_err(|source| PersistError::Io { path, source })
    }

    pub fn save_service(&self, def: &ServiceDef) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(&ServiceFile { service: def.clone() })?;
        self.write("services", &def.id, bytes)
    }

    pub fn remove_service(&self, id: &str) -> Result<(), PersistError> {
        self.remove("services", id)
    }

    pub fn save_check(&self, def: &CheckDef) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(&CheckFile { check: def.clone() })?;
        self.write("checks", &def.id, bytes)
    }

    pub fn remove_check(&self, id: &str) -> Result<(), PersistError> {
        self.remove("checks", id)?;
        self.remove("checks/state", id)
    }

    pub fn save_check_state(&self, id: &str, state: &CheckState) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(state)?;
        self.write("checks/state", id, bytes)
    }

    pub fn load_check_state(&self, id: &str) -> Option<CheckState> {
        let path = self.path("checks/state", id)?;
        let bytes = fsutil::read_optional(&path).ok().flatten()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Loads every saved service; unreadable files are reported and skipped
    /// (one bad file must not keep the agent from starting).
    pub fn load_services(&self) -> (Vec<ServiceDef>, Vec<String>) {
        self.load_dir("services", |b| serde_json::from_slice::<ServiceFile>(b).map(|f| f.service))
    }

    pub fn load_checks(&self) -> (Vec<CheckDef>, Vec<String>) {
        self.load_dir("checks", |b| serde_json::from_slice::<CheckFile>(b).map(|f| f.check))
    }

    fn load_dir<T>(
        &self,
        sub: &str,
        parse: impl Fn(&[u8]) -> Result<T, serde_json::Error>,
    ) -> (Vec<T>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let Some(dir) = self.dir.as_ref().map(|d| d.join(sub)) else { return (out, errors) };
        let Ok(entries) = std::fs::read_dir(&dir) else { return (out, errors) };
        let mut paths: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        paths.sort();
        for path in paths {
            if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| parse(&b).map_err(|e| e.to_string()))
            {
                Ok(v) => out.push(v),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        (out, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text after "failed to persist service: " in the 500 answer.
    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the `services` directory should be.
        std::fs::write(dir.path().join("services"), b"").unwrap();
        let p = Persist::new(Some(dir.path()));
        let def = ServiceDef { id: "web".into(), name: "web".into(), ..Default::default() };
        let e = p.save_service(&def).unwrap_err();
        assert!(matches!(e, PersistError::Io { .. }));
        assert_eq!(e.to_string(), format!("{}/services: File exists (os error 17)", dir.path().display()));
        assert!(Persist::new(None).save_service(&def).is_ok(), "-dev keeps nothing");
    }
}
