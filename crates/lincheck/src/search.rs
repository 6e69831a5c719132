//! The linearizability search for one register: Wing & Gong's depth-first
//! search over the ordered list of call/return entries, with Lowe's memo of
//! already-explored configurations (linearized set, register value, optional
//! ops consumed).
//!
//! Owns the search and its budget; knows nothing of keys, files or reports.
//!
//! # How it works
//! Definite ops are laid out as call and return entries in time order (a call
//! sorts before a return at the same instant, so touching intervals count as
//! concurrent) in a doubly linked list. From the head, the search tries each
//! call entry before the first return entry: if the op's answer fits the
//! current value, the op is linearized — its two entries are unlinked and the
//! scan restarts at the head. Reaching a return entry means that op had to be
//! linearized already, so the search backtracks (relinking in reverse order).
//! The list empty means every definite op is linearized: success.
//!
//! Forced moves: a pending read or failed CAS that fits the current value is
//! linearized at once and its configuration tries nothing else. In any
//! successful completion it can be moved to this point: it changes nothing,
//! and nothing still pending had to precede it (it is before the first return
//! entry). Only mutations branch.
//!
//! Optional ops (indeterminate ones no read proved) are tried only when the
//! scan reaches a return entry, if invoked by then; one never placed never
//! took effect, which is why success needs only the definite ops. Right after
//! an optional op the next op must depend on the value (a blind write or
//! delete would make it pointless, and the order without it is explored
//! anyway). Without a horizon they have no return entry and sit in classes of
//! identical effect, linearized in invocation order within a class (symmetry:
//! swapping two members of a valid linearization keeps it valid, as neither
//! has a return bound and the earlier-invoked one can take the earlier slot).
//! With a horizon they are in the entry list; at their return entry the search
//! first assumes they never took effect ("dropped").
//!
//! The memo of explored configurations, with its Zobrist hashing and
//! dominance rule, is in `memo`.

use std::time::Instant;

use super::history::Time;
use super::memo::Memo;
use super::prepare::{KeyHistory, KeyOp, Step, ValueId, ABSENT};

/// How much the search may spend on one key.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub max_steps: u64,
    pub deadline: Option<Instant>,
    /// How many ops of the longest linearizable prefix to keep for a report.
    pub tail: usize,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    pub steps: u64,
    pub memo_entries: usize,
    pub memo_bytes: usize,
    pub max_depth: usize,
}

/// The furthest point the search reached in a history it could not
/// linearize.
#[derive(Clone, Debug)]
pub(crate) struct Frontier {
    /// The op whose return the search could never get past.
    pub blocked: u32,
    /// Its return entry (position in time order), to compare frontiers.
    blocked_entry: u32,
    /// Length of the linearized prefix when that point was first reached.
    pub prefix_len: usize,
    /// The prefix's last ops with the register value after each and the op
    /// that produced that value (if found).
    pub tail: Vec<(u32, ValueId, Option<u32>)>,
    /// Register values seen at that point (at most `MAX_STATES`), each with
    /// the op that produced it in one linearization reaching that point.
    pub states: Vec<(ValueId, Option<u32>)>,
}

const MAX_STATES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Steps,
    Time,
}

