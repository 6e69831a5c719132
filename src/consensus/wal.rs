//! The Raft log on disk: a segmented write-ahead log.
//!
//! Each segment file `raft/wal/<first-index>.seg` holds records
//! `[len u32][crc32 u32][index u64][payload]`, little endian, with the CRC
//! over the index and payload. An append writes all its records with one
//! `write` and makes them durable with one `fdatasync` before returning, so
//! a batch of entries costs one sync. On open, a record that is cut short or
//! fails its CRC at the end of the last segment is a torn tail from a crash
//! (it was never acknowledged, since its sync never returned) and is cut
//! off; the same damage anywhere else is corruption and refuses to open.
//!
//! A segment grows ahead of its records in zero-filled steps
//! (`PREALLOC_STEP`): an append that fits in the zeros rewrites blocks the
//! file already has, so its `fdatasync` writes the data and nothing else.
//! An append that grows the file also changes its size, and the sync must
//! then write the inode too: a second device write per append, which on
//! the virtual disks servers usually run on costs a third more time and
//! CPU per sync. The zeros are written, not `fallocate`d: blocks allocated
//! but never written are "unwritten extents", whose first write is again a
//! metadata change. An all-zero header can never be a record (the CRC of a
//! zero index is not zero), so on open a record position holding nothing
//! but zeros to the end of the file is the end of the log, not damage.
//!
//! This module knows nothing about Raft types: it stores opaque payloads by
//! index. `log_store.rs` adapts it to openraft.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const HEADER: usize = 16;
/// Records above this size are refused (a batch is capped well below it).
pub const MAX_RECORD: usize = 256 * 1024 * 1024;
/// A new segment starts once the active one passes this size.
const SEGMENT_TARGET: u64 = 64 * 1024 * 1024;
/// How far past its records an append that outgrows a segment's zeros
/// extends the file (a few thousand typical entries: the cost of writing
/// the zeros and the one size change is spread over them).
const PREALLOC_STEP: u64 = 1024 * 1024;

/// Where one record's payload lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
}

/// One record found while opening the log.
pub struct Recovered {
    pub index: u64,
    pub loc: Loc,
}

/// What opening found: the records present, in order, and whether a torn
/// tail was cut off.
pub struct OpenReport {
    pub records: Vec<Recovered>,
    pub torn_tail_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("raft log is corrupt in {path} at offset {offset}: {what}; refusing to start (this is not a torn tail: data after it exists)")]
    Corrupt { path: String, offset: u64, what: String },
    #[error("raft log record of {0} bytes exceeds the {MAX_RECORD}-byte limit")]
    TooLarge(usize),
}

impl WalError {
    /// The write failed only for lack of space; retrying after space is
    /// freed is safe (see `Wal::append`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if crate::fsutil::is_disk_full(source))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.display().to_string(), source }
}

/// The writable log. Appends, truncation and purge take `&mut self`; reads
/// go through a `WalReader`, which can be shared with other threads.
pub struct Wal {
    dir: PathBuf,
    /// Segment first-index → where its records end, in order.
    segments: BTreeMap<u64, u64>,
    active: Option<Active>,
    reader: WalReader,
}

/// The segment appends go to.
struct Active {
    first: u64,
    file: File,
    /// The file's length: its records end at `segments[first]`, zeros fill
    /// the rest.
    allocated: u64,
}

