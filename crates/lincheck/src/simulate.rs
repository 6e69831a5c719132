//! Seeded histories of a correct (linearizable) KV store, and anomalies
//! injected into them, to test and benchmark the checkers. Library code so
//! the future harness can self-test its checker the same way.
//!
//! The simulation is a discrete-event model: each client issues one request
//! at a time; a request takes effect atomically at a random instant strictly
//! inside its interval (its linearization point), so every generated history
//! is linearizable by construction. A request may end indeterminate (the
//! client times out); it then takes effect with probability ½, possibly after
//! the client gave up. `?stale` reads answer from one of the key's recent
//! states. Owns only generation; it checks nothing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::history::{Call, ClientId, Operation, Outcome, ReadMode, Ret, Time};

/// Relative weights of the operation kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpMix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
    pub delete: u32,
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    pub clients: usize,
    /// Keys are named `k0`, `k1`, ...
    pub keys: usize,
    /// Operations to invoke in total.
    pub ops: usize,
    pub mix: OpMix,
    /// Fraction of operations that end indeterminate.
    pub indeterminate_rate: f64,
    /// Fraction of reads sent with `?stale`.
    pub stale_read_rate: f64,
    /// Fraction of the other reads in default mode (the rest `?consistent`).
    pub default_read_rate: f64,
    /// Longest request latency, in clock ticks.
    pub max_latency: Time,
    /// Longest pause between a client's requests.
    pub max_think: Time,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            clients: 5,
            keys: 3,
            ops: 500,
            mix: OpMix { read: 4, write: 2, cas: 3, delete: 1 },
            indeterminate_rate: 0.05,
            stale_read_rate: 0.1,
            default_read_rate: 0.3,
            max_latency: 100,
            max_think: 20,
        }
    }
}

/// A generated run.
#[derive(Clone, Debug)]
pub struct Simulated {
    /// Sorted by invocation.
    pub history: Vec<Operation>,
    /// Every key's value once all requests (late ones included) took effect.
    pub final_values: BTreeMap<String, Option<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Invoke(usize),
    Apply(usize),
    Complete(usize),
}

struct InFlight {
    client: ClientId,
    call: Call,
    invoked_at: Time,
    indeterminate: bool,
    ret: Option<Ret>,
}

#[derive(Default)]
struct Register {
    value: Option<String>,
    index: u64,
    /// Recent states, newest last, for `?stale` answers.
    recent: Vec<(Option<String>, u64)>,
}

