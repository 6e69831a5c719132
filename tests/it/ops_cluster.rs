//! Helpers for the operations tests: real servers and clients on their own
//! loopback addresses with quick gossip timings, and what other agents see
//! of them (`consul members`, `/v1/status/peers`).

#![allow(dead_code)]

use crate::harness::{wait_until, Agent};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Gossip and autopilot timings for loopback: failures are detected in
/// about a second instead of several, joins are retried quickly, and new
/// servers are promoted after one second of health.
pub const QUICK: &str = r#"gossip_lan { probe_interval = "200ms" probe_timeout = "100ms" gossip_interval = "50ms" suspicion_mult = 2 }
retry_interval = "200ms"
autopilot { server_stabilization_time = "1s" }"#;

/// One agent's command line.
pub struct Spec {
    pub name: String,
    pub ip: Ipv4Addr,
    pub server: bool,
    pub bootstrap_expect: Option<u32>,
    pub join: Vec<Ipv4Addr>,
    pub hcl: Vec<String>,
}

impl Spec {
    pub fn server(name: &str) -> Spec {
        Spec {
            name: name.into(),
            ip: crate::harness::unique_ip(),
            server: true,
            bootstrap_expect: None,
            join: Vec::new(),
            hcl: vec![QUICK.into()],
        }
    }

    pub fn client(name: &str) -> Spec {
        Spec { server: false, ..Spec::server(name) }
    }

    pub fn args(&self, data_dir: &Path) -> Vec<String> {
        let mut a = vec![
            "agent".to_string(),
            format!("-node={}", self.name),
            format!("-data-dir={}", data_dir.display()),
            format!("-bind={}", self.ip),
            format!("-client={}", self.ip),
        ];
        if self.server {
            a.push("-server".into());
        }
        if let Some(n) = self.bootstrap_expect {
            a.push(format!("-bootstrap-expect={n}"));
        }
        for j in &self.join {
            a.push(format!("-retry-join={j}"));
        }
        for h in &self.hcl {
            a.push(format!("-hcl={h}"));
        }
        a
    }

    /// `ip:8300`, this server's Raft address.
    pub fn rpc(&self) -> String {
        format!("{}:8300", self.ip)
    }
}

/// An agent with its own data dir (kept across restarts).
pub struct Node {
    pub spec: Spec,
    pub agent: Agent,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Node {
    pub fn start(spec: Spec) -> Node {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let agent = Agent::spawn(spec.ip, spec.args(&dir), Some(dir.clone()), None);
        Node { spec, agent, dir, _tmp: tmp }
    }

    /// Starts again on the same data dir, with the spec's current arguments.
    pub fn restart(&mut self) {
        self.agent.kill9();
        self.agent.args = self.spec.args(&self.dir);
        self.agent.restart();
    }

    pub fn raft_dir(&self) -> PathBuf {
        self.dir.join("raft")
    }

    /// The node ID the agent stored in its data dir.
    pub fn node_id(&self) -> String {
        std::fs::read_to_string(self.dir.join("node-id")).expect("node-id").trim().to_string()
    }
}

/// Starts `n` servers that form one cluster with `bootstrap_expect = n`.
pub async fn cluster(n: usize, hcl: &[&str]) -> Vec<Node> {
    let specs: Vec<Spec> = (1..=n).map(|i| Spec::server(&format!("s{i}"))).collect();
    let ips: Vec<Ipv4Addr> = specs.iter().map(|s| s.ip).collect();
    let nodes: Vec<Node> = specs
        .into_iter()
        .map(|mut s| {
            s.bootstrap_expect = Some(n as u32);
            s.join = ips.clone();
            s.hcl.extend(hcl.iter().map(|h| h.to_string()));
            Node::start(s)
        })
        .collect();
    for node in &nodes {
        wait_peers(&node.agent, &ips.iter().map(|ip| format!("{ip}:8300")).collect::<Vec<_>>()).await;
    }
    nodes
}

/// The Raft voters `agent` reports, sorted.
pub async fn peers(agent: &Agent) -> Option<Vec<String>> {
    let r = agent.client().request(hyper::Method::GET, "/v1/status/peers", None).await.ok()?;
    let mut v: Vec<String> = r.json().ok()?;
    v.sort();
    Some(v)
}

/// Waits until `agent` reports exactly these voters and knows a leader.
pub async fn wait_peers(agent: &Agent, want: &[String]) {
    let mut want = want.to_vec();
    want.sort();
    let c = agent.client();
    let ok = wait_until(Duration::from_secs(30), || async {
        let leader = matches!(c.request(hyper::Method::GET, "/v1/status/leader", None).await, Ok(r) if r.text().len() > 2);
        leader && peers(agent).await.as_ref() == Some(&want)
    })
    .await;
    assert!(
        ok,
        "agent {} never reported peers {want:?} with a leader (now {:?})\n{}",
        agent.addr(),
        peers(agent).await,
        agent.output_text()
    );
}

/// A member's status (`alive`, `left`, `failed`, ...) in `consul members`
/// run against `observer`.
pub fn member_status(observer: &Agent, name: &str) -> Option<String> {
    let out = observer.cli(&["members"]);
    out.stdout.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.first() == Some(&name)).then(|| cols.get(2).map(|s| s.to_string())).flatten()
    })
}

pub async fn wait_member_status(observer: &Agent, name: &str, want: &str) {
    let ok = wait_until(Duration::from_secs(20), || async {
        member_status(observer, name).as_deref() == Some(want)
    })
    .await;
    assert!(
        ok,
        "{name} never became {want} as seen from {} (now {:?})",
        observer.addr(),
        member_status(observer, name)
    );
}

/// Sends a signal to a running agent (without waiting).
pub fn signal(agent: &Agent, sig: i32) {
    let pid = agent.pid();
    assert!(pid > 0, "agent {} is not running", agent.addr());
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits for the agent process to exit; returns its exit code.
pub fn wait_exit(agent: &mut Agent, timeout: Duration) -> Option<i32> {
    let mut child = agent.child.take()?;
    let code = crate::harness::wait_exit(&mut child, timeout);
    if code.is_none() {
        child.kill_and_reap();
    }
    code
}

/// Waits until the agent's output, from byte `from` on (earlier runs of
/// the same agent share the buffer), contains `text`.
pub async fn wait_output(agent: &Agent, from: usize, text: &str) {
    let ok = wait_until(Duration::from_secs(20), || async {
        agent.output_text().get(from..).is_some_and(|t| t.contains(text))
    })
    .await;
    assert!(ok, "agent {} never printed {text:?}\n{}", agent.addr(), agent.output_text());
}

/// Signals several agents at once and waits for all of them, since each
/// shutdown takes a few seconds.
pub fn signal_all(targets: &mut [(&mut Agent, i32)]) -> Vec<Option<i32>> {
    for (a, sig) in targets.iter() {
        signal(a, *sig);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    targets
        .iter_mut()
        .map(|(a, _)| wait_exit(a, deadline.saturating_duration_since(Instant::now())))
        .collect()
}