/// Reads payloads by location; cheap to clone and safe to use while the
/// writer appends (records are immutable once written).
#[derive(Clone)]
pub struct WalReader {
    dir: PathBuf,
    files: Arc<Mutex<HashMap<u64, Arc<File>>>>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

pub use crate::fsutil::sync_dir;

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering a torn tail.
    pub fn open(dir: &Path) -> Result<(Wal, OpenReport), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut firsts = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".seg") {
                if let Ok(first) = stem.parse::<u64>() {
                    firsts.push(first);
                }
            }
        }
        firsts.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut records = Vec::new();
        let mut torn_tail_bytes = 0;
        let count = firsts.len();
        for (n, first) in firsts.into_iter().enumerate() {
            let path = segment_path(dir, first);
            let is_last = n + 1 == count;
            let (good_len, file_len, zeros_follow) = scan_segment(&path, first, &mut records, is_last)?;
            if good_len < file_len && !zeros_follow {
                // Only reachable for the last segment: cut the torn tail.
                let f = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
                f.set_len(good_len).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
                torn_tail_bytes = file_len - good_len;
            }
            segments.insert(first, good_len);
        }
        let reader = WalReader { dir: dir.to_path_buf(), files: Arc::default() };
        let wal = Wal { dir: dir.to_path_buf(), segments, active: None, reader };
        Ok((wal, OpenReport { records, torn_tail_bytes }))
    }

    pub fn reader(&self) -> WalReader {
        self.reader.clone()
    }

    /// Appends records (`(index, payload)`, consecutive) and syncs them.
    /// Returns where each payload was written. On any error the segment's
    /// recorded length is unchanged, so calling again with the same records
    /// rewrites them at the same offset (and re-dirties the pages, so the
    /// next sync really writes them: a failed `fdatasync` is never trusted
    /// to be retried on its own).
    pub fn append(&mut self, records: &[(u64, Vec<u8>)]) -> Result<Vec<Loc>, WalError> {
        let Some((first_index, _)) = records.first() else { return Ok(Vec::new()) };
        let total: usize = records.iter().map(|(_, p)| p.len() + HEADER).sum();
        for (_, p) in records {
            if p.len() > MAX_RECORD {
                return Err(WalError::TooLarge(p.len()));
            }
        }
        let needs_new = match self.segments.iter().next_back() {
            None => true,
            Some((_, len)) => *len >= SEGMENT_TARGET,
        };
        if needs_new {
            self.start_segment(*first_index)?;
        }
        let seg = self.ensure_active()?;
        let start = *self.segments.get(&seg).unwrap_or(&0);
        let mut offset = start;
        let Some(active) = &mut self.active else { return unreachable_active(&self.dir) };
        let end = start + total as u64;
        // Outgrowing the zeros: extend the file by a step in the same write
        // and sync, so the next appends fit.
        let extend = end > active.allocated;
        let allocated = if extend { (end + PREALLOC_STEP).next_multiple_of(4096) } else { active.allocated };
        // The records, then (when extending) zeros up to the new end.
        let mut buf = Vec::with_capacity((if extend { allocated } else { end } - start) as usize);
        let mut locs = Vec::with_capacity(records.len());
        for (index, payload) in records {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&index.to_le_bytes());
            crc.update(payload);
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc.finalize().to_le_bytes());
            buf.extend_from_slice(&index.to_le_bytes());
            buf.extend_from_slice(payload);
            locs.push(Loc { segment: seg, offset: offset + HEADER as u64, len: payload.len() as u32 });
            offset += (HEADER + payload.len()) as u64;
        }
        if extend {
            buf.resize((allocated - start) as usize, 0);
        }
        let path = segment_path(&self.dir, seg);
        active.file.write_all_at(&buf, start).map_err(io_err(&path))?;
        if crate::inject::enabled(crate::inject::Bug::AckBeforeFsync) {
            crate::inject::unsynced_append(&path, start, offset);
        } else {
            active.file.sync_data().map_err(io_err(&path))?;
        }
        active.allocated = allocated;
        self.segments.insert(seg, offset);
        Ok(locs)
    }

    /// Opens the last segment for writing if it is not open; returns its id.
    fn ensure_active(&mut self) -> Result<u64, WalError> {
        let Some((&last, _)) = self.segments.iter().next_back() else {
            return unreachable_active(&self.dir);
        };
        let reopen = !matches!(&self.active, Some(a) if a.first == last);
        if reopen {
            let path = segment_path(&self.dir, last);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err(&path))?;
            // Whatever lies past the records is zeros (`open` checked, and
            // a truncation cut the file at its last record).
            let allocated = file.metadata().map_err(io_err(&path))?.len();
            self.active = Some(Active { first: last, file, allocated });
        }
        Ok(last)
    }

    fn start_segment(&mut self, first_index: u64) -> Result<(), WalError> {
        let path = segment_path(&self.dir, first_index);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        self.segments.insert(first_index, 0);
        self.active = Some(Active { first: first_index, file, allocated: 0 });
        Ok(())
    }

    /// Removes every record at or after `loc` (the location of the first
    /// record to drop) and makes that durable.
    pub fn truncate_at(&mut self, loc: Loc) -> Result<(), WalError> {
        let later: Vec<u64> = self.segments.range(loc.segment + 1..).map(|(k, _)| *k).collect();
        for seg in later {
            self.remove_segment(seg)?;
        }
        let cut = loc.offset - HEADER as u64;
        let path = segment_path(&self.dir, loc.segment);
        if cut == 0 {
            self.remove_segment(loc.segment)?;
        } else {
            let f = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            f.set_len(cut).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
            self.segments.insert(loc.segment, cut);
        }
        self.active = None;
        Ok(())
    }

    /// Removes every record (everything is being replaced).
    pub fn clear(&mut self) -> Result<(), WalError> {
        let all: Vec<u64> = self.segments.keys().copied().collect();
        for seg in all {
            self.remove_segment(seg)?;
        }
        self.active = None;
        Ok(())
    }

    /// Deletes whole segments that only hold records before `keep_from`.
    /// The active (last) segment is never deleted.
    pub fn purge_before(&mut self, keep_from: u64) -> Result<usize, WalError> {
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        let mut removed = 0;
        for pair in firsts.windows(2) {
            let (seg, next_first) = (pair[0], pair[1]);
            if next_first <= keep_from {
                self.remove_segment(seg)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn remove_segment(&mut self, seg: u64) -> Result<(), WalError> {
        let path = segment_path(&self.dir, seg);
        self.reader.forget(seg);
        if matches!(&self.active, Some(a) if a.first == seg) {
            self.active = None;
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        self.segments.remove(&seg);
        Ok(())
    }
}

fn unreachable_active<T>(dir: &Path) -> Result<T, WalError> {
    Err(WalError::Io { path: dir.display().to_string(), source: io::Error::other("active segment missing") })
}

impl WalReader {
    /// Reads one payload.
    pub fn read(&self, loc: Loc) -> Result<Vec<u8>, WalError> {
        let path = segment_path(&self.dir, loc.segment);
        let file = {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match files.get(&loc.segment) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(&path).map_err(io_err(&path))?);
                    files.insert(loc.segment, f.clone());
                    f
                }
            }
        };
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset).map_err(io_err(&path))?;
        Ok(buf)
    }

    fn forget(&self, seg: u64) {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).remove(&seg);
    }
}

