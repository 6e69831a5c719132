//! The catalog a real deployment reaches, on one server: 5,000 nodes × 5
//! service instances × 2 checks each, loaded through `/v1/txn` in batches
//! of 64 operations. Then the four reads a fleet leans on
//! (`/v1/catalog/services`, `/v1/catalog/service/<s>`,
//! `/v1/health/service/<s>?passing`, `/v1/catalog/nodes`) with p50/p99 and
//! the server's CPU per request; a health watch's wake-up after one check
//! flips; `consul snapshot save` / `restore` time and size; server RSS.
//!
//! Owns: the large catalog load and its tables. consul-rs only: etcd has
//! no catalog API.

use crate::consul::{start_agent, ConsulNode, Role};
use crate::ctx::Ctx;
use crate::http::{oneshot, truncate, HttpConn};
use crate::load::{self, Worker};
use crate::procs::{cpu_secs, wait_until};
use crate::results::{num, quantile, Section, Table};
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICES_PER_NODE: usize = 5;
const CHECKS_PER_SERVICE: usize = 2;
/// Distinct service names; node i runs names (i·5 + k) mod NAMES, so each
/// name has nodes·5/NAMES instances.
const NAMES: usize = 100;
/// Ops in one node's registration: the node, its services, their checks.
const OPS_PER_NODE: usize = 1 + SERVICES_PER_NODE * (1 + CHECKS_PER_SERVICE);
/// Consul's limit of operations per transaction.
const TXN_OPS: usize = 64;

fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (i / 62500) as u8, ((i / 250) % 250) as u8, 1 + (i % 250) as u8)
}

fn service_of(node: usize, k: usize) -> usize {
    (node * SERVICES_PER_NODE + k) % NAMES
}

fn check_op(node: usize, k: usize, c: usize, status: &str) -> String {
    let n = node_name(node);
    let s = service_of(node, k);
    format!(
        r#"{{"Check":{{"Verb":"set","Check":{{"Node":"{n}","CheckID":"svc-{s}-{k}-c{c}","Name":"check {c}","Status":"{status}","ServiceID":"svc-{s}-{k}","ServiceName":"svc-{s}","Output":"ok"}}}}}}"#
    )
}

/// The txn operations that register node `i` whole. Nodes carry IDs, as
/// every real agent's registration does.
fn node_ops(i: usize) -> Vec<String> {
    let n = node_name(i);
    let mut ops = vec![format!(
        r#"{{"Node":{{"Verb":"set","Node":{{"ID":"{:08x}-0000-4000-8000-{:012x}","Node":"{n}","Address":"{}","Datacenter":"dc1","Meta":{{"rack":"r{}"}}}}}}}}"#,
        i,
        i,
        node_addr(i),
        i % 40
    )];
    for k in 0..SERVICES_PER_NODE {
        let s = service_of(i, k);
        ops.push(format!(
            r#"{{"Service":{{"Verb":"set","Node":"{n}","Service":{{"ID":"svc-{s}-{k}","Service":"svc-{s}","Port":{},"Tags":["v1","zone-{}"],"Meta":{{"version":"1.{}"}}}}}}}}"#,
            20000 + k,
            i % 3,
            i % 7
        ));
        for c in 0..CHECKS_PER_SERVICE {
            ops.push(check_op(i, k, c, "passing"));
        }
    }
    ops
}

fn txn_body(ops: &[String]) -> String {
    format!("[{}]", ops.join(","))
}

async fn txn(conn: &mut HttpConn, body: String) -> Result<(), String> {
    let r = conn.request(Method::PUT, "/v1/txn", Some(body.into())).await?;
    if r.status != 200 {
        return Err(format!("txn: {} {}", r.status, truncate(&r.text(), 300)));
    }
    Ok(())
}

/// Loads `nodes` nodes with `writers` concurrent clients; returns per-txn
/// latencies (ms).
async fn load_catalog(http: SocketAddr, nodes: usize, writers: usize) -> Result<Vec<f64>, String> {
    let per_txn = (TXN_OPS / OPS_PER_NODE).max(1);
    let batches = nodes.div_ceil(per_txn);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = HttpConn::new(http);
            c.timeout = Duration::from_secs(60);
            let mut lat = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let ops: Vec<String> =
                    (b * per_txn..((b + 1) * per_txn).min(nodes)).flat_map(node_ops).collect();
                let t0 = Instant::now();
                txn(&mut c, txn_body(&ops)).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| format!("load task: {e}"))??);
    }
    Ok(lat)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Services,
    Service,
    HealthPassing,
    Nodes,
}