#[derive(Clone, Debug)]
pub(crate) enum SearchResult {
    Linearizable,
    NotLinearizable(Frontier),
    OutOfBudget(Exhausted),
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum Cursor {
    /// A configuration just reached: look for a forced move first.
    Fresh,
    /// Scanning the entry list for mutations to try, at this entry.
    Scan(u32),
    /// The scan reached return entry `blocked`; try optional classes from
    /// candidate `from` on.
    Optional { blocked: u32, from: usize },
    /// The configuration has no (more) successful continuation: undo the
    /// last step.
    Backtrack,
}

enum FrameKind {
    /// A read or failed CAS that fit the current value: linearizing it at
    /// once loses nothing, so its configuration has no other branch to try.
    Forced,
    /// A definite mutation, one of several candidates.
    Definite,
    /// An optional op, the `candidate`-th tried at the return entry
    /// `blocked`: from `class`, or (`None`) one in the entry list. The
    /// consumed vector before it was `prev_consumed`.
    Optional { class: Option<usize>, candidate: usize, blocked: u32, prev_consumed: u32 },
    /// An optional op in the entry list reached its deadline unlinearized:
    /// it never took effect.
    Dropped,
}

/// An optional op worth trying at a stuck point.
#[derive(Clone, Copy)]
enum Candidate {
    /// In the entry list (an indeterminate op with a horizon).
    Listed(u32),
    /// The next member of a class (indeterminate ops with no deadline).
    Class(usize),
}

struct Frame {
    op: u32,
    prev_state: ValueId,
    kind: FrameKind,
}

const HEAD: u32 = 0;

/// The entry list: index 0 is the head sentinel, 1..=E the entries in time
/// order, E+1 the tail sentinel.
struct Entries {
    time: Vec<Time>,
    op: Vec<u32>,
    is_return: Vec<bool>,
    next: Vec<u32>,
    prev: Vec<u32>,
    call_entry: Vec<u32>,
    return_entry: Vec<u32>,
    tail: u32,
}

impl Entries {
    fn new(kh: &KeyHistory) -> Entries {
        let n = kh.definite_count;
        let mut order: Vec<(Time, bool, u32)> = Vec::with_capacity(2 * n);
        for (id, op) in kh.ops[..n].iter().enumerate() {
            // `prepare` guarantees op ids fit in u32.
            order.push((op.call, false, id as u32));
            order.push((op.ret, true, id as u32));
        }
        order.sort_unstable();
        let len = order.len() + 2;
        let tail = (len - 1) as u32;
        let mut e = Entries {
            time: vec![0; len],
            op: vec![0; len],
            is_return: vec![false; len],
            next: (1..=len as u32).collect(),
            prev: (0..len as u32).map(|i| i.saturating_sub(1)).collect(),
            call_entry: vec![0; n],
            return_entry: vec![0; n],
            tail,
        };
        for (pos, &(time, is_return, op)) in order.iter().enumerate() {
            let entry = pos + 1;
            e.time[entry] = time;
            e.op[entry] = op;
            e.is_return[entry] = is_return;
            if is_return {
                e.return_entry[op as usize] = entry as u32;
            } else {
                e.call_entry[op as usize] = entry as u32;
            }
        }
        e
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_entry[op as usize]);
        self.unlink(self.return_entry[op as usize]);
    }

    /// Exactly undoes the matching `lift` (dancing links: undo in reverse).
    fn unlift(&mut self, op: u32) {
        self.relink(self.return_entry[op as usize]);
        self.relink(self.call_entry[op as usize]);
    }

    fn first(&self) -> u32 {
        self.next[HEAD as usize]
    }
}

