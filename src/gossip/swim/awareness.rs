//! Lifeguard local health awareness: a score that grows when this node's own
//! probes fail without nacks or when it has to refute a suspicion, and
//! shrinks with every successful probe. The score stretches this node's
//! probe interval and probe timeout, so a node that is itself slow (CPU
//! starved, losing packets) waits longer before accusing healthy peers.
//!
//! Owns: the score and the scaling rule. Must not decide when to apply it.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Awareness {
    /// Scores run from 0 to `max - 1` (memberlist's AwarenessMaxMultiplier).
    max: u32,
    score: u32,
}

impl Awareness {
    pub fn new(max_multiplier: u32) -> Self {
        Awareness { max: max_multiplier.max(1), score: 0 }
    }

    /// Adds `delta` and clamps to `0..max`. Returns whether the score moved.
    pub fn apply(&mut self, delta: i32) -> bool {
        let before = self.score;
        let raw = i64::from(self.score) + i64::from(delta);
        self.score = raw.clamp(0, i64::from(self.max - 1)) as u32;
        before != self.score
    }

    /// 0 is healthy; higher is worse. Consul shows it as `health_score`.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d × (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_clamped_and_scales_timeouts() {
        let mut a = Awareness::new(8);
        assert!(!a.apply(-1));
        assert!(a.apply(3));
        assert_eq!(a.scale(Duration::from_millis(500)), Duration::from_millis(2000));
        a.apply(100);
        assert_eq!(a.score(), 7);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(8));
        a.apply(-100);
        assert_eq!(a.score(), 0);
        let mut off = Awareness::new(1);
        off.apply(5);
        assert_eq!(off.score(), 0, "a max of 1 disables Lifeguard");
    }
}