/// Reads a segment's records, validating each. Returns (bytes of valid
/// records, file length, whether only zeros follow the records). Damage in
/// a segment that is not the last one, or a valid record after damage, is
/// corruption; zeros after the records are a segment's preallocated end.
fn scan_segment(
    path: &Path,
    first: u64,
    out: &mut Vec<Recovered>,
    is_last: bool,
) -> Result<(u64, u64, bool), WalError> {
    let mut data = Vec::new();
    File::open(path).map_err(io_err(path))?.read_to_end(&mut data).map_err(io_err(path))?;
    let file_len = data.len() as u64;
    let mut pos = 0usize;
    let mut expected = first;
    let corrupt = |offset: usize, what: &str| WalError::Corrupt {
        path: path.display().to_string(),
        offset: offset as u64,
        what: what.to_string(),
    };
    while pos < data.len() {
        let problem = check_record(&data[pos..], expected);
        match problem {
            Ok((len, index)) => {
                out.push(Recovered {
                    index,
                    loc: Loc { segment: first, offset: (pos + HEADER) as u64, len: len as u32 },
                });
                pos += HEADER + len;
                expected = index + 1;
            }
            Err(_) if data[pos..].iter().all(|b| *b == 0) => return Ok((pos as u64, file_len, true)),
            Err(what) => {
                if !is_last {
                    return Err(corrupt(pos, what));
                }
                // A torn tail is only ever followed by nothing valid.
                if later_valid_record(&data[pos..]) {
                    return Err(corrupt(pos, what));
                }
                return Ok((pos as u64, file_len, false));
            }
        }
    }
    Ok((pos as u64, file_len, false))
}

fn check_record(rest: &[u8], expected: u64) -> Result<(usize, u64), &'static str> {
    if rest.len() < HEADER {
        return Err("truncated record header");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let mut idx = [0u8; 8];
    idx.copy_from_slice(&rest[8..16]);
    let index = u64::from_le_bytes(idx);
    if len > MAX_RECORD {
        return Err("record length out of range");
    }
    if rest.len() < HEADER + len {
        return Err("truncated record payload");
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&idx);
    h.update(&rest[HEADER..HEADER + len]);
    if h.finalize() != crc {
        return Err("record checksum mismatch");
    }
    if index != expected {
        return Err("record index out of sequence");
    }
    Ok((len, index))
}