/// Searches for a linearization of one key's sub-history.
pub(crate) fn search(kh: &KeyHistory, limits: &Limits) -> (SearchResult, Stats) {
    let mut entries = Entries::new(kh);
    let mut seed = 0x5EED_0F11_C4EC_4B00_u64;
    let zobrist: Vec<(u64, u64)> =
        (0..kh.definite_count).map(|_| (splitmix64(&mut seed), splitmix64(&mut seed))).collect();
    let mut class_pos: Vec<usize> = vec![0; kh.classes.len()];

    let mut memo = Memo::new();
    // What optional ops were consumed: interned id and sparse form.
    let mut consumed_id: u32 = 0;
    let mut consumed: Vec<(u32, u32)> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Dropped frames on the stack (not part of the linearization shown).
    let mut dropped = 0usize;
    let mut state: ValueId = ABSENT;
    let (mut lo, mut hi) = (0u64, 0u64);
    let mut stats = Stats::default();
    let mut frontier: Option<Frontier> = None;

    let finish = |result: SearchResult, mut stats: Stats, memo: &Memo| {
        stats.memo_entries = memo.len();
        stats.memo_bytes = memo.bytes();
        (result, stats)
    };

    let mut cursor = Cursor::Fresh;
    loop {
        stats.steps += 1;
        if stats.steps >= limits.max_steps {
            return finish(SearchResult::OutOfBudget(Exhausted::Steps), stats, &memo);
        }
        // Check the clock on the first step and every 4096 after.
        if stats.steps % 4096 == 1 {
            if let Some(deadline) = limits.deadline {
                if Instant::now() >= deadline {
                    return finish(SearchResult::OutOfBudget(Exhausted::Time), stats, &memo);
                }
            }
        }
        match cursor {
            Cursor::Fresh => {
                if entries.first() == entries.tail {
                    return finish(SearchResult::Linearizable, stats, &memo);
                }
                // A candidate read or failed CAS that fits the current value
                // can be linearized right now: in any successful completion it
                // can be moved here (it changes nothing, and nothing pending
                // had to come before it), so there is nothing else to try.
                cursor = Cursor::Scan(entries.first());
                let mut e = entries.first();
                while e != entries.tail {
                    let op = entries.op[e as usize];
                    if entries.is_return[e as usize] {
                        // An optional op at its deadline: try "it never took
                        // effect" first; applying it now is tried if that fails.
                        if kh.ops[op as usize].optional {
                            let (zl, zh) = zobrist[op as usize];
                            if memo.visit(lo ^ zl, hi ^ zh, state, consumed_id, &class_pos) {
                                stack.push(Frame { op, prev_state: state, kind: FrameKind::Dropped });
                                dropped += 1;
                                entries.lift(op);
                                lo ^= zl;
                                hi ^= zh;
                                cursor = Cursor::Fresh;
                            }
                        }
                        break;
                    }
                    let step = kh.ops[op as usize].step;
                    if !kh.ops[op as usize].optional && !step.is_mutation() && step.apply(state).is_some() {
                        let (zl, zh) = zobrist[op as usize];
                        cursor = if memo.visit(lo ^ zl, hi ^ zh, state, consumed_id, &class_pos) {
                            stack.push(Frame { op, prev_state: state, kind: FrameKind::Forced });
                            stats.max_depth = stats.max_depth.max(stack.len());
                            entries.lift(op);
                            lo ^= zl;
                            hi ^= zh;
                            Cursor::Fresh
                        } else {
                            // Its successor was explored and failed: so did this.
                            Cursor::Backtrack
                        };
                        break;
                    }
                    e = entries.next[e as usize];
                }
            }
            Cursor::Scan(e) => {
                if e == entries.tail || entries.is_return[e as usize] {
                    // `tail` cannot be reached while the list is non-empty
                    // (every call precedes its return); treat it as blocked.
                    cursor = Cursor::Optional { blocked: e, from: 0 };
                    continue;
                }
                cursor = Cursor::Scan(entries.next[e as usize]);
                let op = entries.op[e as usize];
                let step = kh.ops[op as usize].step;
                // Reads and failed CAS were settled by `Fresh`; right after an
                // optional op, blind ones would be pointless.
                if kh.ops[op as usize].optional
                    || !step.is_mutation()
                    || (follows_optional(&stack) && step.is_blind())
                {
                    continue;
                }
                let Some(next_state) = step.apply(state) else { continue };
                let (zl, zh) = zobrist[op as usize];
                if memo.visit(lo ^ zl, hi ^ zh, next_state, consumed_id, &class_pos) {
                    stack.push(Frame { op, prev_state: state, kind: FrameKind::Definite });
                    stats.max_depth = stats.max_depth.max(stack.len());
                    entries.lift(op);
                    state = next_state;
                    lo ^= zl;
                    hi ^= zh;
                    cursor = Cursor::Fresh;
                }
            }
            Cursor::Optional { blocked, from } => {
                let deadline_time = entries.time.get(blocked as usize).copied().unwrap_or(Time::MAX);
                cursor = Cursor::Backtrack;
                let after_optional = follows_optional(&stack);
                let mut i = from;
                while let Some(candidate) = optional_candidate(kh, &entries, state, blocked, i) {
                    i += 1;
                    let (op, class) = match candidate {
                        Candidate::Listed(op) => (op, None),
                        Candidate::Class(class) => match kh.classes[class].get(class_pos[class]) {
                            Some(&op) => (op, Some(class)),
                            None => continue,
                        },
                    };
                    let candidate_op = &kh.ops[op as usize];
                    // Right after an optional op, a blind one would be pointless.
                    if candidate_op.call > deadline_time || (after_optional && candidate_op.step.is_blind()) {
                        continue;
                    }
                    let Some(next_state) = candidate_op.step.apply(state) else { continue };
                    let kind =
                        FrameKind::Optional { class, candidate: i - 1, blocked, prev_consumed: consumed_id };
                    match class {
                        None => {
                            let (zl, zh) = zobrist[op as usize];
                            if memo.visit(lo ^ zl, hi ^ zh, next_state, consumed_id, &class_pos) {
                                stack.push(Frame { op, prev_state: state, kind });
                                entries.lift(op);
                                lo ^= zl;
                                hi ^= zh;
                            } else {
                                continue;
                            }
                        }
                        Some(class) => {
                            class_pos[class] += 1;
                            let next_consumed = with_one_more(&consumed, class as u32);
                            let next_id = memo.intern(&next_consumed);
                            if memo.visit(lo, hi, next_state, next_id, &class_pos) {
                                stack.push(Frame { op, prev_state: state, kind });
                                consumed = next_consumed;
                                consumed_id = next_id;
                            } else {
                                class_pos[class] -= 1;
                                continue;
                            }
                        }
                    }
                    stats.max_depth = stats.max_depth.max(stack.len());
                    state = next_state;
                    cursor = Cursor::Fresh;
                    break;
                }
                if matches!(cursor, Cursor::Backtrack) {
                    record_frontier(
                        &mut frontier,
                        &entries,
                        &kh.ops,
                        blocked,
                        &stack,
                        dropped,
                        state,
                        limits.tail,
                    );
                }
            }
            Cursor::Backtrack => {
                let Some(frame) = stack.pop() else {
                    return match frontier {
                        Some(f) => finish(SearchResult::NotLinearizable(f), stats, &memo),
                        // Unreachable: the search is stuck somewhere before
                        // it can run out of frames.
                        None => finish(SearchResult::OutOfBudget(Exhausted::Steps), stats, &memo),
                    };
                };
                state = frame.prev_state;
                cursor = match frame.kind {
                    FrameKind::Forced | FrameKind::Definite => {
                        let (zl, zh) = zobrist[frame.op as usize];
                        lo ^= zl;
                        hi ^= zh;
                        entries.unlift(frame.op);
                        match frame.kind {
                            FrameKind::Forced => Cursor::Backtrack,
                            _ => Cursor::Scan(entries.next[entries.call_entry[frame.op as usize] as usize]),
                        }
                    }
                    FrameKind::Optional { class: Some(class), candidate, blocked, prev_consumed } => {
                        class_pos[class] -= 1;
                        consumed_id = prev_consumed;
                        consumed = memo.consumed(prev_consumed).to_vec();
                        Cursor::Optional { blocked, from: candidate + 1 }
                    }
                    FrameKind::Optional { class: None, candidate, blocked, .. } => {
                        let (zl, zh) = zobrist[frame.op as usize];
                        lo ^= zl;
                        hi ^= zh;
                        entries.unlift(frame.op);
                        Cursor::Optional { blocked, from: candidate + 1 }
                    }
                    FrameKind::Dropped => {
                        dropped -= 1;
                        let (zl, zh) = zobrist[frame.op as usize];
                        lo ^= zl;
                        hi ^= zh;
                        entries.unlift(frame.op);
                        Cursor::Scan(entries.first())
                    }
                };
            }
        }
    }
}

