//! GET latency under concurrent writes (issue 22, item 2), part of
//! `kv-get`: on 3 servers, readers GET one key on the leader, first with no
//! writes, then while 16 writers PUT other keys, then while they PUT the
//! key being read; for consul-rs (default and `?consistent` reads) and etcd
//! (linearizable ranges over the JSON gateway and gRPC). One fsync on the
//! data filesystem is measured in the same run: the issue allows a read
//! under writes to be slower at p99 by at most that. A control point sends
//! the same paced writes to a second 3-server cluster of the same system
//! on the same machine: the readers' cluster does no write work, yet the
//! machine's 2 cores are as busy, so the gap between the two tells how
//! much of the excess is this cluster's writes and how much the shared
//! cores.
//!
//! Owns: the reads-under-writes procedure, its table and metrics. Must not
//! contain request encodings (kvload.rs) or judge targets (targets.rs).

use crate::benches::disk::fsync_us;
use crate::benches::kv::Sys;
use crate::ctx::Ctx;
use crate::kvload::{preload, Api, Keys, KvOp, KvWorker};
use crate::load::{self, LoadResult, Worker};
use crate::results::{num, quantile, Section, Table};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Concurrent writers in the loaded phases.
pub const WRITERS: usize = 16;
/// The paced writers' total rate (PUT/s): a steady production write load
/// that leaves the machine's cores room, so the excess measured is waiting
/// for writes rather than for a CPU (closed-loop writers saturate 2 cores).
pub const PACED_RATE: u32 = 1000;
/// Keys written before the run; readers read key 0 ("A").
const KEYS: u64 = 1000;
/// Size of the probe write whose fdatasync is "one fsync".
const FSYNC_BYTES: usize = 4096;

/// What the writers do while the readers are measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writes {
    None,
    /// closed-loop PUTs of random keys other than the one read
    Other,
    /// closed-loop PUTs of the key being read
    Same,
    /// PUTs of other keys at `PACED_RATE` in all
    OtherPaced,
    /// PUTs of the key being read at `PACED_RATE` in all
    SamePaced,
    /// PUTs at `PACED_RATE` in all to another cluster on the same machine
    /// (the control: the same CPU load, no writes on the cluster read)
    ElsewherePaced,
}

impl Writes {
    const ALL: [Writes; 6] = [
        Writes::None,
        Writes::ElsewherePaced,
        Writes::OtherPaced,
        Writes::SamePaced,
        Writes::Other,
        Writes::Same,
    ];

    fn key(self) -> &'static str {
        match self {
            Writes::None => "none",
            Writes::Other => "other",
            Writes::Same => "same",
            Writes::OtherPaced => "other_paced",
            Writes::SamePaced => "same_paced",
            Writes::ElsewherePaced => "elsewhere_paced",
        }
    }

    fn label(self) -> String {
        match self {
            Writes::None => "none".into(),
            Writes::Other => format!("{WRITERS} writers, closed loop, other keys"),
            Writes::Same => format!("{WRITERS} writers, closed loop, the key read"),
            Writes::OtherPaced => format!("{WRITERS} writers, {PACED_RATE} PUT/s in all, other keys"),
            Writes::SamePaced => format!("{WRITERS} writers, {PACED_RATE} PUT/s in all, the key read"),
            Writes::ElsewherePaced => {
                format!("{WRITERS} writers, {PACED_RATE} PUT/s in all, to another 3-server cluster (control)")
            }
        }
    }

    fn same_key(self) -> bool {
        matches!(self, Writes::Same | Writes::SamePaced)
    }

    /// Each writer's interval between PUT starts, when paced.
    fn interval(self) -> Option<Duration> {
        matches!(self, Writes::OtherPaced | Writes::SamePaced | Writes::ElsewherePaced)
            .then(|| Duration::from_secs(1) * WRITERS as u32 / PACED_RATE)
    }
}

/// A writer that starts one operation per `interval` (skipping the slots
/// it fell behind on rather than bursting to catch up).
struct Paced {
    inner: KvWorker,
    interval: Duration,
    next: Instant,
}

impl Worker for Paced {
    async fn step(&mut self, seq: u64) -> Result<(), String> {
        tokio::time::sleep_until(self.next.into()).await;
        self.next = (self.next + self.interval).max(Instant::now());
        self.inner.step(seq).await
    }
}

/// The metric prefix of one measured point; targets.rs reads these names.
pub fn metric(api: &str, kind: &str, readers: usize, writes: &str, what: &str) -> String {
    format!("kv_get.mixed.{api}.{kind}.r{readers}.{writes}.{what}")
}

pub const FSYNC_METRIC: &str = "kv_get.mixed.fsync_p50_us";

struct Point {
    api: Api,
    kind: &'static str,
    readers: usize,
    writes: Writes,
    r: LoadResult,
    /// the writers' own result (`None` without writes)
    w: Option<LoadResult>,
}

impl Point {
    fn writes_per_s(&self) -> f64 {
        self.w.as_ref().map_or(0.0, |w| w.throughput())
    }
}

