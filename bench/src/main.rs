//! consul-bench: the benchmark suite of issue 11. Starts everything it
//! measures on loopback (consul-rs built from this repository, etcd, serf,
//! nsd), runs the same load against both sides, and writes
//! docs/benchmarks.md with tables, plots and the targets' verdicts.
//!
//! `consul-bench all` runs everything; one sub-command per benchmark;
//! `--quick` shortens every measurement to seconds (a smoke test);
//! `report` rebuilds the page from saved results.

mod benches;
mod ctx;
mod durability;
mod grpc;
mod http;
mod kvload;
mod load;
mod procs;
mod report;
mod results;
mod systems;
mod targets;

use systems::{consul, etcd, serf};

use clap::{Parser, Subcommand};
use ctx::{Ctx, Tools, APT_LINE};
use results::{loadavg, now_utc, Section};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "consul-bench", about = "Benchmarks consul-rs against etcd, serf and nsd on loopback")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Seconds per measurement instead of tens of seconds (a smoke test).
    #[arg(long, global = true)]
    quick: bool,
    /// Use this consul binary instead of building it with cargo.
    #[arg(long, global = true)]
    consul: Option<PathBuf>,
    /// Build (and name in the report) the consul of this checkout instead of
    /// the one bench/ lives in, e.g. a newer main. With `--consul`, only names
    /// the commit the binary was built from.
    #[arg(long, global = true)]
    consul_repo: Option<PathBuf>,
    /// With `--consul`: the commit the binary was built from, for the report
    /// (otherwise the checkout's current commit is named, which may have
    /// moved on since the build).
    #[arg(long, global = true)]
    consul_commit: Option<String>,
    /// Write the report, its data and plots under DIR (DIR/benchmarks.md,
    /// DIR/benchmarks/). Default: docs/benchmarks.md with plots in
    /// docs/img/benchmarks/ and data in bench/results/ (full), or
    /// bench/.work/quick/ (quick).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Scratch directory for data dirs and logs (default bench/.work/scratch).
    #[arg(long, global = true)]
    work: Option<PathBuf>,
    /// Run the benchmark(s) N times in a row; the targets table takes the
    /// median of the per-run values and shows their spread. Each run is
    /// saved under `<results>/runs/<k>/`.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// With `all`: skip benchmarks whose peer tools are missing instead of refusing to start.
    #[arg(long, global = true)]
    allow_missing: bool,
    /// gossip: trials per cluster size instead of the default (3 for N = 5 and 10, 2 for N = 25).
    #[arg(long, global = true)]
    trials: Option<usize>,
    /// gossip: only these cluster sizes, e.g. `5,10,25`.
    #[arg(long, global = true, value_delimiter = ',')]
    gossip_sizes: Option<Vec<usize>>,
    /// gossip: measure joins only (skip the kill -9 and leave steps), for many-trial join runs.
    #[arg(long, global = true)]
    gossip_join_only: bool,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Check the tools and print the apt-get line for missing ones.
    Check,
    /// Every benchmark, then the report.
    All,
    /// KV PUT, 256-byte values, 1/16/64/256 clients, 1 and 3 servers.
    KvPut,
    /// KV GET, default vs linearizable and stale vs serializable; GET latency under concurrent writes.
    KvGet,
    /// CAS contention: 64 clients, 8 counters.
    Cas,
    /// Idle blocking queries and write → wake-up latency.
    Watch,
    /// DNS A/SRV with dnsperf against consul-rs and nsd.
    Dns,
    /// Catalog with 10,000 services × 3 instances.
    Catalog,
    /// One server holding 5,000 nodes × 5 services × 2 checks.
    CatalogScale,
    /// Gossip with real processes against serf.
    Gossip,
    /// Gossip at scale in the deterministic simulator.
    GossipSim,
    /// Leader kill -9 under write load.
    Failover,
    /// Idle RSS/CPU and start-up time.
    Footprint,
    /// Raw write + fdatasync against consul-rs's WAL append.
    Disk,
    /// perf CPU profiles of consul-rs servers under KV load.
    Profile,
    /// Rebuild the report from saved results.
    Report,
}

