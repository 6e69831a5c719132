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

use crate::harness::BIN;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A network namespace of our own, deleted on drop (also when a test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let name = format!("crs-ops-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// An Ethernet-like interface with one address. A veth pair with both
    /// ends inside the namespace: it needs no kernel module beyond veth.
    fn add_iface(&self, name: &str, cidr: &str, up: bool) {
        let peer = format!("{name}p");
        self.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]).unwrap();
        self.ip(&["addr", "add", cidr, "dev", name]).unwrap();
        if up {
            self.ip(&["link", "set", name, "up"]).unwrap();
            self.ip(&["link", "set", &peer, "up"]).unwrap();
        }
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(&path).expect("open netns");
                // SAFETY: setns on a namespace fd we own; it changes only this thread.
                let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Whether this machine lets us make namespaces; the reason if not.
fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root".into());
    }
    let ns = Netns::create()?;
    ns.ip(&["link", "add", "probe0", "type", "veth", "peer", "name", "probe0p"])?;
    Ok(())
}

macro_rules! need_netns {
    () => {
        if let Err(why) = available() {
            eprintln!("skipping {}: {why}", module_path!());
            return;
        }
    };
}

/// A `consul agent` (client mode) running inside a namespace.
struct NsAgent {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NsAgent {
    fn start(ns: &Netns, hcl: &[&str]) -> NsAgent {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, BIN, "agent", "-node=n1"]).arg(format!("-data-dir={}", dir.path().join("data").display()));
        for h in hcl {
            cmd.arg(format!("-hcl={h}"));
        }
        let child = cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap();
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

impl Drop for NsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET; the body when the status is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then_some(())?;
    head.split_whitespace().nth(1).filter(|c| *c == "200")?;
    Some(body.to_string())
}

fn tcp_open(addr: &str) -> bool {
    addr.parse().ok().is_some_and(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
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
    let (on_advertised, on_loopback) = ns.run(|| (tcp_open(&format!("{advertise}:8301")), tcp_open("127.0.0.1:8301")));
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
