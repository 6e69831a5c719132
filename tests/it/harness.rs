//! Test harness: starts real `consul` processes on their own loopback
//! addresses, waits for them with deadlines, kills them (with their process
//! group) and reaps them on drop, also when a test fails, and prints their
//! output when it does.

#![allow(dead_code)]

use crate::common::proc::{self, Proc};
pub use crate::common::wait::wait_until;
use consul::api::{ApiResponse, Client, ClientConfig};
use hyper::Method;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_consul");

/// A loopback address no other test is likely to use: each agent gets its
/// own "host", so Consul's default ports work unchanged.
pub fn unique_ip() -> Ipv4Addr {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let ip = Ipv4Addr::new(
            127,
            rng.random_range(64..=127),
            rng.random_range(0..=255),
            rng.random_range(2..=254),
        );
        // Make sure the HTTP port is free on it right now.
        if std::net::TcpListener::bind((ip, 8500)).is_ok() {
            return ip;
        }
    }
}

/// A running agent process.
pub struct Agent {
    pub child: Option<Proc>,
    pub ip: Ipv4Addr,
    pub http_port: u16,
    pub output: Arc<Mutex<Vec<u8>>>,
    pub args: Vec<String>,
    pub data_dir: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

impl Agent {
    /// `consul agent -dev` on a fresh loopback address.
    pub fn dev(extra: &[&str]) -> Agent {
        let ip = unique_ip();
        let mut args: Vec<String> = vec![
            "agent".into(),
            "-dev".into(),
            format!("-bind={ip}"),
            format!("-client={ip}"),
            "-node=dev".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Agent::spawn(ip, args, None, None)
    }

    /// A non-dev single server with a data dir (a new temp dir unless given).
    pub fn server(data_dir: Option<&Path>, extra: &[&str]) -> Agent {
        let ip = unique_ip();
        let (dir, tmp) = match data_dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut args: Vec<String> = vec![
            "agent".into(),
            "-server".into(),
            "-bootstrap".into(),
            format!("-data-dir={}", dir.display()),
            format!("-bind={ip}"),
            format!("-client={ip}"),
            "-node=s1".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Agent::spawn(ip, args, Some(dir), tmp)
    }

    /// An agent named `name` on a fresh loopback address and temporary
    /// data dir, retrying joins every second, plus `extra` arguments
    /// (`-server`, `-retry-join=…`, `-datacenter=…`, …).
    pub fn on_own_ip(name: &str, extra: &[String]) -> Agent {
        let ip = unique_ip();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut args: Vec<String> = vec![
            "agent".into(),
            format!("-data-dir={}", dir.display()),
            format!("-bind={ip}"),
            format!("-client={ip}"),
            format!("-node={name}"),
            "-retry-interval=1s".into(),
        ];
        args.extend(extra.iter().cloned());
        Agent::spawn(ip, args, Some(dir), Some(tmp))
    }

    pub fn spawn(
        ip: Ipv4Addr,
        args: Vec<String>,
        data_dir: Option<PathBuf>,
        tmp: Option<tempfile::TempDir>,
    ) -> Agent {
        let output = Arc::new(Mutex::new(Vec::new()));
        let child = spawn_logged(&args, &output);
        Agent { child: Some(child), ip, http_port: 8500, output, args, data_dir, _tmp: tmp }
    }

    /// Restarts the process with the same arguments (after `kill9` or `stop`).
    pub fn restart(&mut self) {
        self.kill9();
        self.child = Some(spawn_logged(&self.args, &self.output));
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.http_port)
    }

    pub fn client(&self) -> Client {
        Client::new(ClientConfig { address: self.addr(), ..Default::default() }).expect("client")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Waits until the agent knows a leader (or panics with its output).
    pub async fn wait_ready(&self) {
        let c = self.client();
        let ok = wait_until(Duration::from_secs(30), || async {
            matches!(c.request(Method::GET, "/v1/status/leader", None).await,
                Ok(r) if r.status.is_success() && r.text().len() > 2)
        })
        .await;
        assert!(ok, "agent at {} never became ready\n{}", self.addr(), self.output_text());
    }

    pub async fn get(&self, path: &str) -> ApiResponse {
        self.client().request(Method::GET, path, None).await.expect("GET")
    }

    /// A GET that tolerates the agent not listening (yet): for wait loops.
    pub async fn try_get(&self, path: &str) -> Option<ApiResponse> {
        self.client().request(Method::GET, path, None).await.ok()
    }

    pub async fn put(&self, path: &str, body: &[u8]) -> ApiResponse {
        self.client().request(Method::PUT, path, Some(body.to_vec().into())).await.expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> ApiResponse {
        self.client().request(Method::DELETE, path, None).await.expect("DELETE")
    }

    /// Runs the CLI against this agent.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        cli_with_env(args, &[("CONSUL_HTTP_ADDR", &self.addr())], None)
    }

    /// SIGKILL to the agent's process group, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill_and_reap();
        }
    }

