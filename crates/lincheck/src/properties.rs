//! Cheap oracles that complement the linearizability check and need no
//! search: every value any read returned was really written (the property
//! `?stale` reads must keep, since they are not linearizable), and every
//! acknowledged write survives to the end unless something could have
//! overwritten it. Owns these two checks only; locks are in `locks`.
//!
//! Both assume the unique-value contract of `history` (see `contract`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::history::{show_value, Call, Operation, Outcome, Ret, Time};
use super::report::OpRef;

fn op_ref(history: &[Operation], index: usize) -> OpRef {
    OpRef { index, summary: history[index].describe() }
}

/// Could this op have put its value (or absence) in the register?
fn may_have_taken_effect(op: &Operation) -> bool {
    match &op.outcome {
        Outcome::Ok { ret: Ret::Cas { swapped }, .. } => *swapped,
        Outcome::Ok { .. } | Outcome::Indeterminate { .. } => true,
        Outcome::Failed { .. } => false,
    }
}

/// Acknowledged as having taken effect.
fn acknowledged(op: &Operation) -> bool {
    match &op.outcome {
        Outcome::Ok { ret: Ret::Cas { swapped }, .. } => *swapped,
        Outcome::Ok { ret: Ret::Done, .. } => true,
        _ => false,
    }
}

/// Why a read's value has no legitimate source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhantomReason {
    /// No operation ever wrote this value to this key.
    NeverWritten,
    /// Only operations that did not take effect wrote it (a failed write, or
    /// a CAS that answered false).
    WrittenOnlyByFailedOps(Vec<OpRef>),
    /// Its only writers were invoked after the read had already returned.
    WrittenAfterRead(Vec<OpRef>),
}

/// A read (of any consistency mode) that returned an invented value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhantomRead {
    pub key: String,
    pub read: OpRef,
    pub value: String,
    pub reason: PhantomReason,
}

impl fmt::Display for PhantomRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {:?}: {} returned {:?}, ", self.key, self.read, self.value)?;
        match &self.reason {
            PhantomReason::NeverWritten => write!(f, "which was never written"),
            PhantomReason::WrittenOnlyByFailedOps(w) => {
                write!(f, "written only by failed operation(s): {}", join(w))
            }
            PhantomReason::WrittenAfterRead(w) => {
                write!(f, "written only by operation(s) invoked after it returned: {}", join(w))
            }
        }
    }
}

fn join(ops: &[OpRef]) -> String {
    ops.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("; ")
}

/// Values each key's operations wrote, with the writing ops.
fn writers(history: &[Operation]) -> HashMap<(&str, &str), Vec<usize>> {
    let mut w: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, op) in history.iter().enumerate() {
        if let Some(v) = op.call.written_value() {
            w.entry((op.call.key(), v)).or_default().push(i);
        }
    }
    w
}

/// Stale-read safety: every value a successful read returned — in any mode,
/// `?stale` included — was written to that key by an operation that may have
/// taken effect and was invoked before the read returned. Absent is always a
/// legitimate answer (every key starts absent).
pub fn check_no_phantom_reads(history: &[Operation]) -> Vec<PhantomRead> {
    let writers = writers(history);
    let mut found = Vec::new();
    for (i, op) in history.iter().enumerate() {
        let (Call::Read { key, .. }, Outcome::Ok { completed_at, ret: Ret::Read { value: Some(v), .. } }) =
            (&op.call, &op.outcome)
        else {
            continue;
        };
        let candidates = writers.get(&(key.as_str(), v.as_str())).map(Vec::as_slice).unwrap_or(&[]);
        let effective: Vec<usize> =
            candidates.iter().copied().filter(|&w| may_have_taken_effect(&history[w])).collect();
        let reason = if candidates.is_empty() {
            PhantomReason::NeverWritten
        } else if effective.is_empty() {
            PhantomReason::WrittenOnlyByFailedOps(candidates.iter().map(|&w| op_ref(history, w)).collect())
        } else if effective.iter().all(|&w| history[w].invoked_at > *completed_at) {
            PhantomReason::WrittenAfterRead(effective.iter().map(|&w| op_ref(history, w)).collect())
        } else {
            continue;
        };
        found.push(PhantomRead { key: key.clone(), read: op_ref(history, i), value: v.clone(), reason });
    }
    found
}

