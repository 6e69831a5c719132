//! Suspicion timers in memberlist's style: a suspected node is declared dead
//! after a timeout that starts at `max` and shrinks toward `min` as
//! independent peers confirm the suspicion, so a single overloaded accuser
//! cannot kill a healthy node quickly, while a truly dead node is removed
//! fast once several peers agree.
//!
//! min = SuspicionMult × max(1, log10(N)) × ProbeInterval
//! max = SuspicionMaxTimeoutMult × min
//! timeout(c) = max − (max − min) × ln(c + 1) / ln(k + 1), floored to ms, ≥ min
//! with k = SuspicionMult − 2 wanted confirmations (0 when N − 2 < k).
//!
//! Owns: the arithmetic and the set of confirmers. Must not schedule timers.

use super::state::Name;
use super::Time;
use std::collections::HashSet;
use std::time::Duration;

/// The minimum suspicion timeout for a cluster of `n` nodes.
pub fn suspicion_timeout(mult: u32, n: usize, interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    // Millisecond resolution, as memberlist computes it.
    let ms = (f64::from(mult) * scale * interval.as_secs_f64() * 1000.0).floor();
    Duration::from_millis(ms as u64)
}

/// The timeout after `confirmations` of `k` wanted confirmations.
pub fn timeout_after(confirmations: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 {
        return min;
    }
    let frac = (f64::from(confirmations) + 1.0).ln() / (f64::from(k) + 1.0).ln();
    let raw = max.as_secs_f64() - frac * (max.as_secs_f64() - min.as_secs_f64());
    let t = Duration::from_millis((raw * 1000.0).floor().max(0.0) as u64);
    t.max(min)
}

#[derive(Debug, Clone)]
pub struct Suspicion {
    k: u32,
    confirmations: u32,
    min: Duration,
    max: Duration,
    start: Time,
    confirmers: HashSet<Name>,
    /// When the node is declared dead unless refuted first.
    pub deadline: Time,
}

impl Suspicion {
    /// Starts a suspicion raised by `from`; the accuser itself does not
    /// count as a confirmation.
    pub fn new(from: Name, k: u32, min: Duration, max: Duration, now: Time) -> Self {
        let mut confirmers = HashSet::new();
        confirmers.insert(from);
        let timeout = if k == 0 { min } else { max };
        Suspicion { k, confirmations: 0, min, max, start: now, confirmers, deadline: now + timeout }
    }

    /// Records an independent confirmation; returns true if it was new and
    /// moved the deadline (the caller re-gossips the suspicion then).
    pub fn confirm(&mut self, from: &Name) -> bool {
        if self.confirmations >= self.k || self.confirmers.contains(from) {
            return false;
        }
        self.confirmers.insert(from.clone());
        self.confirmations += 1;
        self.deadline = self.start + timeout_after(self.confirmations, self.k, self.min, self.max);
        true
    }

    pub fn confirmations(&self) -> u32 {
        self.confirmations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_timeout_follows_memberlist_formula() {
        let s = Duration::from_secs(1);
        assert_eq!(suspicion_timeout(4, 5, s), Duration::from_secs(4));
        assert_eq!(suspicion_timeout(4, 10, s), Duration::from_secs(4));
        assert_eq!(suspicion_timeout(4, 100, s), Duration::from_secs(8));
        assert_eq!(suspicion_timeout(4, 1000, s), Duration::from_secs(12));
        assert_eq!(suspicion_timeout(3, 1, Duration::from_millis(100)), Duration::from_millis(300));
    }

    #[test]
    fn confirmations_shrink_the_timeout_to_min() {
        let min = Duration::from_secs(4);
        let max = Duration::from_secs(24);
        let name = |s: &str| -> Name { s.into() };
        let mut s = Suspicion::new(name("a"), 2, min, max, Duration::ZERO);
        assert_eq!(s.deadline, max);
        assert!(!s.confirm(&name("a")), "the accuser is not a confirmation");
        assert!(s.confirm(&name("b")));
        let mid = s.deadline;
        assert!(mid < max && mid > min, "{mid:?}");
        assert!(s.confirm(&name("c")));
        assert_eq!(s.deadline, min);
        assert!(!s.confirm(&name("d")), "k confirmations is the most that count");
        let none = Suspicion::new(name("a"), 0, min, max, Duration::from_secs(1));
        assert_eq!(none.deadline, Duration::from_secs(5));
    }
}
