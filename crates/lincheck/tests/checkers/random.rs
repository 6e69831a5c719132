//! Seeded randomized tests of the lincheck checkers.
//!
//! 1. Histories of a simulated correct store (random concurrency, timeouts
//!    that did and did not take effect, stale reads) always pass every check.
//! 2. The same histories with one read flipped to a provably overwritten value
//!    are always caught; a lost write injected into the final state too.
//! 3. Differential test: on thousands of tiny random histories — most of them
//!    not linearizable — the checker agrees with a brute-force enumeration of
//!    every order straight from the definition. This is what proves the
//!    search's shortcuts (deferred indeterminate ops, symmetry, unread-value
//!    collapsing, resolving observed timeouts) change no verdict.
//!
//! Every case prints its seed on failure; rerun with that seed to reproduce.

use std::collections::BTreeMap;

use lincheck::contract::check_contract;
use lincheck::properties::{check_durability, check_no_phantom_reads};
use lincheck::simulate::{inject_stale_read, simulate, OpMix, SimConfig};
use lincheck::{
    check_linearizability, read_jsonl, write_jsonl, Call, CheckOptions, KeyVerdict, Operation, Outcome,
    ReadMode, Ret, Verdict,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_config(seed: u64) -> SimConfig {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0FFEE);
    SimConfig {
        seed,
        clients: rng.random_range(2..=8),
        keys: rng.random_range(1..=4),
        ops: rng.random_range(200..=1500),
        mix: OpMix {
            read: rng.random_range(1..=6),
            write: rng.random_range(0..=3),
            cas: rng.random_range(1..=4),
            delete: rng.random_range(0..=1),
        },
        indeterminate_rate: rng.random_range(0.0..0.15),
        stale_read_rate: rng.random_range(0.0..0.3),
        default_read_rate: rng.random_range(0.0..0.5),
        max_latency: rng.random_range(5..=200),
        max_think: rng.random_range(0..=50),
    }
}

#[test]
fn simulated_correct_histories_always_pass() {
    for seed in 0..40 {
        let config = random_config(seed);
        let sim = simulate(&config);
        let report = check_linearizability(&sim.history, &CheckOptions::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Linearizable, "seed {seed} {config:?}\n{report}");
        assert_eq!(check_no_phantom_reads(&sim.history), vec![], "seed {seed}");
        let durability = check_durability(&sim.history, &sim.final_values);
        assert!(
            durability.is_ok() && durability.keys_without_final_value.is_empty(),
            "seed {seed}: {durability:?}"
        );
        assert_eq!(check_contract(&sim.history), vec![], "seed {seed}");
    }
}

#[test]
fn one_flipped_read_is_always_caught() {
    let mut caught = 0;
    for seed in 0..40 {
        let config = random_config(seed);
        let mut history = simulate(&config).history;
        let Some(flipped) = inject_stale_read(&mut history, seed) else { continue };
        let key = history[flipped].call.key().to_string();
        let report = check_linearizability(&history, &CheckOptions::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::NotLinearizable, "seed {seed}: flipped #{flipped} not caught");
        for k in &report.keys {
            match &k.verdict {
                KeyVerdict::NotLinearizable(v) => {
                    assert_eq!(k.key, key, "seed {seed}: only the flipped key is wrong");
                    assert!(v.prefix_len > 0 || v.blocked.index == flipped, "seed {seed}: {v}");
                }
                other => assert_eq!(other, &KeyVerdict::Linearizable, "seed {seed} key {}", k.key),
            }
        }
        caught += 1;
    }
    assert!(caught >= 30, "only {caught} of 40 simulations had a read to flip");
}

#[test]
fn lost_write_in_the_final_state_is_always_caught() {
    let mut caught = 0;
    for seed in 0..40 {
        let sim = simulate(&random_config(seed));
        // Roll one key back to a value that was surely overwritten by an
        // acknowledged mutation, as a lost write would.
        for (key, final_value) in &sim.final_values {
            let acked: Vec<&Operation> = sim
                .history
                .iter()
                .filter(|op| {
                    op.call.key() == key
                        && matches!(op.ret(), Some(Ret::Done) | Some(Ret::Cas { swapped: true }))
                })
                .collect();
            let last_invoke = acked.iter().map(|op| op.invoked_at).max().unwrap_or(0);
            let older = acked.iter().filter(|op| op.completed_at().unwrap() < last_invoke).find_map(|op| {
                op.call.written_value().filter(|v| Some(*v) != final_value.as_deref()).map(String::from)
            });
            let Some(older) = older else { continue };
            let mut finals: BTreeMap<String, Option<String>> = sim.final_values.clone();
            finals.insert(key.clone(), Some(older));
            let report = check_durability(&sim.history, &finals);
            assert!(!report.lost.is_empty(), "seed {seed} key {key}: {report:?}");
            caught += 1;
            break;
        }
    }
    assert!(caught >= 30, "only {caught} of 40 simulations had a write to lose");
}