/// The `i`-th optional op worth trying in `state` when stuck at `blocked`:
/// the optional ops of the entry list invoked before it, then every blind
/// class, then the CAS classes expecting `state`. Deterministic for a given
/// configuration, so a backtracked frame can resume at `i + 1`.
fn optional_candidate(
    kh: &KeyHistory,
    entries: &Entries,
    state: ValueId,
    blocked: u32,
    i: usize,
) -> Option<Candidate> {
    let mut listed = 0;
    let mut e = entries.first();
    while e != blocked && e != entries.tail {
        let op = entries.op[e as usize];
        if !entries.is_return[e as usize] && kh.ops[op as usize].optional {
            if listed == i {
                return Some(Candidate::Listed(op));
            }
            listed += 1;
        }
        e = entries.next[e as usize];
    }
    let i = i - listed;
    match kh.blind_classes.get(i) {
        Some(&class) => Some(Candidate::Class(class as usize)),
        None => kh
            .swap_classes
            .get(&state)?
            .get(i - kh.blind_classes.len())
            .map(|&c| Candidate::Class(c as usize)),
    }
}

/// `consumed` with one more op of `class`.
fn with_one_more(consumed: &[(u32, u32)], class: u32) -> Vec<(u32, u32)> {
    let mut next = consumed.to_vec();
    match next.binary_search_by_key(&class, |&(c, _)| c) {
        Ok(i) => next[i].1 += 1,
        Err(i) => next.insert(i, (class, 1)),
    }
    next
}

