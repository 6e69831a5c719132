//! KV benchmarks: PUT and GET throughput/latency by concurrency on one
//! server and on three, and CAS contention, for consul-rs and etcd.
//!
//! Owns: the KV benchmark procedures and their tables. Must not contain
//! request encodings (kvload.rs) or process command lines (systems/).

use crate::consul::ConsulCluster;
use crate::ctx::Ctx;
use crate::durability::{io_sum, strace_syncs};
use crate::etcd::EtcdCluster;
use crate::kvload::{preload, Api, Keys, KvOp, KvWorker};
use crate::load::{self, LoadResult};
use crate::procs::device_bytes_written;
use crate::results::{num, ratio, Plot, Section, Table};
use std::net::{Ipv4Addr, SocketAddr};

/// A running system for the KV benchmarks.
pub enum Sys {
    Consul(ConsulCluster),
    Etcd(EtcdCluster),
}

impl Sys {
    pub async fn start(ctx: &Ctx, etcd: bool, servers: usize, block: u8, tag: &str) -> Result<Sys, String> {
        let ips: Vec<Ipv4Addr> =
            (1..=servers as u8).map(|i| Ipv4Addr::new(127, block, servers as u8, i)).collect();
        if etcd {
            let dir = ctx.scratch(&format!("{tag}-etcd-{servers}"))?;
            Ok(Sys::Etcd(EtcdCluster::start(ctx, &dir, &ips).await?))
        } else {
            let dir = ctx.scratch(&format!("{tag}-consul-{servers}"))?;
            Ok(Sys::Consul(ConsulCluster::servers(ctx, &dir, &ips).await?))
        }
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        match self {
            Sys::Consul(c) => c.http_addrs(),
            Sys::Etcd(e) => e.client_addrs(),
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        match self {
            Sys::Consul(c) => c.nodes.iter().map(|n| n.proc.pid()).collect(),
            Sys::Etcd(e) => e.nodes.iter().map(|n| n.proc.pid()).collect(),
        }
    }

    pub fn commands(&self, ctx: &Ctx) -> Vec<String> {
        match self {
            Sys::Consul(c) => c.commands(ctx),
            Sys::Etcd(e) => e.commands(ctx),
        }
    }

    pub fn rss_mb(&self) -> f64 {
        let kb: u64 = self.pids().iter().filter_map(|p| crate::procs::rss_kb(*p)).sum();
        kb as f64 / 1024.0 / self.pids().len().max(1) as f64
    }
}

/// The concurrency levels; quick mode keeps the two the targets use.
pub fn concurrencies(ctx: &Ctx) -> Vec<usize> {
    list_from_env("BENCH_KV_CLIENTS").unwrap_or_else(|| ctx.pick(vec![1, 16, 64, 256], vec![1, 64]))
}

/// A comma-separated list of numbers from `var`, to narrow a run to the
/// points being worked on (e.g. `BENCH_KV_CLIENTS=1,64 BENCH_KV_SERVERS=3`).
pub fn list_from_env(var: &str) -> Option<Vec<usize>> {
    let v = std::env::var(var).ok()?;
    let list: Vec<usize> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    (!list.is_empty()).then_some(list)
}

/// Runs `clients` KV workers spread round-robin over `addrs`.
pub async fn kv_point(
    ctx: &Ctx,
    api: Api,
    op: KvOp,
    addrs: &[SocketAddr],
    clients: usize,
    keys: Keys,
) -> LoadResult {
    // Writes get longer windows than reads: their latency depends on the
    // disk, which varies more on a shared machine.
    let warm = ctx.secs(1.5, 0.2);
    let window = match op {
        KvOp::Put => ctx.secs(8.0, 0.8),
        KvOp::Get { .. } | KvOp::GetConsistent => ctx.secs(6.0, 0.5),
    };
    let addrs = addrs.to_vec();
    let (r, _) = load::run(clients, warm, window, |i| {
        KvWorker::new(api, op, addrs[i % addrs.len()], keys, 1000 + i as u64)
    })
    .await;
    r
}

pub struct Point {
    pub api: Api,
    pub clients: usize,
    pub r: LoadResult,
    /// (write syscalls, bytes to storage) per op, summed over servers
    pub io: Option<(f64, f64)>,
    /// server CPU milliseconds per op, summed over servers
    pub cpu_ms: f64,
}

/// User + system CPU seconds of all `pids` together.
pub fn cpu_sum(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| crate::procs::cpu_secs(*p)).sum()
}

