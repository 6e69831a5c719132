//! The search's memo of explored configurations, with dominance.
//!
//! A configuration is (definite ops linearized, register value, optional ops
//! consumed). The linearized set is a 128-bit Zobrist hash (XOR of one random
//! 128-bit word per op, kept by `search`), updated in O(1) per step, instead
//! of an n-bit bitset: a bitset costs n/8 bytes per entry and O(n) per hash,
//! which rules out 10⁵-op keys. Two different sets collide with probability
//! 2⁻¹²⁸ per pair; even 10⁹ entries give a collision chance below 10⁻²⁰. A
//! collision could only prune a branch (a false "not linearizable"), never
//! accept a bad history. Optional ops are consumed per class in invocation order, so
//! what was consumed is a vector of per-class counts, interned here.
//!
//! Dominance: with the same definite set and value, a configuration that has
//! consumed fewer optional ops (every class count ≤) can do everything the
//! other can — an optional op left unconsumed may simply never take effect.
//! So once a configuration is recorded, every configuration it dominates is
//! pruned, not just identical ones. Without this, the search re-explores the
//! same region of history once per number of timed-out writes it could have
//! spent there, which made checking grow quadratically with history length.
//! Pruning a configuration dominated by one still on the search stack is also
//! sound: the ancestor explores every alternative the pruned branch had.
//!
//! Owns the memo only; knows nothing of the entry list.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::prepare::ValueId;

/// (class, count) pairs with count > 0, sorted by class.
pub(crate) type Consumed = Box<[(u32, u32)]>;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    lo: u64,
    hi: u64,
    state: ValueId,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // `lo` is already uniformly random; mix the state in and hand it over.
        h.write_u64(self.lo ^ u64::from(self.state).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}

/// Passes an already-random `u64` through instead of rehashing it.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// Values below this are a single consumed-vector id; above, an index into
/// `lists` (most keys only ever see one vector, so keep that case inline).
const LIST_FLAG: u32 = 1 << 31;

#[derive(Default)]
pub(crate) struct Memo {
    map: HashMap<Key, u32, BuildHasherDefault<PassThrough>>,
    lists: Vec<Vec<u32>>,
    consumed: Vec<Consumed>,
    consumed_ids: HashMap<Consumed, u32>,
}

impl Memo {
    pub(crate) fn new() -> Memo {
        let mut m = Memo::default();
        m.intern(&[]);
        m
    }

    /// The id of a consumed vector (0 is the empty one).
    pub(crate) fn intern(&mut self, consumed: &[(u32, u32)]) -> u32 {
        if let Some(&id) = self.consumed_ids.get(consumed) {
            return id;
        }
        let id = self.consumed.len() as u32;
        let boxed: Consumed = consumed.into();
        self.consumed.push(boxed.clone());
        self.consumed_ids.insert(boxed, id);
        id
    }

    pub(crate) fn consumed(&self, id: u32) -> &[(u32, u32)] {
        self.consumed.get(id as usize).map_or(&[], |c| c)
    }

    /// Does recorded vector `a` consume at most what `counts` (dense, per
    /// class) does?
    fn covers(&self, a: u32, counts: &[usize]) -> bool {
        self.consumed(a)
            .iter()
            .all(|&(class, n)| counts.get(class as usize).is_some_and(|&have| have >= n as usize))
    }

    /// Is vector `a` ≤ vector `b` in every class?
    fn le(&self, a: u32, b: u32) -> bool {
        let b = self.consumed(b);
        self.consumed(a)
            .iter()
            .all(|&(class, n)| b.binary_search_by_key(&class, |&(c, _)| c).is_ok_and(|i| b[i].1 >= n))
    }

    /// Records the configuration (definite-set hash, value, consumed vector
    /// `id` whose dense form is `counts`). Returns false if it, or one that
    /// dominates it, was recorded before.
    pub(crate) fn visit(&mut self, lo: u64, hi: u64, state: ValueId, id: u32, counts: &[usize]) -> bool {
        let key = Key { lo, hi, state };
        let Some(&slot) = self.map.get(&key) else {
            self.map.insert(key, id);
            return true;
        };
        if slot & LIST_FLAG == 0 {
            if slot == id || self.covers(slot, counts) {
                return false;
            }
            let replace = self.le(id, slot);
            if replace {
                self.map.insert(key, id);
            } else {
                self.lists.push(vec![slot, id]);
                self.map.insert(key, (self.lists.len() - 1) as u32 | LIST_FLAG);
            }
            return true;
        }
        let list_index = (slot & !LIST_FLAG) as usize;
        let Some(list) = self.lists.get(list_index) else { return true };
        if list.iter().any(|&a| a == id || self.covers(a, counts)) {
            return false;
        }
        // Drop recorded vectors the new one dominates: they can never prune
        // anything it would not.
        let kept: Vec<u32> = list.iter().copied().filter(|&a| !self.le(id, a)).collect();
        if let Some(list) = self.lists.get_mut(list_index) {
            *list = kept;
            list.push(id);
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes held.
    pub(crate) fn bytes(&self) -> usize {
        let map = self.map.capacity() * (std::mem::size_of::<(Key, u32)>() + 1);
        let lists: usize = self.lists.iter().map(|l| 24 + l.capacity() * 4).sum();
        let consumed: usize = self.consumed.iter().map(|c| 2 * (16 + c.len() * 8) + 16).sum();
        map + lists + consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_consumed_optional_ops_dominate() {
        let mut m = Memo::new();
        let one = m.intern(&[(0, 1)]);
        let two = m.intern(&[(0, 2)]);
        let other = m.intern(&[(1, 1)]);
        assert!(m.visit(1, 1, 5, one, &[1, 0]));
        assert!(!m.visit(1, 1, 5, one, &[1, 0]), "identical");
        assert!(!m.visit(1, 1, 5, two, &[2, 0]), "dominated: consumed more of class 0");
        assert!(m.visit(1, 1, 6, two, &[2, 0]), "other register value");
        assert!(m.visit(1, 1, 5, other, &[0, 1]), "incomparable");
        assert!(m.visit(1, 1, 5, 0, &[0, 0]), "consumed nothing: dominates both");
        assert!(!m.visit(1, 1, 5, other, &[0, 1]));
        assert!(!m.visit(1, 1, 5, 0, &[0, 0]));
        assert_eq!(m.len(), 2);
    }
}
