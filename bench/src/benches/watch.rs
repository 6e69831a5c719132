//! Blocking queries at scale: many idle watchers
//! (`GET /v1/kv/<key>?index=N&wait=10m` on distinct keys that do not exist
//! yet) plus one writer. Measures the agent's CPU and RSS while the
//! watchers idle, and write → wake-up latency for a sample of keys, over
//! two transports, each against its own fresh agent:
//!
//! - HTTP/1.1, one connection per watcher: raw TCP sockets with a
//!   hand-written request (no client buffers while idle), spread over
//!   several 127.79.x.y source addresses so no (source, destination) pair
//!   runs out of ephemeral ports. Bounded by the open-file limit.
//! - HTTP/2 over TLS, 1,000 watchers per connection (`watch_h2.rs`).
//!
//! Owns: the HTTP/1.1 fleet and the measurements of both fleets.

use super::watch_h2::{self, H2Fleet};
use crate::consul::{start_agent, ConsulNode, Role};
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

/// Per watcher id: when its answer arrived and its status (None while
/// blocked).
pub type Woke = Arc<Mutex<Vec<Option<(Instant, u16)>>>>;

struct Fleet {
    woke: Woke,
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
    fleet_woke: Woke,
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

/// The agent's `consul.blocking_query.parked` gauge: the blocking queries
/// it holds waiting for a change right now.
async fn parked(agent: SocketAddr) -> Option<usize> {
    let r = oneshot(agent, Method::GET, "/v1/agent/metrics", None, Duration::from_secs(5)).await.ok()?;
    let v = r.json().ok()?;
    let g = v["Gauges"].as_array()?.iter().find(|g| g["Name"] == "consul.blocking_query.parked")?;
    Some(g["Value"].as_f64()? as usize)
}

fn woken(woke: &Woke) -> usize {
    woke.lock().map(|w| w.iter().filter(|x| x.is_some()).count()).unwrap_or(0)
}

/// Starts one durable single server and waits until it takes a write.
async fn start_server(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    ip: Ipv4Addr,
    extra: &[String],
) -> Result<ConsulNode, String> {
    let node = start_agent(ctx, dir, name, ip, Role::Single, extra)?;
    let agent = node.http();
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
        oneshot(agent, Method::PUT, "/v1/kv/watch-ready", Some("1".into()), Duration::from_secs(2))
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    if up.is_none() {
        return Err(format!("watch agent {name} never accepted a write\n{}", node.proc.log_tail(20)));
    }
    Ok(node)
}

/// What one point (a fleet of watchers held by the agent) measured.
#[derive(Default)]
struct Point {
    cpu: f64,
    rss_kb: f64,
    fds: usize,
    /// The agent's parked-query gauge while idle.
    held: Option<usize>,
    /// write → wake-up, ms, per written key whose watcher woke.
    wake_ms: Vec<f64>,
    write_ms: Vec<f64>,
    woke: usize,
    written: usize,
    /// Watchers that answered although their key was not written.
    spurious: usize,
    /// What went wrong on the way, for the report's notes.
    notes: Vec<String>,
}

/// Lets the agent settle, measures its idle CPU and RSS, then creates up to
/// `samples` watched keys one at a time, each once the previous key's
/// watcher has answered, so the latencies do not overlap and every other
/// answer in the meantime is a spurious wake-up.
async fn measure(
    ctx: &Ctx,
    node: &ConsulNode,
    writer: &mut HttpConn,
    woke: &Woke,
    opened: usize,
    samples: usize,
    offset: usize,
) -> Result<Point, String> {
    let pid = node.proc.pid();
    let _ = wait_until(ctx.secs(60.0, 10.0), Duration::from_millis(100), || async move {
        cpu_percent(pid, Duration::from_millis(500)).await.unwrap_or(100.0) < 10.0
    })
    .await;
    let mut p = Point {
        cpu: cpu_percent(pid, ctx.secs(10.0, 1.0)).await.unwrap_or(f64::NAN),
        rss_kb: node.proc.rss_kb().unwrap_or(0) as f64,
        fds: node.proc.fd_count(),
        held: parked(node.http()).await,
        ..Point::default()
    };
    let woken_before = woken(woke);
    let stride = (opened / samples.max(1)).max(1);
    let mut written: Vec<usize> = Vec::new();
    let mut missed = 0;
    for k in 0..samples {
        let id = (offset + k * stride) % opened;
        let already = woke.lock().map(|w| w[id].is_some()).unwrap_or(true);
        if already || written.contains(&id) {
            continue;
        }
        let t0 = Instant::now();
        let r = writer.request(Method::PUT, &format!("/v1/kv/watch/{id}"), Some("x".into())).await?;
        if r.status != 200 {
            return Err(format!("writer PUT watch/{id}: {} {}", r.status, r.text()));
        }
        p.write_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        written.push(id);
        let answered = wait_until(Duration::from_secs(10), Duration::from_millis(1), || {
            let done = woke.lock().map(|w| w[id].is_some()).unwrap_or(false);
            async move { done }
        })
        .await;
        let Some((at, status)) = answered.and_then(|_| woke.lock().ok().and_then(|w| w[id])) else {
            p.notes.push(format!(
                "{opened} watchers: the watcher of watch/{id} did not answer within 10 s of its write"
            ));
            missed += 1;
            if missed >= 3 {
                break;
            }
            continue;
        };
        p.woke += 1;
        p.wake_ms.push(at.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        if status != 200 {
            p.notes.push(format!("watcher of watch/{id} woke with status {status}"));
        }
    }
    p.written = written.len();
    // A wrong wake-up caused by a write shows up within the wait for the
    // next write's watcher; the last write gets the same grace.
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.spurious = woken(woke).saturating_sub(woken_before + p.woke);
    Ok(p)
}

/// One table row and the point's metrics, under `key` (`watch` for
/// HTTP/1.1, `watch_h2` for HTTP/2 over TLS).
struct Stage<'a> {
    transport: &'a str,
    key: &'a str,
    target: usize,
    connections: usize,
    open_time: Duration,
    base_rss_kb: f64,
    /// Watchers still waiting when the point was measured.
    active: usize,
    failed: usize,
}

fn record(sec: &mut Section, t: &mut Table, s: &Stage, p: &Point) {
    let Stage { transport, key, target, .. } = *s;
    let per_watcher = (p.rss_kb - s.base_rss_kb) / s.active.max(1) as f64;
    let p50 = quantile(&p.wake_ms, 0.5);
    let p99 = quantile(&p.wake_ms, 0.99);
    sec.metric(format!("{key}.{target}.rss_mb"), p.rss_kb / 1024.0);
    sec.metric(format!("{key}.{target}.kib_per_watcher"), per_watcher);
    sec.metric(format!("{key}.{target}.cpu_pct"), p.cpu);
    sec.metric(format!("{key}.{target}.wake_p50_ms"), p50);
    sec.metric(format!("{key}.{target}.wake_p99_ms"), p99);
    sec.metric(format!("{key}.{target}.held"), p.held.map(|h| h as f64).unwrap_or(f64::NAN));
    sec.metric(format!("{key}.{target}.written"), p.written as f64);
    sec.metric(format!("{key}.{target}.woken"), p.woke as f64);
    sec.metric(format!("{key}.{target}.spurious"), p.spurious as f64);
    sec.metric(format!("{key}.{target}.failed"), s.failed as f64);
    eprintln!(
        "  watch {transport} {target}: rss {:.1} MB ({per_watcher:.2} KiB/watcher) cpu {:.2}% wake p50 {p50:.2} \
         p99 {p99:.2} ms, {} / {} woke, {} spurious",
        p.rss_kb / 1024.0,
        p.cpu,
        p.woke,
        p.written,
        p.spurious
    );
    t.row(vec![
        transport.into(),
        num(target as f64),
        s.connections.to_string(),
        format!("{:.1} s", s.open_time.as_secs_f64()),
        p.held.map(|h| num(h as f64)).unwrap_or_else(|| "—".into()),
        num(p.rss_kb / 1024.0),
        num(per_watcher),
        num(p.cpu),
        num(p.fds as f64),
        num(p50),
        num(p99),
        num(quantile(&p.wake_ms, 1.0)),
        num(quantile(&p.write_ms, 0.5)),
        format!("{} / {}", p.woke, p.written),
        p.spurious.to_string(),
        s.failed.to_string(),
    ]);
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let samples = ctx.pick(200usize, 20);
    let mut t = Table::new(
        "Idle watchers and write → wake-up latency",
        &[
            "transport",
            "watchers",
            "connections",
            "time to open",
            "held (parked gauge)",
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
    sec.about.push(format!(
        "Idle watchers are blocking queries `GET /v1/kv/watch/<id>?index=<current>&wait=10m` on distinct keys that \
         do not exist yet, held by one durable consul-rs server (a fresh one per transport; the agent's \
         `limits.http_max_conns_per_client` is raised and the open-file limit is raised for both processes). Each \
         point adds watchers to the previous one. At each point, once the agent's `consul.blocking_query.parked` \
         gauge (HTTP/2) or its open sockets (HTTP/1.1) show the fleet parked: agent RSS and CPU while everything \
         idles ({} s), RSS per watcher = (RSS now − RSS before the first watcher) / watchers still waiting; then one \
         writer creates up to {samples} watched keys one at a time, each after the previous key's watcher answered. \
         Write → wake-up latency is from sending that PUT to the watcher receiving its answer, so it includes the Raft \
         commit (fsync). Any other watcher that answers is a spurious wake-up: each write must wake exactly one.",
        ctx.secs(10.0, 1.0).as_secs_f64()
    ));
    let h1 = run_h1(ctx, sec, &mut t, samples).await;
    let h2 = run_h2(ctx, sec, &mut t, samples).await;
    sec.tables.push(t);
    h1.and(h2)
}

/// HTTP/1.1: one connection per watcher, as many as the open-file limit allows.
async fn run_h1(ctx: &Ctx, sec: &mut Section, t: &mut Table, samples: usize) -> Result<(), String> {
    let wanted: Vec<usize> = ctx.pick(vec![10_000, 100_000], vec![1_000, 3_000]);
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
                "HTTP/1.1: {w} watchers not run: the open-file limit here is {} (hard limit; raising it needs \
                 CAP_SYS_RESOURCE, e.g. `ulimit -Hn 1048576` as real root) and each watcher needs a descriptor in the \
                 agent and one in the load generator; ran {fits} instead (HTTP/2 below is not bound by it)",
                ctx.nofile
            ));
            if stages.last().is_none_or(|l| *l < fits) {
                stages.push(fits);
            }
        }
    }
    sec.about.push(format!(
        "HTTP/1.1: one connection per watcher, raw sockets opened from 127.79.x.y source addresses ({PER_SOURCE} per \
         address), points of {} watchers.",
        stages.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" and ")
    ));
    let dir = ctx.scratch("watch")?;
    let ip = Ipv4Addr::new(127, 79, 0, 1);
    let node = start_server(ctx, &dir, "w1", ip, &[]).await?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let agent = node.http();
    let base_rss = node.proc.rss_kb().unwrap_or(0) as f64;
    let base_fds = node.proc.fd_count();
    let total = *stages.last().unwrap_or(&0);
    let mut fleet = Fleet::new(total);
    let gate = Arc::new(Semaphore::new(512));
    let mut opened = 0usize;
    let mut writer = HttpConn::new(agent);
    let mut last_kib = None;
    for (n, &target) in stages.iter().enumerate() {
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
        let active = opened.saturating_sub(woken(&fleet.woke) + fleet.failures().0);
        let nref = &node;
        let _ = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
            nref.proc.fd_count() + 10 >= base_fds + active
        })
        .await;
        if established.is_none() {
            sec.notes.push(format!(
                "HTTP/1.1 {target} watchers: only {} requests were sent within 300 s",
                fleet.sent.load(Ordering::Relaxed)
            ));
        }
        let p = measure(ctx, &node, &mut writer, &fleet.woke, opened, samples, n).await?;
        sec.notes.extend(p.notes.iter().map(|m| format!("HTTP/1.1: {m}")));
        let (failed, first_fail) = fleet.failures();
        if let Some(f) = first_fail {
            sec.notes
                .push(format!("HTTP/1.1 {target} watchers: {failed} could not be opened; first error: {f}"));
        }
        let stage = Stage {
            transport: "HTTP/1.1",
            key: "watch",
            target,
            connections: target - failed,
            open_time,
            base_rss_kb: base_rss,
            active,
            failed,
        };
        record(sec, t, &stage, &p);
        last_kib = Some((target, (p.rss_kb - base_rss) / active.max(1) as f64));
    }
    sec.notes.push(format!(
        "HTTP/1.1 agent RSS before any watcher: {:.1} MB, {base_fds} open fds",
        base_rss / 1024.0
    ));
    if let Some((n, kib)) = last_kib {
        sec.notes.push(format!(
            "HTTP/1.1 costs {} KiB of agent RSS per watcher at {n}: each watcher is its own connection, and hyper's HTTP/1 \
             server keeps a fixed read buffer (8 KiB) and write buffer (8 KiB) per connection while the query waits, \
             on top of the parked query itself; HTTP/2 shares one connection's buffers among its 1,000 streams.",
            num(kib)
        ));
    }
    drop(fleet);
    drop(node);
    Ok(())
}

