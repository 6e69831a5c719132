//! A thread-safe recorder the harness's clients share: `invoke` stamps the
//! invocation time just before the request is sent, and one of `ok`, `fail` or
//! `indeterminate` stamps the completion right after the answer (or the give-up)
//! arrives. All stamps come from one `Instant`, so they are comparable across
//! clients. Owns only the recording; it sends no requests.
//!
//! A [`PendingOp`] dropped without completion (a cancelled task, a panicking
//! client) stays in flight and becomes indeterminate in [`Recorder::finish`],
//! which is exactly what the checker must assume about it.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::history::{Call, ClientId, Operation, Outcome, Ret, Time};

/// Records a history; share it behind an `Arc`.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    client: ClientId,
    call: Call,
    invoked_at: Time,
    outcome: Option<Outcome>,
}

/// A ticket for an operation in flight; complete it exactly once.
#[derive(Debug)]
#[must_use = "complete the operation with ok, fail or indeterminate"]
pub struct PendingOp {
    slot: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder { start: Instant::now(), slots: Mutex::new(Vec::new()) }
    }

    /// Nanoseconds since the recorder was created.
    pub fn now(&self) -> Time {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A client that panicked while holding the lock left the vector intact
        // (every write to it is a single push or assignment), so keep going.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Call right before sending the request.
    pub fn invoke(&self, client: ClientId, call: Call) -> PendingOp {
        let mut slots = self.lock();
        // Stamp under the lock so slot order matches invocation order.
        let invoked_at = self.now();
        slots.push(Slot { client, call, invoked_at, outcome: None });
        PendingOp { slot: slots.len() - 1 }
    }

    /// The request completed with a known answer.
    pub fn ok(&self, op: PendingOp, ret: Ret) {
        let completed_at = self.now();
        self.complete(op, Outcome::Ok { completed_at, ret });
    }

    /// The request definitely did not take effect (e.g. a 4xx).
    pub fn fail(&self, op: PendingOp, error: impl Into<String>) {
        let completed_at = self.now();
        self.complete(op, Outcome::Failed { completed_at, error: error.into() });
    }

    /// No usable answer: it may or may not have taken effect.
    pub fn indeterminate(&self, op: PendingOp, error: impl Into<String>) {
        let gave_up_at = Some(self.now());
        self.complete(op, Outcome::Indeterminate { gave_up_at, error: error.into() });
    }

    fn complete(&self, op: PendingOp, outcome: Outcome) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(op.slot) {
            slot.outcome = Some(outcome);
        }
    }

    /// How many operations were invoked so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The history, in invocation order. Operations still in flight become
    /// indeterminate ("never completed").
    pub fn finish(self) -> Vec<Operation> {
        let slots = self.slots.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .into_iter()
            .map(|s| Operation {
                client: s.client,
                call: s.call,
                invoked_at: s.invoked_at,
                outcome: s.outcome.unwrap_or(Outcome::Indeterminate {
                    gave_up_at: None,
                    error: "never completed".to_string(),
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::history::ReadMode;

    #[test]
    fn records_from_many_threads_in_invocation_order() {
        let rec = Arc::new(Recorder::new());
        let threads: Vec<_> = (0..4u64)
            .map(|client| {
                let rec = Arc::clone(&rec);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let p = rec
                            .invoke(client, Call::Write { key: "k".into(), value: format!("{client}-{i}") });
                        rec.ok(p, Ret::Done);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let rec = Arc::try_unwrap(rec).unwrap();
        let history = rec.finish();
        assert_eq!(history.len(), 200);
        assert!(history.windows(2).all(|w| w[0].invoked_at <= w[1].invoked_at));
        assert!(history.iter().all(|op| op.validate().is_ok() && op.ret() == Some(&Ret::Done)));
    }

    #[test]
    fn dropped_or_unfinished_ops_become_indeterminate() {
        let rec = Recorder::new();
        let read = rec.invoke(7, Call::Read { key: "k".into(), mode: ReadMode::Default });
        rec.ok(read, Ret::Read { value: None, index: Some(0) });
        let lost = rec.invoke(7, Call::Delete { key: "k".into() });
        drop(lost);
        let slow = rec.invoke(8, Call::Delete { key: "k".into() });
        rec.indeterminate(slow, "timeout");
        let history = rec.finish();
        assert!(!history[0].is_indeterminate());
        assert_eq!(
            history[1].outcome,
            Outcome::Indeterminate { gave_up_at: None, error: "never completed".into() }
        );
        assert!(
            matches!(&history[2].outcome, Outcome::Indeterminate { gave_up_at: Some(_), error } if error == "timeout")
        );
    }
}