/// Was the last op linearized an optional (indeterminate) one? Then the next
/// op must depend on the register value: were it blind (a write or delete),
/// the optional op would have had no effect at all, and the same
/// linearization without it — the op never took effect — is explored anyway.
/// Without this rule, every stuck point would try every subset of the
/// optional ops available there.
#[inline]
fn follows_optional(stack: &[Frame]) -> bool {
    matches!(stack.last(), Some(Frame { kind: FrameKind::Optional { .. }, .. }))
}

/// Remembers the furthest return entry the search was ever stuck at, the
/// prefix that got there and the register values it was stuck with.
#[allow(clippy::too_many_arguments)] // the search state it snapshots, passed apart to keep borrows disjoint
fn record_frontier(
    frontier: &mut Option<Frontier>,
    entries: &Entries,
    ops: &[KeyOp],
    blocked: u32,
    stack: &[Frame],
    dropped: usize,
    state: ValueId,
    tail: usize,
) {
    let blocked_op = entries.op.get(blocked as usize).copied().unwrap_or(0);
    match frontier {
        Some(f) if f.blocked_entry > blocked => {}
        Some(f) if f.blocked_entry == blocked => {
            if f.states.len() < MAX_STATES && !f.states.iter().any(|&(s, _)| s == state) {
                f.states.push((state, producer(ops, stack, stack.len())));
            }
        }
        _ => {
            // The last `tail` frames that linearized something (dropped ops
            // never took effect and are not shown).
            let mut start = stack.len();
            let mut shown = 0;
            while start > 0 && shown < tail {
                start -= 1;
                if !matches!(stack[start].kind, FrameKind::Dropped) {
                    shown += 1;
                }
            }
            let mut made_by = producer(ops, stack, start);
            let tail_ops = (start..stack.len())
                .filter_map(|i| {
                    if matches!(stack[i].kind, FrameKind::Dropped) {
                        return None;
                    }
                    let after = stack.get(i + 1).map_or(state, |next| next.prev_state);
                    if changes_value(ops[stack[i].op as usize].step) {
                        made_by = Some(stack[i].op);
                    }
                    Some((stack[i].op, after, made_by))
                })
                .collect();
            *frontier = Some(Frontier {
                blocked: blocked_op,
                blocked_entry: blocked,
                prefix_len: stack.len() - dropped,
                tail: tail_ops,
                states: vec![(state, producer(ops, stack, stack.len()))],
            });
        }
    }
}