/// HTTP/2 over TLS: 1,000 watchers per connection, not bounded by the
/// open-file limit.
async fn run_h2(ctx: &Ctx, sec: &mut Section, t: &mut Table, samples: usize) -> Result<(), String> {
    let stages: Vec<usize> = ctx.pick(vec![10_000, 100_000], vec![1_000, 3_000]);
    sec.about.push(format!(
        "HTTP/2 over TLS: the agent serves HTTPS on :{} with a CA and server certificate from its own `consul tls ca \
         create` / `consul tls cert create -server -additional-ipaddress <ip>`; watchers are HTTP/2 streams \
         (negotiated by ALPN), {} per TLS connection (the agent's stream limit), from hyper's HTTP/2 client over \
         tokio-rustls; points of {} watchers.",
        watch_h2::HTTPS_PORT,
        watch_h2::STREAMS_PER_CONN,
        stages.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" and ")
    ));
    let dir = ctx.scratch("watch-h2")?;
    let ip = Ipv4Addr::new(127, 79, 0, 2);
    let (config_arg, ca) = watch_h2::https_agent_config(ctx, &dir, ip)?;
    let node = start_server(ctx, &dir, "w2", ip, &[config_arg]).await?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let agent = node.http();
    let base_rss = node.proc.rss_kb().unwrap_or(0) as f64;
    let total = *stages.last().unwrap_or(&0);
    let mut fleet = H2Fleet::new(total, SocketAddr::from((ip, watch_h2::HTTPS_PORT)), &ca)?;
    let mut opened = 0usize;
    let mut writer = HttpConn::new(agent);
    for (n, &target) in stages.iter().enumerate() {
        let index = current_index(agent).await?;
        let start = Instant::now();
        fleet.open(opened..target, index).await?;
        opened = target;
        // Parked = the agent's gauge counts every watcher still waiting.
        let fref = &fleet;
        let held = wait_until(Duration::from_secs(300), Duration::from_millis(100), || async move {
            let waiting = opened.saturating_sub(woken(&fref.woke) + fref.failures().0);
            parked(agent).await.is_some_and(|p| p >= waiting)
        })
        .await;
        let open_time = start.elapsed();
        let (failed, first_fail) = fleet.failures();
        let active = opened.saturating_sub(woken(&fleet.woke) + failed);
        if held.is_none() {
            sec.notes.push(format!(
                "HTTP/2 {target} watchers: the agent's parked gauge reached only {:?} of {active} within 300 s",
                parked(agent).await
            ));
        }
        let p = measure(ctx, &node, &mut writer, &fleet.woke, opened, samples, n).await?;
        sec.notes.extend(p.notes.iter().map(|m| format!("HTTP/2: {m}")));
        if let Some(f) = first_fail {
            sec.notes.push(format!("HTTP/2 {target} watchers: {failed} failed; first error: {f}"));
        }
        let stage = Stage {
            transport: "HTTP/2 + TLS",
            key: "watch_h2",
            target,
            connections: fleet.connections,
            open_time,
            base_rss_kb: base_rss,
            active,
            failed,
        };
        record(sec, t, &stage, &p);
    }
    sec.notes.push(format!("HTTP/2 agent RSS before any watcher: {:.1} MB", base_rss / 1024.0));
    drop(fleet);
    drop(node);
    Ok(())
}
