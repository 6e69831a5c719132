//! The servers of one run: real `consul agent -server` processes started by
//! `ip netns exec` inside their namespaces, and the fault primitives that act
//! on processes and disks (kill -9, SIGSTOP/SIGCONT, restart, a power loss
//! that cuts what was never synced). Knows nothing about the workload.

use crate::common::proc::{self, Proc};
use crate::common::wait::wait_blocking;
use crate::http;
use crate::net::{Net, Rules};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_consul");

/// Short autopilot and RPC-hold timings so faults resolve in seconds.
const FAST: &str = r#"performance { rpc_hold_timeout = "2s" } autopilot { server_stabilization_time = "1s" } retry_interval = "1s""#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Killed,
    /// Left the cluster (membership change); not coming back.
    Removed,
}

pub struct Server {
    pub idx: usize,
    pub name: String,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub data_dir: PathBuf,
    pub state: State,
    /// Leads its own process group: killing it kills the whole group, and
    /// dropping it (also in a panic) kills and reaps.
    child: Option<Proc>,
    logs: Vec<PathBuf>,
    join: Vec<Ipv4Addr>,
    bootstrap_expect: Option<usize>,
}

impl Server {
    pub fn http(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 8500))
    }

    pub fn rpc_addr(&self) -> String {
        format!("{}:8300", self.ip)
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }
}

pub struct Cluster {
    pub net: Net,
    pub servers: Vec<Server>,
    pub out_dir: PathBuf,
    bug: Option<String>,
    /// Process exits nobody asked for, and panics found in outputs.
    pub unexpected: Vec<String>,
}

impl Cluster {
    /// Starts `n` servers with `bootstrap_expect = n`, all retry-joining each other.
    pub fn start(n: usize, bug: Option<&str>, out_dir: &Path) -> Result<Cluster, String> {
        let net = Net::create()?;
        let mut c = Cluster {
            net,
            servers: Vec::new(),
            out_dir: out_dir.to_path_buf(),
            bug: bug.map(str::to_string),
            unexpected: Vec::new(),
        };
        let ips: Vec<Ipv4Addr> = (0..n).map(Net::node_ip).collect();
        for i in 0..n {
            let join = ips.iter().copied().filter(|j| *j != Net::node_ip(i)).collect();
            c.add_server(i, join, Some(n))?;
        }
        Ok(c)
    }

    /// Creates and starts server `i` (a namespace, a data dir, a process).
    pub fn add_server(
        &mut self,
        i: usize,
        join: Vec<Ipv4Addr>,
        bootstrap_expect: Option<usize>,
    ) -> Result<(), String> {
        let ns = self.net.add_node(i)?;
        let data_dir = self.out_dir.join(format!("s{i}-data"));
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let s = Server {
            idx: i,
            name: format!("s{i}"),
            ns,
            ip: Net::node_ip(i),
            data_dir,
            state: State::Killed,
            child: None,
            logs: Vec::new(),
            join,
            bootstrap_expect,
        };
        self.servers.push(s);
        self.spawn(i)
    }

    fn pos(&self, i: usize) -> usize {
        self.servers.iter().position(|s| s.idx == i).unwrap_or(usize::MAX)
    }

