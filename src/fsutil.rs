//! Small file helpers shared by every module that persists state: atomic
//! replacement of small files, and directory syncs so renames survive a crash.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Makes a directory entry change (create, rename, delete) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a small file; `None` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces a small file atomically: write a temp file, sync it (when
/// `durable`), rename over the old one, sync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable {
        // A bare file name has an empty parent: the current directory.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir)?;
    }
    Ok(())
}

/// True when `e` means the filesystem has no room left (ENOSPC, or EDQUOT
/// for a quota): conditions that pass once space is freed, unlike
/// corruption or permission errors.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
}

/// Removes a file; a missing file is not an error.
pub fn remove_optional(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A file name for an arbitrary ID: hex when short, else a hash (IDs may
/// hold `/` and other characters a file name cannot).
pub fn file_name_for(id: &str) -> String {
    if id.len() <= 100 {
        return id.bytes().map(|b| format!("{b:02x}")).collect();
    }
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x6c62_272e_07bb_0142;
    for b in id.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        h2 = (h2 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
    }
    format!("h{h1:016x}{h2:016x}")
}