/// Readers on `leader` while `writes` run against all `addrs` (round-robin,
/// followers forward to the leader as in the throughput runs), or against
/// all `elsewhere` (the control cluster's servers).
#[allow(clippy::too_many_arguments)]
async fn point(
    ctx: &Ctx,
    api: Api,
    op: KvOp,
    leader: SocketAddr,
    addrs: &[SocketAddr],
    elsewhere: &[SocketAddr],
    readers: usize,
    writes: Writes,
) -> Result<(LoadResult, Option<LoadResult>), String> {
    let warm = ctx.secs(0.5, 0.2);
    let window = ctx.secs(3.0, 0.5);
    let writer = (writes != Writes::None).then(|| {
        let keys = if writes.same_key() { Keys::Fixed(0) } else { Keys::Range { from: 1, to: KEYS } };
        let addrs = if writes == Writes::ElsewherePaced { elsewhere.to_vec() } else { addrs.to_vec() };
        // The writers measure over the readers' warm-up and window, so the
        // readers never see a moment without them.
        tokio::spawn(async move {
            let worker =
                |i: usize| KvWorker::new(api, KvOp::Put, addrs[i % addrs.len()], keys, 3000 + i as u64);
            match writes.interval() {
                // Paced writers start evenly spread over one interval.
                Some(interval) => {
                    let start = Instant::now();
                    let (r, _) = load::run(WRITERS, Duration::ZERO, warm + window, |i| Paced {
                        inner: worker(i),
                        interval,
                        next: start + interval * i as u32 / WRITERS as u32,
                    })
                    .await;
                    r
                }
                None => load::run(WRITERS, Duration::ZERO, warm + window, worker).await.0,
            }
        })
    });
    let (r, _) =
        load::run(readers, warm, window, |i| KvWorker::new(api, op, leader, Keys::Fixed(0), 2000 + i as u64))
            .await;
    let w = match writer {
        Some(w) => Some(w.await.map_err(|e| format!("writer task: {e}"))?),
        None => None,
    };
    Ok((r, w))
}

