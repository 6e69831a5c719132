//! The handbook's five network environments, each a network namespace
//! with its own interfaces (documentation ranges for "public" addresses),
//! with the real `consul` binary run inside it by `ip netns exec`. Without
//! `bind_addr` an agent binds 0.0.0.0 and advertises the host's only
//! private IPv4 address (RFC 1918 or RFC 6598, on an interface that is up);
//! with none or several it refuses with Consul's words; explicit
//! `bind_addr`/`advertise_addr` (public included) always work.
//!
//! Needs root and iproute2 (`ip netns`); without them each test prints why
//! it skips. CI runs as root, so they run there.

use crate::common::netns::{http_get, Netns};
use crate::common::proc::{self, Proc};
use crate::harness::BIN;
use crate::need_netns;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `consul agent` (client mode) running inside a namespace.
struct NsAgent {
    child: Proc,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NsAgent {
    fn start(ns: &Netns, hcl: &[&str]) -> NsAgent {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, BIN, "agent", "-node=n1"])
            .arg(format!("-data-dir={}", dir.path().join("data").display()));
        for h in hcl {
            cmd.arg(format!("-hcl={h}"));
        }
        let child =
            proc::spawn(cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out)).unwrap();
        NsAgent { child, log, _dir: dir }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the agent serves HTTP in the namespace and returns
    /// `/v1/agent/self`, or panics with its output if it exits instead.
    fn wait_self(&mut self, ns: &Netns) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(body) = ns.run(|| http_get("127.0.0.1:8500", "/v1/agent/self")) {
                return serde_json::from_str(&body).expect("agent self JSON");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agent exited ({status}) instead of starting:\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "agent never served HTTP:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the agent to refuse to start; returns its output.
    fn wait_refusal(&mut self) -> String {
        let code = crate::harness::wait_exit(&mut self.child, Duration::from_secs(20));
        assert_eq!(code, Some(1), "expected a refusal:\n{}", self.output());
        self.output()
    }
}

/// A minimal HTTP/1.0 GET; the body when the status is 200.
fn tcp_open(addr: &str) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// Starts an agent and checks what it binds and advertises.
fn expect_start(ns: &Netns, hcl: &[&str], bind: &str, advertise: &str) {
    let mut a = NsAgent::start(ns, hcl);
    let me = a.wait_self(ns);
    assert_eq!(me["DebugConfig"]["BindAddr"], bind, "{}", a.output());
    assert_eq!(me["DebugConfig"]["AdvertiseAddrLAN"], advertise, "{}", a.output());
    assert_eq!(me["Member"]["Addr"], advertise);
    assert!(a.output().contains(&format!("Cluster Addr: {advertise} ")), "{}", a.output());
    // Gossip answers on the advertised address, and on every address only
    // when bound to 0.0.0.0.
    let (on_advertised, on_loopback) =
        ns.run(|| (tcp_open(&format!("{advertise}:8301")), tcp_open("127.0.0.1:8301")));
    assert!(on_advertised, "gossip is not reachable at {advertise}:8301");
    assert_eq!(on_loopback, bind == "0.0.0.0", "gossip on 127.0.0.1 with bind {bind}");
}

fn expect_refusal(ns: &Netns, hcl: &[&str], message: &str) {
    let mut a = NsAgent::start(ns, hcl);
    let out = a.wait_refusal();
    assert!(out.contains(message), "expected {message:?}:\n{out}");
}

const NO_PRIVATE: &str = "No private IPv4 address found";
const SEVERAL_PRIVATE: &str = "Multiple private IPv4 addresses found. Please configure one";

#[test]
fn single_private_address() {
    need_netns!();
    let ns = Netns::create().unwrap();
    ns.add_iface("eth0", "192.168.1.11/24", true);
    // A second private address on an interface that is down does not count.
    ns.add_iface("eth1", "10.9.0.11/16", false);
    expect_start(&ns, &[], "0.0.0.0", "192.168.1.11");
}

#[test]
fn single_public_address() {
    need_netns!();
    let ns = Netns::create().unwrap();
    ns.add_iface("eth0", "203.0.113.11/24", true);
    expect_refusal(&ns, &[], NO_PRIVATE);
    expect_start(&ns, &[r#"bind_addr = "203.0.113.11""#], "203.0.113.11", "203.0.113.11");
}

#[test]
fn several_public_addresses() {
    need_netns!();
    let ns = Netns::create().unwrap();
    ns.add_iface("eth0", "203.0.113.11/24", true);
    ns.add_iface("eth1", "198.51.100.11/24", true);
    expect_refusal(&ns, &[], NO_PRIVATE);
    expect_start(&ns, &[r#"bind_addr = "198.51.100.11""#], "198.51.100.11", "198.51.100.11");
}

#[test]
fn one_private_and_several_public_addresses() {
    need_netns!();
    let ns = Netns::create().unwrap();
    ns.add_iface("eth0", "203.0.113.11/24", true);
    ns.add_iface("eth1", "198.51.100.11/24", true);
    ns.add_iface("eth2", "192.168.1.11/24", true);
    expect_start(&ns, &[], "0.0.0.0", "192.168.1.11");
    expect_start(&ns, &[r#"bind_addr = "203.0.113.11""#], "203.0.113.11", "203.0.113.11");
}

#[test]
fn several_private_addresses() {
    need_netns!();
    let ns = Netns::create().unwrap();
    ns.add_iface("eth0", "192.168.1.11/24", true);
    // RFC 6598 shared address space counts as private too.
    ns.add_iface("eth1", "100.64.0.11/10", true);
    ns.add_iface("eth2", "203.0.113.11/24", true);
    expect_refusal(&ns, &[], SEVERAL_PRIVATE);
    expect_start(&ns, &[r#"bind_addr = "192.168.1.11""#], "192.168.1.11", "192.168.1.11");
    expect_start(&ns, &[r#"advertise_addr = "100.64.0.11""#], "0.0.0.0", "100.64.0.11");
}
