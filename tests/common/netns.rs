//! Network namespaces for tests that need hosts of their own: created with
//! `ip netns`, deleted on drop (also when a test fails). Needs root and
//! iproute2 (nftables for the `nft` helper); `need_netns!()` makes a test
//! print why it skips otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` with `args`; its stderr as the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs an nftables script inside namespace `ns`.
pub fn nft(ns: &str, script: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft in {ns}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| format!("writing nft script for {ns}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft in {ns}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft in {ns} failed: {}\n{script}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Moves the calling thread (only it) into namespace `ns`.
pub fn enter(ns: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{ns}");
    let fd = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    // SAFETY: setns on a namespace fd we hold open; it affects only this thread.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("setns {path}: {}", std::io::Error::last_os_error()))
    }
}

/// A network namespace of our own with `lo` up, deleted on drop (also when
/// a test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A namespace with a name unique to this process.
    pub fn create() -> Result<Netns, String> {
        Netns::named(format!("crs-it-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
    }

    /// A namespace called `name`.
    pub fn named(name: String) -> Result<Netns, String> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n <this namespace> args`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// An Ethernet-like interface with one address. A veth pair with both
    /// ends inside the namespace: it needs no kernel module beyond veth.
    pub fn add_iface(&self, name: &str, cidr: &str, up: bool) {
        let peer = format!("{name}p");
        self.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]).unwrap();
        self.ip(&["addr", "add", cidr, "dev", name]).unwrap();
        if up {
            self.ip(&["link", "set", name, "up"]).unwrap();
            self.ip(&["link", "set", &peer, "up"]).unwrap();
        }
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&self.name).unwrap();
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

/// Whether we run as root (namespaces need it); the reason if not.
pub fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root".into());
    }
    Ok(())
}

/// Whether this machine lets us make namespaces with veth pairs; the
/// reason if not.
pub fn available() -> Result<(), String> {
    root()?;
    let ns = Netns::create()?;
    ns.ip(&["link", "add", "probe0", "type", "veth", "peer", "name", "probe0p"])?;
    Ok(())
}

/// Returns from the test, saying why, when namespaces cannot be made.
/// `need_netns!()` checks `common::netns::available()`; a binary with
/// stricter needs passes its own check: `need_netns!(net::available())`.
#[macro_export]
macro_rules! need_netns {
    () => {
        $crate::need_netns!($crate::common::netns::available())
    };
    ($check:expr) => {
        if let Err(why) = $check {
            eprintln!("skipping {}: {why}", module_path!());
            return;
        }
    };
}

/// A plain HTTP/1.0 GET (blocking; run it inside `Netns::run` to reach a
/// namespace); the body of a 200 answer, else `None`.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
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
