//! Blocking queries at scale: many idle watchers (one HTTP connection each,
//! `GET /v1/kv/<key>?index=N&wait=10m` on distinct keys that do not exist
//! yet) plus one writer. Measures the agent's CPU and RSS while the
//! watchers idle, and write → wake-up latency for a sample of keys.
//!
//! Watchers are raw TCP sockets with a hand-written request (no client
//! buffers while idle), spread over several 127.0.x.y source addresses so
//! no (source, destination) pair runs out of ephemeral ports.
//!
//! Owns: the watcher fleet and its measurements.

use crate::consul::{start_agent, Role};
use crate::ctx::Ctx;
use crate::http::{oneshot, HttpConn};
use crate::procs::{cpu_percent, wait_until};
use crate::results::{num, quantile, Section, Table};
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

const PER_SOURCE: usize = 10_000;

struct Fleet {
    /// Per watcher id: when its response arrived (None while blocked).
    woke: Arc<Mutex<Vec<Option<(Instant, u16)>>>>,
    failed: Arc<Mutex<Vec<String>>>,
    /// Watchers whose request has been sent (blocked in the agent).
    sent: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn source_ip(id: usize) -> Ipv4Addr {
    let s = id / PER_SOURCE;
    Ipv4Addr::new(127, 79, 1 + (s / 250) as u8, 1 + (s % 250) as u8)
}

async fn watcher(
    id: usize,
    agent: SocketAddr,
    index: u64,
    gate: Arc<Semaphore>,
    fleet_woke: Arc<Mutex<Vec<Option<(Instant, u16)>>>>,
    failed: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicUsize>,
) {
    let fail = |e: String| {
        if let Ok(mut f) = failed.lock() {
            f.push(e);
        }
    };
    let permit = gate.acquire().await;
    let sock = match tokio::net::TcpSocket::new_v4() {
        Ok(s) => s,
        Err(e) => return fail(format!("socket: {e}")),
    };
    if let Err(e) = sock.bind(SocketAddr::from((source_ip(id), 0))) {
        return fail(format!("bind {}: {e}", source_ip(id)));
    }
    let mut s = match sock.connect(agent).await {
        Ok(s) => s,
        Err(e) => return fail(format!("connect from {}: {e}", source_ip(id))),
    };
    let req = format!("GET /v1/kv/watch/{id}?index={index}&wait=10m HTTP/1.1\r\nHost: {agent}\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return fail(format!("write: {e}"));
    }
    sent.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    // Idle until the agent answers; the buffer exists only once data is there.
    if s.readable().await.is_err() {
        return fail("readable failed".into());
    }
    let at = Instant::now();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
    if let Ok(mut w) = fleet_woke.lock() {
        if let Some(slot) = w.get_mut(id) {
            *slot = Some((at, status));
        }
    }
}

impl Fleet {
    fn new(capacity: usize) -> Fleet {
        Fleet {
            woke: Arc::new(Mutex::new(vec![None; capacity])),
            failed: Arc::default(),
            sent: Arc::default(),
            tasks: Vec::new(),
        }
    }

    fn spawn(&mut self, ids: std::ops::Range<usize>, agent: SocketAddr, index: u64, gate: Arc<Semaphore>) {
        for id in ids {
            self.tasks.push(tokio::spawn(watcher(
                id,
                agent,
                index,
                gate.clone(),
                self.woke.clone(),
                self.failed.clone(),
                self.sent.clone(),
            )));
        }
    }

    fn woken(&self) -> usize {
        self.woke.lock().map(|w| w.iter().filter(|x| x.is_some()).count()).unwrap_or(0)
    }

