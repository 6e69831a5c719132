//! Throughput of the linearizability checker on 100k-operation histories.
//! Ignored by default (it is a measurement, and wants a release build):
//!
//! ```text
//! cargo test --release -p lincheck --test checkers perf -- --ignored --nocapture
//! ```
//!
//! Each scenario prints the history size, the time to check it, search steps,
//! memo size and the process's peak RSS while checking (Linux: the peak is
//! reset through /proc/self/clear_refs before each scenario). The asserts
//! still make each scenario a test: correct histories must pass, a flipped
//! read must be caught.

use std::time::Instant;

use lincheck::simulate::{inject_stale_read, simulate, OpMix, SimConfig};
use lincheck::{check_linearizability, CheckOptions, Report, Verdict};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0); best effort.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn scenario(name: &str, config: SimConfig, flip: bool, threads: usize, horizon: Option<u64>) -> Report {
    let generated = Instant::now();
    let mut history = simulate(&config).history;
    let generated = generated.elapsed();
    if flip {
        inject_stale_read(&mut history, config.seed).expect("a read to flip");
    }
    let indeterminate = history.iter().filter(|op| op.is_indeterminate()).count();
    reset_peak_rss();
    let options = CheckOptions { threads, indeterminate_horizon: horizon, ..CheckOptions::default() };
    let report = check_linearizability(&history, &options).unwrap();
    let memo_entries: usize = report.keys.iter().map(|k| k.stats.memo_entries).sum();
    let memo_bytes: usize = report.keys.iter().map(|k| k.stats.memo_bytes).sum();
    let secs = report.elapsed.as_secs_f64();
    println!(
        "{name}: {} ops ({} keys, {} clients, {indeterminate} indeterminate), {} checked → {} in {:.3} s \
         ({:.0} ops/s), {} steps, memo {} entries / {:.1} MiB, peak RSS {} MiB (history generated in {:.2} s)",
        history.len(),
        report.keys.len(),
        config.clients,
        report.ops_checked(),
        report.verdict(),
        secs,
        history.len() as f64 / secs.max(1e-9),
        report.steps(),
        memo_entries,
        memo_bytes as f64 / (1 << 20) as f64,
        peak_rss_kib().map_or("?".to_string(), |k| (k / 1024).to_string()),
        generated.as_secs_f64(),
    );
    report
}

fn config(seed: u64, keys: usize, clients: usize, indeterminate_rate: f64) -> SimConfig {
    SimConfig {
        seed,
        clients,
        keys,
        ops: 100_000,
        mix: OpMix { read: 4, write: 2, cas: 3, delete: 1 },
        indeterminate_rate,
        stale_read_rate: 0.1,
        default_read_rate: 0.3,
        max_latency: 100,
        max_think: 20,
    }
}

#[test]
#[ignore = "measurement; run with --release -- --ignored --nocapture"]
fn throughput_on_100k_op_histories() {
    // Correct histories must pass.
    for (name, config, threads) in [
        ("1 key, 8 clients, 1% timeouts", config(1, 1, 8, 0.01), 1),
        ("1 key, 8 clients, 5% timeouts", config(2, 1, 8, 0.05), 1),
        ("1 key, 16 clients, 1% timeouts", config(3, 1, 16, 0.01), 1),
        ("10 keys, 16 clients, 1% timeouts", config(4, 10, 16, 0.01), 1),
        ("10 keys, 16 clients, 1% timeouts, 2 threads", config(4, 10, 16, 0.01), 2),
    ] {
        assert_eq!(scenario(name, config, false, threads, None).verdict(), Verdict::Linearizable);
    }
    // The simulator lands every timed-out request within 3 × max_latency of
    // its invocation, so 1000 ticks is a sound horizon for it.
    let r =
        scenario("1 key, 8 clients, 1% timeouts, horizon 1000", config(1, 1, 8, 0.01), false, 1, Some(1000));
    assert_eq!(r.verdict(), Verdict::Linearizable);
    // One flipped read must be caught.
    let r = scenario(
        "10 keys, 16 clients, 1% timeouts, one flipped read",
        config(4, 10, 16, 0.01),
        true,
        1,
        None,
    );
    assert_eq!(r.verdict(), Verdict::NotLinearizable);
    let r = scenario(
        "1 key, 8 clients, 1% timeouts, one flipped read, horizon 1000",
        config(1, 1, 8, 0.01),
        true,
        1,
        Some(1000),
    );
    assert_eq!(r.verdict(), Verdict::NotLinearizable);
    // Without a horizon every timeout is a wildcard until the end: proving
    // this violation may run out of the default budget, but it must never be
    // reported linearizable.
    let r = scenario(
        "1 key, 8 clients, 1% timeouts, one flipped read, no horizon",
        config(1, 1, 8, 0.01),
        true,
        1,
        None,
    );
    assert_ne!(r.verdict(), Verdict::Linearizable);
}
