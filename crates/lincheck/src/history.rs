//! The history model: what a fault-harness client did to the KV store, one
//! [`Operation`] per request, with the times it was invoked and completed.
//!
//! Owns the operation types and their validation. It does not check anything
//! (see `checker` and `properties`) and does no IO (see `jsonl`, `recorder`).
//!
//! # Registers and CAS: the workload contract
//!
//! Every key is an independent register whose state is "absent" or a value.
//! Consul's `PUT ?cas=N` compares the key's `ModifyIndex`, not its value. The
//! checker models CAS as **compare-on-value** instead, which is equivalent
//! under this contract, and the harness must keep it:
//!
//! 1. every write and every CAS to a key carries a value never written to that
//!    key before (e.g. `"<client>-<seq>"`), and nothing else modifies checked
//!    keys (no lock acquire/release, flag-only updates or rewrites of a value);
//! 2. a CAS's expected value is the value the client read together with the
//!    index it passes as `?cas=N` (`expected: None` is `?cas=0`, "only if
//!    absent").
//!
//! Under (1) each `ModifyIndex` of a key belongs to exactly one value and back,
//! so "index is N" ⇔ "value is the one read at N". Modelling the index itself
//! was rejected: a Consul `PUT` answers only `true`, so writers never learn the
//! index they created and the checker would have to guess it. `contract`
//! verifies (1) and the value↔index bijection on the recorded history.
//!
//! # Time
//!
//! Times are nanoseconds on one monotonic clock shared by every client of a run
//! (the harness is one process: `Instant` since the run started, see
//! `recorder`). Only their order matters. An operation that got no answer is
//! [`Outcome::Indeterminate`]: it may take effect at any time after its
//! invocation, or never.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who issued an operation. Informational only: the checker does not assume
/// that a client's operations are sequential.
pub type ClientId = u64;

/// Nanoseconds on the run's monotonic clock.
pub type Time = u64;

/// The consistency mode a read asked for (`?consistent`, `?stale` or neither).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// No parameter: leader lease read.
    #[default]
    Default,
    /// `?consistent`: the leader confirms with a quorum first.
    Consistent,
    /// `?stale`: any server answers; never checked for linearizability.
    Stale,
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadMode::Default => "default",
            ReadMode::Consistent => "consistent",
            ReadMode::Stale => "stale",
        })
    }
}

/// What the client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `GET /v1/kv/<key>`.
    Read { key: String, mode: ReadMode },
    /// `PUT /v1/kv/<key>` with a value unique to this write.
    Write { key: String, value: String },
    /// `PUT /v1/kv/<key>?cas=<expected_index>`: succeeds only if the key holds
    /// `expected` (`None`: the key is absent, i.e. `?cas=0`).
    Cas {
        key: String,
        expected: Option<String>,
        /// The `ModifyIndex` sent; informational, used by `contract` only.
        expected_index: Option<u64>,
        new: String,
    },
    /// `DELETE /v1/kv/<key>` (unconditional).
    Delete { key: String },
}

impl Call {
    /// The register this call touches.
    pub fn key(&self) -> &str {
        match self {
            Call::Read { key, .. }
            | Call::Write { key, .. }
            | Call::Cas { key, .. }
            | Call::Delete { key } => key,
        }
    }

    /// Does this call change the register when it takes effect?
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Call::Read { .. })
    }

    /// The value this call writes, if any.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Call::Write { value, .. } => Some(value),
            Call::Cas { new, .. } => Some(new),
            Call::Read { .. } | Call::Delete { .. } => None,
        }
    }
}

/// What a completed call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A read's answer: the value (`None`: 404) and the `ModifyIndex` if known.
    Read { value: Option<String>, index: Option<u64> },
    /// A write or delete was acknowledged.
    Done,
    /// A CAS answered `true` (swapped) or `false`.
    Cas { swapped: bool },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Completed with a known result.
    Ok { completed_at: Time, ret: Ret },
    /// Completed with an error that proves it did not take effect (e.g. a 400).
    Failed { completed_at: Time, error: String },
    /// No usable answer (timeout, connection reset, 5xx): it may have taken
    /// effect at any time after invocation, or never. `gave_up_at` is when the
    /// client stopped waiting, for the reader's benefit only.
    Indeterminate { gave_up_at: Option<Time>, error: String },
}

/// One request of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: ClientId,
    pub call: Call,
    pub invoked_at: Time,
    pub outcome: Outcome,
}

impl Operation {
    /// The completion time of a definite outcome (`Ok` or `Failed`).
    pub fn completed_at(&self) -> Option<Time> {
        match self.outcome {
            Outcome::Ok { completed_at, .. } | Outcome::Failed { completed_at, .. } => Some(completed_at),
            Outcome::Indeterminate { .. } => None,
        }
    }

