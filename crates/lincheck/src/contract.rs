//! Verifies that a recorded history keeps the workload contract the checker
//! relies on (see `history`): values are unique per key, and each value of a
//! key pairs with exactly one `ModifyIndex` and back. If this fails, CAS by
//! value no longer matches Consul's CAS by index and a linearizability verdict
//! on that key means nothing — either the workload broke the contract or the
//! server reported inconsistent indexes. Owns this check only.

use std::collections::HashMap;
use std::fmt;

use super::history::{Call, Operation, Ret};

/// A place where the history breaks the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContractViolation {
    /// Two operations wrote the same value to the key.
    DuplicateValue { key: String, value: String, first: usize, second: usize },
    /// The same value was seen with two different `ModifyIndex`es.
    ValueWithTwoIndexes { key: String, value: String, indexes: (u64, u64), ops: (usize, usize) },
    /// Two different values were seen with the same `ModifyIndex`.
    IndexWithTwoValues { key: String, index: u64, values: (String, String), ops: (usize, usize) },
    /// A CAS whose expected value and index disagree: `?cas=0` must expect
    /// absent, and a non-zero index must expect a value.
    CasExpectation { op: usize, cause: String },
}

impl fmt::Display for ContractViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractViolation::DuplicateValue { key, value, first, second } => {
                write!(f, "key {key:?}: value {value:?} written by both #{first} and #{second}")
            }
            ContractViolation::ValueWithTwoIndexes { key, value, indexes, ops } => write!(
                f,
                "key {key:?}: value {value:?} seen at ModifyIndex {} (#{}) and {} (#{})",
                indexes.0, ops.0, indexes.1, ops.1
            ),
            ContractViolation::IndexWithTwoValues { key, index, values, ops } => write!(
                f,
                "key {key:?}: ModifyIndex {index} seen with {:?} (#{}) and {:?} (#{})",
                values.0, ops.0, values.1, ops.1
            ),
            ContractViolation::CasExpectation { op, cause } => write!(f, "#{op}: {cause}"),
        }
    }
}

/// Lists every contract breach in `history` (empty: the contract holds as far
/// as the history shows).
pub fn check_contract(history: &[Operation]) -> Vec<ContractViolation> {
    let mut found = Vec::new();
    let mut writer: HashMap<(&str, &str), usize> = HashMap::new();
    let mut index_of: HashMap<(&str, &str), (u64, usize)> = HashMap::new();
    let mut value_at: HashMap<(&str, u64), (&str, usize)> = HashMap::new();
    for (i, op) in history.iter().enumerate() {
        let key = op.call.key();
        if let Some(v) = op.call.written_value() {
            if let Some(&first) = writer.get(&(key, v)) {
                found.push(ContractViolation::DuplicateValue {
                    key: key.into(),
                    value: v.into(),
                    first,
                    second: i,
                });
            } else {
                writer.insert((key, v), i);
            }
        }
        // (value, index) pairs: what a read saw, or what a CAS client claims
        // it saw.
        let pair = match (&op.call, op.ret()) {
            (Call::Read { .. }, Some(Ret::Read { value: Some(v), index: Some(ix) })) => {
                Some((v.as_str(), *ix))
            }
            (Call::Cas { expected, expected_index: Some(ix), .. }, _) => match (expected, ix) {
                (None, 0) => None,
                (Some(v), ix) if *ix > 0 => Some((v.as_str(), *ix)),
                (None, ix) => {
                    found.push(ContractViolation::CasExpectation {
                        op: i,
                        cause: format!("expects the key absent but sends ?cas={ix}"),
                    });
                    None
                }
                (Some(v), _) => {
                    found.push(ContractViolation::CasExpectation {
                        op: i,
                        cause: format!("expects {v:?} but sends ?cas=0"),
                    });
                    None
                }
            },
            _ => None,
        };
        let Some((v, ix)) = pair else { continue };
        match index_of.get(&(key, v)) {
            Some(&(seen, at)) if seen != ix => found.push(ContractViolation::ValueWithTwoIndexes {
                key: key.into(),
                value: v.into(),
                indexes: (seen, ix),
                ops: (at, i),
            }),
            Some(_) => {}
            None => {
                index_of.insert((key, v), (ix, i));
            }
        }
        match value_at.get(&(key, ix)) {
            Some(&(seen, at)) if seen != v => found.push(ContractViolation::IndexWithTwoValues {
                key: key.into(),
                index: ix,
                values: (seen.into(), v.into()),
                ops: (at, i),
            }),
            Some(_) => {}
            None => {
                value_at.insert((key, ix), (v, i));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Outcome, ReadMode};

    fn read(v: &str, ix: u64) -> Operation {
        Operation {
            client: 1,
            call: Call::Read { key: "k".into(), mode: ReadMode::Consistent },
            invoked_at: 0,
            outcome: Outcome::Ok {
                completed_at: 1,
                ret: Ret::Read { value: Some(v.into()), index: Some(ix) },
            },
        }
    }
    fn cas(expected: Option<&str>, ix: u64, new: &str) -> Operation {
        Operation {
            client: 1,
            call: Call::Cas {
                key: "k".into(),
                expected: expected.map(String::from),
                expected_index: Some(ix),
                new: new.into(),
            },
            invoked_at: 0,
            outcome: Outcome::Ok { completed_at: 1, ret: Ret::Cas { swapped: false } },
        }
    }

    #[test]
    fn consistent_history_keeps_the_contract() {
        let h = vec![read("a", 5), cas(Some("a"), 5, "b"), read("b", 9), cas(None, 0, "c")];
        assert_eq!(check_contract(&h), vec![]);
    }

    #[test]
    fn each_breach_is_named() {
        let h = vec![read("a", 5), read("a", 6), read("b", 5), cas(Some("a"), 0, "x"), cas(None, 3, "x")];
        let found = check_contract(&h);
        assert_eq!(
            found,
            vec![
                ContractViolation::ValueWithTwoIndexes {
                    key: "k".into(),
                    value: "a".into(),
                    indexes: (5, 6),
                    ops: (0, 1)
                },
                ContractViolation::IndexWithTwoValues {
                    key: "k".into(),
                    index: 5,
                    values: ("a".into(), "b".into()),
                    ops: (0, 2)
                },
                ContractViolation::CasExpectation { op: 3, cause: "expects \"a\" but sends ?cas=0".into() },
                ContractViolation::DuplicateValue { key: "k".into(), value: "x".into(), first: 3, second: 4 },
                ContractViolation::CasExpectation {
                    op: 4,
                    cause: "expects the key absent but sends ?cas=3".into()
                },
            ]
        );
    }
}