/// Whether any well-formed record starts after a damaged one: searched at
/// every offset, so a flipped byte in the middle of the log is never
/// mistaken for a torn tail.
fn later_valid_record(rest: &[u8]) -> bool {
    (1..rest.len()).any(|start| {
        let r = &rest[start..];
        if r.len() < HEADER {
            return false;
        }
        let len = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        if len == 0 && r[4..8] == [0, 0, 0, 0] {
            return false;
        }
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&r[8..16]);
        let index = u64::from_le_bytes(idx);
        check_record(r, index).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(from: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
        (from..from + n).map(|i| (i, format!("payload-{i}").into_bytes())).collect()
    }

    #[test]
    fn append_reopen_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, report) = Wal::open(dir.path()).unwrap();
        assert!(report.records.is_empty());
        let locs = wal.append(&recs(1, 5)).unwrap();
        assert_eq!(wal.reader().read(locs[2]).unwrap(), b"payload-3");
        drop(wal);
        let (wal, report) = Wal::open(dir.path()).unwrap();
        assert_eq!(report.records.len(), 5);
        assert_eq!(report.torn_tail_bytes, 0);
        assert_eq!(wal.reader().read(report.records[4].loc).unwrap(), b"payload-5");
    }

    /// Where the records of segment 1 end (the zeros start).
    fn records_end(wal: &Wal) -> u64 {
        wal.segments[&1]
    }

    #[test]
    fn torn_tail_is_cut_and_log_stays_usable() {
        // A crash mid-write leaves the last record's end unwritten: zeros in
        // the preallocated part of a segment, or a shorter file when the
        // write was growing it.
        for shorter_file in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.append(&recs(1, 3)).unwrap();
            let end = records_end(&wal);
            drop(wal);
            let seg = segment_path(dir.path(), 1);
            let f = OpenOptions::new().write(true).open(&seg).unwrap();
            if shorter_file {
                f.set_len(end - 4).unwrap();
            } else {
                f.write_all_at(&[0; 4], end - 4).unwrap();
            }
            drop(f);
            let (mut wal, report) = Wal::open(dir.path()).unwrap();
            assert_eq!(report.records.len(), 2, "shorter file: {shorter_file}");
            assert!(report.torn_tail_bytes > 0);
            wal.append(&recs(3, 1)).unwrap();
            drop(wal);
            let (_, report) = Wal::open(dir.path()).unwrap();
            assert_eq!(report.records.len(), 3);
            assert_eq!(report.torn_tail_bytes, 0);
        }
    }

    #[test]
    fn appends_fill_the_preallocated_zeros_without_growing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment_path(dir.path(), 1);
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&recs(1, 1)).unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        assert!(len >= records_end(&wal) + PREALLOC_STEP, "{len}");
        wal.append(&recs(2, 100)).unwrap();
        assert_eq!(fs::metadata(&seg).unwrap().len(), len, "appends within the zeros keep the size");
        drop(wal);

        // Reopened, the zeros are the end of the log, not a torn tail, and
        // appends continue right after the last record.
        let (mut wal, report) = Wal::open(dir.path()).unwrap();
        assert_eq!(report.records.len(), 101);
        assert_eq!(report.torn_tail_bytes, 0);
        assert_eq!(fs::metadata(&seg).unwrap().len(), len, "open keeps the zeros");
        let locs = wal.append(&recs(102, 1)).unwrap();
        assert_eq!(wal.reader().read(locs[0]).unwrap(), b"payload-102");
        assert_eq!(fs::metadata(&seg).unwrap().len(), len);

        // A batch larger than the zeros left grows the file past its end.
        let big = vec![(103, vec![7u8; 2 * PREALLOC_STEP as usize])];
        wal.append(&big).unwrap();
        let grown = fs::metadata(&seg).unwrap().len();
        assert!(grown >= records_end(&wal) + PREALLOC_STEP, "{grown}");
        drop(wal);
        let (wal, report) = Wal::open(dir.path()).unwrap();
        assert_eq!(report.records.iter().map(|r| r.index).collect::<Vec<_>>(), (1..=103).collect::<Vec<_>>());
        assert_eq!(wal.reader().read(report.records[101].loc).unwrap(), b"payload-102");
    }

    #[test]
    fn zeros_after_the_records_of_an_earlier_segment_are_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&recs(1, 3)).unwrap();
        wal.start_segment(4).unwrap();
        wal.append(&recs(4, 2)).unwrap();
        drop(wal);
        assert!(fs::metadata(segment_path(dir.path(), 1)).unwrap().len() > PREALLOC_STEP);
        let (_, report) = Wal::open(dir.path()).unwrap();
        assert_eq!(report.records.iter().map(|r| r.index).collect::<Vec<_>>(), (1..=5).collect::<Vec<_>>());
        assert_eq!(report.torn_tail_bytes, 0);
    }

    #[test]
    fn an_all_zero_header_is_never_a_record() {
        assert!(check_record(&[0u8; 64], 0).is_err());
    }

    #[test]
    fn flipped_byte_in_middle_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&recs(1, 3)).unwrap();
        drop(wal);
        let seg = segment_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        data[HEADER + 2] ^= 0xff;
        fs::write(&seg, &data).unwrap();
        let err = Wal::open(dir.path()).err().unwrap();
        assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn truncate_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        let locs = wal.append(&recs(1, 10)).unwrap();
        wal.truncate_at(locs[6]).unwrap();
        wal.append(&recs(7, 2)).unwrap();
        drop(wal);
        let (mut wal, report) = Wal::open(dir.path()).unwrap();
        assert_eq!(report.records.iter().map(|r| r.index).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        assert_eq!(wal.purge_before(5).unwrap(), 0, "the active segment stays");
    }
}