impl Read {
    fn label(self) -> &'static str {
        match self {
            Read::Services => "/v1/catalog/services",
            Read::Service => "/v1/catalog/service/<s>",
            Read::HealthPassing => "/v1/health/service/<s>?passing",
            Read::Nodes => "/v1/catalog/nodes",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Read::Services => "catalog_services",
            Read::Service => "catalog_service",
            Read::HealthPassing => "health_passing",
            Read::Nodes => "catalog_nodes",
        }
    }
}

struct ReadWorker {
    conn: HttpConn,
    read: Read,
    /// Array length every answer must have (None: an object).
    expect_len: Option<usize>,
    rng: SmallRng,
    bytes: usize,
}

impl Worker for ReadWorker {
    async fn step(&mut self, _seq: u64) -> Result<(), String> {
        let s = self.rng.random_range(0..NAMES);
        let path = match self.read {
            Read::Services => "/v1/catalog/services".to_string(),
            Read::Service => format!("/v1/catalog/service/svc-{s}"),
            Read::HealthPassing => format!("/v1/health/service/svc-{s}?passing"),
            Read::Nodes => "/v1/catalog/nodes".to_string(),
        };
        let r = self.conn.get(&path).await?;
        if r.status != 200 {
            return Err(format!("GET {path}: {} {}", r.status, truncate(&r.text(), 200)));
        }
        if let Some(n) = self.expect_len {
            // Counting top-level array items without parsing the whole
            // answer would be cheaper, but the check must be real.
            let got = r.json().ok().and_then(|v| v.as_array().map(|a| a.len()));
            if got != Some(n) {
                return Err(format!("GET {path}: expected {n} entries, got {got:?}"));
            }
        }
        self.bytes = r.body.len();
        Ok(())
    }
}

