//! Turns a history into independent per-key register problems for `search`.
//!
//! Owns every rewrite that keeps the verdict unchanged but makes the search
//! cheaper; each is justified where it happens:
//! - ops that cannot constrain the register are dropped (failed ops,
//!   indeterminate reads, stale reads and optionally default-mode reads);
//! - values are interned to `u32`; values no checked op ever looks at
//!   collapse into one `UNREAD` value, since nothing can tell them apart;
//! - an indeterminate write or CAS whose value was observed took effect, and
//!   before its first observer returned: it becomes definite, with that return
//!   time (otherwise its return would be +∞ and the search window unbounded);
//! - the remaining indeterminate ops are grouped into classes of identical
//!   effect, which the search uses for symmetry reduction.
//!
//! Must not know about the search algorithm's data structures.

use std::collections::{BTreeMap, HashMap};

use super::history::{Call, Operation, Outcome, ReadMode, Ret, Time};

/// Register value ids. 0 and 1 are reserved.
pub(crate) type ValueId = u32;
/// The key does not exist.
pub(crate) const ABSENT: ValueId = 0;
/// Some value that no checked operation reads or compares against.
pub(crate) const UNREAD: ValueId = 1;

/// What an operation does to the register, and what it requires of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// A read that returned this value.
    Read(ValueId),
    Write(ValueId),
    Delete,
    /// A CAS that swapped, or an indeterminate one (which only ever needs to
    /// be placed where it swaps: where it would fail it has no effect, the
    /// same as never taking effect).
    Swap {
        expected: ValueId,
        new: ValueId,
    },
    /// A CAS that answered false: the register did not hold `expected`.
    NoSwap {
        expected: ValueId,
    },
}

impl Step {
    /// Does the step change the register (when it applies)?
    #[inline]
    pub(crate) fn is_mutation(self) -> bool {
        !matches!(self, Step::Read(_) | Step::NoSwap { .. })
    }

    /// Does the step ignore the value it finds (a blind write or delete)?
    #[inline]
    pub(crate) fn is_blind(self) -> bool {
        matches!(self, Step::Write(_) | Step::Delete)
    }

    /// The sequential register: the state after the step, or `None` if the
    /// step's answer is impossible in `state`.
    #[inline]
    pub(crate) fn apply(self, state: ValueId) -> Option<ValueId> {
        match self {
            Step::Read(v) => (state == v).then_some(state),
            Step::Write(v) => Some(v),
            Step::Delete => Some(ABSENT),
            Step::Swap { expected, new } => (state == expected).then_some(new),
            Step::NoSwap { expected } => (state != expected).then_some(state),
        }
    }
}

/// One operation of a key's sub-history.
#[derive(Clone, Debug)]
pub(crate) struct KeyOp {
    /// Position in the input history.
    pub index: usize,
    pub step: Step,
    pub call: Time,
    /// `Time::MAX` for ops still indeterminate (without a horizon).
    pub ret: Time,
    /// May never have taken effect: an unresolved indeterminate mutation.
    pub optional: bool,
}

/// The register problem for one key.
#[derive(Debug)]
pub(crate) struct KeyHistory {
    pub key: String,
    /// Ops 0..definite_count go in the search's entry list (definite ones,
    /// and optional ones with a horizon); the rest are optional with no
    /// deadline and are grouped in `classes`.
    pub ops: Vec<KeyOp>,
    pub definite_count: usize,
    /// Indeterminate op ids grouped by identical `Step`, each class sorted by
    /// invocation; classes sorted by their first invocation.
    pub classes: Vec<Vec<u32>>,
    /// Classes of blind writes and deletes: they apply in every state.
    pub blind_classes: Vec<u32>,
    /// Classes of CAS by expected value: they apply only in that state, so
    /// the search looks only at those of the current value.
    pub swap_classes: HashMap<ValueId, Vec<u32>>,
    /// Display value of each id (index 0 = absent, 1 = unread).
    pub values: Vec<Option<String>>,
    pub skipped: usize,
    /// Indeterminate ops that were observed and became definite.
    pub resolved: usize,
}

