//! Snapshot files: `raft/snapshots/<term>-<index>.snap`, each a checksummed
//! record of the snapshot metadata and the encoded state. Written to a temp
//! file, synced, renamed, and the directory synced, so a crash leaves
//! either the old snapshot or the new one, never half of one.

use super::typ::SnapshotMeta;
use super::wal::sync_dir;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CRSNAP01";
/// How many snapshots to keep on disk.
const RETAIN: usize = 2;

/// A snapshot as stored: metadata plus the encoded `catalog::State`.
#[derive(Clone)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("snapshot {path} is corrupt: {what}")]
    Corrupt { path: String, what: String },
}

fn encode(snap: &StoredSnapshot) -> Result<Vec<u8>, String> {
    let meta = serde_json::to_vec(&snap.meta).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(8 + 4 + meta.len() + 8 + snap.data.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&snap.data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes a snapshot file's bytes, checking its magic, lengths and CRC.
pub fn decode(bytes: &[u8]) -> Result<StoredSnapshot, String> {
    if bytes.len() < 8 + 4 + 8 + 4 || &bytes[..8] != MAGIC {
        return Err("bad magic or too short".into());
    }
    let body = &bytes[..bytes.len() - 4];
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[bytes.len() - 4..]);
    if crc32fast::hash(body) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch".into());
    }
    let mut pos = 8;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = body.get(*pos..*pos + n).ok_or_else(|| "truncated".to_string())?;
        *pos += n;
        Ok(s)
    };
    let mut l4 = [0u8; 4];
    l4.copy_from_slice(take(&mut pos, 4)?);
    let meta_len = u32::from_le_bytes(l4) as usize;
    let meta: SnapshotMeta = serde_json::from_slice(take(&mut pos, meta_len)?).map_err(|e| e.to_string())?;
    let mut l8 = [0u8; 8];
    l8.copy_from_slice(take(&mut pos, 8)?);
    let data_len = usize::try_from(u64::from_le_bytes(l8)).map_err(|e| e.to_string())?;
    let data = take(&mut pos, data_len)?.to_vec();
    if pos != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(StoredSnapshot { meta, data })
}

fn file_name(meta: &SnapshotMeta) -> String {
    let (term, index) = meta.last_log_id.map(|l| (l.leader_id.term, l.index)).unwrap_or((0, 0));
    format!("{term:020}-{index:020}.snap")
}

/// Writes a snapshot durably and drops old ones beyond the retention.
pub fn save(dir: &Path, snap: &StoredSnapshot) -> Result<PathBuf, SnapshotError> {
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| SnapshotError::Io { path: p, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes =
        encode(snap).map_err(|what| SnapshotError::Corrupt { path: dir.display().to_string(), what })?;
    let path = dir.join(file_name(&snap.meta));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir).map_err(io(dir))?;
    let mut all = list(dir).map_err(io(dir))?;
    while all.len() > RETAIN {
        let old = all.remove(0);
        let _ = fs::remove_file(&old);
    }
    Ok(path)
}

fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let p = e?.path();
                if p.extension().and_then(|x| x.to_str()) == Some("snap") {
                    out.push(p);
                } else if p.extension().and_then(|x| x.to_str()) == Some("tmp") {
                    // A temp file is a snapshot that never finished: remove it.
                    let _ = fs::remove_file(&p);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

/// Loads the newest valid snapshot. A corrupt newest snapshot falls back
/// to an older one with a warning; if snapshots exist and none is valid,
/// starting is refused (their log entries may already be purged).
pub fn load_latest(dir: &Path) -> Result<Option<StoredSnapshot>, SnapshotError> {
    let all = list(dir).map_err(|source| SnapshotError::Io { path: dir.display().to_string(), source })?;
    let mut last_err = None;
    for path in all.iter().rev() {
        let bytes = fs::read(path)
            .map_err(|source| SnapshotError::Io { path: path.display().to_string(), source })?;
        match decode(&bytes) {
            Ok(s) => return Ok(Some(s)),
            Err(what) => {
                tracing::error!(target: "agent.server.raft", path = %path.display(), error = %what, "skipping corrupt snapshot");
                last_err = Some(SnapshotError::Corrupt { path: path.display().to_string(), what });
            }
        }
    }
    match last_err {
        Some(e) => Err(e),
        None => Ok(None),
    }
}