    pub fn server(&self, i: usize) -> &Server {
        &self.servers[self.pos(i)]
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let p = self.pos(i);
        let bug = self.bug.clone();
        let s = &mut self.servers[p];
        let log = self.out_dir.join(format!("{}-{}.log", s.name, s.logs.len()));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &s.ns, BIN, "agent", "-server"])
            .arg(format!("-node={}", s.name))
            .arg(format!("-data-dir={}", s.data_dir.display()))
            .arg(format!("-bind={}", s.ip))
            .arg(format!("-client={}", s.ip))
            .arg("-hcl")
            .arg(FAST);
        if let Some(n) = s.bootstrap_expect {
            cmd.arg(format!("-bootstrap-expect={n}"));
        }
        for j in &s.join {
            cmd.arg(format!("-retry-join={j}"));
        }
        match &bug {
            Some(b) => cmd.env("CONSUL_RS_INJECT_BUG", b),
            None => cmd.env_remove("CONSUL_RS_INJECT_BUG"),
        };
        let child = proc::spawn(cmd.stdin(Stdio::null()).stdout(out).stderr(err))
            .map_err(|e| format!("starting {}: {e}", s.name))?;
        s.child = Some(child);
        s.logs.push(log);
        s.state = State::Running;
        Ok(())
    }

    fn signal(&self, i: usize, sig: i32) -> Result<(), String> {
        let pid = self.server(i).pid().ok_or(format!("s{i} has no process"))?;
        // SAFETY: kill(2) on a child process we started and have not reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("kill({pid}, {sig}): {}", std::io::Error::last_os_error()))
        }
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self, i: usize) -> Result<(), String> {
        self.check_exits();
        // SIGKILL ends a stopped process too; no SIGCONT first, so a paused
        // server never runs (and never fires its overdue timers) again.
        self.signal(i, libc::SIGKILL)?;
        let p = self.pos(i);
        if let Some(mut c) = self.servers[p].child.take() {
            c.kill_and_reap();
        }
        self.servers[p].state = State::Killed;
        Ok(())
    }

    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.server(i).state != State::Killed {
            self.kill9(i)?;
        }
        self.spawn(i)
    }

    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, libc::SIGSTOP)?;
        let p = self.pos(i);
        self.servers[p].state = State::Paused;
        Ok(())
    }

    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, libc::SIGCONT)?;
        let p = self.pos(i);
        self.servers[p].state = State::Running;
        Ok(())
    }

    /// Runs the `consul` CLI inside server `i`'s namespace against its agent.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let s = self.server(i);
        let out = Command::new("ip")
            .args(["netns", "exec", &s.ns, BIN])
            .args(args)
            .env("CONSUL_HTTP_ADDR", format!("http://{}", s.http()))
            .output()
            .map_err(|e| format!("running consul {}: {e}", args.join(" ")))?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("consul {} on s{i} failed ({}): {text}", args.join(" "), out.status))
        }
    }

    /// Waits for a server that ran `consul leave` to exit; marks it removed.
    pub fn wait_left(&mut self, i: usize, timeout: Duration) -> Result<(), String> {
        let p = self.pos(i);
        let deadline = Instant::now() + timeout;
        loop {
            let done = match self.servers[p].child.as_mut() {
                Some(c) => c.try_wait().map_err(|e| e.to_string())?,
                None => return Err(format!("s{i} has no process")),
            };
            if let Some(status) = done {
                self.servers[p].child = None;
                self.servers[p].state = State::Removed;
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("s{i} exited with {status} after leaving"))
                };
            }
            if Instant::now() > deadline {
                return Err(format!("s{i} did not exit within {timeout:?} of leaving"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn set_rules(&self, i: usize, rules: &Rules) -> Result<(), String> {
        let ips: Vec<Ipv4Addr> = self.servers.iter().map(|s| s.ip).collect();
        self.net.apply(i, rules, &ips)
    }

    pub fn heal_network(&self) -> Result<(), String> {
        for s in &self.servers {
            if s.state != State::Removed {
                self.set_rules(s.idx, &Rules::default())?;
            }
        }
        Ok(())
    }

    pub fn members(&self) -> Vec<usize> {
        self.servers.iter().filter(|s| s.state != State::Removed).map(|s| s.idx).collect()
    }

    pub fn running(&self) -> Vec<usize> {
        self.servers.iter().filter(|s| s.state == State::Running).map(|s| s.idx).collect()
    }

    /// HTTP addresses of the servers the workload should talk to.
    pub fn targets(&self) -> Vec<SocketAddr> {
        self.servers.iter().filter(|s| s.state == State::Running).map(|s| s.http()).collect()
    }

    /// The leader server `i` names, if any.
    pub fn leader_seen_by(&self, i: usize) -> Option<String> {
        let r =
            http::request(self.server(i).http(), "GET", "/v1/status/leader", None, Duration::from_secs(2))
                .ok()?;
        let l: String = serde_json::from_slice(&r.body).ok()?;
        (r.status == 200 && !l.is_empty()).then_some(l)
    }

    /// The leader every running server names, if they agree and it is one of them.
    pub fn agreed_leader(&self) -> Option<usize> {
        let running = self.running();
        let mut seen = None;
        for i in &running {
            let l = self.leader_seen_by(*i)?;
            if seen.as_ref().is_some_and(|s| *s != l) {
                return None;
            }
            seen = Some(l);
        }
        let l = seen?;
        running.into_iter().find(|i| self.server(*i).rpc_addr() == l)
    }

    /// Waits until the running servers agree on a leader among them.
    pub fn wait_leader(&self, timeout: Duration) -> Option<(usize, Duration)> {
        let start = Instant::now();
        let mut leader = None;
        wait_blocking(timeout, Duration::from_millis(100), || {
            leader = self.agreed_leader();
            leader.is_some()
        });
        Some((leader?, start.elapsed()))
    }

    /// Raft voters according to server `i`.
    pub fn voters(&self, i: usize) -> Option<usize> {
        let r = http::request(
            self.server(i).http(),
            "GET",
            "/v1/operator/raft/configuration",
            None,
            Duration::from_secs(3),
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        Some(v["Servers"].as_array()?.iter().filter(|s| s["Voter"] == true).count())
    }

    /// Records exits nobody asked for.
    pub fn check_exits(&mut self) {
        for s in &mut self.servers {
            if let Some(c) = s.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.unexpected.push(format!(
                        "{} exited unexpectedly with {status} (log {})",
                        s.name,
                        s.logs.last().map(|l| l.display().to_string()).unwrap_or_default()
                    ));
                    s.child = None;
                    s.state = State::Killed;
                }
            }
        }
    }

    /// Every output line that reports a panic, with the log it is in.
    pub fn panics(&self) -> Vec<String> {
        let mut found = Vec::new();
        for s in &self.servers {
            for log in &s.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                for line in text.lines().filter(|l| l.contains("panicked")) {
                    found.push(format!("{}: {line}", log.display()));
                }
            }
        }
        found
    }

    /// Every output line of every server (all incarnations, removed
    /// servers included) that `keep` keeps.
    pub fn log_lines(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.servers {
            for log in &s.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                out.extend(text.lines().filter(|l| keep(l)).map(str::to_string));
            }
        }
        out
    }

    /// The node ID server `i` keeps in its data dir (a new one after a wipe).
    pub fn node_id(&self, i: usize) -> Option<String> {
        let text = std::fs::read_to_string(self.server(i).data_dir.join("node-id")).ok()?;
        Some(text.trim().to_string())
    }

    /// Loses server `i`'s disk: kill -9, empty its data dir, start it again
    /// under the same name and address (so with a new node ID), joining
    /// `join`. (With its disk it lost the gossip snapshot that let a restart
    /// find the current members; the servers it first joined may be gone.)
    pub fn wipe_and_restart(&mut self, i: usize, join: Vec<Ipv4Addr>) -> Result<(), String> {
        if self.server(i).state != State::Killed {
            self.kill9(i)?;
        }
        let p = self.pos(i);
        self.servers[p].join = join;
        let dir = self.server(i).data_dir.clone();
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        self.spawn(i)
    }

    /// Whether the current incarnation of server `i` has logged `needle`.
    pub fn latest_log_contains(&self, i: usize, needle: &str) -> bool {
        self.server(i)
            .logs
            .last()
            .is_some_and(|l| std::fs::read_to_string(l).unwrap_or_default().contains(needle))
    }

    /// WAL segments of server `i`, in order.
    fn segments(&self, i: usize) -> Vec<PathBuf> {
        let dir = self.server(i).data_dir.join("raft").join("wal");
        let mut segs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                    .collect()
            })
            .unwrap_or_default();
        segs.sort();
        segs
    }

    /// What a power loss does to a killed server's disk: bytes past the
    /// synced length of each WAL segment vanish (known only when the agent
    /// publishes it, under the `ack-before-fsync` injection; a correct agent
    /// syncs every append before acknowledging it, so from outside nothing
    /// is provably unsynced and nothing is cut), the last write is torn (a
    /// partial record appended, as a crash mid-write leaves), and, with
    /// `drop_hint`, the committed-index hint (written without fsync, so a
    /// power loss may take it) is gone. Never cuts synced bytes.
    /// Returns (bytes cut, torn bytes added).
    pub fn lose_unsynced(&self, i: usize, torn: &[u8], drop_hint: bool) -> Result<(u64, u64), String> {
        assert_eq!(self.server(i).state, State::Killed, "power loss on a live server");
        let mut cut = 0;
        let segs = self.segments(i);
        for seg in &segs {
            let marker = consul::inject::synced_marker(seg);
            let Ok(txt) = std::fs::read_to_string(&marker) else { continue };
            let Ok(synced) = txt.trim().parse::<u64>() else { continue };
            let bytes = std::fs::read(seg).map_err(|e| format!("{}: {e}", seg.display()))?;
            if synced < bytes.len() as u64 {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(seg)
                    .map_err(|e| format!("{}: {e}", seg.display()))?;
                f.set_len(synced).map_err(|e| format!("{}: {e}", seg.display()))?;
                // Record bytes lost (the preallocated zeros go too).
                cut += records_end(&bytes).saturating_sub(synced);
            }
        }
        let mut added = 0;
        if let Some(last) = segs.last() {
            use std::os::unix::fs::FileExt;
            let bytes = std::fs::read(last).map_err(|e| format!("{}: {e}", last.display()))?;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(last)
                .map_err(|e| format!("{}: {e}", last.display()))?;
            // Right after the last record: into the segment's preallocated
            // zeros, or past the file's end when it has none.
            f.write_all_at(torn, records_end(&bytes)).map_err(|e| format!("{}: {e}", last.display()))?;
            added = torn.len() as u64;
        }
        if drop_hint {
            let hint = self.server(i).data_dir.join("raft").join("meta").join("committed");
            let _ = std::fs::remove_file(hint);
        }
        Ok((cut, added))
    }
}

/// Where the records of a WAL segment end, walking their length headers
/// (`[len u32][crc u32][index u64][payload]`); a segment's preallocated
/// zeros start there (an all-zero header is never a record).
fn records_end(seg: &[u8]) -> u64 {
    const HEADER: usize = 16;
    let mut pos = 0;
    while pos + HEADER <= seg.len() && seg[pos..pos + HEADER].iter().any(|b| *b != 0) {
        let len = u32::from_le_bytes([seg[pos], seg[pos + 1], seg[pos + 2], seg[pos + 3]]) as usize;
        pos = (pos + HEADER + len).min(seg.len());
    }
    pos as u64
}

impl Drop for Cluster {
    /// Servers first (each `Proc` kills its process group and reaps it),
    /// then the namespaces they ran in.
    fn drop(&mut self) {
        for s in &mut self.servers {
            drop(s.child.take());
        }
    }
}