fn load_table(title: &str, points: &[Point], with_io: bool) -> Table {
    let mut header = vec![
        "clients",
        "system",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "consul-rs ÷ this, ops/s (>1: consul-rs faster)",
        "consul-rs ÷ this, p50 (<1: consul-rs faster)",
        "server CPU ms/op",
    ];
    if with_io {
        header.push("write syscalls/op");
        header.push("KiB to the disk/op (device counters)");
    }
    let mut t = Table::new(title, &header);
    for p in points {
        let ours = points.iter().find(|q| q.api == Api::Consul && q.clients == p.clients);
        let (rat, rat_p50) = match (ours, p.api) {
            (Some(o), a) if a != Api::Consul => {
                (ratio(o.r.throughput(), p.r.throughput()), ratio(o.r.ms(0.5), p.r.ms(0.5)))
            }
            _ => (String::new(), String::new()),
        };
        let mut row = vec![
            p.clients.to_string(),
            p.api.label().to_string(),
            num(p.r.throughput()),
            num(p.r.ms(0.5)),
            num(p.r.ms(0.99)),
            num(p.r.ms(0.999)),
            p.r.errors.to_string(),
            rat,
            rat_p50,
            num(p.cpu_ms),
        ];
        if with_io {
            match p.io {
                Some((w, b)) => {
                    row.push(num(w));
                    row.push(num(b / 1024.0));
                }
                None => {
                    row.push("—".into());
                    row.push("—".into());
                }
            }
        }
        t.row(row);
    }
    t
}

fn first_errors(points: &[Point], sec: &mut Section) {
    for p in points {
        if p.r.errors > 0 {
            if let Some(e) = &p.r.first_error {
                sec.notes.push(format!(
                    "{} at {} clients: {} errors; first: `{}`",
                    p.api.label(),
                    p.clients,
                    p.r.errors,
                    crate::http::truncate(e, 300)
                ));
            }
        }
    }
}

fn plot_csv(ctx: &Ctx, name: &str, points: &[Point]) -> Result<String, String> {
    let mut csv = String::from("series,x,y\n");
    for p in points {
        csv.push_str(&format!("{},{},{:.1}\n", p.api.label(), p.clients, p.r.throughput()));
    }
    let file = format!("{name}.csv");
    std::fs::create_dir_all(&ctx.results)
        .map_err(|e| format!("failed to create {}: {e}", ctx.results.display()))?;
    std::fs::write(ctx.results.join(&file), csv).map_err(|e| format!("failed to write {file}: {e}"))?;
    Ok(file)
}

fn add_plot(ctx: &Ctx, sec: &mut Section, name: &str, title: &str, points: &[Point]) -> Result<(), String> {
    let csv = plot_csv(ctx, name, points)?;
    sec.plots.push(Plot {
        title: title.into(),
        csv,
        png: format!("{name}.png"),
        xlabel: "concurrent clients".into(),
        ylabel: "operations/s".into(),
        logx: true,
    });
    Ok(())
}