/// The workload broke its contract; the checker cannot give a sound verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("invalid operation #{index}: {cause}")]
    InvalidOperation { index: usize, cause: String },
    #[error("value {value:?} is written twice to key {key:?} (operations #{first} and #{second}); the workload must write unique values")]
    DuplicateValue { key: String, value: String, first: usize, second: usize },
    #[error("failed to run the checker: {0}")]
    Internal(String),
}

/// Which reads take part in the linearizability check.
pub(crate) fn read_is_checked(mode: ReadMode, check_default_reads: bool) -> bool {
    match mode {
        ReadMode::Consistent => true,
        ReadMode::Default => check_default_reads,
        ReadMode::Stale => false,
    }
}

/// Splits `history` by key and prepares each key; keys come out sorted.
pub(crate) fn decompose(
    history: &[Operation],
    check_default_reads: bool,
    horizon: Option<Time>,
) -> Result<Vec<KeyHistory>, CheckError> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        op.validate().map_err(|cause| CheckError::InvalidOperation { index, cause })?;
        by_key.entry(op.call.key()).or_default().push(index);
    }
    by_key
        .into_iter()
        .map(|(key, indexes)| prepare_key(key, history, &indexes, check_default_reads, horizon))
        .collect()
}

/// Is this op part of the register problem? Failed ops did not happen;
/// indeterminate reads constrain nothing; unchecked read modes are excluded.
fn participates(op: &Operation, check_default_reads: bool) -> bool {
    match (&op.call, &op.outcome) {
        (_, Outcome::Failed { .. }) => false,
        (Call::Read { .. }, Outcome::Indeterminate { .. }) => false,
        (Call::Read { mode, .. }, _) => read_is_checked(*mode, check_default_reads),
        _ => true,
    }
}

