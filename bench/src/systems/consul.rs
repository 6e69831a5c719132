//! consul-rs processes: durable servers (single or a 3-server cluster formed
//! by `-bootstrap-expect` and `-retry-join`), client agents, each on its own
//! 127.x.y.z with Consul's default ports and its own data dir.
//!
//! Owns: consul-rs command lines, readiness and leader lookup. Must not
//! generate load.

use crate::ctx::Ctx;
use crate::http::{oneshot, HttpConn};
use crate::procs::{wait_until, Proc};
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub struct ConsulNode {
    pub proc: Proc,
    pub ip: Ipv4Addr,
    pub name: String,
}

impl ConsulNode {
    pub fn http(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 8500))
    }

    pub fn dns(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 8600))
    }

    /// Restarts the process with the same arguments and data dir.
    pub fn restart(&mut self) -> Result<(), String> {
        self.proc.kill9();
        let p = Proc::spawn(&self.proc.name, &self.proc.program, &self.proc.args, &self.proc.log)?;
        self.proc = p;
        Ok(())
    }
}

/// Extra agent configuration every benchmark agent gets: Consul's default
/// of 200 HTTP connections per client IP would cap the 256-client runs
/// (and the watcher benchmark opens far more).
const EXTRA_CONFIG: &str = r#"{"limits": {"http_max_conns_per_client": 1000000}}"#;

pub enum Role {
    /// `-server -bootstrap`
    Single,
    /// `-server -bootstrap-expect N -retry-join first`
    ClusterServer { expect: usize, join: Ipv4Addr },
    /// a client agent joining `join`
    Client { join: Ipv4Addr },
    /// `-server -bootstrap` that others join (gossip benchmark)
    Seed,
}

/// Starts one agent. `dir` is its scratch dir (data dir and log inside).
pub fn start_agent(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    ip: Ipv4Addr,
    role: Role,
    extra: &[String],
) -> Result<ConsulNode, String> {
    let data = dir.join(format!("{name}-data"));
    std::fs::create_dir_all(&data).map_err(|e| format!("failed to create {}: {e}", data.display()))?;
    let cfg = dir.join("bench-limits.json");
    if !cfg.exists() {
        std::fs::write(&cfg, EXTRA_CONFIG).map_err(|e| format!("failed to write {}: {e}", cfg.display()))?;
    }
    let mut args: Vec<String> = vec![
        "agent".into(),
        format!("-data-dir={}", data.display()),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        format!("-node={name}"),
        "-log-level=warn".into(),
        format!("-config-file={}", cfg.display()),
    ];
    match role {
        Role::Single | Role::Seed => {
            args.push("-server".into());
            args.push("-bootstrap".into());
        }
        Role::ClusterServer { expect, join } => {
            args.push("-server".into());
            args.push(format!("-bootstrap-expect={expect}"));
            args.push(format!("-retry-join={join}"));
            args.push("-retry-interval=1s".into());
        }
        Role::Client { join } => {
            args.push(format!("-retry-join={join}"));
            args.push("-retry-interval=1s".into());
        }
    }
    args.extend(extra.iter().cloned());
    let log = dir.join(format!("{name}.log"));
    let proc = Proc::spawn(name, &ctx.consul, &args, &log)?;
    Ok(ConsulNode { proc, ip, name: name.into() })
}

pub struct ConsulCluster {
    pub nodes: Vec<ConsulNode>,
}

impl ConsulCluster {
    /// `n` = 1: a single `-bootstrap` server; otherwise `n` servers with
    /// `-bootstrap-expect n`. Waits until every server knows the leader, has
    /// `n` peers and a write goes through.
    pub async fn servers(
        ctx: &Ctx,
        dir: &std::path::Path,
        ips: &[Ipv4Addr],
    ) -> Result<ConsulCluster, String> {
        for ip in ips {
            if !crate::procs::tcp_free(*ip, 8500) {
                return Err(format!("{ip}:8500 is already in use (a leftover agent?)"));
            }
        }
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let role = if ips.len() == 1 {
                Role::Single
            } else {
                Role::ClusterServer { expect: ips.len(), join: ips[0] }
            };
            nodes.push(start_agent(ctx, dir, &format!("s{}", i + 1), *ip, role, &[])?);
        }
        let c = ConsulCluster { nodes };
        c.wait_healthy(Duration::from_secs(60)).await?;
        Ok(c)
    }

    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.http()).collect()
    }

    pub fn commands(&self, ctx: &Ctx) -> Vec<String> {
        self.nodes.iter().map(|n| n.proc.cmdline(&ctx.work)).collect()
    }

    /// Every node knows a leader and all peers, and a write succeeds on
    /// each node.
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), String> {
        let n = self.nodes.len();
        let addrs = self.http_addrs();
        let ok = wait_until(limit, Duration::from_millis(100), || {
            let addrs = addrs.clone();
            async move {
                for a in &addrs {
                    let Ok(r) =
                        oneshot(*a, Method::GET, "/v1/status/leader", None, Duration::from_secs(2)).await
                    else {
                        return false;
                    };
                    if r.status != 200 || r.body.len() <= 2 {
                        return false;
                    }
                    let Ok(p) =
                        oneshot(*a, Method::GET, "/v1/status/peers", None, Duration::from_secs(2)).await
                    else {
                        return false;
                    };
                    let peers = p.json().ok().and_then(|v| v.as_array().map(|a| a.len())).unwrap_or(0);
                    if peers != n {
                        return false;
                    }
                    let Ok(w) = oneshot(
                        *a,
                        Method::PUT,
                        "/v1/kv/bench-ready",
                        Some("1".into()),
                        Duration::from_secs(5),
                    )
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
                    "consul-rs cluster of {n} did not become healthy within {limit:?}\n{}",
                    logs.join("\n")
                ))
            }
        }
    }

    /// Index of the node that is the leader, per the first node that answers.
    pub async fn leader(&self) -> Option<usize> {
        for n in &self.nodes {
            let Ok(r) =
                oneshot(n.http(), Method::GET, "/v1/status/leader", None, Duration::from_secs(2)).await
            else {
                continue;
            };
            let addr = r.json().ok()?.as_str()?.to_string();
            if addr.is_empty() {
                continue;
            }
            let ip: Ipv4Addr = addr.split(':').next()?.parse().ok()?;
            return self.nodes.iter().position(|m| m.ip == ip);
        }
        None
    }
}

/// Members as (name, status) from `/v1/agent/members` (status: 1 alive,
/// 2 leaving, 3 left, 4 failed).
pub async fn members(conn: &mut HttpConn) -> Result<Vec<(String, u8)>, String> {
    let r = conn.get("/v1/agent/members").await?;
    if r.status != 200 {
        return Err(format!("/v1/agent/members: {} {}", r.status, r.text()));
    }
    let v = r.json()?;
    let list = v.as_array().ok_or("members: not an array")?;
    Ok(list
        .iter()
        .filter_map(|m| Some((m["Name"].as_str()?.to_string(), m["Status"].as_u64().unwrap_or(0) as u8)))
        .collect())
}
