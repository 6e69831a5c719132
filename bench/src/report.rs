//! Renders docs/benchmarks.md from the saved sections: the machine, the
//! targets table, then every benchmark's method, tables, plots, notes and
//! the commands that started each system. Plots are drawn by bench/plot.py
//! (python3-matplotlib) from the CSVs the benchmarks wrote.
//!
//! Owns: the markdown layout and plot generation. Must not measure.

use crate::ctx::Ctx;
use crate::results::{loadavg, now_utc, Section, Table};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Benchmark ids in report order, with the sub-command that produces each.
pub const ORDER: &[&str] = &[
    "kv-put",
    "kv-get",
    "cas",
    "watch",
    "dns",
    "catalog",
    "catalog-scale",
    "gossip",
    "gossip-sim",
    "failover",
    "footprint",
    "disk",
    "profile",
];

/// The machine the run happened on, saved as its own section.
pub fn machine_section(ctx: &Ctx) -> Section {
    let mut s = Section::new("machine", "Machine");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let flags = cpuinfo.lines().find_map(|l| l.strip_prefix("flags")).unwrap_or("");
    let aes = if flags.split_whitespace().any(|f| f == "aes") { "yes" } else { "no" };
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memtotal = mem.lines().find(|l| l.starts_with("MemTotal:")).unwrap_or("?").to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_default();
    let mut t = Table::new("Machine", &["what", "value"]);
    t.row(vec!["CPU".into(), format!("{model} ({cpus} logical CPUs, AES-NI: {aes})")]);
    let mem_kb: f64 = memtotal.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    t.row(vec!["memory".into(), format!("{:.1} GiB", mem_kb / 1024.0 / 1024.0)]);
    t.row(vec!["kernel".into(), kernel]);
    t.row(vec!["OS".into(), os]);
    t.row(vec!["data filesystem".into(), crate::benches::disk::fs_type(&ctx.work)]);
    t.row(vec!["disk".into(), crate::benches::disk::device_desc(&ctx.work)]);
    t.row(vec!["load average at start".into(), loadavg()]);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    t.row(vec!["command".into(), format!("`consul-bench {}`", argv.join(" "))]);
    // Sections kept from earlier runs name their own binary's commit
    // under each section.
    t.row(vec!["consul-rs commit (binary of this run)".into(), ctx.consul_commit.clone()]);
    t.row(vec!["consul-rs checkout".into(), ctx.consul_repo.display().to_string()]);
    t.row(vec!["consul-bench commit".into(), crate::ctx::git_commit(&ctx.repo)]);
    t.row(vec!["consul binary".into(), ctx.consul.display().to_string()]);
    t.row(vec!["rustc".into(), crate::ctx::version_of(Path::new("rustc"), &["-V"])]);
    let tools = &ctx.tools;
    if let Some(p) = &tools.etcd {
        t.row(vec!["etcd".into(), crate::ctx::version_of(p, &["--version"])]);
    }
    if let Some(p) = &tools.serf {
        t.row(vec!["serf".into(), crate::ctx::version_of(p, &["version"])]);
    }
    if let Some(p) = &tools.nsd {
        t.row(vec!["nsd".into(), crate::ctx::version_of(p, &["-v"])]);
    }
    if let Some(p) = &tools.dnsperf {
        let v = Command::new(p)
            .arg("-h")
            .output()
            .map(|o| {
                let text =
                    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                text.lines().find(|l| l.starts_with("Version")).unwrap_or("?").to_string()
            })
            .unwrap_or_default();
        t.row(vec!["dnsperf".into(), v]);
    }
    s.tables.push(t);
    if let Ok(o) = Command::new("free").arg("-h").output() {
        s.pre.push(("free -h".into(), String::from_utf8_lossy(&o.stdout).trim_end().to_string()));
    }
    s.quick = ctx.quick;
    s.started = now_utc();
    s
}