fn prepare_key(
    key: &str,
    history: &[Operation],
    indexes: &[usize],
    check_default_reads: bool,
    horizon: Option<Time>,
) -> Result<KeyHistory, CheckError> {
    // Contract: every written value is unique for the key.
    let mut writer_of: HashMap<&str, usize> = HashMap::new();
    for &i in indexes {
        if let Some(v) = history[i].call.written_value() {
            if let Some(&first) = writer_of.get(v) {
                return Err(CheckError::DuplicateValue {
                    key: key.to_string(),
                    value: v.to_string(),
                    first,
                    second: i,
                });
            }
            writer_of.insert(v, i);
        }
    }

    let used: Vec<usize> =
        indexes.iter().copied().filter(|&i| participates(&history[i], check_default_reads)).collect();
    let skipped = indexes.len() - used.len();

    // Values some checked op looks at keep their identity; the rest are UNREAD.
    let mut values: Vec<Option<String>> = vec![None, None];
    let mut ids: HashMap<&str, ValueId> = HashMap::new();
    // The earliest time each value was seen. Reads of every mode count: a
    // server only returns applied, hence committed, data (followers apply
    // only committed entries), so a value any read returned was written before
    // that read returned; `check_no_phantom_reads` checks reads only return
    // written values. Unchecked reads are not interned: no searched op
    // compares against what they saw.
    let mut observed_by: HashMap<&str, Time> = HashMap::new();
    for &i in indexes {
        if let (Call::Read { .. }, Outcome::Ok { completed_at, ret: Ret::Read { value: Some(v), .. } }) =
            (&history[i].call, &history[i].outcome)
        {
            observe(&mut observed_by, v, *completed_at);
        }
    }
    for &i in &used {
        let op = &history[i];
        let completed = op.completed_at();
        match (&op.call, op.ret()) {
            (Call::Read { .. }, Some(Ret::Read { value: Some(v), .. })) => intern(v, &mut values, &mut ids),
            (Call::Cas { expected: Some(e), .. }, ret) => {
                intern(e, &mut values, &mut ids);
                if let (Some(Ret::Cas { swapped: true }), Some(t)) = (ret, completed) {
                    observe(&mut observed_by, e, t);
                }
            }
            _ => {}
        }
    }
    let id_of = |v: Option<&str>| -> ValueId {
        match v {
            None => ABSENT,
            Some(v) => ids.get(v).copied().unwrap_or(UNREAD),
        }
    };

    let mut definite: Vec<KeyOp> = Vec::new();
    let mut indeterminate: Vec<KeyOp> = Vec::new();
    let mut resolved = 0;
    for &index in &used {
        let op = &history[index];
        let step = match (&op.call, op.ret()) {
            (Call::Read { .. }, Some(Ret::Read { value, .. })) => Step::Read(id_of(value.as_deref())),
            (Call::Write { value, .. }, _) => Step::Write(id_of(Some(value))),
            (Call::Delete { .. }, _) => Step::Delete,
            (Call::Cas { expected, .. }, Some(Ret::Cas { swapped: false })) => {
                Step::NoSwap { expected: id_of(expected.as_deref()) }
            }
            (Call::Cas { expected, new, .. }, _) => {
                Step::Swap { expected: id_of(expected.as_deref()), new: id_of(Some(new)) }
            }
            // `participates` and `validate` leave no other combination.
            (Call::Read { .. }, _) => continue,
        };
        let call = op.invoked_at;
        match op.completed_at() {
            Some(ret) => definite.push(KeyOp { index, step, call, ret, optional: false }),
            None => {
                // Observed ⇒ it took effect (values are unique), and before the
                // first observer returned. Clamp so a read that returned the
                // value before it was even written still fails the search.
                match op.call.written_value().and_then(|v| observed_by.get(v)) {
                    Some(&seen) => {
                        resolved += 1;
                        // ... and within the horizon, if one is assumed.
                        let ret = seen.max(call).min(horizon.map_or(Time::MAX, |h| call.saturating_add(h)));
                        definite.push(KeyOp { index, step, call, ret, optional: false });
                    }
                    // With a horizon it goes in the entry list, with a
                    // deadline by which it took effect or never will.
                    None => match horizon {
                        Some(h) => definite.push(KeyOp {
                            index,
                            step,
                            call,
                            ret: call.saturating_add(h),
                            optional: true,
                        }),
                        None => {
                            indeterminate.push(KeyOp { index, step, call, ret: Time::MAX, optional: true })
                        }
                    },
                }
            }
        }
    }

    indeterminate.sort_by_key(|op| (op.call, op.index));
    let definite_count = definite.len();
    let mut ops = definite;
    let mut class_of: HashMap<Step, usize> = HashMap::new();
    let mut classes: Vec<Vec<u32>> = Vec::new();
    for op in indeterminate {
        let id = u32::try_from(ops.len())
            .map_err(|_| CheckError::Internal(format!("key {key:?} has more than 2^32 operations")))?;
        let class = *class_of.entry(op.step).or_insert_with(|| {
            classes.push(Vec::new());
            classes.len() - 1
        });
        classes[class].push(id);
        ops.push(op);
    }
    if u32::try_from(ops.len()).is_err() {
        return Err(CheckError::Internal(format!("key {key:?} has more than 2^32 operations")));
    }
    let mut blind_classes = Vec::new();
    let mut swap_classes: HashMap<ValueId, Vec<u32>> = HashMap::new();
    for (class, members) in classes.iter().enumerate() {
        let class = class as u32;
        match members.first().map(|&op| ops[op as usize].step) {
            Some(Step::Swap { expected, .. }) => swap_classes.entry(expected).or_default().push(class),
            Some(_) => blind_classes.push(class),
            None => {}
        }
    }
    Ok(KeyHistory {
        key: key.to_string(),
        ops,
        definite_count,
        classes,
        blind_classes,
        swap_classes,
        values,
        skipped,
        resolved,
    })
}