/// KV PUT of 256-byte values.
pub async fn kv_put(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    sec.about.push(
        "Closed-loop clients, one keep-alive connection each, spread round-robin over the servers; each PUT writes a \
         256-byte value to a random key out of 10,000 (`bench/k000000`…). consul-rs: `PUT /v1/kv/<key>` (body = value, \
         answer `true`). etcd: `POST /v3/kv/put` on the JSON gateway with base64 key and value, and the same call over \
         gRPC (`etcdserverpb.KV/Put`, one HTTP/2 connection per client)."
            .into(),
    );
    sec.about.push(
        "Why HTTP/JSON against both: it is the API Consul users call (`/v1/kv`), and etcd's gateway is its equivalent; \
         the same load generator then costs the same for both. etcd's native gRPC path is measured too, so the gateway's \
         own cost (HTTP/1.1 + JSON + base64 + an in-process gRPC hop) is visible and consul-rs is also compared with \
         etcd at its best."
            .into(),
    );
    sec.about.push(
        "Durability is equal: consul-rs servers are real servers with a data dir (no `-dev`); every acknowledged write \
         is in a synced Raft log on both systems. The fsync count per write comes from `strace -c -f` attached to every \
         server thread for a short sample (a separate run: tracing slows the server; `-w` makes the time per sync call wall-clock time, i.e. how long a sync made the server wait); write syscalls per write come \
         from /proc/<pid>/io over the measured run (summed over the servers); bytes to disk per write from the block \
         device's own counters over the run (the whole device holding the data dirs, so anything else writing to it \
         counts too), not from /proc/<pid>/io, whose byte count charges a whole page-cache folio (up to 1 MiB on \
         this kernel) for a write that dirties a few bytes of it."
            .into(),
    );
    sec.about.push(
        "Server CPU ms/op is the user + system CPU time of all server processes over the run (warm-up included) \
         divided by the operations acknowledged: the cost of one write to the servers, whatever the machine's load."
            .into(),
    );
    let strace = ctx.tools.strace.clone();
    for servers in list_from_env("BENCH_KV_SERVERS").unwrap_or_else(|| vec![1usize, 3]) {
        let mut points = Vec::new();
        let mut durability = Table::new(
            &format!("Sync calls per write, {servers} server(s) (strace sample)"),
            &[
                "system",
                "clients",
                "writes in sample",
                "fsync",
                "fdatasync",
                "sync calls / write (all servers)",
                "mean µs in one sync call",
            ],
        );
        for (etcd, apis) in [(false, vec![Api::Consul]), (true, vec![Api::EtcdHttp, Api::EtcdGrpc])] {
            let sys = Sys::start(ctx, etcd, servers, 77, "kv-put").await?;
            sec.commands.extend(sys.commands(ctx));
            let addrs = sys.addrs();
            let pids = sys.pids();
            for api in apis {
                for c in concurrencies(ctx) {
                    let io0 = io_sum(&pids);
                    let disk0 = device_bytes_written(&ctx.work);
                    let cpu0 = cpu_sum(&pids);
                    let r = kv_point(ctx, api, KvOp::Put, &addrs, c, Keys::Random(10_000)).await;
                    let io1 = io_sum(&pids);
                    let disk1 = device_bytes_written(&ctx.work);
                    // Like the I/O counters, CPU covers warm-up too.
                    let cpu_ms = 1000.0 * (cpu_sum(&pids) - cpu0) / r.total_ops.max(1) as f64;
                    // The counters cover warm-up too: divide by every op done.
                    let all_ops = r.total_ops.max(1) as f64;
                    let io = Some((
                        (io1.syscw - io0.syscw) as f64 / all_ops,
                        match (disk0, disk1) {
                            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / all_ops,
                            _ => f64::NAN,
                        },
                    ));
                    sec.metric(format!("kv_put.n{servers}.{}.c{c}.ops", api.key()), r.throughput());
                    sec.metric(format!("kv_put.n{servers}.{}.c{c}.p50_ms", api.key()), r.ms(0.5));
                    sec.metric(format!("kv_put.n{servers}.{}.c{c}.p99_ms", api.key()), r.ms(0.99));
                    eprintln!(
                        "  kv-put n={servers} {} c={c}: {:.0} ops/s p50 {:.2} ms errors {}",
                        api.label(),
                        r.throughput(),
                        r.ms(0.5),
                        r.errors
                    );
                    sec.metric(format!("kv_put.n{servers}.{}.c{c}.cpu_ms", api.key()), cpu_ms);
                    points.push(Point { api, clients: c, r, io, cpu_ms });
                }
                // Sync calls per write: a traced sample at 1 and 64 clients.
                if let Some(strace) = &strace {
                    if api != Api::EtcdGrpc {
                        for c in ctx.pick(vec![1usize, 64], vec![64]) {
                            let win = ctx.secs(3.0, 0.8);
                            let addrs2 = addrs.clone();
                            let (syncs, r) = strace_syncs(strace, &pids, &ctx.work, async {
                                let (r, _) = load::run(c, std::time::Duration::ZERO, win, |i| {
                                    KvWorker::new(
                                        api,
                                        KvOp::Put,
                                        addrs2[i % addrs2.len()],
                                        Keys::Random(10_000),
                                        7 + i as u64,
                                    )
                                })
                                .await;
                                r
                            })
                            .await?;
                            let per = syncs.total() as f64 / r.ops.max(1) as f64;
                            sec.metric(format!("kv_put.n{servers}.{}.c{c}.syncs_per_op", api.key()), per);
                            durability.row(vec![
                                if etcd { "etcd".into() } else { "consul-rs".into() },
                                c.to_string(),
                                r.ops.to_string(),
                                syncs.fsync.to_string(),
                                syncs.fdatasync.to_string(),
                                format!("{per:.3}"),
                                num(syncs.mean_us()),
                            ]);
                            sec.metric(
                                format!("kv_put.n{servers}.{}.c{c}.sync_us", api.key()),
                                syncs.mean_us(),
                            );
                        }
                    }
                }
            }
            sec.notes.push(format!(
                "{} server RSS after the PUT runs, {servers} server(s): {:.1} MB per server",
                if etcd { "etcd" } else { "consul-rs" },
                sys.rss_mb()
            ));
        }
        points.sort_by_key(|p| (p.clients, p.api as u8));
        first_errors(&points, sec);
        sec.tables.push(load_table(&format!("KV PUT, {servers} server(s)"), &points, true));
        if strace.is_some() {
            sec.tables.push(durability);
        } else {
            sec.notes.push("strace is not installed: sync calls per write not measured".into());
        }
        add_plot(
            ctx,
            sec,
            &format!("kv_put_{servers}"),
            &format!("KV PUT throughput, {servers} server(s)"),
            &points,
        )?;
    }
    Ok(())
}