/// Blocks on `/v1/health/service/<s>?passing` and flips one of its checks
/// `flips` times; returns (wake-up ms after the flip was sent, write ms).
async fn watch_wakeups(http: SocketAddr, nodes: usize, flips: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let node = nodes / 2;
    let k = 0;
    let s = service_of(node, k);
    let path = format!("/v1/health/service/svc-{s}?passing");
    let mut w = HttpConn::new(http);
    w.timeout = Duration::from_secs(30);
    let r = w.get(&path).await?;
    let mut index = r.header_u64("x-consul-index").ok_or("health read without X-Consul-Index")?;
    let mut writer = HttpConn::new(http);
    let (mut wake, mut write) = (Vec::new(), Vec::new());
    for f in 0..flips {
        let status = if f % 2 == 0 { "critical" } else { "passing" };
        let wpath = format!("{path}&index={index}&wait=20s");
        let mut wc = HttpConn::new(http);
        wc.timeout = Duration::from_secs(30);
        // Open the connection first so the flip does not race the watcher's
        // connect: the blocking request is parked before the write is sent.
        wc.get("/v1/status/leader").await?;
        let watcher = tokio::spawn(async move {
            let r = wc.get(&wpath).await?;
            Ok::<(Instant, Option<u64>), String>((Instant::now(), r.header_u64("x-consul-index")))
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        txn(&mut writer, txn_body(&[check_op(node, k, 0, status)])).await?;
        write.push(t0.elapsed().as_secs_f64() * 1000.0);
        let (woke, idx) = watcher.await.map_err(|e| format!("watcher: {e}"))??;
        wake.push(woke.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        index = idx.ok_or("blocking health read without X-Consul-Index")?;
    }
    Ok((wake, write))
}

/// Runs `consul <cmd…> -http-addr=… <file>`: flags go before the positional
/// argument, as Go's flag parsing (and ours) stops at the first one.
fn consul_cli(ctx: &Ctx, http: SocketAddr, cmd: &[&str], file: &str) -> Result<f64, String> {
    let args: Vec<String> = cmd
        .iter()
        .map(|a| a.to_string())
        .chain([format!("-http-addr=http://{http}"), file.to_string()])
        .collect();
    let t0 = Instant::now();
    let out = std::process::Command::new(&ctx.consul)
        .args(&args)
        .output()
        .map_err(|e| format!("consul {}: {e}", args.join(" ")))?;
    let secs = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "consul {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(secs)
}

async fn catalog_counts(http: SocketAddr) -> Result<(usize, usize), String> {
    let mut c = HttpConn::new(http);
    let nodes = c.get("/v1/catalog/nodes").await?.json()?.as_array().map(|a| a.len()).unwrap_or(0);
    let checks = c.get("/v1/health/state/any").await?.json()?.as_array().map(|a| a.len()).unwrap_or(0);
    Ok((nodes, checks))
}

fn rss_mb(node: &ConsulNode) -> f64 {
    node.proc.rss_kb().unwrap_or(0) as f64 / 1024.0
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let nodes = ctx.pick(5_000usize, 200);
    let writers = 16usize;
    let instances = nodes * SERVICES_PER_NODE;
    let checks = instances * CHECKS_PER_SERVICE;
    sec.about.push(format!(
        "One durable consul-rs server holding {nodes} nodes × {SERVICES_PER_NODE} service instances × \
         {CHECKS_PER_SERVICE} checks each ({instances} instances of {NAMES} services, {checks} checks), loaded \
         through `PUT /v1/txn` ({} nodes = {} operations per transaction) by {writers} concurrent clients. Then \
         each read at 1 and 16 clients, with the server's CPU seconds per request; a blocking \
         `/v1/health/service/<s>?passing` watcher's wake-up after one of its checks flips (time from sending the \
         write to the watcher's answer); `consul snapshot save` and `consul snapshot restore` of the loaded \
         catalog; server RSS along the way.",
        TXN_OPS / OPS_PER_NODE,
        (TXN_OPS / OPS_PER_NODE) * OPS_PER_NODE
    ));
    let dir = ctx.scratch("catalog-scale")?;
    let ip = Ipv4Addr::new(127, 83, 200, 1);
    let node = start_agent(ctx, &dir, "cs1", ip, Role::Single, &[])?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let http: SocketAddr = node.http();
    let ready = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
        oneshot(http, Method::PUT, "/v1/kv/scale-ready", Some("1".into()), Duration::from_secs(2))
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    if ready.is_none() {
        return Err(format!("catalog-scale agent never became ready\n{}", node.proc.log_tail(20)));
    }
    let pid = node.proc.pid();
    let rss0 = rss_mb(&node);
    let cpu0 = cpu_secs(pid).unwrap_or(0.0);
    let started = Instant::now();
    let lat = load_catalog(http, nodes, writers).await?;
    let load_secs = started.elapsed().as_secs_f64();
    let load_cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
    let rss1 = rss_mb(&node);
    let (n_got, c_got) = catalog_counts(http).await?;
    // +1: the server's own node (and its serfHealth check).
    if n_got < nodes || c_got < checks {
        return Err(format!("after the load: {n_got} nodes and {c_got} checks, expected {nodes} and {checks} (+ the server's own)"));
    }
    eprintln!("  catalog-scale: loaded {nodes} nodes in {load_secs:.1} s, RSS {rss0:.0} → {rss1:.0} MB");
    let mut lt = Table::new(
        "Loading the catalog through /v1/txn",
        &[
            "nodes",
            "instances",
            "checks",
            "clients",
            "total s",
            "nodes/s",
            "txn p50 ms",
            "txn p99 ms",
            "server CPU s",
            "RSS before → after MB",
        ],
    );
    lt.row(vec![
        num(nodes as f64),
        num(instances as f64),
        num(checks as f64),
        writers.to_string(),
        num(load_secs),
        num(nodes as f64 / load_secs),
        num(quantile(&lat, 0.5)),
        num(quantile(&lat, 0.99)),
        num(load_cpu),
        format!("{} → {}", num(rss0), num(rss1)),
    ]);
    sec.metric("scale.load_secs", load_secs);
    sec.metric("scale.rss_loaded_mb", rss1);
    sec.tables.push(lt);

    let mut t = Table::new(
        "Reads with the catalog loaded",
        &[
            "endpoint",
            "clients",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU ms/req",
            "response bytes",
            "errors",
        ],
    );
    let per_name = instances / NAMES;
    for read in [Read::Services, Read::Service, Read::HealthPassing, Read::Nodes] {
        let expect_len = match read {
            Read::Services => None,
            Read::Service | Read::HealthPassing => Some(per_name),
            Read::Nodes => Some(n_got),
        };
        for clients in [1usize, 16] {
            let c0 = cpu_secs(pid).unwrap_or(0.0);
            let (r, workers) = load::run(clients, ctx.secs(1.0, 0.2), ctx.secs(5.0, 0.5), |i| ReadWorker {
                conn: HttpConn::new(http),
                read,
                expect_len,
                rng: SmallRng::seed_from_u64(i as u64),
                bytes: 0,
            })
            .await;
            let cpu = cpu_secs(pid).unwrap_or(0.0) - c0;
            let bytes = workers.iter().map(|w| w.bytes).max().unwrap_or(0);
            let cpu_per = if r.total_ops > 0 { cpu * 1000.0 / r.total_ops as f64 } else { f64::NAN };
            sec.metric(format!("scale.{}.c{clients}.p50_ms", read.key()), r.ms(0.5));
            sec.metric(format!("scale.{}.c{clients}.p99_ms", read.key()), r.ms(0.99));
            sec.metric(format!("scale.{}.c{clients}.cpu_ms", read.key()), cpu_per);
            eprintln!(
                "  catalog-scale: {} c{clients}: p50 {:.2} ms p99 {:.2} ms, {:.0} req/s, cpu {:.2} ms/req",
                read.label(),
                r.ms(0.5),
                r.ms(0.99),
                r.throughput(),
                cpu_per
            );
            if let Some(e) = &r.first_error {
                sec.notes.push(format!(
                    "{} at {clients} clients: {} errors; first: `{}`",
                    read.label(),
                    r.errors,
                    truncate(e, 300)
                ));
            }
            t.row(vec![
                read.label().into(),
                clients.to_string(),
                num(r.throughput()),
                num(r.ms(0.5)),
                num(r.ms(0.99)),
                num(cpu_per),
                num(bytes as f64),
                r.errors.to_string(),
            ]);
        }
    }
    sec.tables.push(t);
    let rss2 = rss_mb(&node);

    let flips = ctx.pick(20usize, 4);
    let (wake, write) = watch_wakeups(http, nodes, flips).await?;
    let mut wt = Table::new(
        "A health watch when one check flips",
        &["flips", "write p50 ms", "wake-up p50 ms", "wake-up p99 ms", "wake-up max ms"],
    );
    wt.row(vec![
        flips.to_string(),
        num(quantile(&write, 0.5)),
        num(quantile(&wake, 0.5)),
        num(quantile(&wake, 0.99)),
        num(wake.iter().cloned().fold(0.0, f64::max)),
    ]);
    sec.metric("scale.watch_wake_p50_ms", quantile(&wake, 0.5));
    sec.metric("scale.watch_wake_p99_ms", quantile(&wake, 0.99));
    sec.tables.push(wt);

    let snap = dir.join("scale.snap");
    let snap_s = snap.display().to_string();
    let save_cpu0 = cpu_secs(pid).unwrap_or(0.0);
    let save_secs = consul_cli(ctx, http, &["snapshot", "save"], &snap_s)?;
    let save_cpu = cpu_secs(pid).unwrap_or(0.0) - save_cpu0;
    let rss3 = rss_mb(&node);
    let size = std::fs::metadata(&snap).map(|m| m.len()).map_err(|e| format!("{snap_s}: {e}"))?;
    let restore_cpu0 = cpu_secs(pid).unwrap_or(0.0);
    let restore_secs = consul_cli(ctx, http, &["snapshot", "restore"], &snap_s)?;
    let restore_cpu = cpu_secs(pid).unwrap_or(0.0) - restore_cpu0;
    let rss4 = rss_mb(&node);
    let (n_after, c_after) = catalog_counts(http).await?;
    if n_after != n_got || c_after != c_got {
        sec.notes.push(format!(
            "after the restore: {n_after} nodes and {c_after} checks, {n_got} and {c_got} before"
        ));
    }
    eprintln!("  catalog-scale: snapshot {size} bytes, save {save_secs:.2} s, restore {restore_secs:.2} s");
    let mut st = Table::new(
        "Snapshot of the loaded catalog",
        &[
            "snapshot bytes",
            "save s",
            "server CPU s (save)",
            "restore s",
            "server CPU s (restore)",
            "RSS after save → after restore MB",
        ],
    );
    st.row(vec![
        num(size as f64),
        num(save_secs),
        num(save_cpu),
        num(restore_secs),
        num(restore_cpu),
        format!("{} → {}", num(rss3), num(rss4)),
    ]);
    sec.metric("scale.snapshot_bytes", size as f64);
    sec.metric("scale.snapshot_save_s", save_secs);
    sec.metric("scale.snapshot_restore_s", restore_secs);
    sec.metric("scale.rss_after_restore_mb", rss4);
    sec.tables.push(st);
    sec.notes.push(format!(
        "server RSS: {rss0:.1} MB idle, {rss1:.1} MB loaded, {rss2:.1} MB after the reads, {rss3:.1} MB after the \
         snapshot save, {rss4:.1} MB after the restore"
    ));
    Ok(())
}