fn intern<'a>(v: &'a str, values: &mut Vec<Option<String>>, ids: &mut HashMap<&'a str, ValueId>) {
    if !ids.contains_key(v) {
        // More than 2^32 distinct values cannot fit a history in memory.
        let id = ValueId::try_from(values.len()).unwrap_or(ValueId::MAX);
        values.push(Some(v.to_string()));
        ids.insert(v, id);
    }
}

fn observe<'a>(observed_by: &mut HashMap<&'a str, Time>, v: &'a str, t: Time) {
    let seen = observed_by.entry(v).or_insert(t);
    *seen = (*seen).min(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Operation;

    fn ok(call: Call, inv: Time, done: Time, ret: Ret) -> Operation {
        Operation { client: 0, call, invoked_at: inv, outcome: Outcome::Ok { completed_at: done, ret } }
    }
    fn info(call: Call, inv: Time) -> Operation {
        Operation {
            client: 0,
            call,
            invoked_at: inv,
            outcome: Outcome::Indeterminate { gave_up_at: None, error: "timeout".into() },
        }
    }
    fn write(v: &str) -> Call {
        Call::Write { key: "k".into(), value: v.into() }
    }
    fn read(mode: ReadMode) -> Call {
        Call::Read { key: "k".into(), mode }
    }
    fn got(v: &str) -> Ret {
        Ret::Read { value: Some(v.into()), index: None }
    }

    #[test]
    fn observed_indeterminate_write_becomes_definite_until_first_observer() {
        let h = vec![
            info(write("a"), 10),
            info(write("b"), 11),
            info(write("c"), 12),
            ok(read(ReadMode::Consistent), 20, 30, got("a")),
            ok(read(ReadMode::Consistent), 25, 28, got("a")),
            ok(read(ReadMode::Stale), 13, 16, got("b")),
        ];
        let keys = decompose(&h, true, None).unwrap();
        let k = &keys[0];
        assert_eq!(k.resolved, 2);
        assert_eq!(k.skipped, 1, "the stale read is not checked");
        let a = k.ops.iter().find(|o| o.index == 0).unwrap();
        assert_eq!(a.ret, 28, "returns when its first observer returned");
        let b = k.ops.iter().find(|o| o.index == 1).unwrap();
        assert_eq!(b.ret, 16, "a stale read proves b was committed by 16");
        assert_eq!(b.step, Step::Write(UNREAD), "no checked op compares against b");
        let c = k.ops.iter().find(|o| o.index == 2).unwrap();
        assert_eq!(c.ret, Time::MAX);
        assert_eq!(k.definite_count, 4);
        assert_eq!(k.classes, vec![vec![4]]);
        assert_eq!(k.blind_classes, vec![0]);
    }

    #[test]
    fn duplicate_written_values_break_the_contract() {
        let h = vec![ok(write("a"), 1, 2, Ret::Done), info(write("a"), 3)];
        let err = decompose(&h, true, None).unwrap_err();
        assert_eq!(
            err,
            CheckError::DuplicateValue { key: "k".into(), value: "a".into(), first: 0, second: 1 }
        );
    }

    #[test]
    fn register_steps() {
        assert_eq!(Step::Read(5).apply(5), Some(5));
        assert_eq!(Step::Read(5).apply(6), None);
        assert_eq!(Step::Swap { expected: ABSENT, new: 7 }.apply(ABSENT), Some(7));
        assert_eq!(Step::Swap { expected: 3, new: 7 }.apply(UNREAD), None);
        assert_eq!(Step::NoSwap { expected: 3 }.apply(3), None);
        assert_eq!(Step::NoSwap { expected: 3 }.apply(UNREAD), Some(UNREAD));
        assert_eq!(Step::Delete.apply(9), Some(ABSENT));
    }
}