impl Cmd {
    fn id(self) -> &'static str {
        match self {
            Cmd::KvPut => "kv-put",
            Cmd::KvGet => "kv-get",
            Cmd::Cas => "cas",
            Cmd::Watch => "watch",
            Cmd::Dns => "dns",
            Cmd::Catalog => "catalog",
            Cmd::CatalogScale => "catalog-scale",
            Cmd::Gossip => "gossip",
            Cmd::GossipSim => "gossip-sim",
            Cmd::Failover => "failover",
            Cmd::Footprint => "footprint",
            Cmd::Disk => "disk",
            Cmd::Profile => "profile",
            Cmd::Check | Cmd::All | Cmd::Report => "",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Cmd::KvPut => "KV PUT",
            Cmd::KvGet => "KV GET",
            Cmd::Cas => "CAS contention",
            Cmd::Watch => "Blocking queries (watchers)",
            Cmd::Dns => "DNS",
            Cmd::Catalog => "Catalog at scale",
            Cmd::CatalogScale => "A 5,000-node catalog on one server",
            Cmd::Gossip => "Gossip, real processes",
            Cmd::GossipSim => "Gossip at scale (simulation)",
            Cmd::Failover => "Leader failover",
            Cmd::Footprint => "Footprint",
            Cmd::Disk => "Disk: Raft append vs raw fdatasync",
            Cmd::Profile => "CPU profiles of consul-rs (perf)",
            Cmd::Check | Cmd::All | Cmd::Report => "",
        }
    }

    /// Peer tools the benchmark cannot run without.
    fn missing(self, t: &Tools) -> Vec<&'static str> {
        let mut m = Vec::new();
        let uses_etcd = matches!(self, Cmd::KvPut | Cmd::KvGet | Cmd::Cas | Cmd::Failover | Cmd::Footprint);
        if uses_etcd && t.etcd.is_none() {
            m.push("etcd-server");
        }
        if matches!(self, Cmd::Gossip | Cmd::Footprint) && t.serf.is_none() {
            m.push("serf");
        }
        if self == Cmd::Dns && t.nsd.is_none() {
            m.push("nsd");
        }
        if self == Cmd::Dns && t.dnsperf.is_none() {
            m.push("dnsperf");
        }
        m
    }
}

const ALL: [Cmd; 13] = [
    Cmd::Disk,
    Cmd::KvPut,
    Cmd::KvGet,
    Cmd::Cas,
    Cmd::Watch,
    Cmd::Dns,
    Cmd::Catalog,
    Cmd::CatalogScale,
    Cmd::Gossip,
    Cmd::GossipSim,
    Cmd::Failover,
    Cmd::Footprint,
    Cmd::Profile,
];

async fn run_one(ctx: &Ctx, cmd: Cmd) -> Section {
    let mut sec = Section::new(cmd.id(), cmd.title());
    sec.quick = ctx.quick;
    sec.started = now_utc();
    sec.load_before = loadavg();
    sec.busy_before_pct = results::machine_busy_pct(std::time::Duration::from_secs(1));
    sec.consul_commit = Some(ctx.consul_commit.clone());
    eprintln!("consul-bench: {} ({})", cmd.id(), if ctx.quick { "quick" } else { "full" });
    let t0 = Instant::now();
    let missing = cmd.missing(&ctx.tools);
    let r = if !missing.is_empty() {
        Err(format!("missing Debian packages: {} (run bench/setup.sh: {APT_LINE})", missing.join(" ")))
    } else {
        match cmd {
            Cmd::KvPut => benches::kv::kv_put(ctx, &mut sec).await,
            Cmd::KvGet => benches::kv::kv_get(ctx, &mut sec).await,
            Cmd::Cas => benches::cas::run(ctx, &mut sec).await,
            Cmd::Watch => benches::watch::run(ctx, &mut sec).await,
            Cmd::Dns => benches::dns::run(ctx, &mut sec).await,
            Cmd::Catalog => benches::catalog::run(ctx, &mut sec).await,
            Cmd::CatalogScale => benches::catalog_scale::run(ctx, &mut sec).await,
            Cmd::Gossip => benches::gossip::run(ctx, &mut sec).await,
            Cmd::GossipSim => benches::gossip_sim::run(ctx, &mut sec).await,
            Cmd::Failover => benches::failover::run(ctx, &mut sec).await,
            Cmd::Footprint => benches::footprint::run(ctx, &mut sec).await,
            Cmd::Disk => benches::disk::run(ctx, &mut sec).await,
            Cmd::Profile => benches::profile::run(ctx, &mut sec).await,
            Cmd::Check | Cmd::All | Cmd::Report => Ok(()),
        }
    };
    if let Err(e) = r {
        eprintln!("consul-bench: {} failed: {e}", cmd.id());
        sec.error = Some(e);
    }
    sec.wall_secs = t0.elapsed().as_secs_f64();
    sec.load_after = loadavg();
    sec
}

/// Drops saved per-run results that the coming measurement supersedes, so
/// the report never mixes runs of different code: whether the coming
/// measurement is repeated or single, the earlier runs of the benchmarks it
/// covers go; other benchmarks keep theirs (each benchmark can be repeated
/// in its own invocation, e.g. `dns --runs 5` then `kv-put --runs 5`).
fn forget_runs(results: &std::path::Path, cmds: &[Cmd]) {
    if cmds.is_empty() {
        return;
    }
    for k in 1.. {
        let d = report::run_dir(results, k);
        if !d.is_dir() {
            break;
        }
        for c in cmds {
            let _ = std::fs::remove_file(d.join(format!("{}.json", c.id())));
        }
    }
}

