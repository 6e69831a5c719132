//! The end of a run: final `?consistent` reads of every key, then every
//! check the lincheck crate offers, plus the harness's own (agents that
//! panicked or exited, leader recovery, validity of the run). Saves the
//! history as JSON lines so a failure can be re-checked offline.

use crate::cluster::Cluster;
use crate::scenario::{Config, Outcome, Schedule};
use crate::workload::{kv_op, Shared};
use lincheck::locks::{check_mutual_exclusion, holds_from_events};
use lincheck::properties::{check_durability, check_no_phantom_reads};
use lincheck::{
    check_linearizability, Call, CheckOptions, Operation, Outcome as OpOutcome, ReadMode, Ret, Verdict,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The client id of the final reads.
const FINAL_CLIENT: u64 = 9_999;

pub fn finish(cfg: &Config, cluster: &mut Cluster, sh: Arc<Shared>, o: &mut Outcome) {
    // Final reads: the cluster is healed and has a leader (or the run already
    // recorded that it does not).
    let keys: Vec<String> = sh.used_keys.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
    let mut finals: BTreeMap<String, Option<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for key in &keys {
        loop {
            let target = cluster
                .agreed_leader()
                .map(|l| cluster.server(l).http())
                .or_else(|| cluster.targets().first().copied());
            let got = target.and_then(|t| {
                kv_op(&sh, FINAL_CLIENT, t, Call::Read { key: key.clone(), mode: ReadMode::Consistent })
            });
            if let Some((value, _)) = got {
                finals.insert(key.clone(), value);
                break;
            }
            if Instant::now() > deadline {
                o.problems.push(format!("final read of {key} never succeeded"));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    cluster.check_exits();
    let events = std::mem::take(&mut *sh.lock_events.lock().unwrap_or_else(|e| e.into_inner()));
    let shared = match Arc::try_unwrap(sh) {
        Ok(s) => s,
        Err(_) => {
            o.problems.push("a client thread still holds the recorder".into());
            return;
        }
    };
    let history = shared.rec.finish();
    let path = cluster.out_dir.join("history.jsonl");
    match std::fs::File::create(&path) {
        Ok(f) => {
            if let Err(e) = lincheck::write_jsonl(&history, std::io::BufWriter::new(f)) {
                o.problems.push(format!("{}: {e}", path.display()));
            }
        }
        Err(e) => o.problems.push(format!("{}: {e}", path.display())),
    }
    for op in &history {
        match op.outcome {
            OpOutcome::Ok { .. } => o.ops_ok += 1,
            OpOutcome::Failed { .. } => o.ops_failed += 1,
            OpOutcome::Indeterminate { .. } => o.ops_indeterminate += 1,
        }
    }
    o.keys = keys.len();

    judge_history(&history, &finals, o);
    let holds = holds_from_events(&events);
    o.lock_holds = holds.len();
    let locks_path = cluster.out_dir.join("locks.jsonl");
    let lines: Vec<String> = holds.iter().filter_map(|h| serde_json::to_string(h).ok()).collect();
    if let Err(e) = std::fs::write(&locks_path, lines.join("\n") + "\n") {
        o.problems.push(format!("{}: {e}", locks_path.display()));
    }
    for v in check_mutual_exclusion(&holds) {
        o.anomaly("lock-two-holders", v.to_string());
    }
    for p in cluster.panics() {
        o.anomaly("agent-panicked", p);
    }
    for u in std::mem::take(&mut cluster.unexpected) {
        o.anomaly("agent-exited", u);
    }
    for p in std::mem::take(&mut o.tally.problems) {
        if p.starts_with("no leader agreed") {
            o.anomaly("leader-not-regained", p);
        } else {
            o.problems.push(p);
        }
    }

    // A run whose faults did not take effect proves nothing.
    let scheduled: Vec<crate::faults::Fault> = match &cfg.schedule {
        Schedule::Fixed(l) => l.clone(),
        Schedule::Random { kinds, .. } => kinds.clone(),
    };
    if o.ops_ok == 0 {
        o.problems.push("INVALID: no operation completed".into());
    }
    if scheduled.iter().any(|f| f.moves_leader()) && o.leader_changes == 0 {
        o.problems
            .push("INVALID: leader-moving faults were scheduled but no leader change was observed".into());
    }
    if scheduled.iter().any(|f| f.is_partition()) && o.tally.partitions_applied == 0 {
        o.problems.push("INVALID: partitions were scheduled but none was applied".into());
    }
    if o.tally.applied.is_empty() && !scheduled.is_empty() {
        o.problems.push("INVALID: no fault took effect".into());
    }
}

/// The history checks: contract, linearizability, phantom reads, durability.
pub fn judge_history(history: &[Operation], finals: &BTreeMap<String, Option<String>>, o: &mut Outcome) {
    for v in lincheck::contract::check_contract(history) {
        o.problems.push(format!("workload contract broken (harness bug): {v}"));
    }
    let options = CheckOptions { threads: 2, ..CheckOptions::default() };
    match check_linearizability(history, &options) {
        Ok(report) => match report.verdict() {
            Verdict::Linearizable => {
                eprintln!("[faults] linearizability: {}", report.to_string().lines().next().unwrap_or(""))
            }
            Verdict::NotLinearizable => {
                for v in report.violations() {
                    o.anomaly("not-linearizable", v.to_string());
                }
            }
            Verdict::Unknown => o.problems.push(format!("linearizability check ran out of budget: {report}")),
        },
        Err(e) => o.problems.push(format!("history unusable for the checker: {e}")),
    }
    for p in check_no_phantom_reads(history) {
        o.anomaly("phantom-read", p.to_string());
    }
    let d = check_durability(history, finals);
    for l in &d.lost {
        o.anomaly("lost-write", l.to_string());
    }
    for (k, v) in &d.phantom_finals {
        o.anomaly(
            "phantom-final-value",
            format!("key {k:?} ends with {v:?}, which nobody could have written"),
        );
    }
}

/// Final values as recorded by the final reads (client `FINAL_CLIENT`).
pub fn finals_of(history: &[Operation]) -> BTreeMap<String, Option<String>> {
    let mut finals = BTreeMap::new();
    for op in history.iter().filter(|op| op.client == FINAL_CLIENT) {
        if let Some(Ret::Read { value, .. }) = op.ret() {
            finals.insert(op.call.key().to_string(), value.clone());
        }
    }
    finals
}