/// KV GET of existing keys, two consistency levels.
pub async fn kv_get(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let keys = 1000u64;
    sec.about.push(format!(
        "{keys} keys with 256-byte values are written first; each GET reads a random one of them. consul-rs's default \
         consistency is linearizable (the leader confirms leadership with a quorum, reads are batched behind one \
         confirmation) and is compared with etcd's default linearizable range; consul-rs `?stale` (local read on any \
         server) with etcd `serializable: true`. Clients are spread round-robin over the servers."
    ));
    // BENCH_KV_GET_MIXED_ONLY=1 runs only the reads-under-writes part.
    let mixed_only = std::env::var("BENCH_KV_GET_MIXED_ONLY").is_ok_and(|v| !v.is_empty() && v != "0");
    for servers in if mixed_only { Vec::new() } else { vec![1usize, 3] } {
        let mut by_mode: Vec<(bool, Vec<Point>)> = vec![(false, Vec::new()), (true, Vec::new())];
        for (etcd, apis) in [(false, vec![Api::Consul]), (true, vec![Api::EtcdHttp, Api::EtcdGrpc])] {
            let sys = Sys::start(ctx, etcd, servers, 77, "kv-get").await?;
            sec.commands.extend(sys.commands(ctx));
            let addrs = sys.addrs();
            let pids = sys.pids();
            preload(if etcd { Api::EtcdHttp } else { Api::Consul }, &addrs, keys, 32).await?;
            for api in apis {
                for (relaxed, points) in by_mode.iter_mut() {
                    for c in concurrencies(ctx) {
                        let cpu0 = cpu_sum(&pids);
                        let r = kv_point(
                            ctx,
                            api,
                            KvOp::Get { relaxed: *relaxed },
                            &addrs,
                            c,
                            Keys::Random(keys),
                        )
                        .await;
                        let cpu_ms = 1000.0 * (cpu_sum(&pids) - cpu0) / r.total_ops.max(1) as f64;
                        let mode = if *relaxed { "stale" } else { "default" };
                        sec.metric(
                            format!("kv_get.n{servers}.{mode}.{}.c{c}.ops", api.key()),
                            r.throughput(),
                        );
                        sec.metric(format!("kv_get.n{servers}.{mode}.{}.c{c}.p50_ms", api.key()), r.ms(0.5));
                        eprintln!(
                            "  kv-get n={servers} {mode} {} c={c}: {:.0} ops/s p50 {:.2} ms errors {}",
                            api.label(),
                            r.throughput(),
                            r.ms(0.5),
                            r.errors
                        );
                        sec.metric(format!("kv_get.n{servers}.{mode}.{}.c{c}.cpu_ms", api.key()), cpu_ms);
                        points.push(Point { api, clients: c, r, io: None, cpu_ms });
                    }
                }
            }
        }
        for (relaxed, mut points) in by_mode {
            points.sort_by_key(|p| (p.clients, p.api as u8));
            first_errors(&points, sec);
            let (title, file) = if relaxed {
                (
                    format!("KV GET, {servers} server(s): consul-rs `?stale` vs etcd serializable"),
                    format!("kv_get_stale_{servers}"),
                )
            } else {
                (
                    format!("KV GET, {servers} server(s): consul-rs default vs etcd linearizable"),
                    format!("kv_get_default_{servers}"),
                )
            };
            sec.tables.push(load_table(&title, &points, false));
            add_plot(ctx, sec, &file, &title.replace('`', ""), &points)?;
        }
    }
    crate::benches::kv_mixed::run(ctx, sec).await
}
