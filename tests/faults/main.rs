//! Fault-injection harness: a real 3-server `consul` cluster in network
//! namespaces, a concurrent KV and lock workload recorded into a lincheck
//! history, faults on a seeded schedule (kill -9, SIGSTOP, partitions,
//! packet loss, torn WAL tails and power loss, membership change, snapshots
//! under load), and the checks at the end. See docs/reliability.md.
//!
//! Needs root, iproute2 and nftables; without them every test prints why it
//! skips. The long run is `#[ignore]`d:
//! `FAULTS_SECONDS=3600 cargo test --release --features test-hooks --test faults -- --ignored long_run --nocapture`.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod churn;
mod cluster;
mod delay;
mod faults;
mod http;
mod net;
mod scenario;
mod workload;

use faults::Fault;
use scenario::{Config, Outcome, Schedule};
use std::time::Duration;

fn base(name: &str, seed: u64, schedule: Schedule) -> Config {
    Config {
        name: name.into(),
        seed,
        servers: 3,
        bug: None,
        schedule,
        hold: Duration::from_secs(3),
        kv_clients: 6,
        lock_clients: 2,
        keys_per_epoch: 6,
        calm: Duration::from_secs(1),
        rotate_keys: true,
    }
}

fn report(o: &Outcome) {
    eprintln!("{}", o.summary());
}

/// A correct run: no anomaly, no problem, and proof the faults bit.
fn assert_clean(o: &Outcome) {
    report(o);
    assert!(o.problems.is_empty(), "run {} is not valid:\n{}", o.name, o.summary());
    assert_eq!(o.anomaly_count(), 0, "run {} found anomalies:\n{}", o.name, o.summary());
    if std::env::var_os("FAULTS_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&o.out_dir);
    }
}

/// An injected-bug run: valid, and the named kind of anomaly was found.
fn assert_caught(o: &Outcome, kinds: &[&str]) {
    report(o);
    let invalid: Vec<&String> = o.problems.iter().filter(|p| p.starts_with("INVALID")).collect();
    assert!(invalid.is_empty(), "run {} is not valid:\n{}", o.name, o.summary());
    assert!(
        kinds.iter().any(|k| o.anomalies.contains_key(k)),
        "run {} did not catch the injected bug (wanted one of {kinds:?}):\n{}",
        o.name,
        o.summary()
    );
    if std::env::var_os("FAULTS_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&o.out_dir);
    }
}

#[test]
fn short_run() {
    need_netns!(net::available());
    let schedule = Schedule::Fixed(vec![
        Fault::KillLeader,
        Fault::IsolateMinority,
        Fault::PauseLeader,
        Fault::Snapshot,
        Fault::IsolateLeader,
        Fault::PacketDrop,
        Fault::Delay,
        Fault::TornTail,
        Fault::LockDelayProbe,
        Fault::BridgePartition,
        Fault::CrashAll,
        Fault::Membership,
        Fault::KillFollower,
        Fault::PowerLoss,
    ]);
    assert_clean(&scenario::run(base("short", 20261127, schedule)));
}

#[test]
fn injected_local_reads_are_caught() {
    need_netns!(net::available());
    let mut cfg =
        base("bug-local-reads", 7, Schedule::Fixed(vec![Fault::IsolateMinority, Fault::IsolateMinority]));
    cfg.bug = Some("local-reads");
    cfg.lock_clients = 0;
    assert_caught(&scenario::run(cfg), &["not-linearizable"]);
}

#[test]
fn injected_ack_before_fsync_is_caught() {
    need_netns!(net::available());
    // Two power losses: whether one finds acknowledged writes still
    // unsynced depends on where it falls in the load (on a busy machine one
    // now and then found none).
    let mut cfg = base("bug-ack-before-fsync", 11, Schedule::Fixed(vec![Fault::PowerLoss, Fault::PowerLoss]));
    cfg.bug = Some("ack-before-fsync");
    cfg.lock_clients = 0;
    // Long enough for the emulated writeback to have flushed the bootstrap entries.
    cfg.calm = Duration::from_secs(6);
    assert_caught(&scenario::run(cfg), &["lost-write", "not-linearizable"]);
}

#[test]
fn injected_no_lock_delay_is_caught() {
    need_netns!(net::available());
    let mut cfg =
        base("bug-no-lock-delay", 13, Schedule::Fixed(vec![Fault::LockDelayProbe, Fault::LockDelayProbe]));
    cfg.bug = Some("no-lock-delay");
    cfg.kv_clients = 2;
    assert_caught(&scenario::run(cfg), &["lock-two-holders"]);
}