#[test]
fn saved_simulation_rechecks_identically() {
    let sim = simulate(&random_config(7));
    let mut file = Vec::new();
    write_jsonl(&sim.history, &mut file).unwrap();
    assert_eq!(read_jsonl(file.as_slice()).unwrap(), sim.history);
}

// ------------------------------------------------------------------------
// Differential test against the definition.

/// Linearizability straight from the definition, by enumeration: choose which
/// indeterminate mutations took effect, then try every order of the chosen
/// ops that respects real time (a before b whenever a returned strictly
/// before b was invoked) and check every answer against a register.
///
/// One documented assumption is encoded too: a value that any read (of any
/// mode) returned was committed before that read returned, so an
/// indeterminate write of it took effect, by then.
fn brute_force(history: &[Operation], check_default: bool, horizon: Option<u64>) -> bool {
    let mut seen_by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for op in history {
        if let (Call::Read { key, .. }, Outcome::Ok { completed_at, ret: Ret::Read { value: Some(v), .. } }) =
            (&op.call, &op.outcome)
        {
            let t = seen_by.entry((key.as_str(), v.as_str())).or_insert(*completed_at);
            *t = (*t).min(*completed_at);
        }
    }
    let resolved: Vec<Operation> = history
        .iter()
        .map(|op| {
            match (
                op.is_indeterminate(),
                op.call.written_value().and_then(|v| seen_by.get(&(op.call.key(), v))),
            ) {
                (true, Some(&t)) => {
                    let ret = if matches!(op.call, Call::Cas { .. }) {
                        Ret::Cas { swapped: true }
                    } else {
                        Ret::Done
                    };
                    let by = t.max(op.invoked_at).min(horizon.map_or(u64::MAX, |h| op.invoked_at + h));
                    Operation { outcome: Outcome::Ok { completed_at: by, ret }, ..op.clone() }
                }
                _ => op.clone(),
            }
        })
        .collect();
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &resolved {
        let counts = match (&op.call, &op.outcome) {
            (_, Outcome::Failed { .. }) => false,
            (Call::Read { .. }, Outcome::Indeterminate { .. }) => false,
            (Call::Read { mode: ReadMode::Stale, .. }, _) => false,
            (Call::Read { mode: ReadMode::Default, .. }, _) => check_default,
            _ => true,
        };
        if counts {
            by_key.entry(op.call.key()).or_default().push(op);
        }
    }
    by_key.values().all(|ops| {
        let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].is_indeterminate()).collect();
        (0u32..1 << optional.len()).any(|mask| {
            let chosen: Vec<&Operation> = (0..ops.len())
                .filter(|&i| match optional.iter().position(|&o| o == i) {
                    Some(bit) => mask & (1 << bit) != 0,
                    None => true,
                })
                .map(|i| ops[i])
                .collect();
            // An included indeterminate op took effect by its horizon.
            let deadline: Vec<Option<u64>> = chosen
                .iter()
                .map(|op| op.completed_at().or_else(|| horizon.map(|h| op.invoked_at + h)))
                .collect();
            let mut used = vec![false; chosen.len()];
            orders(&chosen, &deadline, &mut used, None)
        })
    })
}

