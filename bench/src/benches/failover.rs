//! Leader failover under write load: a 3-server cluster, writers on every
//! server, kill -9 of the leader, and the time until a write succeeds again
//! through a surviving server. The killed server is restarted on its data
//! dir and the cluster must be healthy before the next trial.
//!
//! Owns: the failover procedure for both systems and its table.

use crate::benches::kv::Sys;
use crate::ctx::Ctx;
use crate::kvload::{Api, KvOp, KvWorker, Keys};
use crate::load::Worker;
use crate::results::{num, quantile, ratio, Section, Table};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Background writers: keep PUTting through every server until stopped.
fn background(api: Api, addrs: &[SocketAddr], stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..6)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut w = KvWorker::new(api, KvOp::Put, addr, Keys::Random(1000), 500 + i as u64);
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    if w.step(seq).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    seq += 1;
                }
            })
        })
        .collect()
}

/// Time from `t0` until a write succeeds again. A fresh write (its own
/// connection) is sent every 20 ms, alternating over `addrs`, without
/// waiting for earlier ones: a request stuck on the dead leader (until a
/// server-side timeout) must not hide that newer requests already succeed.
/// The first acknowledgement ends the measurement.
async fn first_write(api: Api, addrs: &[SocketAddr], t0: Instant, limit: Duration) -> Option<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let mut probes = tokio::task::JoinSet::new();
    let mut k = 0usize;
    let found = loop {
        if let Ok(d) = rx.try_recv() {
            break Some(d);
        }
        if t0.elapsed() > limit {
            break None;
        }
        let addr = addrs[k % addrs.len()];
        let tx = tx.clone();
        let seed = 900 + k as u64;
        probes.spawn(async move {
            let mut w = KvWorker::new(api, KvOp::Put, addr, Keys::Random(1000), seed);
            if w.step(0).await.is_ok() {
                let _ = tx.send(t0.elapsed());
            }
        });
        k += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    probes.abort_all();
    found
}

async fn trials(ctx: &Ctx, sec: &mut Section, etcd: bool, n: usize) -> Result<Vec<f64>, String> {
    let mut sys = Sys::start(ctx, etcd, 3, 85, "failover").await?;
    sec.commands.extend(sys.commands(ctx));
    let api = if etcd { Api::EtcdHttp } else { Api::Consul };
    let mut times = Vec::new();
    for trial in 0..n {
        let leader = match &sys {
            Sys::Consul(c) => c.leader().await,
            Sys::Etcd(e) => e.leader().await,
        }
        .ok_or_else(|| format!("trial {trial}: no leader found"))?;
        let all = sys.addrs();
        let stop = Arc::new(AtomicBool::new(false));
        let bg = background(api, &all, stop.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let survivors: Vec<SocketAddr> = all.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, a)| *a).collect();
        let t0 = Instant::now();
        match &mut sys {
            Sys::Consul(c) => c.nodes[leader].proc.kill9(),
            Sys::Etcd(e) => e.nodes[leader].proc.kill9(),
        }
        let t = first_write(api, &survivors, t0, Duration::from_secs(60)).await;
        stop.store(true, Ordering::Relaxed);
        for h in bg {
            let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
        }
        match t {
            Some(d) => {
                eprintln!("  failover {} trial {trial}: {:.2} s", if etcd { "etcd" } else { "consul-rs" }, d.as_secs_f64());
                times.push(d.as_secs_f64());
            }
            None => {
                sec.notes.push(format!("{} trial {trial}: no write succeeded within 60 s of killing the leader", if etcd { "etcd" } else { "consul-rs" }));
            }
        }
        // Bring the old leader back and wait for a healthy cluster.
        match &mut sys {
            Sys::Consul(c) => {
                c.nodes[leader].restart()?;
                c.wait_healthy(Duration::from_secs(90)).await.map_err(|e| format!("after trial {trial}: {e}"))?;
            }
            Sys::Etcd(e) => {
                e.nodes[leader].restart()?;
                e.wait_healthy(Duration::from_secs(90)).await.map_err(|e| format!("after trial {trial}: {e}"))?;
            }
        }
    }
    Ok(times)
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let n = ctx.pick(20usize, 2);
    sec.about.push(format!(
        "3 durable servers of each system with equal Raft timings (heartbeat 100 ms, election timeout 1 s: etcd's \
         defaults and consul-rs's at `raft_multiplier` 1). Six writers PUT 256-byte values through all three servers; \
         the leader is killed with SIGKILL; from then on a new probe PUT (on its own connection) is sent every 20 ms, \
         alternating between the two survivors, without waiting for earlier probes (a request stuck behind the dead \
         leader until some server-side timeout must not hide that newer ones succeed); the failover time is from the \
         kill to the first acknowledged probe. The killed server is \
         restarted on its data dir and the cluster must report a leader, 3 peers and accept a write on every server \
         before the next trial. {n} trials per system."
    ));
    let ours = trials(ctx, sec, false, n).await?;
    let theirs = trials(ctx, sec, true, n).await?;
    let mut t = Table::new("Leader kill -9 → first acknowledged write", &["system", "trials", "p50 s", "p90 s", "min s", "max s", "consul-rs ÷ etcd (p50)"]);
    for (name, v, is_ours) in [("consul-rs", &ours, true), ("etcd", &theirs, false)] {
        t.row(vec![
            name.into(),
            v.len().to_string(),
            num(quantile(v, 0.5)),
            num(quantile(v, 0.9)),
            num(quantile(v, 0.0)),
            num(quantile(v, 1.0)),
            if is_ours { ratio(quantile(&ours, 0.5), quantile(&theirs, 0.5)) } else { String::new() },
        ]);
    }
    sec.metric("failover.consul.p50_s", quantile(&ours, 0.5));
    sec.metric("failover.etcd.p50_s", quantile(&theirs, 0.5));
    sec.tables.push(t);
    Ok(())
}