/// The long run: every fault kind, drawn at random, for
/// `FAULTS_SECONDS` (default 3600) with seed `FAULTS_SEED` (default: the
/// time), on `FAULTS_SERVERS` servers (default 3; 5 works too).
#[test]
#[ignore]
fn long_run() {
    need_netns!(net::available());
    let secs: u64 = std::env::var("FAULTS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600);
    let seed: u64 = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
    });
    let mut cfg =
        base("long", seed, Schedule::Random { kinds: Fault::ALL.to_vec(), total: Duration::from_secs(secs) });
    cfg.hold = Duration::from_secs(4);
    cfg.calm = Duration::from_secs(3);
    cfg.kv_clients = 8;
    cfg.servers = std::env::var("FAULTS_SERVERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    assert_clean(&scenario::run(cfg));
}

/// Membership churn (issue 21) under the workload: cycles of 3 → 5 → 3
/// servers with adds, a follower and the leader wiped and rejoined, a
/// restart and two leaves (the leader's among them), for `FAULTS_SECONDS`
/// (default 3600) with seed `FAULTS_SEED` (default 1). Every step must
/// converge within `churn::CONVERGE_BOUND`, with no change logged twice, no
/// running server removed, never fewer voters than `MinQuorum`, and no
/// acknowledged write lost.
/// `FAULTS_SECONDS=3600 cargo test --release --features test-hooks --test faults -- --ignored churn_run --nocapture`
#[test]
#[ignore]
fn churn_run() {
    need_netns!(net::available());
    let secs: u64 = std::env::var("FAULTS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600);
    let seed: u64 = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut cfg =
        base("churn", seed, Schedule::Random { kinds: vec![Fault::Churn], total: Duration::from_secs(secs) });
    cfg.calm = Duration::from_secs(2);
    assert_clean(&scenario::run(cfg));
}

/// Whole-cluster power losses that also take the committed-index hint
/// (written without fsync), the second kind with a follower that lagged
/// while paused, all on the same keys: the reproducer for finding F-1 (a
/// leader restored into its old term answering `?consistent` reads before
/// re-applying its log; docs/reliability.md), fixed since.
/// `cargo test --features test-hooks --test faults -- --ignored power_loss --nocapture`
#[test]
#[ignore]
fn power_loss_keeps_reads_linearizable() {
    need_netns!(net::available());
    let mut list = vec![Fault::PowerLoss; 3];
    list.extend([Fault::PowerLossLaggingFollower; 3]);
    let mut cfg = base("power-loss", 5, Schedule::Fixed(list));
    cfg.calm = Duration::from_secs(2);
    cfg.rotate_keys = false;
    assert_clean(&scenario::run(cfg));
}

/// Re-checks a saved history offline:
/// `FAULTS_HISTORY=/tmp/consul-faults-.../history.jsonl cargo test --features test-hooks --test faults -- --ignored recheck --nocapture`.
#[test]
#[ignore]
fn recheck() {
    let Some(path) = std::env::var_os("FAULTS_HISTORY") else {
        eprintln!("set FAULTS_HISTORY to a history.jsonl file");
        return;
    };
    let file = std::fs::File::open(&path).expect("open FAULTS_HISTORY");
    let history = lincheck::read_jsonl(std::io::BufReader::new(file)).expect("read history");
    let mut o = Outcome::default();
    check::judge_history(&history, &check::finals_of(&history), &mut o);
    for (kind, list) in &o.anomalies {
        for a in list {
            eprintln!("[{kind}] {a}");
        }
    }
    for p in &o.problems {
        eprintln!("PROBLEM: {p}");
    }
    assert_eq!(o.anomaly_count(), 0);
}

/// One fault kind, `FAULTS_REPEAT` times (default 2), for debugging it:
/// `FAULTS_KIND=rpc-delay-proxy cargo test --features test-hooks --test faults -- --ignored single_fault --nocapture`.
#[test]
#[ignore]
fn single_fault() {
    need_netns!(net::available());
    let name = std::env::var("FAULTS_KIND").unwrap_or_default();
    let Some(kind) = Fault::ALL
        .into_iter()
        .chain([Fault::PowerLossLaggingFollower, Fault::Churn])
        .find(|f| f.name() == name)
    else {
        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        panic!("set FAULTS_KIND to one of {names:?}");
    };
    let repeat: usize = std::env::var("FAULTS_REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let seed: u64 = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    assert_clean(&scenario::run(base(&format!("single-{name}"), seed, Schedule::Fixed(vec![kind; repeat]))));
}
