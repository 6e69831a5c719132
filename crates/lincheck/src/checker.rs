//! The linearizability checker's entry point: splits the history per key
//! (registers are independent, and linearizability is compositional, so the
//! whole history is linearizable iff every key's sub-history is), runs the
//! search on each key under a budget, optionally on several threads, and
//! turns search results into a [`Report`].
//!
//! Owns orchestration and explanation; the register rewrites live in
//! `prepare`, the algorithm in `search`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::history::{Operation, Time};
use super::prepare::{decompose, CheckError, KeyHistory, ValueId, ABSENT, UNREAD};
use super::report::{
    BudgetExceeded, KeyReport, KeyStats, KeyVerdict, LinearizedStep, OpRef, RegisterValue, Report, Violation,
};
use super::search::{search, Exhausted, Frontier, Limits, SearchResult};

/// Limits on the search; exceeding one gives `Unknown`, never a hang.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Search steps allowed for each key. The memo grows by at most one entry
    /// (about 25 bytes) per step, so this also bounds memory per key.
    pub max_steps_per_key: u64,
    /// Wall-clock limit for the whole check.
    pub time_limit: Option<Duration>,
}

impl Default for Budget {
    /// 20 M steps per key (≈ 0.5 GB of memo at worst) and 5 minutes.
    fn default() -> Self {
        Budget { max_steps_per_key: 20_000_000, time_limit: Some(Duration::from_secs(300)) }
    }
}

/// How to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Check default-mode reads too (`?consistent` reads are always checked,
    /// `?stale` reads never). Default-mode reads may legally be stale for a
    /// short window after a leader change, so a harness that partitions the
    /// leader may set this to false and check them with
    /// `properties::check_no_phantom_reads` only.
    pub check_default_reads: bool,
    pub budget: Budget,
    /// Keys are checked on this many threads (at least 1).
    pub threads: usize,
    /// How many operations of the longest linearizable prefix a violation
    /// shows.
    pub explain_tail: usize,
    /// `None` (default): an indeterminate write, CAS or delete may take
    /// effect at any time after its invocation, or never (completion +∞).
    /// `Some(h)`: assume it took effect within `h` (history time units,
    /// nanoseconds from `Recorder`) of its invocation, or never. Sound only if
    /// no request can be delayed longer — set it above the longest pause or
    /// partition the run injects plus the server's retry window. It bounds how
    /// long each timed-out request stays a wildcard, which keeps proving a
    /// violation in a long history with many timeouts affordable.
    pub indeterminate_horizon: Option<Time>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            check_default_reads: true,
            budget: Budget::default(),
            threads: 1,
            explain_tail: 10,
            indeterminate_horizon: None,
        }
    }
}

/// Checks that `history` is linearizable, key by key.
///
/// Errors only when the history itself is unusable (an invalid operation, or
/// a value written twice to a key, which breaks the unique-value contract);
/// a non-linearizable history is an `Ok` report with violations.
pub fn check_linearizability(history: &[Operation], options: &CheckOptions) -> Result<Report, CheckError> {
    let started = Instant::now();
    let deadline = options.budget.time_limit.map(|limit| started + limit);
    let keys = decompose(history, options.check_default_reads, options.indeterminate_horizon)?;
    let limits = Limits { max_steps: options.budget.max_steps_per_key, deadline, tail: options.explain_tail };

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<KeyReport>>> = Mutex::new(vec![None; keys.len()]);
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(kh) = keys.get(i) else { break };
        let report = check_key(kh, history, &limits, options.budget.time_limit);
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(report);
    };
    let threads = options.threads.clamp(1, keys.len().max(1));
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let keys = results.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| {
        CheckError::Internal("a key was left unchecked (a checker thread panicked)".to_string())
    })?;
    let report = Report { keys, elapsed: started.elapsed() };
    tracing::info!(
        target: "lincheck",
        verdict = %report.verdict(),
        keys = report.keys.len(),
        ops = report.ops_checked(),
        steps = report.steps(),
        elapsed_ms = report.elapsed.as_millis() as u64,
        "linearizability check finished"
    );
    Ok(report)
}