fn check(tools: &Tools) -> bool {
    println!("peer tools:");
    for (name, state) in tools.describe() {
        println!("  {name:<20} {state}");
    }
    if tools.all_present() {
        println!("all present");
        true
    } else {
        println!("missing tools; install them with bench/setup.sh, i.e.\n  {APT_LINE}");
        false
    }
}

fn main() {
    let cli = Cli::parse();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."));
    let tools = Tools::discover();
    if cli.cmd == Cmd::Check {
        std::process::exit(if check(&tools) { 0 } else { 1 });
    }
    if cli.cmd == Cmd::All && !tools.all_present() && !cli.allow_missing {
        check(&tools);
        eprintln!("consul-bench: refusing to run `all` with missing tools (pass --allow-missing to skip what needs them)");
        std::process::exit(2);
    }
    // (report, plots, JSON + CSV data)
    let (doc, assets, results) = match &cli.out {
        Some(d) => (d.join("benchmarks.md"), d.join("benchmarks"), d.join("benchmarks")),
        None if cli.quick => {
            let d = repo.join("bench/.work/quick");
            (d.join("benchmarks.md"), d.join("benchmarks"), d.join("benchmarks"))
        }
        None => {
            (repo.join("docs/benchmarks.md"), repo.join("docs/img/benchmarks"), repo.join("bench/results"))
        }
    };
    let work = cli.work.clone().unwrap_or_else(|| repo.join("bench/.work/scratch"));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("consul-bench: failed to create {}: {e}", work.display());
        std::process::exit(1);
    }
    let consul_repo = cli.consul_repo.clone().unwrap_or_else(|| repo.clone());
    let consul = match (&cli.consul, cli.cmd) {
        (Some(p), _) => p.clone(),
        (None, Cmd::Report) => PathBuf::from("consul"),
        (None, _) => match ctx::build_consul(&consul_repo) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("consul-bench: {e}");
                std::process::exit(1);
            }
        },
    };
    let nofile = ctx::raise_nofile();
    let consul_commit = cli.consul_commit.clone().unwrap_or_else(|| ctx::git_commit(&consul_repo));
    let ctx = Ctx {
        quick: cli.quick,
        repo,
        consul_repo,
        consul_commit,
        consul,
        work,
        results,
        doc,
        assets,
        tools,
        nofile,
        trials: cli.trials,
        gossip_sizes: cli.gossip_sizes.clone(),
        gossip_join_only: cli.gossip_join_only,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("consul-bench: failed to start the runtime: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("consul-bench: open-file limit {nofile}; consul binary {}", ctx.consul.display());
    let cmds: Vec<Cmd> = match cli.cmd {
        Cmd::All => ALL.to_vec(),
        Cmd::Report => Vec::new(),
        c => vec![c],
    };
    let mut failed = 0;
    rt.block_on(async {
        if !cmds.is_empty() {
            let m = report::machine_section(&ctx);
            if let Err(e) = m.save(&ctx.results) {
                eprintln!("consul-bench: {e}");
            }
        }
        let runs = cli.runs as usize;
        forget_runs(&ctx.results, &cmds);
        for k in 1..=runs {
            for &c in &cmds {
                if runs > 1 {
                    eprintln!("consul-bench: run {k} of {runs}");
                }
                let sec = run_one(&ctx, c).await;
                if sec.error.is_some() {
                    failed += 1;
                }
                if let Err(e) = sec.save(&ctx.results) {
                    eprintln!("consul-bench: {e}");
                }
                if runs > 1 {
                    if let Err(e) = sec.save(&report::run_dir(&ctx.results, k)) {
                        eprintln!("consul-bench: {e}");
                    }
                }
                // Rebuild the page after each benchmark: a long run that stops
                // half-way still leaves a report of what it measured.
                if let Err(e) = report::write(&ctx, false) {
                    eprintln!("consul-bench: {e}");
                }
            }
        }
        if let Err(e) = report::write(&ctx, true) {
            eprintln!("consul-bench: {e}");
        }
    });
    eprintln!("consul-bench: report written to {}", ctx.doc.display());
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_runs_drops_only_the_benchmarks_about_to_run() {
        let dir = std::env::temp_dir().join(format!("consul-bench-forget-{}", std::process::id()));
        for k in 1..=3 {
            let d = report::run_dir(&dir, k);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("dns.json"), "{}").unwrap();
            std::fs::write(d.join("kv-put.json"), "{}").unwrap();
        }
        forget_runs(&dir, &[Cmd::Dns]);
        for k in 1..=3 {
            let d = report::run_dir(&dir, k);
            assert!(!d.join("dns.json").exists(), "run {k} kept dns");
            assert!(d.join("kv-put.json").exists(), "run {k} lost kv-put");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