fn changes_value(step: Step) -> bool {
    step.is_mutation()
}

/// The op that produced the register value after the first `len` frames, so
/// a report can name a value the checker only knows as `UNREAD`. Looks back a
/// bounded distance to keep recording cheap.
fn producer(ops: &[KeyOp], stack: &[Frame], len: usize) -> Option<u32> {
    stack[..len]
        .iter()
        .rev()
        .take(PRODUCER_LOOKBACK)
        .find(|f| !matches!(f.kind, FrameKind::Dropped) && changes_value(ops[f.op as usize].step))
        .map(|f| f.op)
}

const PRODUCER_LOOKBACK: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::UNREAD;

    fn kh(ops: Vec<(Step, Time, Time)>) -> KeyHistory {
        let mut definite: Vec<KeyOp> = Vec::new();
        let mut indeterminate: Vec<KeyOp> = Vec::new();
        for (index, (step, call, ret)) in ops.into_iter().enumerate() {
            let op = KeyOp { index, step, call, ret, optional: ret == Time::MAX };
            if ret == Time::MAX {
                indeterminate.push(op)
            } else {
                definite.push(op)
            }
        }
        let definite_count = definite.len();
        let mut all = definite;
        let mut classes = Vec::new();
        for op in indeterminate {
            classes.push(vec![all.len() as u32]);
            all.push(op);
        }
        let blind_classes = (0..classes.len() as u32).collect();
        KeyHistory {
            key: "k".into(),
            ops: all,
            definite_count,
            classes,
            blind_classes,
            swap_classes: Default::default(),
            values: vec![None, None, Some("a".into()), Some("b".into())],
            skipped: 0,
            resolved: 0,
        }
    }

    fn limits() -> Limits {
        Limits { max_steps: 1_000_000, deadline: None, tail: 4 }
    }

    #[test]
    fn concurrent_writes_allow_either_order() {
        // Two overlapping writes, then a read of the one invoked first.
        let h = kh(vec![(Step::Write(2), 0, 10), (Step::Write(3), 1, 9), (Step::Read(2), 11, 12)]);
        assert!(matches!(search(&h, &limits()).0, SearchResult::Linearizable));
    }

    #[test]
    fn stale_read_reports_the_blocked_read_and_prefix() {
        let h = kh(vec![(Step::Write(2), 0, 1), (Step::Write(3), 2, 3), (Step::Read(2), 4, 5)]);
        let (res, _) = search(&h, &limits());
        let SearchResult::NotLinearizable(f) = res else { panic!("expected a violation, got {res:?}") };
        assert_eq!(f.blocked, 2);
        assert_eq!(f.prefix_len, 2);
        assert_eq!(f.tail, vec![(0, 2, Some(0)), (1, 3, Some(1))]);
        assert_eq!(f.states, vec![(3, Some(1))]);
    }

    #[test]
    fn optional_indeterminate_write_may_never_happen() {
        let h = kh(vec![(Step::Write(2), 0, 1), (Step::Write(UNREAD), 2, Time::MAX), (Step::Read(2), 4, 5)]);
        assert!(matches!(search(&h, &limits()).0, SearchResult::Linearizable));
    }

    #[test]
    fn step_budget_gives_up_instead_of_hanging() {
        let h = kh(vec![(Step::Write(2), 0, 1), (Step::Write(3), 2, 3), (Step::Read(2), 4, 5)]);
        let (res, stats) = search(&h, &Limits { max_steps: 2, deadline: None, tail: 4 });
        assert!(matches!(res, SearchResult::OutOfBudget(Exhausted::Steps)), "{res:?}");
        assert_eq!(stats.steps, 2);
    }
}
