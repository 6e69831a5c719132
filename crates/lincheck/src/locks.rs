//! Lock mutual exclusion: no two holders of a lock at once, and sequencers
//! (`LockIndex`) that only grow. Owns the lock-hold model, its JSON-lines
//! form and the check; knows nothing about KV registers.
//!
//! # Input
//! One [`LockHold`] per time a holder believed it held a lock:
//! - `acquired_at`: completion of the successful `PUT ?acquire=<session>`
//!   (only then does the holder know it holds the lock);
//! - `released_at`: invocation of the `PUT ?release=<session>`, or the moment
//!   the harness invalidated the session (destroy invoked, node killed or its
//!   check failed, TTL deliberately let lapse) — the earliest evidence that
//!   the holder must stop; `None` if still held when the run ended;
//! - `lock_index`: the key's `LockIndex` read right after acquiring, if known.
//!
//! The harness can record [`LockEvent`]s as they happen and build holds with
//! [`holds_from_events`]. JSON lines:
//! `{"lock":"locks/a","holder":"<session>","acquired_at":10,"released_at":55,"lock_index":3}`.
//!
//! Consul locks are advisory and, as for every lock service on an
//! asynchronous network, cannot guarantee exclusion under pauses and
//! partitions (Jepsen's etcd 2020 analysis); `lock-delay` makes a violation
//! unlikely, and the sequencer is how a resource should detect stale holders.
//! A reported overlap is therefore a finding to read, not always a bug.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::history::Time;
use super::jsonl::HistoryError;

/// One interval during which `holder` believed it held `lock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockHold {
    pub lock: String,
    /// The session id (one holder = one session).
    pub holder: String,
    pub acquired_at: Time,
    #[serde(default)]
    pub released_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_index: Option<u64>,
}

impl LockHold {
    fn end(&self) -> Time {
        self.released_at.unwrap_or(Time::MAX)
    }
}

impl fmt::Display for LockHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.released_at.map_or_else(|| "end of run".to_string(), |t| t.to_string());
        write!(f, "{} held {:?} [{}, {}]", self.holder, self.lock, self.acquired_at, end)?;
        if let Some(i) = self.lock_index {
            write!(f, " LockIndex {i}")?;
        }
        Ok(())
    }
}

/// What the harness saw, in any order (they are sorted by time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum LockEvent {
    /// An acquire answered `true` at `at`.
    Acquired { lock: String, holder: String, at: Time, lock_index: Option<u64> },
    /// The holder sent a release at `at`.
    ReleaseInvoked { lock: String, holder: String, at: Time },
    /// The holder's session stopped being valid at `at`: every lock it holds
    /// is released.
    SessionInvalidated { holder: String, at: Time },
}

impl LockEvent {
    fn at(&self) -> Time {
        match self {
            LockEvent::Acquired { at, .. }
            | LockEvent::ReleaseInvoked { at, .. }
            | LockEvent::SessionInvalidated { at, .. } => *at,
        }
    }
}

/// Builds holds from events. A repeated acquire by the current holder (Consul
/// allows re-acquiring) extends its hold; a release of a lock the holder does
/// not hold (its acquire timed out, say) is ignored.
pub fn holds_from_events(events: &[LockEvent]) -> Vec<LockHold> {
    let mut order: Vec<&LockEvent> = events.iter().collect();
    order.sort_by_key(|e| e.at());
    let mut open: BTreeMap<(String, String), LockHold> = BTreeMap::new();
    let mut done = Vec::new();
    for event in order {
        match event {
            LockEvent::Acquired { lock, holder, at, lock_index } => {
                let hold = open.entry((lock.clone(), holder.clone())).or_insert_with(|| LockHold {
                    lock: lock.clone(),
                    holder: holder.clone(),
                    acquired_at: *at,
                    released_at: None,
                    lock_index: *lock_index,
                });
                hold.lock_index = hold.lock_index.or(*lock_index);
            }
            LockEvent::ReleaseInvoked { lock, holder, at } => {
                if let Some(mut hold) = open.remove(&(lock.clone(), holder.clone())) {
                    hold.released_at = Some(*at);
                    done.push(hold);
                }
            }
            LockEvent::SessionInvalidated { holder, at } => {
                let keys: Vec<_> = open.keys().filter(|(_, h)| h == holder).cloned().collect();
                for k in keys {
                    if let Some(mut hold) = open.remove(&k) {
                        hold.released_at = Some(*at);
                        done.push(hold);
                    }
                }
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| (&a.lock, a.acquired_at, &a.holder).cmp(&(&b.lock, b.acquired_at, &b.holder)));
    done
}

/// A broken lock guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockViolation {
    /// Two different holders believed they held the lock at the same time.
    Overlap { first: LockHold, second: LockHold },
    /// A later hold got a `LockIndex` not greater than an earlier one's, so
    /// the sequencer cannot tell the stale holder apart.
    SequencerNotIncreasing { earlier: LockHold, later: LockHold },
}

impl fmt::Display for LockViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockViolation::Overlap { first, second } => {
                write!(f, "two holders at once: {first} and {second}")
            }
            LockViolation::SequencerNotIncreasing { earlier, later } => {
                write!(f, "LockIndex did not increase: {earlier}, then {later}")
            }
        }
    }
}

