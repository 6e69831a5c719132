//! Durability evidence: how many fsync/fdatasync calls a server makes per
//! acknowledged write (strace -c attached to every thread for a short
//! sample), and write syscalls / bytes sent to storage per write
//! (/proc/<pid>/io deltas over a whole run, no tracing overhead).
//!
//! Owns: the strace sample and its parsing. Must not know which system it
//! samples.

use crate::procs::{io_counters, IoCounters};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Counts of sync calls seen by strace.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCount {
    pub fsync: u64,
    pub fdatasync: u64,
    pub sync_file_range: u64,
    /// seconds spent inside those calls (strace's `seconds` column)
    pub secs: f64,
}

impl SyncCount {
    pub fn total(&self) -> u64 {
        self.fsync + self.fdatasync + self.sync_file_range
    }

    /// Mean time in one sync call, microseconds.
    pub fn mean_us(&self) -> f64 {
        if self.total() == 0 {
            f64::NAN
        } else {
            self.secs * 1e6 / self.total() as f64
        }
    }
}

/// Parses `strace -c` output: the `calls` column of the syscall rows.
pub fn parse_strace_summary(text: &str) -> SyncCount {
    let mut c = SyncCount::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let Some(name) = f.last() else { continue };
        let Ok(calls) = f[3].parse::<u64>() else { continue };
        let secs = f[1].parse::<f64>().unwrap_or(0.0);
        match *name {
            "fsync" => c.fsync += calls,
            "fdatasync" => c.fdatasync += calls,
            "sync_file_range" => c.sync_file_range += calls,
            _ => continue,
        }
        c.secs += secs;
    }
    c
}

/// Attaches strace to every thread of `pids`, runs `work`, detaches and
/// returns the sync calls counted while attached plus `work`'s output.
pub async fn strace_syncs<T, F>(
    strace: &Path,
    pids: &[u32],
    out_dir: &Path,
    work: F,
) -> Result<(SyncCount, T), String>
where
    F: std::future::Future<Output = T>,
{
    let mut children = Vec::new();
    for pid in pids {
        let out = out_dir.join(format!("strace-{pid}.txt"));
        let _ = std::fs::remove_file(&out);
        let child = Command::new(strace)
            .args(["-c", "-w", "-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range", "-o"])
            .arg(&out)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("failed to start strace: {e}"))?;
        children.push((child, out));
    }
    // strace attaches thread by thread; give it a moment before the load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = work.await;
    let mut total = SyncCount::default();
    for (mut child, out) in children {
        // SAFETY: SIGINT to our own strace child makes it detach and print.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        let text =
            std::fs::read_to_string(&out).map_err(|e| format!("no strace output {}: {e}", out.display()))?;
        let c = parse_strace_summary(&text);
        total.fsync += c.fsync;
        total.fdatasync += c.fdatasync;
        total.sync_file_range += c.sync_file_range;
        total.secs += c.secs;
    }
    Ok((total, result))
}

/// Sum of /proc/<pid>/io over processes.
pub fn io_sum(pids: &[u32]) -> IoCounters {
    let mut s = IoCounters::default();
    for p in pids {
        if let Some(c) = io_counters(*p) {
            s.syscw += c.syscw;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strace_c() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                     90.00    0.090000          90      1000           fdatasync\n\
                     10.00    0.010000          10        12         1 fsync\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.100000          98      1012         1 total\n";
        let c = parse_strace_summary(text);
        assert_eq!(c.fdatasync, 1000);
        assert_eq!(c.fsync, 12);
        assert_eq!(c.total(), 1012);
        assert!((c.mean_us() - 0.1 * 1e6 / 1012.0).abs() < 1e-6);
    }
}
