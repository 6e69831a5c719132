//! The run context: where things are (consul binary, peer tools, scratch and
//! output directories), quick or full mode, and the checks that decide whether
//! a benchmark can run at all.
//!
//! Owns: paths, tool discovery, durations per mode. Must not start processes
//! other than `cargo build` (for the consul binary) and version probes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The Debian packages the suite uses; `bench/setup.sh` installs them.
pub const APT_LINE: &str =
    "apt-get install -y etcd-server etcd-client serf dnsperf nsd python3-matplotlib strace linux-perf";

pub struct Ctx {
    pub quick: bool,
    /// The repository root (the parent of bench/).
    pub repo: PathBuf,
    /// The checkout the consul binary was built from (usually `repo`).
    pub consul_repo: PathBuf,
    /// The commit the measured binary was built from.
    pub consul_commit: String,
    pub consul: PathBuf,
    /// Scratch space: data dirs and logs of everything started. On the same
    /// filesystem for every system so durability costs compare.
    pub work: PathBuf,
    /// Where each benchmark's JSON result goes.
    pub results: PathBuf,
    /// The generated markdown.
    pub doc: PathBuf,
    /// PNG plots referenced by the markdown (CSVs go to `results`).
    pub assets: PathBuf,
    pub tools: Tools,
    /// The open-file limit this process (and every child) runs with.
    pub nofile: u64,
    /// Opt-in overrides of the gossip benchmark (`--trials`,
    /// `--gossip-sizes`, `--gossip-join-only`).
    pub trials: Option<usize>,
    pub gossip_sizes: Option<Vec<usize>>,
    pub gossip_join_only: bool,
}

/// Absolute paths of the peer programs, when installed.
#[derive(Default, Clone)]
pub struct Tools {
    pub etcd: Option<PathBuf>,
    pub etcdctl: Option<PathBuf>,
    pub serf: Option<PathBuf>,
    pub nsd: Option<PathBuf>,
    pub dnsperf: Option<PathBuf>,
    pub strace: Option<PathBuf>,
    /// A python3 that can import matplotlib (Debian's, which apt installs
    /// into, is preferred over one earlier on PATH).
    pub python: Option<PathBuf>,
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path).chain(extra).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Tools {
    pub fn discover() -> Tools {
        let python = [PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")].into_iter().find(|p| {
            Command::new(p)
                .args(["-c", "import matplotlib"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        Tools {
            etcd: which("etcd"),
            etcdctl: which("etcdctl"),
            serf: which("serf"),
            nsd: which("nsd"),
            dnsperf: which("dnsperf"),
            strace: which("strace"),
            python,
        }
    }

    /// One line per tool: found where, or missing.
    pub fn describe(&self) -> Vec<(String, String)> {
        let show = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "MISSING".into())
        };
        vec![
            ("etcd".into(), show(&self.etcd)),
            ("etcdctl".into(), show(&self.etcdctl)),
            ("serf".into(), show(&self.serf)),
            ("nsd".into(), show(&self.nsd)),
            ("dnsperf".into(), show(&self.dnsperf)),
            ("strace".into(), show(&self.strace)),
            ("python3-matplotlib".into(), show(&self.python)),
        ]
    }

    pub fn all_present(&self) -> bool {
        self.etcd.is_some()
            && self.etcdctl.is_some()
            && self.serf.is_some()
            && self.nsd.is_some()
            && self.dnsperf.is_some()
            && self.strace.is_some()
            && self.python.is_some()
    }
}

/// A tool a benchmark cannot do without; the error tells how to install it.
pub fn need<'a>(tool: &'a Option<PathBuf>, name: &str) -> Result<&'a Path, String> {
    tool.as_deref().ok_or_else(|| format!("{name} is not installed; run bench/setup.sh ({APT_LINE})"))
}

impl Ctx {
    /// Full-mode value or quick-mode value.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    pub fn secs(&self, full: f64, quick: f64) -> Duration {
        Duration::from_secs_f64(self.pick(full, quick))
    }

    /// A fresh scratch directory for one system of one benchmark.
    pub fn scratch(&self, name: &str) -> Result<PathBuf, String> {
        let d = self.work.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| format!("failed to clear {}: {e}", d.display()))?;
        }
        std::fs::create_dir_all(&d).map_err(|e| format!("failed to create {}: {e}", d.display()))?;
        Ok(d)
    }
}

/// Builds the `consul` release binary of this repository and returns its path
/// (from cargo's own artifact messages, so CARGO_TARGET_DIR is honoured).
pub fn build_consul(repo: &Path) -> Result<PathBuf, String> {
    eprintln!("consul-bench: building the consul release binary (cargo build --release --bin consul)");
    let out = Command::new("cargo")
        .current_dir(repo)
        .args(["build", "--release", "--bin", "consul", "--message-format=json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("failed to run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --release --bin consul failed ({})", out.status));
    }
    let mut exe = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == "consul" {
            if let Some(p) = v["executable"].as_str() {
                exe = Some(PathBuf::from(p));
            }
        }
    }
    exe.ok_or_else(|| "cargo did not report the consul executable".to_string())
}

/// `git describe`-like identity of the measured code.
pub fn git_commit(repo: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .current_dir(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()).unwrap_or(false);
    if dirty {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    }
}

/// Raises this process's open-file limit to the hard maximum the kernel
/// allows (children inherit it: the agents under the watcher benchmark hold
/// one socket per watcher). Returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let want: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let raised = libc::rlimit { rlim_cur: want as libc::rlim_t, rlim_max: want as libc::rlim_t };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        // Not root: at least lift the soft limit to the hard one.
        let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            return lim.rlim_max as u64;
        }
        lim.rlim_cur as u64
    }
}

/// The first line of a program's version output.
pub fn version_of(program: &Path, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) => {
            let text =
                format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("?").to_string()
        }
        Err(e) => format!("? ({e})"),
    }
}
