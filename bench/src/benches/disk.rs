//! The disk's floor: raw `pwrite` + `fdatasync` of one Raft-entry-sized
//! record appended to a file, against consul-rs's own WAL appending the same
//! record (`consul::consensus::wal::Wal::append`: one write + one
//! fdatasync), in the same directory, interleaved in blocks so a noisy
//! neighbour hits both alike. Also a 64-entry batch through the WAL.
//!
//! Owns: the disk probe and its table.

use crate::ctx::Ctx;
use crate::results::{num, quantile, Section, Table};
use consul::consensus::wal::Wal;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

/// A 256-byte KV write's Raft entry is about this large (key, value,
/// command and entry framing).
const PAYLOAD: usize = 320;

struct Probe {
    raw_us: Vec<f64>,
    /// the same into space preallocated with fallocate (as etcd's WAL
    /// segments are), so the file size does not change
    prealloc_us: Vec<f64>,
    wal_us: Vec<f64>,
    batch_us: Vec<f64>,
}

/// Appends `record` at `*off` with `pwrite` and makes it durable with
/// `fdatasync`; returns the microseconds both took.
fn append_synced(file: &File, path: &Path, record: &[u8], off: &mut u64) -> Result<f64, String> {
    let t = Instant::now();
    file.write_all_at(record, *off).map_err(|e| format!("write {}: {e}", path.display()))?;
    file.sync_data().map_err(|e| format!("fdatasync {}: {e}", path.display()))?;
    *off += record.len() as u64;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

fn create(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("failed to open {}: {e}", path.display()))
}

/// One fsync on the filesystem of `dir`, as other benchmarks need it for
/// their verdicts: `reps` appends of `bytes` bytes, each with `pwrite` +
/// `fdatasync` (the raw probe below), in microseconds. Blocking.
pub fn fsync_us(dir: &Path, bytes: usize, reps: usize) -> Result<Vec<f64>, String> {
    let path = dir.join("fsync-probe.log");
    let file = create(&path)?;
    let record = vec![0x5au8; bytes];
    let mut off = 0u64;
    let us = (0..reps).map(|_| append_synced(&file, &path, &record, &mut off)).collect();
    let _ = std::fs::remove_file(&path);
    us
}