fn check_key(
    kh: &KeyHistory,
    history: &[Operation],
    limits: &Limits,
    time_limit: Option<Duration>,
) -> KeyReport {
    let started = Instant::now();
    let (result, s) = search(kh, limits);
    let stats = KeyStats {
        ops_total: kh.ops.len() + kh.skipped,
        ops_checked: kh.ops.len(),
        ops_skipped: kh.skipped,
        ops_indeterminate: kh.ops.iter().filter(|o| o.optional).count(),
        ops_resolved: kh.resolved,
        steps: s.steps,
        memo_entries: s.memo_entries,
        memo_bytes: s.memo_bytes,
        max_depth: s.max_depth,
        elapsed: started.elapsed(),
    };
    let verdict = match result {
        SearchResult::Linearizable => KeyVerdict::Linearizable,
        SearchResult::NotLinearizable(frontier) => {
            KeyVerdict::NotLinearizable(Box::new(explain(kh, history, &frontier)))
        }
        SearchResult::OutOfBudget(Exhausted::Steps) => {
            KeyVerdict::Unknown(BudgetExceeded::Steps(limits.max_steps))
        }
        SearchResult::OutOfBudget(Exhausted::Time) => {
            KeyVerdict::Unknown(BudgetExceeded::Time(time_limit.unwrap_or_default()))
        }
    };
    tracing::debug!(
        target: "lincheck",
        key = %kh.key,
        ops = stats.ops_checked,
        steps = stats.steps,
        memo_entries = stats.memo_entries,
        linearizable = matches!(verdict, KeyVerdict::Linearizable),
        "key checked"
    );
    KeyReport { key: kh.key.clone(), verdict, stats }
}

/// A register value for a report. `UNREAD` stands for any value no checked
/// op looked at; name the one `made_by` wrote when it is known.
fn value_of(kh: &KeyHistory, history: &[Operation], id: ValueId, made_by: Option<u32>) -> RegisterValue {
    let written = || {
        let op = kh.ops.get(made_by? as usize)?;
        history.get(op.index)?.call.written_value().map(|v| RegisterValue::Value(v.to_string()))
    };
    match id {
        ABSENT => RegisterValue::Absent,
        UNREAD => written().unwrap_or(RegisterValue::Unread),
        id => match kh.values.get(id as usize) {
            Some(Some(v)) => RegisterValue::Value(v.clone()),
            _ => RegisterValue::Unread,
        },
    }
}

fn op_ref(history: &[Operation], index: usize) -> OpRef {
    let summary = history.get(index).map_or_else(|| "<unknown operation>".to_string(), Operation::describe);
    OpRef { index, summary }
}

const MAX_CONCURRENT: usize = 32;

fn explain(kh: &KeyHistory, history: &[Operation], frontier: &Frontier) -> Violation {
    let blocked = &kh.ops[frontier.blocked as usize];
    // Overlap with the blocked op's interval, using the times the search used
    // (an indeterminate op's interval runs to +∞).
    let mut concurrent: Vec<&_> = kh
        .ops
        .iter()
        .filter(|o| o.index != blocked.index && o.call <= blocked.ret && blocked.call <= o.ret)
        .collect();
    // Definite ops first, in time order; then the indeterminate ones invoked
    // closest before it (those with +∞ returns overlap everything after).
    concurrent.sort_by_key(|o| {
        if o.ret == Time::MAX {
            (1, Time::MAX - o.call, o.index)
        } else {
            (0, o.call, o.index)
        }
    });
    Violation {
        key: kh.key.clone(),
        blocked: op_ref(history, blocked.index),
        possible_values: frontier.states.iter().map(|&(s, by)| value_of(kh, history, s, by)).collect(),
        concurrent: concurrent.into_iter().take(MAX_CONCURRENT).map(|o| op_ref(history, o.index)).collect(),
        prefix_len: frontier.prefix_len,
        prefix_tail: frontier
            .tail
            .iter()
            .map(|&(op, after, by)| LinearizedStep {
                op: op_ref(history, kh.ops[op as usize].index),
                value_after: value_of(kh, history, after, by),
            })
            .collect(),
    }
}
