//! Leader failover under write load: a 3-server cluster, writers on every
//! server, kill -9 of the leader, and the time until a write succeeds again
//! through a surviving server. The killed server is restarted on its data
//! dir and the cluster must be healthy before the next trial.
//!
//! Owns: the failover procedure for both systems and its table.

use crate::benches::kv::Sys;
use crate::ctx::Ctx;
use crate::http::oneshot;
use crate::kvload::{Api, Keys, KvOp, KvWorker};
use crate::load::Worker;
use crate::results::{num, quantile, ratio, Section, Table};
use hyper::Method;
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

/// Time from `t0` until some survivor names a new leader (one of the
/// survivors): the election part of a failover, apart from the write path.
async fn new_leader(
    sys: &Sys,
    survivors: &[usize],
    old_etcd_id: u64,
    t0: Instant,
    limit: Duration,
) -> Option<Duration> {
    while t0.elapsed() < limit {
        for &i in survivors {
            let known = match sys {
                Sys::Consul(c) => {
                    let n = &c.nodes[i];
                    match oneshot(
                        n.http(),
                        Method::GET,
                        "/v1/status/leader",
                        None,
                        Duration::from_millis(500),
                    )
                    .await
                    {
                        Ok(r) => {
                            let text = r.text();
                            survivors.iter().any(|&j| text.contains(&format!("\"{}:", c.nodes[j].ip)))
                        }
                        Err(_) => false,
                    }
                }
                Sys::Etcd(e) => {
                    matches!(crate::etcd::status(e.nodes[i].client()).await, Ok((_, l)) if l != 0 && l != old_etcd_id)
                }
            };
            if known {
                return Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Per trial: (kill → first acknowledged write, kill → new leader named).
async fn trials(ctx: &Ctx, sec: &mut Section, etcd: bool, n: usize) -> Result<Vec<(f64, f64)>, String> {
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
        let survivors: Vec<SocketAddr> =
            all.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, a)| *a).collect();
        let survivor_idx: Vec<usize> = (0..all.len()).filter(|i| *i != leader).collect();
        let old_etcd_id = match &sys {
            Sys::Etcd(e) => crate::etcd::status(e.nodes[leader].client()).await.map(|s| s.0).unwrap_or(0),
            Sys::Consul(_) => 0,
        };
        let t0 = Instant::now();
        match &mut sys {
            Sys::Consul(c) => c.nodes[leader].proc.kill9(),
            Sys::Etcd(e) => e.nodes[leader].proc.kill9(),
        }
        let (t, elected) = tokio::join!(
            first_write(api, &survivors, t0, Duration::from_secs(60)),
            new_leader(&sys, &survivor_idx, old_etcd_id, t0, Duration::from_secs(60))
        );
        stop.store(true, Ordering::Relaxed);
        for h in bg {
            let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
        }
        match t {
            Some(d) => {
                let e = elected.map(|e| e.as_secs_f64()).unwrap_or(f64::NAN);
                eprintln!(
                    "  failover {} trial {trial}: {:.2} s (new leader named after {e:.2} s)",
                    if etcd { "etcd" } else { "consul-rs" },
                    d.as_secs_f64()
                );
                times.push((d.as_secs_f64(), e));
            }
            None => {
                sec.notes.push(format!(
                    "{} trial {trial}: no write succeeded within 60 s of killing the leader",
                    if etcd { "etcd" } else { "consul-rs" }
                ));
            }
        }
        // Bring the old leader back and wait for a healthy cluster.
        match &mut sys {
            Sys::Consul(c) => {
                c.nodes[leader].restart()?;
                c.wait_healthy(Duration::from_secs(90))
                    .await
                    .map_err(|e| format!("after trial {trial}: {e}"))?;
            }
            Sys::Etcd(e) => {
                e.nodes[leader].restart()?;
                e.wait_healthy(Duration::from_secs(90))
                    .await
                    .map_err(|e| format!("after trial {trial}: {e}"))?;
            }
        }
    }
    Ok(times)
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let n = crate::benches::kv::list_from_env("BENCH_FAILOVER_TRIALS")
        .and_then(|l| l.first().copied())
        .unwrap_or_else(|| ctx.pick(20usize, 2));
    sec.about.push(format!(
        "3 durable servers of each system with equal Raft timings (heartbeat 100 ms, election timeout 1 s: etcd's \
         defaults and consul-rs's at `raft_multiplier` 1). Six writers PUT 256-byte values through all three servers; \
         the leader is killed with SIGKILL; from then on a new probe PUT (on its own connection) is sent every 20 ms, \
         alternating between the two survivors, without waiting for earlier probes (a request stuck behind the dead \
         leader until some server-side timeout must not hide that newer ones succeed); the failover time is from the \
         kill to the first acknowledged probe. Alongside, every survivor is asked every 20 ms who the leader is \
         (consul-rs `/v1/status/leader`, etcd's maintenance status) to time the election apart from the write path. The killed server is \
         restarted on its data dir and the cluster must report a leader, 3 peers and accept a write on every server \
         before the next trial. {n} trials per system."
    ));
    let ours_all = trials(ctx, sec, false, n).await?;
    let theirs_all = trials(ctx, sec, true, n).await?;
    let ours: Vec<f64> = ours_all.iter().map(|t| t.0).collect();
    let theirs: Vec<f64> = theirs_all.iter().map(|t| t.0).collect();
    let ours_el: Vec<f64> = ours_all.iter().map(|t| t.1).collect();
    let theirs_el: Vec<f64> = theirs_all.iter().map(|t| t.1).collect();
    let mut t = Table::new(
        "Leader kill -9 → first acknowledged write",
        &[
            "system",
            "trials",
            "p50 s",
            "p90 s",
            "min s",
            "max s",
            "kill → new leader named, p50 s",
            "consul-rs ÷ etcd (p50)",
        ],
    );
    for (name, v, el, is_ours) in [("consul-rs", &ours, &ours_el, true), ("etcd", &theirs, &theirs_el, false)]
    {
        t.row(vec![
            name.into(),
            v.len().to_string(),
            num(quantile(v, 0.5)),
            num(quantile(v, 0.9)),
            num(quantile(v, 0.0)),
            num(quantile(v, 1.0)),
            num(quantile(el, 0.5)),
            if is_ours { ratio(quantile(&ours, 0.5), quantile(&theirs, 0.5)) } else { String::new() },
        ]);
    }
    sec.metric("failover.consul.p50_s", quantile(&ours, 0.5));
    sec.metric("failover.etcd.p50_s", quantile(&theirs, 0.5));
    sec.metric("failover.consul.elected_p50_s", quantile(&ours_el, 0.5));
    sec.metric("failover.etcd.elected_p50_s", quantile(&theirs_el, 0.5));
    sec.tables.push(t);
    Ok(())
}
