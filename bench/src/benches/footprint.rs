//! Footprint: RSS and CPU of idle processes and the time from process
//! start to serving — a consul-rs server, a consul-rs client agent joined to
//! it, an etcd member, and a serf agent joined to another.
//!
//! Owns: the footprint procedure and its table.

use crate::consul::{start_agent, Role};
use crate::ctx::{need, Ctx};
use crate::etcd::EtcdCluster;
use crate::http::oneshot;
use crate::procs::{cpu_percent, wait_until, Proc};
use crate::results::{median, num, Section, Table};
use crate::serf::{self as serfsys, SerfRpc};
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

async fn http_up(addr: SocketAddr, path: &'static str, want_body: bool) -> bool {
    match oneshot(addr, Method::GET, path, None, Duration::from_secs(1)).await {
        Ok(r) => r.status == 200 && (!want_body || r.body.len() > 2),
        Err(_) => false,
    }
}

struct Idle {
    rss_mb: f64,
    cpu_pct: f64,
    anon_mb: f64,
    file_mb: f64,
    threads: u64,
    binary_mb: f64,
}

async fn idle(ctx: &Ctx, p: &Proc) -> Idle {
    tokio::time::sleep(ctx.secs(5.0, 0.5)).await;
    let cpu = cpu_percent(p.pid(), ctx.secs(20.0, 1.5)).await.unwrap_or(f64::NAN);
    let (anon, file, threads) = crate::procs::rss_split(p.pid()).unwrap_or((0, 0, 0));
    let binary_mb = std::fs::metadata(&p.program).map(|m| m.len() as f64 / 1e6).unwrap_or(f64::NAN);
    Idle {
        rss_mb: p.rss_kb().unwrap_or(0) as f64 / 1024.0,
        cpu_pct: cpu,
        anon_mb: anon as f64 / 1024.0,
        file_mb: file as f64 / 1024.0,
        threads,
        binary_mb,
    }
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let reps = ctx.pick(5usize, 1);
    sec.about.push(format!(
        "Start-up: from spawning the process until its API answers (consul-rs server: `GET /v1/status/leader` 200, \
         then until it names a leader; client agent: `/v1/agent/self` 200; etcd: `/health` 200 and a leader; serf: \
         its RPC accepts a `members` call), median of {reps} starts on fresh data dirs. Idle: after {} s, CPU over \
         {} s from /proc/<pid>/stat and RSS (VmRSS). The client agent is joined to the server, the serf agent to a \
         second serf agent, so both have one peer.",
        ctx.pick(5.0, 0.5),
        ctx.pick(20.0, 1.5)
    ));
    let mut t = Table::new(
        "Idle footprint and start-up",
        &[
            "process",
            "start → serving ms (median)",
            "start → leader ms (median)",
            "idle RSS MB",
            "of which anonymous MB",
            "of which file-backed MB",
            "threads",
            "binary size MB",
            "idle CPU %",
        ],
    );
    // consul-rs server.
    let mut serving = Vec::new();
    let mut leader = Vec::new();
    let mut last: Option<crate::consul::ConsulNode> = None;
    for rep in 0..reps {
        let dir = ctx.scratch(&format!("footprint-server-{rep}"))?;
        let ip = Ipv4Addr::new(127, 87, 1, 1 + rep as u8);
        let node = start_agent(ctx, &dir, "fs1", ip, Role::Single, &[])?;
        let http = node.http();
        let t0 = node.proc.started;
        let a = wait_until(Duration::from_secs(30), Duration::from_millis(2), || {
            http_up(http, "/v1/status/leader", false)
        })
        .await
        .map(|_| t0.elapsed());
        let b = wait_until(Duration::from_secs(30), Duration::from_millis(5), || {
            http_up(http, "/v1/status/leader", true)
        })
        .await
        .map(|_| t0.elapsed());
        match (a, b) {
            (Some(a), Some(b)) => {
                serving.push(a.as_secs_f64() * 1000.0);
                leader.push(b.as_secs_f64() * 1000.0);
            }
            _ => return Err(format!("consul-rs server did not come up\n{}", node.proc.log_tail(20))),
        }
        if rep + 1 == reps {
            sec.commands.push(node.proc.cmdline(&ctx.work));
            last = Some(node);
        }
    }
    let Some(server) = last else { return Err("no server started".into()) };
    let s_idle = idle(ctx, &server.proc).await;
    t.row(vec![
        "consul-rs server".into(),
        num(median(&serving)),
        num(median(&leader)),
        num(s_idle.rss_mb),
        num(s_idle.anon_mb),
        num(s_idle.file_mb),
        s_idle.threads.to_string(),
        num(s_idle.binary_mb),
        num(s_idle.cpu_pct),
    ]);
    sec.metric("footprint.consul_server.rss_mb", s_idle.rss_mb);
    sec.metric("footprint.consul_server.cpu_pct", s_idle.cpu_pct);
    sec.metric("footprint.consul_server.start_ms", median(&serving));

    // consul-rs client agent joined to that server.
    let mut serving = Vec::new();
    let mut client_last = None;
    for rep in 0..reps {
        let dir = ctx.scratch(&format!("footprint-client-{rep}"))?;
        let ip = Ipv4Addr::new(127, 87, 2, 1 + rep as u8);
        let node = start_agent(ctx, &dir, &format!("fc{rep}"), ip, Role::Client { join: server.ip }, &[])?;
        let http = node.http();
        let t0 = node.proc.started;
        let a = wait_until(Duration::from_secs(30), Duration::from_millis(2), || {
            http_up(http, "/v1/agent/self", false)
        })
        .await
        .map(|_| t0.elapsed());
        let Some(a) = a else {
            return Err(format!("consul-rs client did not come up\n{}", node.proc.log_tail(20)));
        };
        serving.push(a.as_secs_f64() * 1000.0);
        if rep + 1 == reps {
            sec.commands.push(node.proc.cmdline(&ctx.work));
            client_last = Some(node);
        }
    }
    let Some(client) = client_last else { return Err("no client started".into()) };
    // Joined: the client lists the server as a member.
    let http = client.http();
    let joined = wait_until(Duration::from_secs(30), Duration::from_millis(50), || async move {
        match oneshot(http, Method::GET, "/v1/agent/members", None, Duration::from_secs(1)).await {
            Ok(r) => r.json().ok().and_then(|v| v.as_array().map(|a| a.len())).unwrap_or(0) >= 2,
            Err(_) => false,
        }
    })
    .await;
    if joined.is_none() {
        sec.notes.push("the consul-rs client agent never listed the server as a member".into());
    }
    let c_idle = idle(ctx, &client.proc).await;
    t.row(vec![
        "consul-rs client agent".into(),
        num(median(&serving)),
        "—".into(),
        num(c_idle.rss_mb),
        num(c_idle.anon_mb),
        num(c_idle.file_mb),
        c_idle.threads.to_string(),
        num(c_idle.binary_mb),
        num(c_idle.cpu_pct),
    ]);
    sec.metric("footprint.consul_client.rss_mb", c_idle.rss_mb);
    sec.metric("footprint.consul_client.cpu_pct", c_idle.cpu_pct);
    sec.metric("footprint.consul_client.anon_mb", c_idle.anon_mb);
    sec.metric("footprint.consul_client.file_mb", c_idle.file_mb);
    sec.metric("footprint.consul_client.threads", c_idle.threads as f64);
    sec.metric("footprint.consul_client.binary_mb", c_idle.binary_mb);
    drop(client);
    drop(server);

    // etcd single member.
    need(&ctx.tools.etcd, "etcd")?;
    let mut serving = Vec::new();
    let mut etcd_last = None;
    for rep in 0..reps {
        let dir = ctx.scratch(&format!("footprint-etcd-{rep}"))?;
        let ip = Ipv4Addr::new(127, 87, 3, 1 + rep as u8);
        let t0 = Instant::now();
        let e = EtcdCluster::start(ctx, &dir, &[ip]).await?;
        // EtcdCluster::start returns once it has a leader and took a write.
        serving.push(t0.elapsed().as_secs_f64() * 1000.0);
        if rep + 1 == reps {
            sec.commands.extend(e.commands(ctx));
            etcd_last = Some(e);
        }
    }
    let Some(etcd) = etcd_last else { return Err("no etcd started".into()) };
    let e_idle = idle(ctx, &etcd.nodes[0].proc).await;
    t.row(vec![
        "etcd member".into(),
        "—".into(),
        num(median(&serving)),
        num(e_idle.rss_mb),
        num(e_idle.anon_mb),
        num(e_idle.file_mb),
        e_idle.threads.to_string(),
        num(e_idle.binary_mb),
        num(e_idle.cpu_pct),
    ]);
    sec.metric("footprint.etcd.rss_mb", e_idle.rss_mb);
    drop(etcd);

    // serf agent joined to another serf agent.
    need(&ctx.tools.serf, "serf")?;
    let key = crate::etcd::b64(&[7u8; 32]);
    let mut serving = Vec::new();
    let dir = ctx.scratch("footprint-serf")?;
    let seed_ip = Ipv4Addr::new(127, 87, 4, 1);
    let seed = serfsys::start(ctx, &dir, "fseed", seed_ip, &key, None)?;
    let mut serf_last = None;
    for rep in 0..reps {
        let ip = Ipv4Addr::new(127, 87, 4, 2 + rep as u8);
        let node = serfsys::start(ctx, &dir, &format!("fserf{rep}"), ip, &key, Some(seed_ip))?;
        let rpc = node.rpc();
        let t0 = node.proc.started;
        let a = wait_until(Duration::from_secs(30), Duration::from_millis(2), || async move {
            match SerfRpc::connect(rpc).await {
                Ok(mut c) => c.members().await.is_ok(),
                Err(_) => false,
            }
        })
        .await;
        let Some(_) = a else {
            return Err(format!("serf agent did not come up\n{}", node.proc.log_tail(20)));
        };
        serving.push(t0.elapsed().as_secs_f64() * 1000.0);
        if rep + 1 == reps {
            sec.commands.push(node.proc.cmdline(&ctx.work));
            serf_last = Some(node);
        } else {
            drop(node);
        }
    }
    let Some(serf) = serf_last else { return Err("no serf started".into()) };
    let f_idle = idle(ctx, &serf.proc).await;
    t.row(vec![
        "serf agent".into(),
        num(median(&serving)),
        "—".into(),
        num(f_idle.rss_mb),
        num(f_idle.anon_mb),
        num(f_idle.file_mb),
        f_idle.threads.to_string(),
        num(f_idle.binary_mb),
        num(f_idle.cpu_pct),
    ]);
    sec.metric("footprint.serf.rss_mb", f_idle.rss_mb);
    sec.metric("footprint.serf.anon_mb", f_idle.anon_mb);
    sec.metric("footprint.serf.file_mb", f_idle.file_mb);
    sec.metric("footprint.serf.threads", f_idle.threads as f64);
    sec.metric("footprint.serf.binary_mb", f_idle.binary_mb);
    drop(serf);
    drop(seed);
    sec.tables.push(t);
    Ok(())
}
