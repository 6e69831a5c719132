//! What the linearizability checker answers: an overall [`Verdict`], one
//! [`KeyReport`] per key with search statistics, and for a key that is not
//! linearizable a [`Violation`] a person can act on. Owns the result types and
//! their text form only; no checking happens here.

use std::fmt;
use std::time::Duration;

/// The answer for the whole history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key is linearizable.
    Linearizable,
    /// At least one key is not.
    NotLinearizable,
    /// No key is known to be wrong, but some ran out of budget.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown (budget exceeded)",
        })
    }
}

/// The answer for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    Linearizable,
    NotLinearizable(Box<Violation>),
    Unknown(BudgetExceeded),
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetExceeded {
    /// `Budget::max_steps_per_key` search steps were spent.
    Steps(u64),
    /// `Budget::time_limit` passed.
    Time(Duration),
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetExceeded::Steps(n) => write!(f, "unknown: step budget of {n} exceeded"),
            BudgetExceeded::Time(d) => write!(f, "unknown: time limit of {d:?} exceeded"),
        }
    }
}

/// What the search did for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Operations on the key in the input.
    pub ops_total: usize,
    /// Operations the search had to place (definite + indeterminate).
    pub ops_checked: usize,
    /// Left out: failed ops, indeterminate reads, unchecked read modes.
    pub ops_skipped: usize,
    /// Indeterminate writes/CAS still optional in the search.
    pub ops_indeterminate: usize,
    /// Indeterminate writes/CAS proven to have taken effect by a later read.
    pub ops_resolved: usize,
    /// Search steps (call entries tried, returns hit, backtracks).
    pub steps: u64,
    /// Configurations in the memo at the end.
    pub memo_entries: usize,
    /// Approximate memory held by the memo at the end.
    pub memo_bytes: usize,
    /// Deepest partial linearization.
    pub max_depth: usize,
    pub elapsed: Duration,
}

/// The report for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReport {
    pub key: String,
    pub verdict: KeyVerdict,
    pub stats: KeyStats,
}

/// A register value in an explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterValue {
    Absent,
    Value(String),
    /// One of the written values that no checked operation ever read (they
    /// are indistinguishable to the checker, so it does not track which).
    Unread,
}

impl fmt::Display for RegisterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterValue::Absent => f.write_str("absent"),
            RegisterValue::Value(v) => write!(f, "{v:?}"),
            RegisterValue::Unread => f.write_str("<a value no read observed>"),
        }
    }
}

/// An operation of the input history, by position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRef {
    /// Index in the history slice given to the checker (0-based; the JSONL
    /// line number minus one when read from a file without blank lines).
    pub index: usize,
    /// `Operation::describe`.
    pub summary: String,
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.index, self.summary)
    }
}

/// One op of a linearization and the register value right after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizedStep {
    pub op: OpRef,
    pub value_after: RegisterValue,
}

/// Why a key's sub-history is not linearizable: the furthest the search got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// The operation no valid order could fit before it returned.
    pub blocked: OpRef,
    /// The register values the search could be in when it had to place
    /// `blocked` (at most 16).
    pub possible_values: Vec<RegisterValue>,
    /// Operations whose interval overlaps `blocked`'s (at most 32).
    pub concurrent: Vec<OpRef>,
    /// Length of the longest linearizable prefix found.
    pub prefix_len: usize,
    /// Its last operations (`CheckOptions::explain_tail` of them).
    pub prefix_tail: Vec<LinearizedStep>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable: no order of operations fits {}", self.key, self.blocked)?;
        let values: Vec<String> = self.possible_values.iter().map(|v| v.to_string()).collect();
        writeln!(f, "  register value(s) possible when it had to take effect: {}", values.join(", "))?;
        writeln!(f, "  longest linearizable prefix: {} operation(s), ending with:", self.prefix_len)?;
        for step in &self.prefix_tail {
            writeln!(f, "    {}  => {}", step.op, step.value_after)?;
        }
        if self.concurrent.is_empty() {
            writeln!(f, "  no operation overlaps it")?;
        } else {
            writeln!(f, "  overlapping operations:")?;
            for op in &self.concurrent {
                writeln!(f, "    {op}")?;
            }
        }
        Ok(())
    }
}

/// The answer for a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// One per key, sorted by key.
    pub keys: Vec<KeyReport>,
    pub elapsed: Duration,
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        if self.keys.iter().any(|k| matches!(k.verdict, KeyVerdict::NotLinearizable(_))) {
            Verdict::NotLinearizable
        } else if self.keys.iter().any(|k| matches!(k.verdict, KeyVerdict::Unknown(_))) {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        }
    }

    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.keys.iter().filter_map(|k| match &k.verdict {
            KeyVerdict::NotLinearizable(v) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// Total operations the searches placed, over all keys.
    pub fn ops_checked(&self) -> usize {
        self.keys.iter().map(|k| k.stats.ops_checked).sum()
    }

    /// Total search steps, over all keys.
    pub fn steps(&self) -> u64 {
        self.keys.iter().map(|k| k.stats.steps).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({} keys, {} operations checked, {} steps, {:?})",
            self.verdict(),
            self.keys.len(),
            self.ops_checked(),
            self.steps(),
            self.elapsed
        )?;
        for k in &self.keys {
            match &k.verdict {
                KeyVerdict::Linearizable => {}
                KeyVerdict::NotLinearizable(v) => write!(f, "{v}")?,
                KeyVerdict::Unknown(why) => writeln!(f, "key {:?}: {why}", k.key)?,
            }
        }
        Ok(())
    }
}