/// Checks every lock: no overlapping holds by different holders (intervals
/// that only touch do not overlap), and, where both holds carry a
/// `lock_index`, each later hold's index is greater than the one before.
pub fn check_mutual_exclusion(holds: &[LockHold]) -> Vec<LockViolation> {
    let mut by_lock: HashMap<&str, Vec<&LockHold>> = HashMap::new();
    for h in holds {
        by_lock.entry(h.lock.as_str()).or_default().push(h);
    }
    let mut locks: Vec<_> = by_lock.into_iter().collect();
    locks.sort_by(|a, b| a.0.cmp(b.0));
    let mut violations = Vec::new();
    for (_, mut holds) in locks {
        holds.sort_by(|a, b| (a.acquired_at, &a.holder).cmp(&(b.acquired_at, &b.holder)));
        let mut active: Vec<&LockHold> = Vec::new();
        for &h in &holds {
            active.retain(|a| a.end() > h.acquired_at);
            for a in &active {
                if a.holder != h.holder {
                    violations.push(LockViolation::Overlap { first: (*a).clone(), second: h.clone() });
                }
            }
            active.push(h);
        }
        for pair in holds.windows(2) {
            if let (Some(a), Some(b)) = (pair[0].lock_index, pair[1].lock_index) {
                if b <= a {
                    violations.push(LockViolation::SequencerNotIncreasing {
                        earlier: pair[0].clone(),
                        later: pair[1].clone(),
                    });
                }
            }
        }
    }
    violations
}

/// Reads lock holds from JSON lines (blank lines skipped).
pub fn read_lock_holds_jsonl<R: BufRead>(input: R) -> Result<Vec<LockHold>, HistoryError> {
    let mut holds = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Io { line: i + 1, source })?;
        if line.trim().is_empty() {
            continue;
        }
        let hold: LockHold = serde_json::from_str(&line)
            .map_err(|e| HistoryError::Decode { line: i + 1, cause: e.to_string() })?;
        if hold.released_at.is_some_and(|r| r < hold.acquired_at) {
            return Err(HistoryError::Invalid {
                line: i + 1,
                cause: "released before it was acquired".to_string(),
            });
        }
        holds.push(hold);
    }
    Ok(holds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(holder: &str, acquired_at: Time, released_at: Option<Time>, lock_index: Option<u64>) -> LockHold {
        LockHold { lock: "l".into(), holder: holder.into(), acquired_at, released_at, lock_index }
    }

    #[test]
    fn sequential_holds_pass_and_touching_intervals_do_not_overlap() {
        let holds = vec![
            hold("a", 0, Some(10), Some(1)),
            hold("b", 10, Some(20), Some(2)),
            hold("a", 25, None, Some(3)),
        ];
        assert_eq!(check_mutual_exclusion(&holds), vec![]);
    }

    #[test]
    fn overlapping_holders_are_reported() {
        let holds =
            vec![hold("a", 0, Some(10), None), hold("b", 5, Some(20), None), hold("a", 6, Some(7), None)];
        let v = check_mutual_exclusion(&holds);
        assert_eq!(
            v,
            vec![
                LockViolation::Overlap { first: holds[0].clone(), second: holds[1].clone() },
                LockViolation::Overlap { first: holds[1].clone(), second: holds[2].clone() },
            ]
        );
        // A hold with no release overlaps every later one.
        let forever = vec![hold("a", 0, None, None), hold("b", 1000, Some(1001), None)];
        assert_eq!(check_mutual_exclusion(&forever).len(), 1);
    }

    #[test]
    fn reused_or_decreasing_lock_index_is_reported() {
        let holds = vec![hold("a", 0, Some(10), Some(4)), hold("b", 11, Some(20), Some(4))];
        assert!(matches!(
            check_mutual_exclusion(&holds).as_slice(),
            [LockViolation::SequencerNotIncreasing { .. }]
        ));
    }

    #[test]
    fn events_become_holds() {
        let ev = vec![
            LockEvent::Acquired { lock: "l".into(), holder: "s1".into(), at: 1, lock_index: Some(1) },
            LockEvent::Acquired { lock: "l".into(), holder: "s1".into(), at: 3, lock_index: Some(1) },
            LockEvent::SessionInvalidated { holder: "s1".into(), at: 9 },
            LockEvent::ReleaseInvoked { lock: "l".into(), holder: "s2".into(), at: 12 },
            LockEvent::Acquired { lock: "l".into(), holder: "s2".into(), at: 8, lock_index: Some(2) },
        ];
        let holds = holds_from_events(&ev);
        assert_eq!(holds, vec![hold("s1", 1, Some(9), Some(1)), hold("s2", 8, Some(12), Some(2))]);
        assert_eq!(check_mutual_exclusion(&holds).len(), 1, "s2 acquired at 8 while s1 held until 9");
    }

    #[test]
    fn jsonl_holds_parse_and_reject_garbage() {
        let text = "{\"lock\":\"l\",\"holder\":\"a\",\"acquired_at\":1,\"released_at\":5,\"lock_index\":7}\n\n{\"lock\":\"l\",\"holder\":\"b\",\"acquired_at\":6,\"released_at\":null}\n";
        let holds = read_lock_holds_jsonl(text.as_bytes()).unwrap();
        assert_eq!(holds, vec![hold("a", 1, Some(5), Some(7)), hold("b", 6, None, None)]);
        let err = read_lock_holds_jsonl(
            "{\"lock\":\"l\",\"holder\":\"a\",\"acquired_at\":9,\"released_at\":5}".as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid operation on history line 1: released before it was acquired");
        assert!(read_lock_holds_jsonl("{\"lock\":1}".as_bytes()).is_err());
    }
}
