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
use crate::kvload::{preload, Api, Keys, KvOp, KvWorker};
use crate::load;
use crate::procs::cpu_secs;
use crate::results::{num, Section, Table};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Scenario {
    /// metric key
    key: &'static str,
    name: &'static str,
    servers: usize,
    clients: usize,
    op: KvOp,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { key: "put_c1_n1", name: "PUT, 1 client, 1 server", servers: 1, clients: 1, op: KvOp::Put },
    Scenario {
        key: "put_c64_n3",
        name: "PUT, 64 clients, 3 servers (leader)",
        servers: 3,
        clients: 64,
        op: KvOp::Put,
    },
    Scenario {
        key: "get_c64_n3",
        name: "GET default consistency, 64 clients, 3 servers (leader)",
        servers: 3,
        clients: 64,
        op: KvOp::Get { relaxed: false },
    },
];

pub fn perf_bin() -> Option<std::path::PathBuf> {
    crate::ctx::which("perf")
}

/// `perf report` flat profile: (percent, shared object, symbol) of every
/// symbol with samples.
fn report(perf: &Path, data: &Path) -> Result<Vec<(f64, String, String)>, String> {
    let out = Command::new(perf)
        .arg("report")
        .arg("-i")
        .arg(data)
        .args(["--stdio", "--no-children", "--sort", "dso,sym", "-q"])
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
        // "consul  [.] sym" or "[kernel.kallsyms]  [k] sym"
        let (dso, sym) = match rest.find("[.]").or_else(|| rest.find("[k]")) {
            Some(i) => (rest[..i].trim().to_string(), rest[i..].to_string()),
            None => (String::new(), rest.to_string()),
        };
        rows.push((pct, dso, sym));
    }
    Ok(rows)
}

/// Which part of the program a sampled function belongs to: the kernel,
/// the allocator, libc's memory copies, or the Rust crate (with the module
/// for consul-rs's own code).
fn group_of(dso: &str, sym: &str) -> String {
    if sym.starts_with("[k]") || dso.contains("kernel") {
        return "kernel (syscalls, network stack, scheduler, block I/O)".into();
    }
    let name = sym.trim_start_matches("[.]").trim();
    if dso.starts_with("libc") {
        let alloc =
            ["malloc", "free", "_int_", "cfree", "realloc", "calloc", "unlink_chunk", "tcache", "sysmalloc"];
        if alloc.iter().any(|a| name.contains(a)) {
            return "libc malloc/free".into();
        }
        if name.contains("mem") || name.contains("str") {
            return "libc memcpy/memcmp/memset".into();
        }
        return "libc (other)".into();
    }
    // Demangled Rust paths: `<a::b::C as d::E>::f` → the implementing
    // type's path decides.
    let path = name
        .trim_start_matches('<')
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    let mut parts = path.split("::");
    let krate = parts.next().unwrap_or("?").trim();
    if krate == "consul" {
        return format!("consul::{}", parts.next().unwrap_or("?").split(['<', ' ']).next().unwrap_or("?"));
    }
    if krate.is_empty() || krate.starts_with("0x") {
        return "unresolved".into();
    }
    krate.split(['<', ' ']).next().unwrap_or(krate).to_string()
}

/// Shares of the samples spent in the kernel, the allocator and libc's
/// memory copies: what the gap analysis in the report quotes.
pub fn shares(rows: &[(f64, String, String)]) -> (f64, f64, f64) {
    let mut k = (0.0, 0.0, 0.0);
    for (pct, dso, sym) in rows {
        let g = group_of(dso, sym);
        if g.starts_with("kernel") {
            k.0 += pct;
        } else if g == "libc malloc/free" {
            k.1 += pct;
        } else if g.starts_with("libc memcpy") {
            k.2 += pct;
        }
    }
    k
}

/// The two tables of one profile: samples by component, hottest functions.
pub fn profile_tables(rows: &[(f64, String, String)], head: &str, name: &str) -> Vec<Table> {
    let mut groups: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for (pct, dso, sym) in rows {
        *groups.entry(group_of(dso, sym)).or_default() += pct;
    }
    let mut groups: Vec<(String, f64)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut g = Table::new(&format!("{head} — samples by component"), &["self %", "component"]);
    for (component, pct) in groups.iter().filter(|(_, p)| *p >= 1.0) {
        g.row(vec![format!("{pct:.1}"), format!("`{component}`")]);
    }
    let rest: f64 = groups.iter().filter(|(_, p)| *p < 1.0).map(|(_, p)| p).sum();
    g.row(vec![format!("{rest:.1}"), "(components under 1 % each)".into()]);
    let mut out = vec![g];
    let mut t = Table::new(&format!("{} — hottest functions", name), &["self %", "object", "function"]);
    for (pct, dso, sym) in rows.iter().take(15) {
        t.row(vec![
            format!("{pct:.1}"),
            dso.clone(),
            format!("`{}`", crate::http::truncate(sym, 110).replace('`', "'")),
        ]);
    }
    out.push(t);
    out
}

/// Starts `perf record -e cpu-clock` on `pid`, writing to `data`.
pub fn start_record(perf: &Path, pid: u32, data: &Path) -> Result<std::process::Child, String> {
    let _ = std::fs::remove_file(data);
    Command::new(perf)
        .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
        .arg(data)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("failed to start perf record: {e}"))
}

/// Stops a recording (SIGINT makes perf write its data) and reads the
/// flat profile.
pub fn finish_record(
    perf: &Path,
    mut rec: std::process::Child,
    data: &Path,
) -> Result<Vec<(f64, String, String)>, String> {
    // SAFETY: SIGINT to our own perf child, not yet reaped.
    unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
    let _ = rec.wait();
    report(perf, data)
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
        let rec = start_record(&perf, pid, &data)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu0: f64 = pids.iter().filter_map(|p| cpu_secs(*p)).sum();
        let keys = if sc.op == KvOp::Put { Keys::Random(10_000) } else { Keys::Random(1000) };
        let a2 = addrs.clone();
        let (r, _) = load::run(sc.clients, Duration::ZERO, Duration::from_secs_f64(secs), |i| {
            KvWorker::new(Api::Consul, sc.op, a2[i % a2.len()], keys, 3000 + i as u64)
        })
        .await;
        let cpu1: f64 = pids.iter().filter_map(|p| cpu_secs(*p)).sum();
        let rows = finish_record(&perf, rec, &data)?;
        let cpu_ms_per_op = 1000.0 * (cpu1 - cpu0) / r.total_ops.max(1) as f64;
        let cores = (cpu1 - cpu0) / secs;
        let idx = sc.key;
        sec.metric(format!("profile.{idx}.cpu_ms_per_op"), cpu_ms_per_op);
        eprintln!(
            "  profile {}: {:.0} ops/s, {cpu_ms_per_op:.3} CPU ms/op, {cores:.2} cores",
            sc.name,
            r.throughput()
        );
        let head = format!(
            "{}: {} ops/s, p50 {} ms; the consul-rs servers used {} cores, {} CPU ms per operation",
            sc.name,
            num(r.throughput()),
            num(r.ms(0.5)),
            num(cores),
            num(cpu_ms_per_op)
        );
        let (kernel, alloc, copy) = shares(&rows);
        sec.metric(format!("profile.{idx}.kernel_pct"), kernel);
        sec.metric(format!("profile.{idx}.alloc_pct"), alloc);
        sec.metric(format!("profile.{idx}.memcpy_pct"), copy);
        sec.tables.extend(profile_tables(&rows, &head, sc.name));
        sec.commands.extend(sys.commands(ctx));
        drop(sys);
    }
    Ok(())
}
