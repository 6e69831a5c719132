//! JSON-lines (de)serialization of histories, so a long run can be saved and
//! re-checked offline. One operation per line, flat and short:
//!
//! ```text
//! {"client":1,"op":"read","key":"k","mode":"consistent","invoke":10,"complete":20,"status":"ok","read":"v1","index":7}
//! {"client":2,"op":"write","key":"k","value":"v2","invoke":12,"complete":30,"status":"ok"}
//! {"client":3,"op":"cas","key":"k","expected":"v1","expected_index":7,"value":"v3","invoke":14,"status":"info","error":"timeout"}
//! {"client":4,"op":"delete","key":"k","invoke":40,"complete":41,"status":"fail","error":"403 permission denied"}
//! ```
//!
//! `status` is `ok`, `fail` (did not take effect) or `info` (indeterminate,
//! `complete` then optionally says when the client gave up). `read` is the
//! value a read returned, `null` for absent; `expected` is `null` for `?cas=0`.
//! A CAS's new value is `value`; its answer is `swapped`. Unknown fields are
//! rejected so a typo cannot silently change a verdict.
//!
//! Owns only the wire format; never panics on input: every bad line becomes a
//! [`HistoryError`] naming the line and the cause.

use std::io::{BufRead, Write};

use serde::{Deserialize, Deserializer, Serialize};

use super::history::{Call, ClientId, Operation, Outcome, ReadMode, Ret, Time};

