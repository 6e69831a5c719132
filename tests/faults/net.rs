//! The network of one harness run, made only of namespaces it creates: a
//! hub namespace holding a bridge, one namespace per server and one for the
//! workload clients, each joined to the bridge by a veth pair whose bridge
//! end lives in the hub. Partitions and packet loss are nftables rules
//! inside the server namespaces. Because nothing is created in the root
//! namespace, the host's interfaces, routes and firewall are never touched,
//! and addresses can repeat between concurrent runs (each run is its own
//! layer-2 island). Every namespace is deleted on drop, also on panic.

use crate::common::netns::{ip, nft, Netns};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Whether this machine can run the harness; the reason if not.
pub fn available() -> Result<(), String> {
    crate::common::netns::root()?;
    for tool in ["ip", "nft"] {
        let ok = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if !ok {
            return Err(format!("`{tool}` is not installed"));
        }
    }
    reap_stale();
    let probe = Net::create()?;
    let ns = probe.add_node(0)?;
    // Past this point the machine has what the harness needs: a failure is
    // a harness bug and must not turn into a silent skip.
    if let Err(e) = nft(&ns, "table inet faults_probe {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n") {
        panic!("nftables does not work inside a namespace: {e}");
    }
    Ok(())
}

/// Deletes namespaces left by harness runs whose process is gone (killed
/// before its `Drop` could run), after killing what still runs in them:
/// only `crsf-<pid>-…` names whose `<pid>` is not alive are touched.
fn reap_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) =
            name.strip_prefix("crsf-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for p in
                String::from_utf8_lossy(&pids.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) on a process left inside a namespace of a dead harness run.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
        }
        let _ = ip(&["netns", "del", name]);
        eprintln!("[faults] removed namespace {name} left by dead run {pid}");
    }
}

/// What the firewall of one server namespace does to traffic from and to
/// other servers (the workload client is never filtered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Servers this one can neither reach nor hear.
    pub blocked: BTreeSet<Ipv4Addr>,
    /// Percentage of packets from other servers dropped at random.
    pub drop_percent: u8,
    /// Raft RPC (TCP 8300) to these servers goes through the delaying
    /// proxy at the given client-namespace port instead.
    pub delay_via: Vec<(Ipv4Addr, u16)>,
}

pub struct Net {
    prefix: String,
    hub: String,
    pub client_ns: String,
    /// In creation order; deleted in reverse.
    created: Mutex<Vec<Netns>>,
}

/// Address of the workload clients.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

impl Net {
    pub fn create() -> Result<Net, String> {
        let prefix = format!("crsf-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let hub = format!("{prefix}-hub");
        let net =
            Net { client_ns: format!("{prefix}-c"), hub: hub.clone(), prefix, created: Mutex::default() };
        net.add_ns(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        let client_ns = net.client_ns.clone();
        net.attach(&client_ns, "c0", CLIENT_IP)?;
        Ok(net)
    }

    fn add_ns(&self, name: &str) -> Result<(), String> {
        let ns = Netns::named(name.to_string())?;
        self.created.lock().unwrap_or_else(|e| e.into_inner()).push(ns);
        Ok(())
    }

    /// Creates namespace `ns` with `eth0` = `addr/24`, bridged in the hub
    /// through the veth peer `hub_end`.
    fn attach(&self, ns: &str, hub_end: &str, addr: Ipv4Addr) -> Result<(), String> {
        self.add_ns(ns)?;
        ip(&["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hub_end, "netns", &self.hub])?;
        ip(&["-n", &self.hub, "link", "set", hub_end, "master", "br0"])?;
        ip(&["-n", &self.hub, "link", "set", hub_end, "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])
    }

    pub fn node_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, 0, 10 + i as u8)
    }

    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-s{i}", self.prefix)
    }

    /// Creates server `i`'s namespace; returns its name.
    pub fn add_node(&self, i: usize) -> Result<String, String> {
        let ns = self.node_ns(i);
        self.attach(&ns, &format!("s{i}"), Net::node_ip(i))?;
        Ok(ns)
    }

    /// Replaces server `i`'s firewall with `rules` (default rules = none).
    pub fn apply(&self, i: usize, rules: &Rules, servers: &[Ipv4Addr]) -> Result<(), String> {
        let mut input = String::new();
        let mut output = String::new();
        if !rules.blocked.is_empty() {
            let set: Vec<String> = rules.blocked.iter().map(|a| a.to_string()).collect();
            input.push_str(&format!("    ip saddr {{ {} }} drop\n", set.join(", ")));
            output.push_str(&format!("    ip daddr {{ {} }} drop\n", set.join(", ")));
        }
        if rules.drop_percent > 0 {
            let peers: Vec<String> =
                servers.iter().filter(|a| **a != Net::node_ip(i)).map(|a| a.to_string()).collect();
            if !peers.is_empty() {
                input.push_str(&format!(
                    "    ip saddr {{ {} }} numgen random mod 100 < {} drop\n",
                    peers.join(", "),
                    rules.drop_percent
                ));
            }
        }
        let mut nat = String::new();
        if !rules.delay_via.is_empty() {
            let dests: Vec<String> = rules.delay_via.iter().map(|(a, _)| a.to_string()).collect();
            // Connections made before the redirect bypass the proxy: reset
            // them so the RPC pool reconnects (through the DNAT below).
            output.push_str(&format!(
                "    ip daddr {{ {} }} tcp dport 8300 reject with tcp reset\n",
                dests.join(", ")
            ));
            for (dest, port) in &rules.delay_via {
                nat.push_str(&format!("    ip daddr {dest} tcp dport 8300 dnat ip to {CLIENT_IP}:{port}\n"));
            }
        }
        // Declaring the table first makes the delete valid when it does not exist yet.
        let script = format!(
            "table inet faults\ndelete table inet faults\ntable inet faults {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n{input}  }}\n  chain output {{\n    type filter hook output priority 0; policy accept;\n{output}  }}\n  chain nat_output {{\n    type nat hook output priority -100; policy accept;\n{nat}  }}\n}}\n"
        );
        nft(&self.node_ns(i), &script)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let mut names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        while let Some(ns) = names.pop() {
            drop(ns);
        }
    }
}