async fn leader_of(sys: &Sys) -> Result<SocketAddr, String> {
    let addrs = sys.addrs();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = match sys {
            Sys::Consul(c) => c.leader().await,
            Sys::Etcd(e) => e.leader().await,
        };
        if let Some(a) = found.and_then(|i| addrs.get(i).copied()) {
            return Ok(a);
        }
        if Instant::now() > deadline {
            return Err("no leader found within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let readers_list = ctx.pick(vec![1usize, 16], vec![1, 16]);
    sec.about.push(format!(
        "**GET under concurrent writes** (issue 22: a read must not wait for writes it did not follow). 3 servers; \
         {KEYS} keys written first. Readers (closed loop, one connection each) GET one key on the leader: consul-rs \
         default consistency and `?consistent`, etcd's linearizable range (JSON gateway and gRPC). Each point is \
         measured six times in a row: with no writes; while {WRITERS} writers PUT at {PACED_RATE} PUT/s in all to \
         another cluster (the control, below), then to the cluster read, first random other keys, then the key \
         being read; and while the same writers PUT as fast as they can \
         (closed loop), other keys then the key read (writers use the same API as the readers, spread round-robin \
         over the servers). One fsync on the data filesystem (`pwrite` of {FSYNC_BYTES} bytes + `fdatasync`, the \
         disk benchmark's raw probe) is measured first in the same run; the target allows the p99 under writes to \
         exceed the p99 without them by at most that fsync's p50, and is judged on the paced writes: closed-loop \
         writers keep the 2 shared cores busy, so their excess measures CPU contention more than waiting for \
         writes (shown for both systems as a stress row). Control: the same paced writers PUT to a second \
         3-server cluster of the same system on this machine instead (started beside the first, idle otherwise), \
         so the readers' cluster does no write work while the machine's cores are as busy; the p99 under writes \
         to the cluster read minus the p99 under the control, minus one fsync, is the excess the cluster's own \
         writes cause."
    ));
    let dir = ctx.scratch("kv-get-fsync")?;
    let reps = ctx.pick(200usize, 50);
    let sync = tokio::task::spawn_blocking(move || fsync_us(&dir, FSYNC_BYTES, reps))
        .await
        .map_err(|e| format!("fsync probe task: {e}"))??;
    let (sync50, sync99) = (quantile(&sync, 0.5), quantile(&sync, 0.99));
    sec.metric(FSYNC_METRIC, sync50);
    sec.metric("kv_get.mixed.fsync_p99_us", sync99);
    eprintln!("  kv-get mixed: one fsync ({FSYNC_BYTES} B) p50 {sync50:.0} µs p99 {sync99:.0} µs");

    let mut points = Vec::new();
    for (etcd, cases) in [
        (
            false,
            vec![
                (Api::Consul, "default", KvOp::Get { relaxed: false }),
                (Api::Consul, "consistent", KvOp::GetConsistent),
            ],
        ),
        (
            true,
            vec![
                (Api::EtcdHttp, "linearizable", KvOp::Get { relaxed: false }),
                (Api::EtcdGrpc, "linearizable", KvOp::Get { relaxed: false }),
            ],
        ),
    ] {
        let sys = Sys::start(ctx, etcd, 3, 78, "kv-get-mixed").await?;
        let control = Sys::start(ctx, etcd, 3, 89, "kv-get-control").await?;
        sec.commands.extend(sys.commands(ctx));
        let addrs = sys.addrs();
        let elsewhere = control.addrs();
        preload(if etcd { Api::EtcdHttp } else { Api::Consul }, &addrs, KEYS, 32).await?;
        for (api, kind, op) in cases {
            for &readers in &readers_list {
                for writes in Writes::ALL {
                    // Look the leader up for every point: a write load can
                    // cost an election on a loaded machine.
                    let leader = leader_of(&sys).await?;
                    let (r, w) = point(ctx, api, op, leader, &addrs, &elsewhere, readers, writes).await?;
                    let p = Point { api, kind, readers, writes, r, w };
                    let (r, writes_per_s) = (&p.r, p.writes_per_s());
                    let m = |what: &str| metric(api.key(), kind, readers, writes.key(), what);
                    sec.metric(m("p50_ms"), r.ms(0.5));
                    sec.metric(m("p99_ms"), r.ms(0.99));
                    sec.metric(m("ops"), r.throughput());
                    if writes != Writes::None {
                        sec.metric(m("writes_per_s"), writes_per_s);
                    }
                    eprintln!(
                        "  kv-get mixed {} {kind} readers={readers} writes={}: {:.0} GET/s p50 {:.2} ms p99 {:.2} ms \
                         ({:.0} PUT/s) errors {}",
                        api.label(),
                        writes.key(),
                        r.throughput(),
                        r.ms(0.5),
                        r.ms(0.99),
                        writes_per_s,
                        r.errors
                    );
                    points.push(p);
                }
            }
        }
    }
    sec.tables.push(table(&points, sync50));
    let mut fs =
        Table::new("One fsync on the data filesystem, same run", &["what", "samples", "p50 µs", "p99 µs"]);
    fs.row(vec![
        format!("pwrite {FSYNC_BYTES} B + fdatasync, appending"),
        sync.len().to_string(),
        num(sync50),
        num(sync99),
    ]);
    sec.tables.push(fs);
    for p in &points {
        if let Some((true, Some(e))) = p.w.as_ref().map(|w| (w.errors > 0, &w.first_error)) {
            sec.notes.push(format!(
                "Writers during the GETs of {} {} with {} reader(s), writes {}: {} errors; first: `{}`",
                p.api.label(),
                p.kind,
                p.readers,
                p.writes.key(),
                p.w.as_ref().map_or(0, |w| w.errors),
                crate::http::truncate(e, 300)
            ));
        }
        if let (true, Some(e)) = (p.r.errors > 0, &p.r.first_error) {
            sec.notes.push(format!(
                "GET under writes, {} {} with {} reader(s), writes {}: {} errors; first: `{}`",
                p.api.label(),
                p.kind,
                p.readers,
                p.writes.key(),
                p.r.errors,
                crate::http::truncate(e, 300)
            ));
        }
    }
    Ok(())
}

fn table(points: &[Point], sync50_us: f64) -> Table {
    let mut t = Table::new(
        "GET latency on the leader under concurrent writes, 3 servers",
        &[
            "system",
            "read",
            "readers",
            "concurrent writes",
            "GET/s",
            "p50 ms",
            "p99 ms",
            "p99 − p99 without writes − one fsync (ms; ≤ 0 meets the target)",
            "p99 − p99 under the control − one fsync (ms)",
            "PUT/s during the point",
            "errors",
        ],
    );
    for p in points {
        let base = |writes: Writes| {
            points
                .iter()
                .find(|q| q.api == p.api && q.kind == p.kind && q.readers == p.readers && q.writes == writes)
        };
        let excess_over = |b: Option<&Point>| match b {
            Some(b) => format!("{:+.2}", p.r.ms(0.99) - b.r.ms(0.99) - sync50_us / 1000.0),
            None => String::new(),
        };
        let excess = if p.writes == Writes::None { String::new() } else { excess_over(base(Writes::None)) };
        let over_control = if p.writes.interval().is_some() && p.writes != Writes::ElsewherePaced {
            excess_over(base(Writes::ElsewherePaced))
        } else {
            String::new()
        };
        t.row(vec![
            p.api.label().into(),
            p.kind.into(),
            p.readers.to_string(),
            p.writes.label(),
            num(p.r.throughput()),
            num(p.r.ms(0.5)),
            num(p.r.ms(0.99)),
            excess,
            over_control,
            if p.writes == Writes::None { "—".into() } else { num(p.writes_per_s()) },
            p.r.errors.to_string(),
        ]);
    }
    t
}