fn probe(dir: &Path, reps: usize) -> Result<Probe, String> {
    let raw_path = dir.join("raw.log");
    let raw = create(&raw_path)?;
    let pre_path = dir.join("prealloc.log");
    let pre = create(&pre_path)?;
    // SAFETY: fallocate(2) on a file descriptor we own, mode 0 (allocate and extend).
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&pre), 0, 0, 64 << 20) };
    if rc != 0 {
        return Err(format!("fallocate {}: {}", pre_path.display(), std::io::Error::last_os_error()));
    }
    pre.sync_all().map_err(|e| format!("fsync {}: {e}", pre_path.display()))?;
    let (mut wal, _) = Wal::open(&dir.join("wal")).map_err(|e| format!("failed to open the WAL: {e}"))?;
    let payload = vec![0x5au8; PAYLOAD];
    let record = vec![0x5au8; PAYLOAD + 16];
    let mut p = Probe {
        raw_us: Vec::with_capacity(reps),
        prealloc_us: Vec::with_capacity(reps),
        wal_us: Vec::with_capacity(reps),
        batch_us: Vec::new(),
    };
    let mut off = 0u64;
    let mut index = 1u64;
    let block = 50;
    let mut done = 0;
    while done < reps {
        let n = block.min(reps - done);
        for _ in 0..n {
            p.raw_us.push(append_synced(&raw, &raw_path, &record, &mut off)?);
        }
        for k in 0..n {
            let at = ((done + k) * record.len()) as u64;
            let t = Instant::now();
            pre.write_all_at(&record, at).map_err(|e| format!("write {}: {e}", pre_path.display()))?;
            pre.sync_data().map_err(|e| format!("fdatasync {}: {e}", pre_path.display()))?;
            p.prealloc_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        for _ in 0..n {
            let t = Instant::now();
            wal.append(&[(index, payload.clone())]).map_err(|e| format!("WAL append: {e}"))?;
            p.wal_us.push(t.elapsed().as_secs_f64() * 1e6);
            index += 1;
        }
        // One 64-entry batch per block.
        let batch: Vec<(u64, Vec<u8>)> = (0..64).map(|k| (index + k, payload.clone())).collect();
        let t = Instant::now();
        wal.append(&batch).map_err(|e| format!("WAL batch append: {e}"))?;
        p.batch_us.push(t.elapsed().as_secs_f64() * 1e6);
        index += 64;
        done += n;
    }
    Ok(p)
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let reps = ctx.pick(2000usize, 200);
    let dir = ctx.scratch("disk")?;
    sec.about.push(format!(
        "In the scratch directory that also holds every system's data (same filesystem): {reps} appends of a \
         {PAYLOAD}-byte payload (+16-byte record header) with `pwrite` + `fdatasync` on a plain file that grows; {reps} \
         of the same records written into a file preallocated with `fallocate` (its size does not change, as in \
         etcd's 64 MB WAL segments); and {reps} single-entry appends through consul-rs's WAL (`Wal::append`, the code \
         under openraft's `append`); the three alternate in blocks of 50, and after each block one 64-entry WAL append \
         runs. This is the disk floor under every durable write above; the filesystem is `{}`.",
        fs_type(&ctx.work)
    ));
    let d2 = dir.clone();
    let p = tokio::task::spawn_blocking(move || probe(&d2, reps))
        .await
        .map_err(|e| format!("disk probe task: {e}"))??;
    let mut t = Table::new(
        "Durable append latency",
        &["what", "appends", "p50 µs", "p99 µs", "p99.9 µs", "entries/s (1 ÷ mean)", "÷ raw (p50)"],
    );
    let raw50 = quantile(&p.raw_us, 0.5);
    for (name, v, entries) in [
        ("raw pwrite + fdatasync, appending (file grows)", &p.raw_us, 1.0),
        ("raw pwrite + fdatasync into preallocated space (fallocate, like etcd's WAL)", &p.prealloc_us, 1.0),
        ("consul-rs WAL, 1 entry", &p.wal_us, 1.0),
        ("consul-rs WAL, 64 entries", &p.batch_us, 64.0),
    ] {
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        t.row(vec![
            name.into(),
            v.len().to_string(),
            num(quantile(v, 0.5)),
            num(quantile(v, 0.99)),
            num(quantile(v, 0.999)),
            num(entries * 1e6 / mean),
            format!("{:.2}×", quantile(v, 0.5) / raw50),
        ]);
    }
    sec.metric("disk.raw.p50_us", raw50);
    sec.metric("disk.prealloc.p50_us", quantile(&p.prealloc_us, 0.5));
    sec.metric("disk.wal1.p50_us", quantile(&p.wal_us, 0.5));
    sec.metric("disk.wal64.p50_us", quantile(&p.batch_us, 0.5));
    sec.tables.push(t);
    Ok(())
}

/// The filesystem type and device of `path` (from /proc/mounts, longest prefix).
pub fn fs_type(path: &std::path::Path) -> String {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        if p.starts_with(f[1]) && best.as_ref().is_none_or(|(l, _)| f[1].len() > *l) {
            best = Some((f[1].len(), format!("{} on {} ({})", f[2], f[0], f[1])));
        }
    }
    best.map(|(_, s)| s).unwrap_or_else(|| "unknown".into())
}

/// What the kernel says about the block device under `path`: name, driver,
/// size, rotational flag, write cache mode (a VM's virtual disk says little
/// about the physical one, which is why the fdatasync floor is measured).
pub fn device_desc(path: &std::path::Path) -> String {
    let fs = fs_type(path);
    // "ext4 on /dev/vda (/)" → "vda"; partitions map to their parent disk.
    let Some(dev) = fs.split_whitespace().find_map(|w| w.strip_prefix("/dev/")) else {
        return "unknown".into();
    };
    let base: String = dev.trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
    let disk =
        if std::path::Path::new(&format!("/sys/block/{dev}")).exists() { dev.to_string() } else { base };
    let read = |rel: &str| {
        std::fs::read_to_string(format!("/sys/block/{disk}/{rel}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let driver = std::fs::read_link(format!("/sys/block/{disk}/device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_string()))
        .unwrap_or_else(|| "?".into());
    let sectors: f64 = read("size").parse().unwrap_or(f64::NAN);
    format!(
        "{disk} (driver {driver}, {:.0} GB, rotational={}, write cache: {}, scheduler: {})",
        sectors * 512.0 / 1e9,
        read("queue/rotational"),
        read("queue/write_cache"),
        read("queue/scheduler")
    )
}
