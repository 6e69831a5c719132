//! etcd processes (Debian's etcd-server): one member or a 3-member cluster
//! on loopback, each member on its own 127.x.y.z with etcd's default ports
//! (client 2379, peer 2380), data on the same filesystem as consul-rs's.
//! Default heartbeat (100 ms) and election timeout (1000 ms), which equal
//! consul-rs's Raft timings at `raft_multiplier` 1.
//!
//! Owns: etcd command lines, readiness and leader lookup. Must not
//! generate load.

use crate::ctx::Ctx;
use crate::http::oneshot;
use crate::procs::{wait_until, Proc};
use base64::Engine;
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

pub struct EtcdNode {
    pub proc: Proc,
    pub ip: Ipv4Addr,
    pub name: String,
}

impl EtcdNode {
    pub fn client(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 2379))
    }

    pub fn restart(&mut self) -> Result<(), String> {
        self.proc.kill9();
        let p = Proc::spawn(&self.proc.name, &self.proc.program, &self.proc.args, &self.proc.log)?;
        self.proc = p;
        Ok(())
    }
}

pub struct EtcdCluster {
    pub nodes: Vec<EtcdNode>,
}

pub fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl EtcdCluster {
    pub async fn start(ctx: &Ctx, dir: &Path, ips: &[Ipv4Addr]) -> Result<EtcdCluster, String> {
        let etcd = crate::ctx::need(&ctx.tools.etcd, "etcd")?;
        for ip in ips {
            if !crate::procs::tcp_free(*ip, 2379) {
                return Err(format!("{ip}:2379 is already in use (a leftover etcd?)"));
            }
        }
        let cluster: Vec<String> =
            ips.iter().enumerate().map(|(i, ip)| format!("e{}=http://{ip}:2380", i + 1)).collect();
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let name = format!("e{}", i + 1);
            let data = dir.join(format!("{name}-data"));
            let args: Vec<String> = vec![
                format!("--name={name}"),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls=http://{ip}:2379"),
                format!("--advertise-client-urls=http://{ip}:2379"),
                format!("--listen-peer-urls=http://{ip}:2380"),
                format!("--initial-advertise-peer-urls=http://{ip}:2380"),
                format!("--initial-cluster={}", cluster.join(",")),
                "--initial-cluster-state=new".into(),
                "--initial-cluster-token=consul-bench".into(),
                "--logger=zap".into(),
                "--log-level=warn".into(),
            ];
            let log = dir.join(format!("{name}.log"));
            nodes.push(EtcdNode { proc: Proc::spawn(&name, etcd, &args, &log)?, ip: *ip, name });
        }
        let c = EtcdCluster { nodes };
        c.wait_healthy(Duration::from_secs(60)).await?;
        Ok(c)
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.client()).collect()
    }

    pub fn commands(&self, ctx: &Ctx) -> Vec<String> {
        self.nodes.iter().map(|n| n.proc.cmdline(&ctx.work)).collect()
    }

    /// Every member reports a leader and accepts a write.
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), String> {
        let addrs = self.client_addrs();
        let ok = wait_until(limit, Duration::from_millis(100), || {
            let addrs = addrs.clone();
            async move {
                for a in &addrs {
                    let Ok(s) = status(*a).await else { return false };
                    if s.1 == 0 {
                        return false;
                    }
                    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"bench-ready"), b64(b"1"));
                    let Ok(w) =
                        oneshot(*a, Method::POST, "/v3/kv/put", Some(body.into()), Duration::from_secs(5))
                            .await
                    else {
                        return false;
                    };
                    if w.status != 200 {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        match ok {
            Some(_) => Ok(()),
            None => {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.proc.log_tail(15)))
                    .collect();
                Err(format!(
                    "etcd cluster of {} did not become healthy within {limit:?}\n{}",
                    self.nodes.len(),
                    logs.join("\n")
                ))
            }
        }
    }

    /// Index of the leader member.
    pub async fn leader(&self) -> Option<usize> {
        for (i, n) in self.nodes.iter().enumerate() {
            let Ok((me, leader)) = status(n.client()).await else { continue };
            if leader == 0 {
                continue;
            }
            if me == leader {
                return Some(i);
            }
            for (j, m) in self.nodes.iter().enumerate() {
                if let Ok((id, _)) = status(m.client()).await {
                    if id == leader {
                        return Some(j);
                    }
                }
            }
        }
        None
    }
}

/// (member id, leader id) from the gateway's maintenance status.
pub async fn status(addr: SocketAddr) -> Result<(u64, u64), String> {
    let r = oneshot(addr, Method::POST, "/v3/maintenance/status", Some("{}".into()), Duration::from_secs(2))
        .await?;
    if r.status != 200 {
        return Err(format!("{addr} status: {} {}", r.status, r.text()));
    }
    let v = r.json()?;
    let num = |x: &serde_json::Value| {
        x.as_str().and_then(|s| s.parse::<u64>().ok()).or_else(|| x.as_u64()).unwrap_or(0)
    };
    Ok((num(&v["header"]["member_id"]), num(&v["leader"])))
}