fn orders(ops: &[&Operation], deadline: &[Option<u64>], used: &mut [bool], state: Option<String>) -> bool {
    if used.iter().all(|&u| u) {
        return true;
    }
    for i in 0..ops.len() {
        if used[i] {
            continue;
        }
        // Every op that returned before ops[i] was invoked must come first.
        let blocked = (0..ops.len())
            .any(|j| !used[j] && j != i && deadline[j].is_some_and(|done| done < ops[i].invoked_at));
        if blocked {
            continue;
        }
        let next = match (&ops[i].call, ops[i].ret()) {
            (Call::Read { .. }, Some(Ret::Read { value, .. })) => (value == &state).then(|| state.clone()),
            (Call::Write { value, .. }, _) => Some(Some(value.clone())),
            (Call::Delete { .. }, _) => Some(None),
            (Call::Cas { expected, new, .. }, Some(Ret::Cas { swapped: true })) => {
                (expected == &state).then(|| Some(new.clone()))
            }
            (Call::Cas { expected, .. }, Some(Ret::Cas { swapped: false })) => {
                (expected != &state).then(|| state.clone())
            }
            // An indeterminate CAS that took effect swapped or failed by itself.
            (Call::Cas { expected, new, .. }, None) => {
                Some(if expected == &state { Some(new.clone()) } else { state.clone() })
            }
            _ => None,
        };
        if let Some(next) = next {
            used[i] = true;
            let ok = orders(ops, deadline, used, next);
            used[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// A tiny random history over two keys with heavy overlap and random,
/// mostly wrong, answers.
fn tiny_history(rng: &mut StdRng, max_ops: u64) -> Vec<Operation> {
    let n = rng.random_range(1..=max_ops);
    let mut written = 0;
    let mut history = Vec::new();
    for client in 0..n {
        let key = if rng.random_bool(0.8) { "a" } else { "b" }.to_string();
        let value = |rng: &mut StdRng, written: u32| -> Option<String> {
            match rng.random_range(0..=written + 1) {
                0 => None,
                x if x > written => Some("never".to_string()),
                x => Some(format!("v{x}")),
            }
        };
        let invoked_at = rng.random_range(0..12);
        let completed_at = invoked_at + rng.random_range(0..8);
        let (call, ret) = match rng.random_range(0..10) {
            0..=3 => {
                let mode = [ReadMode::Consistent, ReadMode::Default, ReadMode::Stale][rng.random_range(0..3)];
                (Call::Read { key, mode }, Ret::Read { value: value(rng, 4), index: None })
            }
            4..=6 => {
                written += 1;
                (Call::Write { key, value: format!("v{written}") }, Ret::Done)
            }
            7..=8 => {
                written += 1;
                let expected = value(rng, 4).filter(|v| v != "never");
                (
                    Call::Cas { key, expected, expected_index: None, new: format!("v{written}") },
                    Ret::Cas { swapped: rng.random_bool(0.5) },
                )
            }
            _ => (Call::Delete { key }, Ret::Done),
        };
        let outcome = match rng.random_range(0..10) {
            0..=5 => Outcome::Ok { completed_at, ret },
            6..=8 => Outcome::Indeterminate { gave_up_at: None, error: "timeout".into() },
            _ => Outcome::Failed { completed_at, error: "400".into() },
        };
        history.push(Operation { client, call, invoked_at, outcome });
    }
    history
}

#[test]
fn checker_agrees_with_brute_force_on_tiny_histories() {
    // LINCHECK_SEED / LINCHECK_CASES / LINCHECK_MAX_OPS widen the search when hunting bugs.
    let seed = std::env::var("LINCHECK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261127);
    let cases = std::env::var("LINCHECK_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(6000);
    let max_ops = std::env::var("LINCHECK_MAX_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut yes, mut no) = (0, 0);
    for case in 0..cases {
        let history = tiny_history(&mut rng, max_ops);
        let check_default = case % 2 == 0;
        // A third of the cases assume timed-out requests land within a horizon.
        let horizon = (case % 3 == 0).then(|| rng.random_range(0..10));
        let options = CheckOptions {
            check_default_reads: check_default,
            indeterminate_horizon: horizon,
            ..CheckOptions::default()
        };
        let report = check_linearizability(&history, &options).unwrap();
        let expected = brute_force(&history, check_default, horizon);
        let got = report.verdict() == Verdict::Linearizable;
        assert_eq!(got, expected, "seed {seed} case {case} horizon {horizon:?}: checker says {}, brute force {expected}\n{history:#?}\n{report}", report.verdict());
        if expected {
            yes += 1
        } else {
            no += 1
        }
    }
    // Both verdicts must be well represented for the comparison to mean much.
    assert!(yes > cases / 6 && no > cases / 6, "linearizable {yes}, not {no}");
}
