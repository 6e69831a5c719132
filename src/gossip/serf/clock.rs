//! Lamport clocks: Serf orders intents, user events and queries by logical
//! time so that old news never overrides new news.
//!
//! Owns: the clock arithmetic. Must not decide what is "old".

/// A Lamport clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LamportClock(u64);

impl LamportClock {
    pub fn new(at: u64) -> Self {
        LamportClock(at)
    }

    pub fn time(&self) -> u64 {
        self.0
    }

    /// Advances the clock; returns the new time.
    pub fn increment(&mut self) -> u64 {
        self.0 = self.0.saturating_add(1);
        self.0
    }

    /// Moves past a time seen from another node.
    pub fn witness(&mut self, seen: u64) {
        if seen >= self.0 {
            self.0 = seen.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_moves_past_what_was_seen() {
        let mut c = LamportClock::new(0);
        assert_eq!(c.increment(), 1);
        c.witness(0);
        assert_eq!(c.time(), 1);
        c.witness(9);
        assert_eq!(c.time(), 10);
        c.witness(u64::MAX);
        assert_eq!(c.time(), u64::MAX);
    }
}