fn md_table(out: &mut String, t: &Table) {
    let esc = |c: &str| c.replace('|', "\\|").replace('\n', " ");
    let _ = writeln!(out, "| {} |", t.header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|{}|", t.header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in &t.rows {
        let _ = writeln!(out, "| {} |", r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | "));
    }
    out.push('\n');
}

fn rel(from_dir: &Path, to: &Path) -> String {
    to.strip_prefix(from_dir).map(|p| p.display().to_string()).unwrap_or_else(|_| to.display().to_string())
}

/// Draws one plot; returns an error text when it could not.
fn draw(ctx: &Ctx, p: &crate::results::Plot) -> Result<(), String> {
    let Some(python) = &ctx.tools.python else {
        return Err("python3-matplotlib is not installed".into());
    };
    let script = ctx.repo.join("bench").join("plot.py");
    std::fs::create_dir_all(&ctx.assets)
        .map_err(|e| format!("failed to create {}: {e}", ctx.assets.display()))?;
    let out = Command::new(python)
        .arg(&script)
        .arg(ctx.results.join(&p.csv))
        .arg(ctx.assets.join(&p.png))
        .args([p.title.as_str(), p.xlabel.as_str(), p.ylabel.as_str(), if p.logx { "log" } else { "linear" }])
        .output()
        .map_err(|e| format!("failed to run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("plot.py failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The directory holding run `k` (1-based) of a repeated run.
pub fn run_dir(results: &Path, k: usize) -> std::path::PathBuf {
    results.join("runs").join(k.to_string())
}

/// `id (N runs)` for every benchmark saved in two or more repeated runs.
fn repeated_benchmarks(runs: &[Vec<Section>]) -> Vec<String> {
    ORDER
        .iter()
        .filter_map(|id| {
            let n = runs.iter().filter(|r| r.iter().any(|s| s.id == *id)).count();
            (n >= 2).then(|| format!("`{id}` ({n} runs)"))
        })
        .collect()
}

/// The sections of every repeated run saved under `results/runs/<k>/`, in
/// run order (empty when the suite ran once).
fn load_runs(results: &Path) -> Vec<Vec<Section>> {
    let mut runs = Vec::new();
    for k in 1.. {
        let dir = run_dir(results, k);
        if !dir.is_dir() {
            break;
        }
        runs.push(ORDER.iter().filter_map(|id| Section::load(&dir, id)).collect());
    }
    runs
}

/// Writes the page. `plots`: draw the PNGs too (a second or two each with
/// matplotlib); without, existing PNGs are linked and missing ones noted.
pub fn write(ctx: &Ctx, plots: bool) -> Result<(), String> {
    let machine = Section::load(&ctx.results, "machine");
    let sections: Vec<Section> = ORDER.iter().filter_map(|id| Section::load(&ctx.results, id)).collect();
    let quick = machine.as_ref().map(|m| m.quick).unwrap_or(ctx.quick) || sections.iter().any(|s| s.quick);
    let doc_dir = ctx.doc.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = String::new();
    out.push_str("# Benchmarks: consul-rs against etcd, serf and nsd\n\n");
    let _ = writeln!(
        out,
        "> Generated by `consul-bench` (`bench/run.sh`) on {}; every number on this page comes from that run and \
         nothing is typed by hand. To refresh, rerun — do not edit.\n",
        machine.as_ref().map(|m| m.started.clone()).unwrap_or_else(now_utc)
    );
    if quick {
        out.push_str(
            "> **QUICK MODE.** Each measurement ran for about a second on a shared 2-core machine, often while other \
             builds were running. These numbers are a smoke test of the suite, not results: do not quote them.\n\n",
        );
    }
    // Machine-wide CPU use sampled just before each benchmark started
    // its processes: anything above a few percent is other work.
    let busy: Vec<(String, f64)> = sections
        .iter()
        .filter_map(|s| Some((s.id.clone(), s.busy_before_pct?)))
        .filter(|(_, b)| *b > 10.0)
        .collect();
    if !busy.is_empty() {
        let _ = writeln!(
            out,
            "> **Shared machine.** Other work ran on this machine during the run: just before these benchmarks started, \
             with none of their processes running, the CPUs were already busy: {}. Absolute numbers are lower and \
             noisier than on a quiet machine; the two sides of each comparison ran back to back under the same \
             conditions, so ratios are less affected.\n",
            busy.iter().map(|(id, b)| format!("`{id}` {b:.0} %")).collect::<Vec<_>>().join(", ")
        );
    }
    out.push_str(
        "Run it: `bench/setup.sh` once (Debian packages), then from the repository root \
         `cargo run --release --manifest-path bench/Cargo.toml -- all` (or `bench/run.sh`) for the full suite: it builds \
         the `consul` release binary, starts every system on loopback by itself, and writes this page, its plots \
         (`docs/img/benchmarks/*.png`) and the raw results (`bench/results/*.json|csv`). `… -- all --quick` (or \
         `bench/smoke.sh`) is a smoke test of a few minutes that writes to `bench/.work/quick/` instead. One benchmark: \
         `… -- <name>` with a name from the list below; `… -- report` rebuilds this page from the saved results \
         without measuring. `… -- check` lists the peer tools found. `--runs N` repeats the chosen benchmarks N \
         times and judges the targets on the median of the runs.\n\n",
    );
    out.push_str(
        "Durations, to keep the full run near 30 minutes on 2 cores: each KV point is 1.5 s of warm-up and 8 s (PUT) \
         or 6 s (GET) measured; CAS 2 + 10 s; DNS 10 s per row; catalog reads 8 s; failover 20 trials per system; \
         gossip with real processes the median of 3 trials for N = 5 and 10 and of 2 for N = 25; idle CPU over 20 s. \
         What this machine could not run as the issue asks (100,000 watchers, 10,000 simulated members) is listed \
         under Known gaps with the reason.\n\n",
    );
    out.push_str(
        "Everything runs on loopback on one machine: servers, peers and the load generator share the same cores, \
         so only ratios measured in the same run mean much. Each system runs with equal durability (every \
         acknowledged write synced to disk) and with data on the same filesystem.\n\n",
    );
    if let Some(m) = &machine {
        out.push_str("## Machine\n\n");
        for t in &m.tables {
            md_table(&mut out, t);
        }
        for (title, text) in &m.pre {
            let _ = writeln!(out, "`{title}`:\n\n```\n{text}\n```\n");
        }
    }
    out.push_str("## Targets\n\n");
    let runs = load_runs(&ctx.results);
    let repeated = repeated_benchmarks(&runs);
    if !repeated.is_empty() {
        let _ = writeln!(
            out,
            "Repeated with `--runs N`: {}. For those benchmarks each target below is the median of its per-run \
             values, ratios formed within each run, with their spread; the sections further down show the last \
             run. The other benchmarks ran once.\n",
            repeated.join(", ")
        );
    }
    let metrics = crate::targets::Metrics::with_runs(&sections, &runs);
    md_table(&mut out, &crate::targets::table(&metrics));
    let gaps = crate::targets::gaps(&metrics);
    let skipped: Vec<String> = sections
        .iter()
        .flat_map(|s| {
            s.notes
                .iter()
                .filter(|n| n.contains(" not run:") || n.contains(" not simulated:"))
                .map(move |n| format!("`{}`: {n}", s.id))
        })
        .collect();
    if !gaps.is_empty() || !skipped.is_empty() {
        out.push_str(
            "## Known gaps\n\nFor each target above that this run did not meet: by how much, and what this run's own \
             measurements (server CPU per operation, sync calls and their duration, the disk probe, the perf profiles) \
             say limits it. The reasoning is written once in `bench/src/targets.rs`; the numbers and the branch taken \
             come from the run.\n\n",
        );
        for g in &gaps {
            let _ = writeln!(out, "- {g}\n");
        }
        for s in &skipped {
            let _ = writeln!(out, "- Not measured as the issue asks — {s}\n");
        }
    }
    out.push_str("## Contents\n\n");
    for (i, s) in sections.iter().enumerate() {
        let anchor = format!(
            "{}-{}",
            i + 1,
            s.title
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        );
        let _ = writeln!(out, "{}. [{}](#{anchor}) (`{}`)", i + 1, s.title, s.id);
    }
    let missing: Vec<&str> =
        ORDER.iter().copied().filter(|id| !sections.iter().any(|s| s.id == *id)).collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nNot run yet: {}.",
            missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        );
    }
    out.push('\n');
    for (i, s) in sections.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, s.title);
        for p in &s.about {
            let _ = writeln!(out, "{p}\n");
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "**This benchmark failed:**\n\n```\n{e}\n```\n");
        }
        for t in &s.tables {
            let _ = writeln!(out, "**{}**\n", t.title);
            md_table(&mut out, t);
        }
        for p in &s.plots {
            let drawn = if plots {
                draw(ctx, p)
            } else if ctx.assets.join(&p.png).exists() {
                Ok(())
            } else {
                Err("not drawn yet".into())
            };
            match drawn {
                Ok(()) => {
                    let _ = writeln!(out, "![{}]({})\n", p.title, rel(&doc_dir, &ctx.assets.join(&p.png)));
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "(plot `{}` not drawn: {e}; data in `{}`)\n",
                        p.png,
                        rel(&ctx.repo, &ctx.results.join(&p.csv))
                    );
                }
            }
        }
        if !s.notes.is_empty() {
            out.push_str("Notes from the run:\n\n");
            for n in &s.notes {
                let _ = writeln!(out, "- {n}");
            }
            out.push('\n');
        }
        if !s.commands.is_empty() {
            out.push_str(
                "<details><summary>Commands started (`$WORK` = the scratch directory)</summary>\n\n```\n",
            );
            let mut seen = std::collections::BTreeSet::new();
            for c in &s.commands {
                if seen.insert(c.clone()) {
                    let _ = writeln!(out, "{c}");
                }
            }
            out.push_str("```\n\n</details>\n\n");
        }
        let _ = writeln!(
            out,
            "<sub>Ran {}{} for {:.0} s{}; load average before {} → after {}; CPUs busy with other work just before: {}.</sub>\n",
            s.started,
            s.consul_commit.as_deref().map(|c| format!(" on consul-rs {c}")).unwrap_or_default(),
            s.wall_secs,
            if s.quick { " in quick mode" } else { "" },
            s.load_before,
            s.load_after,
            s.busy_before_pct.map(|b| format!("{b:.0} %")).unwrap_or_else(|| "—".into())
        );
    }
    if let Some(dir) = ctx.doc.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    }
    std::fs::write(&ctx.doc, out).map_err(|e| format!("failed to write {}: {e}", ctx.doc.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_benchmarks_counts_runs_per_benchmark() {
        let run = |ids: &[&str]| ids.iter().map(|id| Section::new(id, id)).collect::<Vec<_>>();
        let runs = vec![run(&["dns", "kv-put"]), run(&["dns", "kv-put"]), run(&["dns"]), run(&["footprint"])];
        assert_eq!(
            repeated_benchmarks(&runs),
            vec!["`kv-put` (2 runs)".to_string(), "`dns` (3 runs)".to_string()]
        );
        assert!(repeated_benchmarks(&runs[..1]).is_empty());
    }
}