/// Why an acknowledged write is not in the final state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The final value was written by an operation that completed before the
    /// acknowledged one was invoked, so it cannot have overwritten it.
    FinalValueIsOlder { writer: OpRef },
    /// The key ended absent, but every delete completed before the
    /// acknowledged write was invoked (or there was none).
    NoLaterDelete,
}

/// An acknowledged write, CAS or delete missing from the final state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostWrite {
    pub key: String,
    pub write: OpRef,
    pub final_value: Option<String>,
    pub reason: LostReason,
}

impl fmt::Display for LostWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {:?}: acknowledged {} was lost: final value {}",
            self.key,
            self.write,
            show_value(self.final_value.as_deref())
        )?;
        match &self.reason {
            LostReason::FinalValueIsOlder { writer } => {
                write!(f, " was written by {writer}, which completed before it was invoked")
            }
            LostReason::NoLaterDelete => write!(f, " but no delete could have come after it"),
        }
    }
}

/// The outcome of the durability check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurabilityReport {
    pub lost: Vec<LostWrite>,
    /// Final values that no operation that may have taken effect wrote:
    /// `(key, value)`. Writes to such keys are not judged further.
    pub phantom_finals: Vec<(String, String)>,
    /// Keys with acknowledged mutations but no entry in `final_values`: not
    /// judged (the harness failed to read them back).
    pub keys_without_final_value: Vec<String>,
}

impl DurabilityReport {
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.phantom_finals.is_empty()
    }
}

/// Durability: every acknowledged mutation of a key either produced the key's
/// final value (read back with `?consistent` after the cluster healed) or was
/// possibly overwritten: the operation that produced the final value may have
/// taken effect after it (it had not completed before the acknowledged one
/// was invoked, or it is indeterminate).
///
/// `final_values` maps key → final value (`None`: absent). Keys in it that
/// the history never touched must be absent.
pub fn check_durability(
    history: &[Operation],
    final_values: &BTreeMap<String, Option<String>>,
) -> DurabilityReport {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        if op.call.is_mutation() {
            by_key.entry(op.call.key()).or_default().push(i);
        }
    }
    let mut report = DurabilityReport::default();
    for (key, final_value) in final_values {
        if let (Some(v), false) = (final_value, by_key.contains_key(key.as_str())) {
            report.phantom_finals.push((key.clone(), v.clone()));
        }
    }
    for (key, ops) in by_key {
        let Some(final_value) = final_values.get(key) else {
            if ops.iter().any(|&i| acknowledged(&history[i])) {
                report.keys_without_final_value.push(key.to_string());
            }
            continue;
        };
        // The ops that could have produced the final state.
        let producers: Vec<usize> = ops
            .iter()
            .copied()
            .filter(|&i| may_have_taken_effect(&history[i]))
            .filter(|&i| match (&history[i].call, final_value) {
                (Call::Delete { .. }, None) => true,
                (call, Some(v)) => call.written_value() == Some(v.as_str()),
                _ => false,
            })
            .collect();
        if let (Some(v), true) = (final_value, producers.is_empty()) {
            report.phantom_finals.push((key.to_string(), v.clone()));
            continue;
        }
        let end = |i: usize| history[i].completed_at().unwrap_or(Time::MAX);
        for &a in ops.iter().filter(|&&i| acknowledged(&history[i])) {
            if producers.contains(&a) {
                continue;
            }
            let invoked = history[a].invoked_at;
            if producers.iter().any(|&p| end(p) >= invoked) {
                continue;
            }
            let reason = match producers.iter().max_by_key(|&&p| end(p)) {
                Some(&p) if final_value.is_some() => {
                    LostReason::FinalValueIsOlder { writer: op_ref(history, p) }
                }
                _ => LostReason::NoLaterDelete,
            };
            report.lost.push(LostWrite {
                key: key.to_string(),
                write: op_ref(history, a),
                final_value: final_value.clone(),
                reason,
            });
        }
    }
    let mut seen = BTreeSet::new();
    report.phantom_finals.retain(|p| seen.insert(p.clone()));
    report
}