    /// The answer, when the operation completed successfully.
    pub fn ret(&self) -> Option<&Ret> {
        match &self.outcome {
            Outcome::Ok { ret, .. } => Some(ret),
            _ => None,
        }
    }

    pub fn is_indeterminate(&self) -> bool {
        matches!(self.outcome, Outcome::Indeterminate { .. })
    }

    /// Checks that the answer fits the call and that time does not run
    /// backwards; the error names the problem.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(done) = self.completed_at() {
            if done < self.invoked_at {
                return Err(format!("completed at {done} before it was invoked at {}", self.invoked_at));
            }
        }
        if let Outcome::Indeterminate { gave_up_at: Some(gave_up), .. } = self.outcome {
            if gave_up < self.invoked_at {
                return Err(format!("gave up at {gave_up} before it was invoked at {}", self.invoked_at));
            }
        }
        if let Some(ret) = self.ret() {
            let fits = matches!(
                (&self.call, ret),
                (Call::Read { .. }, Ret::Read { .. })
                    | (Call::Write { .. } | Call::Delete { .. }, Ret::Done)
                    | (Call::Cas { .. }, Ret::Cas { .. })
            );
            if !fits {
                return Err(format!("a {} cannot answer {}", call_name(&self.call), ret_name(ret)));
            }
        }
        Ok(())
    }

    /// A one-line human description, e.g.
    /// `client 3: cas "k" "v1"→"v2" = true [100, 150]`.
    pub fn describe(&self) -> String {
        let call = match &self.call {
            Call::Read { key, mode } => format!("read({mode}) {key:?}"),
            Call::Write { key, value } => format!("write {key:?} {value:?}"),
            Call::Cas { key, expected, new, .. } => {
                format!("cas {key:?} {}→{new:?}", show_value(expected.as_deref()))
            }
            Call::Delete { key } => format!("delete {key:?}"),
        };
        let (result, end) = match &self.outcome {
            Outcome::Ok { completed_at, ret } => {
                let r = match ret {
                    Ret::Read { value, .. } => show_value(value.as_deref()),
                    Ret::Done => "ok".to_string(),
                    Ret::Cas { swapped } => swapped.to_string(),
                };
                (r, completed_at.to_string())
            }
            Outcome::Failed { completed_at, error } => {
                (format!("failed ({error})"), completed_at.to_string())
            }
            Outcome::Indeterminate { error, .. } => (format!("unknown ({error})"), "∞".to_string()),
        };
        format!("client {}: {call} = {result} [{}, {end}]", self.client, self.invoked_at)
    }
}

/// Shows a register value: quoted, or `absent`.
pub fn show_value(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "absent".to_string(),
    }
}

fn call_name(call: &Call) -> &'static str {
    match call {
        Call::Read { .. } => "read",
        Call::Write { .. } => "write",
        Call::Cas { .. } => "cas",
        Call::Delete { .. } => "delete",
    }
}

fn ret_name(ret: &Ret) -> &'static str {
    match ret {
        Ret::Read { .. } => "a read result",
        Ret::Done => "a plain acknowledgement",
        Ret::Cas { .. } => "a cas result",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: Call, outcome: Outcome) -> Operation {
        Operation { client: 1, call, invoked_at: 10, outcome }
    }

    #[test]
    fn validate_rejects_mismatched_answer_and_backwards_time() {
        let read = Call::Read { key: "k".into(), mode: ReadMode::Consistent };
        let bad = op(read.clone(), Outcome::Ok { completed_at: 20, ret: Ret::Cas { swapped: true } });
        assert_eq!(bad.validate(), Err("a read cannot answer a cas result".to_string()));
        let backwards =
            op(read.clone(), Outcome::Ok { completed_at: 5, ret: Ret::Read { value: None, index: None } });
        assert_eq!(backwards.validate(), Err("completed at 5 before it was invoked at 10".to_string()));
        let fine = op(read, Outcome::Ok { completed_at: 10, ret: Ret::Read { value: None, index: None } });
        assert_eq!(fine.validate(), Ok(()));
        let gave_up = op(
            Call::Delete { key: "k".into() },
            Outcome::Indeterminate { gave_up_at: Some(3), error: "timeout".into() },
        );
        assert!(gave_up.validate().is_err());
    }

    #[test]
    fn describe_is_one_readable_line() {
        let cas = op(
            Call::Cas { key: "k".into(), expected: None, expected_index: Some(0), new: "v1".into() },
            Outcome::Ok { completed_at: 15, ret: Ret::Cas { swapped: true } },
        );
        assert_eq!(cas.describe(), r#"client 1: cas "k" absent→"v1" = true [10, 15]"#);
        let lost = op(
            Call::Write { key: "k".into(), value: "v2".into() },
            Outcome::Indeterminate { gave_up_at: None, error: "timeout".into() },
        );
        assert_eq!(lost.describe(), r#"client 1: write "k" "v2" = unknown (timeout) [10, ∞]"#);
    }
}
