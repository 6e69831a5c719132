//! Child processes under test: start with output to a log file, kill on
//! drop, and read their resource use from /proc (RSS, CPU time, write
//! syscalls, open files).
//!
//! Owns: process lifetime and /proc readings. Must not know what the
//! process is (consul, etcd, serf, nsd): that lives in `systems/`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub started: Instant,
    child: Option<Child>,
    pid: u32,
}

impl Proc {
    /// Starts `program args`, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> Result<Proc, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("failed to open log {}: {e}", log.display()))?;
        let err =
            out.try_clone().map_err(|e| format!("failed to clone log handle {}: {e}", log.display()))?;
        let started = Instant::now();
        let mut cmd = Command::new(program);
        // SAFETY: prctl in the forked child before exec; async-signal-safe.
        // If the benchmark dies, whatever it started dies with it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("failed to start {name} ({}): {e}", program.display()))?;
        let pid = child.id();
        Ok(Proc {
            name: name.into(),
            program: program.into(),
            args: args.to_vec(),
            log: log.into(),
            started,
            child: Some(child),
            pid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line, for the report.
    pub fn cmdline(&self, work: &Path) -> String {
        let w = work.display().to_string();
        let prog = self.program.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let args: Vec<String> = self.args.iter().map(|a| a.replace(&w, "$WORK")).collect();
        format!("{prog} {}", args.join(" "))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn rss_kb(&self) -> Option<u64> {
        rss_kb(self.pid)
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map(|d| d.count()).unwrap_or(0)
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// (anonymous RSS kB, file-backed RSS kB, threads) from /proc/<pid>/status:
/// heap and stacks versus mapped code and data of the binary and libraries.
pub fn rss_split(pid: u32) -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((get("RssAnon:")?, get("RssFile:")? + get("RssShmem:").unwrap_or(0), get("Threads:")?))
}

pub fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of the whole process.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / if tck > 0.0 { tck } else { 100.0 })
}

#[derive(Clone, Copy, Debug, Default)]
pub struct IoCounters {
    /// write-family system calls
    pub syscw: u64,
}

/// Bytes written to the block device that holds `path`, from its
/// counters in /sys/dev/block (the whole device: every writer on it counts).
/// Used instead of /proc/<pid>/io's `write_bytes`, which the kernel charges
/// per page-cache folio dirtied: with large folios (up to 1 MiB), a
/// 300-byte write into a file written in one large piece counts as a whole
/// folio although only the dirty block reaches the disk.
pub fn device_bytes_written(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let stat = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    // Field 7: sectors written (512 bytes each, whatever the device's size).
    let sectors: u64 = stat.split_whitespace().nth(6)?.parse().ok()?;
    Some(sectors * 512)
}

pub fn io_counters(pid: u32) -> Option<IoCounters> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let get = |k: &str| s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<u64>().ok());
    Some(IoCounters { syscw: get("syscw:")? })
}

/// CPU use of a process over `window`, in percent of one core.
pub async fn cpu_percent(pid: u32, window: Duration) -> Option<f64> {
    let a = cpu_secs(pid)?;
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let b = cpu_secs(pid)?;
    Some(100.0 * (b - a) / t.elapsed().as_secs_f64())
}

/// Polls `check` every `every` until it returns true or `limit` passes;
/// returns the time it took.
pub async fn wait_until<F, Fut>(limit: Duration, every: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Whether a TCP port can be bound on `ip` right now (nothing else there).
pub fn tcp_free(ip: std::net::Ipv4Addr, port: u16) -> bool {
    std::net::TcpListener::bind((ip, port)).is_ok()
}