/// Why a history file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("failed to read history line {line}: {source}")]
    Io { line: usize, source: std::io::Error },
    #[error("failed to decode history line {line}: {cause}")]
    Decode { line: usize, cause: String },
    #[error("invalid operation on history line {line}: {cause}")]
    Invalid { line: usize, cause: String },
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum WireFn {
    Read,
    Write,
    Cas,
    Delete,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum WireStatus {
    Ok,
    Fail,
    Info,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WireOp {
    client: ClientId,
    op: WireFn,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<ReadMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    expected: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected_index: Option<u64>,
    invoke: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    complete: Option<Time>,
    status: WireStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    read: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    swapped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Distinguishes a field that is present and `null` (`Some(None)`) from one
/// that is missing (`None`, via `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl From<&Operation> for WireOp {
    fn from(op: &Operation) -> Self {
        let mut w = WireOp {
            client: op.client,
            op: WireFn::Read,
            key: op.call.key().to_string(),
            mode: None,
            value: None,
            expected: None,
            expected_index: None,
            invoke: op.invoked_at,
            complete: None,
            status: WireStatus::Ok,
            read: None,
            index: None,
            swapped: None,
            error: None,
        };
        match &op.call {
            Call::Read { mode, .. } => w.mode = Some(*mode),
            Call::Write { value, .. } => {
                w.op = WireFn::Write;
                w.value = Some(value.clone());
            }
            Call::Cas { expected, expected_index, new, .. } => {
                w.op = WireFn::Cas;
                w.expected = Some(expected.clone());
                w.expected_index = *expected_index;
                w.value = Some(new.clone());
            }
            Call::Delete { .. } => w.op = WireFn::Delete,
        }
        match &op.outcome {
            Outcome::Ok { completed_at, ret } => {
                w.complete = Some(*completed_at);
                match ret {
                    Ret::Read { value, index } => {
                        w.read = Some(value.clone());
                        w.index = *index;
                    }
                    Ret::Done => {}
                    Ret::Cas { swapped } => w.swapped = Some(*swapped),
                }
            }
            Outcome::Failed { completed_at, error } => {
                w.status = WireStatus::Fail;
                w.complete = Some(*completed_at);
                w.error = Some(error.clone());
            }
            Outcome::Indeterminate { gave_up_at, error } => {
                w.status = WireStatus::Info;
                w.complete = *gave_up_at;
                w.error = Some(error.clone());
            }
        }
        w
    }
}

impl TryFrom<WireOp> for Operation {
    type Error = String;

    fn try_from(w: WireOp) -> Result<Self, String> {
        let call = match w.op {
            WireFn::Read => Call::Read { key: w.key, mode: w.mode.unwrap_or_default() },
            WireFn::Write => Call::Write { key: w.key, value: w.value.ok_or("a write needs \"value\"")? },
            WireFn::Cas => Call::Cas {
                key: w.key,
                expected: w.expected.ok_or("a cas needs \"expected\" (null for ?cas=0)")?,
                expected_index: w.expected_index,
                new: w.value.ok_or("a cas needs \"value\" (the new value)")?,
            },
            WireFn::Delete => Call::Delete { key: w.key },
        };
        let outcome = match w.status {
            WireStatus::Ok => {
                let completed_at = w.complete.ok_or("status ok needs \"complete\"")?;
                let ret = match w.op {
                    WireFn::Read => Ret::Read {
                        value: w.read.ok_or("an ok read needs \"read\" (null for absent)")?,
                        index: w.index,
                    },
                    WireFn::Write | WireFn::Delete => Ret::Done,
                    WireFn::Cas => Ret::Cas { swapped: w.swapped.ok_or("an ok cas needs \"swapped\"")? },
                };
                Outcome::Ok { completed_at, ret }
            }
            WireStatus::Fail => Outcome::Failed {
                completed_at: w.complete.ok_or("status fail needs \"complete\"")?,
                error: w.error.unwrap_or_default(),
            },
            WireStatus::Info => {
                Outcome::Indeterminate { gave_up_at: w.complete, error: w.error.unwrap_or_default() }
            }
        };
        let op = Operation { client: w.client, call, invoked_at: w.invoke, outcome };
        op.validate()?;
        Ok(op)
    }
}

impl Operation {
    /// This operation as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of strings and integers cannot fail; fall back
        // to an empty object rather than panic if serde_json ever disagrees.
        serde_json::to_string(&WireOp::from(self)).unwrap_or_else(|_| "{}".to_string())
    }

    /// Parses one JSON line; the error says what is wrong with it.
    pub fn from_json_line(line: &str) -> Result<Operation, String> {
        let wire: WireOp = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Operation::try_from(wire)
    }
}

/// Writes `history` as JSON lines.
pub fn write_jsonl<W: Write>(history: &[Operation], mut out: W) -> std::io::Result<()> {
    for op in history {
        out.write_all(op.to_json_line().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a JSON-lines history; blank lines are skipped. Lines are numbered
/// from 1 in errors.
pub fn read_jsonl<R: BufRead>(input: R) -> Result<Vec<Operation>, HistoryError> {
    let mut history = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|source| HistoryError::Io { line: line_no, source })?;
        if line.trim().is_empty() {
            continue;
        }
        let wire: WireOp = serde_json::from_str(&line)
            .map_err(|e| HistoryError::Decode { line: line_no, cause: e.to_string() })?;
        let op = Operation::try_from(wire).map_err(|cause| HistoryError::Invalid { line: line_no, cause })?;
        history.push(op);
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Operation> {
        vec![
            Operation {
                client: 1,
                call: Call::Read { key: "k".into(), mode: ReadMode::Consistent },
                invoked_at: 10,
                outcome: Outcome::Ok { completed_at: 20, ret: Ret::Read { value: None, index: Some(0) } },
            },
            Operation {
                client: 1,
                call: Call::Read { key: "k".into(), mode: ReadMode::Stale },
                invoked_at: 21,
                outcome: Outcome::Ok {
                    completed_at: 22,
                    ret: Ret::Read { value: Some("v1".into()), index: None },
                },
            },
            Operation {
                client: 2,
                call: Call::Write { key: "k".into(), value: "v1".into() },
                invoked_at: 12,
                outcome: Outcome::Ok { completed_at: 30, ret: Ret::Done },
            },
            Operation {
                client: 3,
                call: Call::Cas {
                    key: "k".into(),
                    expected: None,
                    expected_index: Some(0),
                    new: "v3".into(),
                },
                invoked_at: 14,
                outcome: Outcome::Indeterminate { gave_up_at: Some(99), error: "timeout".into() },
            },
            Operation {
                client: 3,
                call: Call::Cas {
                    key: "k".into(),
                    expected: Some("v1".into()),
                    expected_index: None,
                    new: "v4".into(),
                },
                invoked_at: 100,
                outcome: Outcome::Ok { completed_at: 101, ret: Ret::Cas { swapped: false } },
            },
            Operation {
                client: 4,
                call: Call::Delete { key: "k".into() },
                invoked_at: 40,
                outcome: Outcome::Failed { completed_at: 41, error: "403".into() },
            },
        ]
    }

    #[test]
    fn round_trips_every_kind_of_operation() {
        let history = sample();
        let mut buf = Vec::new();
        write_jsonl(&history, &mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.lines().count(), history.len());
        assert!(text.contains(r#""read":null"#), "absent read must be an explicit null: {text}");
        assert!(text.contains(r#""expected":null"#), "cas=0 must be an explicit null: {text}");
        let back = read_jsonl(buf.as_slice()).unwrap();
        assert_eq!(back, history);
    }

    #[test]
    fn garbage_lines_are_errors_with_line_numbers() {
        let cases = [
            ("\n{not json}\n", "failed to decode history line 2"),
            (r#"{"client":1,"op":"read","key":"k","invoke":1,"complete":2,"status":"ok"}"#, "needs \"read\""),
            (
                r#"{"client":1,"op":"cas","key":"k","value":"x","invoke":1,"complete":2,"status":"ok","swapped":true}"#,
                "needs \"expected\"",
            ),
            (
                r#"{"client":1,"op":"write","key":"k","value":"x","invoke":5,"complete":2,"status":"ok"}"#,
                "completed at 2 before",
            ),
            (
                r#"{"client":1,"op":"write","key":"k","value":"x","invoke":1,"complete":2,"status":"ok","swaped":true}"#,
                "unknown field",
            ),
            (
                r#"{"client":1,"op":"read","key":"k","invoke":1,"status":"ok","read":null}"#,
                "needs \"complete\"",
            ),
            (r#"{"client":-1,"op":"read","key":"k","invoke":1,"status":"info"}"#, "failed to decode"),
        ];
        for (input, want) in cases {
            let err = read_jsonl(input.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "input {input:?}: got {err:?}, want {want:?}");
        }
    }
}