    fn failures(&self) -> (usize, Option<String>) {
        self.failed.lock().map(|f| (f.len(), f.first().cloned())).unwrap_or((0, None))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The current KV index as seen by a read of a key that does not exist.
async fn current_index(agent: SocketAddr) -> Result<u64, String> {
    let r = oneshot(agent, Method::GET, "/v1/kv/watch/none", None, Duration::from_secs(5)).await?;
    r.header_u64("x-consul-index").ok_or_else(|| format!("no X-Consul-Index on a 404 read ({})", r.status))
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let wanted: Vec<usize> = ctx.pick(vec![10_000, 100_000], vec![1_000, 3_000]);
    let samples = ctx.pick(200usize, 20);
    // Each watcher is one socket in the agent and one in this process, and
    // both run under the same open-file limit: a stage that does not fit is
    // replaced by the largest that does, and the report says so.
    let fits = (ctx.nofile as usize).saturating_sub(1_000);
    let mut stages: Vec<usize> = Vec::new();
    for w in wanted {
        if w <= fits {
            stages.push(w);
        } else {
            sec.notes.push(format!(
                "{w} watchers not run: the open-file limit here is {} (hard limit; raising it needs CAP_SYS_RESOURCE, \
                 e.g. `ulimit -Hn 1048576` as real root) and each watcher needs a descriptor in the agent and one in \
                 the load generator; ran {fits} instead",
                ctx.nofile
            ));
            if stages.last().is_none_or(|l| *l < fits) {
                stages.push(fits);
            }
        }
    }
    sec.about.push(format!(
        "One durable consul-rs server. Watchers are idle blocking queries, one connection each: \
         `GET /v1/kv/watch/<id>?index=<current>&wait=10m` on distinct keys that do not exist yet, opened from \
         127.79.x.y source addresses ({PER_SOURCE} per address). Stages of {} watchers (the second stage adds to the \
         first). At each stage: agent RSS and CPU while everything idles, then one writer creates {samples} watched keys \
         one after another (20 ms apart); write → wake-up latency is from sending that PUT to the watcher receiving \
         its answer, so it includes the Raft commit (fsync). Any other watcher that answers is a spurious wake-up. \
         The agent's `limits.http_max_conns_per_client` is raised and the open-file limit is raised for both processes.",
        stages.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" and ")
    ));
    let dir = ctx.scratch("watch")?;
    let ip = Ipv4Addr::new(127, 79, 0, 1);
    let node = start_agent(ctx, &dir, "w1", ip, Role::Single, &[])?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let agent = node.http();
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
        oneshot(agent, Method::PUT, "/v1/kv/watch-ready", Some("1".into()), Duration::from_secs(2))
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    if up.is_none() {
        return Err(format!("watch agent never accepted a write\n{}", node.proc.log_tail(20)));
    }
    let pid = node.proc.pid();
    let mut t = Table::new(
        "Idle watchers and write → wake-up latency",
        &[
            "watchers",
            "time to open",
            "agent RSS MB",
            "RSS per watcher KiB",
            "agent CPU idle %",
            "agent open fds",
            "wake p50 ms",
            "wake p99 ms",
            "wake max ms",
            "write p50 ms",
            "woken / written",
            "spurious",
            "failed",
        ],
    );
    let idle = ctx.secs(10.0, 1.0);
    let base_rss = node.proc.rss_kb().unwrap_or(0) as f64;
    let base_fds = node.proc.fd_count();
    let total = *stages.last().unwrap_or(&0);
    let mut fleet = Fleet::new(total);
    let gate = Arc::new(Semaphore::new(512));
    let mut opened = 0usize;
    let mut next_sample = 0usize;
    let mut writer = HttpConn::new(agent);
    for &target in &stages {
        let index = current_index(agent).await?;
        let start = Instant::now();
        fleet.spawn(opened..target, agent, index, gate.clone());
        opened = target;
        // Established = every watcher has sent its request (or failed to
        // connect), and the agent holds about one socket per watcher.
        let fref = &fleet;
        let established = wait_until(Duration::from_secs(300), Duration::from_millis(100), || async move {
            fref.sent.load(Ordering::Relaxed) + fref.failures().0 >= target
        })
        .await;
        let open_time = start.elapsed();
        let active = opened - fleet.woken() - fleet.failures().0;
        let nref = &node;
        let _ = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
            nref.proc.fd_count() + 10 >= base_fds + active
        })
        .await;
        if established.is_none() {
            sec.notes.push(format!(
                "{target} watchers: only {} requests were sent within 300 s",
                fleet.sent.load(Ordering::Relaxed)
            ));
        }
        let _ = wait_until(ctx.secs(60.0, 10.0), Duration::from_millis(100), || async move {
            cpu_percent(pid, Duration::from_millis(500)).await.unwrap_or(100.0) < 10.0
        })
        .await;
        let cpu = cpu_percent(pid, idle).await.unwrap_or(f64::NAN);
        let rss = node.proc.rss_kb().unwrap_or(0) as f64;
        let fds = node.proc.fd_count();
        let woken_before = fleet.woken();
        // The writer: create sampled watched keys, spaced out.
        let stride = (opened / samples).max(1);
        let mut sent: Vec<(usize, Instant)> = Vec::new();
        let mut write_ms = Vec::new();
        for k in 0..samples {
            let id = (next_sample + k * stride) % opened;
            let already = fleet.woke.lock().map(|w| w[id].is_some()).unwrap_or(true);
            if already || sent.iter().any(|(i, _)| *i == id) {
                continue;
            }
            let t0 = Instant::now();
            let r = writer.request(Method::PUT, &format!("/v1/kv/watch/{id}"), Some("x".into())).await?;
            if r.status != 200 {
                return Err(format!("writer PUT watch/{id}: {} {}", r.status, r.text()));
            }
            write_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            sent.push((id, t0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        next_sample += 1;
        let ids: Vec<usize> = sent.iter().map(|(i, _)| *i).collect();
        let (fref, idref) = (&fleet, &ids);
        let _ = wait_until(Duration::from_secs(15), Duration::from_millis(20), || async move {
            fref.woke.lock().map(|w| idref.iter().all(|i| w[*i].is_some())).unwrap_or(false)
        })
        .await;
        let mut lat = Vec::new();
        let mut ok = 0;
        if let Ok(w) = fleet.woke.lock() {
            for (id, t0) in &sent {
                if let Some((at, status)) = w[*id] {
                    ok += 1;
                    lat.push(at.saturating_duration_since(*t0).as_secs_f64() * 1000.0);
                    if status != 200 {
                        sec.notes.push(format!("watcher {id} woke with status {status}"));
                    }
                }
            }
        }
        let spurious = fleet.woken() - woken_before - ok;
        let (failed, first_fail) = fleet.failures();
        if let Some(f) = first_fail {
            sec.notes.push(format!("{target} watchers: {failed} could not be opened; first error: {f}"));
        }
        sec.metric(format!("watch.{target}.rss_mb"), rss / 1024.0);
        sec.metric(format!("watch.{target}.cpu_pct"), cpu);
        sec.metric(format!("watch.{target}.wake_p50_ms"), quantile(&lat, 0.5));
        sec.metric(format!("watch.{target}.wake_p99_ms"), quantile(&lat, 0.99));
        eprintln!(
            "  watch {target}: rss {:.1} MB cpu {cpu:.1}% wake p50 {:.2} ms",
            rss / 1024.0,
            quantile(&lat, 0.5)
        );
        t.row(vec![
            num(target as f64),
            format!("{:.1} s", open_time.as_secs_f64()),
            num(rss / 1024.0),
            num((rss - base_rss) / target as f64),
            num(cpu),
            num(fds as f64),
            num(quantile(&lat, 0.5)),
            num(quantile(&lat, 0.99)),
            num(quantile(&lat, 1.0)),
            num(quantile(&write_ms, 0.5)),
            format!("{ok} / {}", sent.len()),
            spurious.to_string(),
            failed.to_string(),
        ]);
    }
    sec.notes.push(format!("agent RSS before any watcher: {:.1} MB, {base_fds} open fds", base_rss / 1024.0));
    sec.tables.push(t);
    drop(fleet);
    drop(node);
    Ok(())
}