    /// Sends a signal and waits for exit; returns the exit code.
    pub fn signal_and_wait(&mut self, sig: i32) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                c.kill_and_reap();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output_text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|e| e.into_inner())).to_string()
    }

    /// A gauge from `/v1/agent/metrics`.
    pub async fn gauge(&self, name: &str) -> i64 {
        let r = self.get("/v1/agent/metrics").await;
        let v: serde_json::Value = r.json().expect("metrics json");
        v["Gauges"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["Name"] == name))
            .and_then(|g| g["Value"].as_f64())
            .unwrap_or(0.0) as i64
    }

    /// A counter from `/v1/agent/metrics`.
    pub async fn counter(&self, name: &str) -> u64 {
        let r = self.get("/v1/agent/metrics").await;
        let v: serde_json::Value = r.json().expect("metrics json");
        v["Counters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["Name"] == name))
            .and_then(|c| c["Count"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- output of agent {} ({}) -----\n{}",
                self.addr(),
                self.args.join(" "),
                self.output_text()
            );
        }
    }
}

fn spawn_logged(args: &[String], output: &Arc<Mutex<Vec<u8>>>) -> Proc {
    let mut child = proc::spawn(
        Command::new(BIN).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()),
    )
    .expect("spawn consul");
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let out = output.clone();
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 8192];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
            }
        });
    }
    child
}

/// The result of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn cli(args: &[&str]) -> CliOutput {
    cli_with_env(args, &[], None)
}

pub fn cli_with_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> CliOutput {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_HTTP_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = proc::spawn(&mut cmd).expect("spawn consul cli");
    if let (Some(data), Some(mut sin)) = (stdin, child.stdin.take()) {
        sin.write_all(data).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait cli");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Waits for a process to exit within `timeout`; returns its exit code.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time (user + system, in clock ticks) a process has used.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    utime + stime
}

/// The guard every test's child processes live in: dropping it ends the
/// child's whole process group (a grandchild too), and reaps the child.
#[test]
fn dropping_a_proc_kills_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild");
    let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let child = proc::spawn(Command::new("sh").args(["-c", &script])).expect("spawn sh");
    let read_pid = || std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok());
    let started =
        crate::common::wait::wait_blocking(Duration::from_secs(10), Duration::from_millis(10), || {
            read_pid().is_some()
        });
    assert!(started, "the shell never started its background sleep");
    let grandchild = read_pid().expect("pid");
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
    };
    assert!(alive(grandchild));
    drop(child);
    // Killed by the drop; reparented to init (or a subreaper), which reaps it.
    let gone = crate::common::wait::wait_blocking(Duration::from_secs(10), Duration::from_millis(20), || {
        !alive(grandchild)
    });
    assert!(gone, "grandchild {grandchild} outlived the dropped Proc");
}