/// Runs the simulation.
pub fn simulate(config: &SimConfig) -> Simulated {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let keys: Vec<String> = (0..config.keys.max(1)).map(|k| format!("k{k}")).collect();
    let mut registers: HashMap<String, Register> =
        keys.iter().map(|k| (k.clone(), Register::default())).collect();
    let mut known: HashMap<(usize, String), (Option<String>, u64)> = HashMap::new();
    let mut queue: BinaryHeap<Reverse<(Time, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<Reverse<(Time, u64, Event)>>, t: Time, e: Event| {
        seq += 1;
        queue.push(Reverse((t, seq, e)));
    };
    for c in 0..config.clients.max(1) {
        let start = rng.random_range(0..=config.max_think);
        push(&mut queue, start, Event::Invoke(c));
    }
    let latency = config.max_latency.max(1);
    let total_weight = config.mix.read + config.mix.write + config.mix.cas + config.mix.delete;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut history = Vec::with_capacity(config.ops);
    let mut invoked = 0usize;
    let mut raft_index = 0u64;
    let mut next_value = 0u64;

    while let Some(Reverse((t, _, event))) = queue.pop() {
        match event {
            Event::Invoke(client) => {
                if invoked >= config.ops {
                    continue;
                }
                invoked += 1;
                let key = keys[rng.random_range(0..keys.len())].clone();
                let pick = rng.random_range(0..total_weight.max(1));
                let call = if pick < config.mix.read {
                    let mode = if rng.random_bool(config.stale_read_rate) {
                        ReadMode::Stale
                    } else if rng.random_bool(config.default_read_rate) {
                        ReadMode::Default
                    } else {
                        ReadMode::Consistent
                    };
                    Call::Read { key, mode }
                } else if pick < config.mix.read + config.mix.write {
                    next_value += 1;
                    Call::Write { key, value: format!("v{next_value}") }
                } else if pick < config.mix.read + config.mix.write + config.mix.cas {
                    next_value += 1;
                    // What this client last read of the key (any mode, so
                    // possibly stale), as a real client would; sometimes
                    // `?cas=0`.
                    let (expected, index) = match known.get(&(client, key.clone())) {
                        Some(seen) if rng.random_bool(0.85) => seen.clone(),
                        _ => (None, 0),
                    };
                    let expected_index = if expected.is_some() { Some(index) } else { Some(0) };
                    Call::Cas { key, expected, expected_index, new: format!("v{next_value}") }
                } else {
                    Call::Delete { key }
                };
                let indeterminate = rng.random_bool(config.indeterminate_rate);
                let slot = in_flight.len();
                in_flight.push(InFlight {
                    client: client as ClientId,
                    call,
                    invoked_at: t,
                    indeterminate,
                    ret: None,
                });
                if indeterminate {
                    if rng.random_bool(0.5) {
                        // May land long after the client gave up.
                        push(&mut queue, t + rng.random_range(1..=3 * latency), Event::Apply(slot));
                    }
                    push(&mut queue, t + latency, Event::Complete(slot));
                } else {
                    let apply = t + rng.random_range(1..=latency);
                    push(&mut queue, apply, Event::Apply(slot));
                    push(&mut queue, apply + rng.random_range(0..=latency), Event::Complete(slot));
                }
            }
            Event::Apply(slot) => {
                let op = &mut in_flight[slot];
                let Some(reg) = registers.get_mut(op.call.key()) else { continue };
                let before = (reg.value.clone(), reg.index);
                op.ret = Some(match &op.call {
                    Call::Read { mode: ReadMode::Stale, .. } => {
                        let pick = reg.recent.len().saturating_sub(rng.random_range(1..=5));
                        let (value, index) = reg.recent.get(pick).cloned().unwrap_or_else(|| before.clone());
                        Ret::Read { value, index: Some(index) }
                    }
                    Call::Read { .. } => Ret::Read { value: before.0.clone(), index: Some(before.1) },
                    Call::Write { value, .. } => {
                        raft_index += 1;
                        reg.value = Some(value.clone());
                        reg.index = raft_index;
                        Ret::Done
                    }
                    Call::Cas { expected, new, .. } => {
                        let swapped = reg.value == *expected;
                        if swapped {
                            raft_index += 1;
                            reg.value = Some(new.clone());
                            reg.index = raft_index;
                        }
                        Ret::Cas { swapped }
                    }
                    Call::Delete { .. } => {
                        raft_index += 1;
                        reg.value = None;
                        reg.index = 0;
                        Ret::Done
                    }
                });
                if op.call.is_mutation() && (reg.value.clone(), reg.index) != before {
                    reg.recent.push((reg.value.clone(), reg.index));
                    if reg.recent.len() > 8 {
                        reg.recent.remove(0);
                    }
                }
            }
            Event::Complete(slot) => {
                let op = &in_flight[slot];
                let outcome = match (&op.ret, op.indeterminate) {
                    (Some(ret), false) => Outcome::Ok { completed_at: t, ret: ret.clone() },
                    _ => Outcome::Indeterminate { gave_up_at: Some(t), error: "timeout".to_string() },
                };
                if let (Call::Read { key, .. }, Outcome::Ok { ret: Ret::Read { value, index }, .. }) =
                    (&op.call, &outcome)
                {
                    known.insert((op.client as usize, key.clone()), (value.clone(), index.unwrap_or(0)));
                }
                history.push(Operation {
                    client: op.client,
                    call: op.call.clone(),
                    invoked_at: op.invoked_at,
                    outcome,
                });
                let client = op.client as usize;
                push(&mut queue, t + rng.random_range(0..=config.max_think), Event::Invoke(client));
            }
        }
    }
    history.sort_by_key(|op| op.invoked_at);
    let final_values = registers.into_iter().map(|(k, r)| (k, r.value)).collect();
    Simulated { history, final_values }
}

/// (invoked, completed, value written) of an acknowledged mutation.
type AckedMutation<'a> = (Time, Time, Option<&'a str>);

/// Replaces the value of one checked (default or `?consistent`), successful
/// read with an older value of its key that the read provably cannot see:
/// the older value's only writer completed before some acknowledged mutation
/// was invoked, which itself completed before the read was invoked. Returns
/// the changed operation's index, or `None` if no read qualifies.
pub fn inject_stale_read(history: &mut [Operation], seed: u64) -> Option<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut reads: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, op)| matches!((&op.call, op.ret()), (Call::Read { mode, .. }, Some(Ret::Read { .. })) if *mode != ReadMode::Stale))
        .map(|(i, _)| i)
        .collect();
    reads.shuffle(&mut rng);
    // Acknowledged mutations per key: (invoked, completed, value written).
    let mut acked: HashMap<&str, Vec<AckedMutation<'_>>> = HashMap::new();
    for op in history.iter() {
        let ok = matches!(op.ret(), Some(Ret::Done) | Some(Ret::Cas { swapped: true }));
        if let (true, Some(done)) = (ok && op.call.is_mutation(), op.completed_at()) {
            acked.entry(op.call.key()).or_default().push((op.invoked_at, done, op.call.written_value()));
        }
    }
    let mut chosen: Option<(usize, String)> = None;
    for &r in reads.iter().take(200) {
        let read = &history[r];
        let (Some(Ret::Read { value: current, .. }), key) = (read.ret(), read.call.key()) else { continue };
        let Some(muts) = acked.get(key) else { continue };
        // The latest invocation of a mutation that surely precedes the read.
        let Some(barrier) = muts.iter().filter(|m| m.1 < read.invoked_at).map(|m| m.0).max() else {
            continue;
        };
        // The newest value surely overwritten by then.
        let older = muts
            .iter()
            .filter(|m| m.1 < barrier && m.2.is_some() && m.2 != current.as_deref())
            .max_by_key(|m| m.1)
            .and_then(|m| m.2)
            .map(str::to_string);
        if let Some(older) = older {
            chosen = Some((r, older));
            break;
        }
    }
    drop(acked);
    let (r, older) = chosen?;
    match &mut history[r].outcome {
        Outcome::Ok { ret: Ret::Read { value, index }, .. } => {
            *value = Some(older);
            *index = None;
            Some(r)
        }
        _ => None,
    }
}
