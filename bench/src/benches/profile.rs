//! CPU profiles of consul-rs under the KV loads where it is compared with
//! etcd: `perf record -e cpu-clock` (a software event, so it works in VMs
//! without PMU access) attached to one server process while the same load
//! as the KV benchmarks runs, then `perf report`'s flat profile (the
//! hottest symbols) into the report. Also the CPU time each server process
//! spent per operation (from /proc), which says whether a run was
//! CPU-bound at all.
//!
//! Owns: the profiled scenarios and perf invocation. Must not judge
//! targets (targets.rs) or start systems other than through `kv::Sys`.

use crate::benches::kv::Sys;
use crate::ctx::Ctx;
use crate::kvload::{preload, Api, KvOp, KvWorker, Keys};
use crate::load;
use crate::procs::cpu_secs;
use crate::results::{num, Section, Table};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Scenario {
    name: &'static str,
    servers: usize,
    clients: usize,
    op: KvOp,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { name: "PUT, 1 client, 1 server", servers: 1, clients: 1, op: KvOp::Put },
    Scenario { name: "PUT, 64 clients, 3 servers (leader)", servers: 3, clients: 64, op: KvOp::Put },
    Scenario { name: "GET default consistency, 64 clients, 3 servers (leader)", servers: 3, clients: 64, op: KvOp::Get { relaxed: false } },
];

pub fn perf_bin() -> Option<std::path::PathBuf> {
    crate::ctx::which("perf")
}

/// `perf report` flat profile: (percent, shared object, symbol) rows above 1 %.
fn report(perf: &Path, data: &Path, limit: usize) -> Result<Vec<(f64, String, String)>, String> {
    let out = Command::new(perf)
        .arg("report")
        .arg("-i")
        .arg(data)
        .args(["--stdio", "--no-children", "--sort", "dso,sym", "--percent-limit", "1", "-q"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to run perf report: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf report failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        let Some((pct, rest)) = line.split_once('%') else { continue };
        let Ok(pct) = pct.trim().parse::<f64>() else { continue };
        let rest = rest.trim();
        let (dso, sym) = match rest.split_once("[") {
            Some((dso, sym)) => (dso.trim().to_string(), sym.split_once(']').map(|(_, s)| s.trim()).unwrap_or(sym).to_string()),
            None => (String::new(), rest.to_string()),
        };
        rows.push((pct, dso, crate::http::truncate(&sym, 110)));
        if rows.len() >= limit {
            break;
        }
    }
    Ok(rows)
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let Some(perf) = perf_bin() else {
        sec.notes.push("perf is not installed (Debian package linux-perf): no profiles taken".into());
        return Ok(());
    };
    let secs = ctx.pick(10.0, 1.5);
    sec.about.push(format!(
        "`perf record -e cpu-clock -F 999 -p <pid>` on one consul-rs server for {secs} s while the KV load of the \
         benchmarks above runs (same clients, same 256-byte values); then `perf report --no-children --sort dso,sym`: \
         each row is the share of that server's on-CPU samples spent in one function (self time, no callers). The \
         binary is the measured release build (symbols kept, `debug = \"line-tables-only\"`). CPU ms per operation is \
         the server processes' user+system time over the load window (from /proc/<pid>/stat) divided by the \
         operations done; with 2 cores shared by the servers and the load generator, a run is CPU-bound when the \
         processes together use about 2 cores."
    ));
    for sc in SCENARIOS {
        let sys = Sys::start(ctx, false, sc.servers, 88, "profile").await?;
        let addrs = sys.addrs();
        let pids = sys.pids();
        if let KvOp::Get { .. } = sc.op {
            preload(Api::Consul, &addrs, 1000, 32).await?;
        }
        let target = match &sys {
            Sys::Consul(c) if sc.servers > 1 => c.leader().await.unwrap_or(0),
            _ => 0,
        };
        let pid = pids[target];
        let data = ctx.work.join(format!("perf-{}.data", sec.tables.len()));
        let _ = std::fs::remove_file(&data);
        let mut rec = Command::new(&perf)
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("failed to start perf record: {e}"))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu0: f64 = pids.iter().filter_map(|p| cpu_secs(*p)).sum();
        let keys = if sc.op == KvOp::Put { Keys::Random(10_000) } else { Keys::Random(1000) };
        let a2 = addrs.clone();
        let (r, _) = load::run(sc.clients, Duration::ZERO, Duration::from_secs_f64(secs), |i| KvWorker::new(Api::Consul, sc.op, a2[i % a2.len()], keys, 3000 + i as u64)).await;
        let cpu1: f64 = pids.iter().filter_map(|p| cpu_secs(*p)).sum();
        // SAFETY: SIGINT to our own perf child makes it write its data and exit.
        unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
        let _ = rec.wait();
        let rows = report(&perf, &data, 25)?;
        let cpu_ms_per_op = 1000.0 * (cpu1 - cpu0) / r.total_ops.max(1) as f64;
        let cores = (cpu1 - cpu0) / secs;
        sec.metric(format!("profile.{}.cpu_ms_per_op", sec.tables.len()), cpu_ms_per_op);
        eprintln!("  profile {}: {:.0} ops/s, {cpu_ms_per_op:.3} CPU ms/op, {cores:.2} cores", sc.name, r.throughput());
        let mut t = Table::new(
            &format!(
                "{}: {} ops/s, p50 {} ms; consul-rs servers used {} cores, {} CPU ms per operation",
                sc.name,
                num(r.throughput()),
                num(r.ms(0.5)),
                num(cores),
                num(cpu_ms_per_op)
            ),
            &["self %", "object", "function"],
        );
        for (pct, dso, sym) in rows {
            t.row(vec![format!("{pct:.1}"), dso, format!("`{}`", sym.replace('`', "'"))]);
        }
        sec.tables.push(t);
        sec.commands.extend(sys.commands(ctx));
        drop(sys);
    }
    Ok(())
}
