//! The transmit-limited broadcast queue: messages waiting to be piggy-backed
//! on outgoing packets. Each message is sent at most `limit` times
//! (RetransmitMult × ceil(log10(N + 1))); the least-sent, newest messages
//! go first; a newer message about the same subject replaces the older one.
//!
//! Owns: ordering, invalidation and retransmit counting. Must not encode
//! messages or choose destinations.

use super::state::Name;
use crate::gossip::codec::PacketBuilder;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a broadcast is about; a new broadcast with the same key replaces
/// the queued one (news about a node supersedes older news about it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BroadcastKey {
    Node(Name),
    Custom(String),
}

/// Which queue a broadcast counts toward in `stats()` (Serf keeps separate
/// intent, event and query queues; we keep one queue with counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastClass {
    Membership = 0,
    Intent = 1,
    Event = 2,
    Query = 3,
}

#[derive(Debug)]
struct Item {
    key: Option<BroadcastKey>,
    class: BroadcastClass,
    msg: Arc<[u8]>,
}

type Slot = (u32, Reverse<u64>);

#[derive(Debug, Default)]
pub struct BroadcastQueue {
    order: BTreeMap<Slot, Item>,
    by_key: HashMap<BroadcastKey, u64>,
    /// id → transmits so far.
    by_id: HashMap<u64, u32>,
    next_id: u64,
    class_counts: [usize; 4],
}

/// Smallest message worth looking for once a packet is nearly full.
const MIN_USEFUL: usize = 4;
/// Queue entries examined per packet at most, so a huge queue of messages
/// too big for the remaining space cannot make packet building O(queue).
const MAX_SKIPPED: usize = 64;

impl BroadcastQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an encoded message; returns its id.
    pub fn push(&mut self, key: Option<BroadcastKey>, class: BroadcastClass, msg: Vec<u8>) -> u64 {
        if let Some(k) = &key {
            if let Some(old) = self.by_key.get(k).copied() {
                self.remove_id(old);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        if let Some(k) = &key {
            self.by_key.insert(k.clone(), id);
        }
        self.class_counts[class as usize] += 1;
        self.by_id.insert(id, 0);
        self.order.insert((0, Reverse(id)), Item { key, class, msg: msg.into() });
        id
    }

    fn remove_id(&mut self, id: u64) {
        if let Some(tr) = self.by_id.remove(&id) {
            if let Some(item) = self.order.remove(&(tr, Reverse(id))) {
                self.forget(&item, id);
            }
        }
    }

    fn forget(&mut self, item: &Item, id: u64) {
        if let Some(k) = &item.key {
            if self.by_key.get(k) == Some(&id) {
                self.by_key.remove(k);
            }
        }
        let c = &mut self.class_counts[item.class as usize];
        *c = c.saturating_sub(1);
    }

    /// Whether the broadcast `id` is still waiting to be sent (more).
    pub fn contains(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn class_len(&self, class: BroadcastClass) -> usize {
        self.class_counts[class as usize]
    }

    /// Moves as many queued messages as fit into `packet`, counting one
    /// transmission each and dropping those that reached `limit`.
    pub fn fill(&mut self, packet: &mut PacketBuilder, limit: u32) -> usize {
        let mut picked: Vec<Slot> = Vec::new();
        let mut free = packet.free();
        let mut skipped = 0;
        for (slot, item) in &self.order {
            if free < MIN_USEFUL || skipped > MAX_SKIPPED {
                break;
            }
            let need = PacketBuilder::framed_len(item.msg.len());
            if need > free {
                skipped += 1;
                continue;
            }
            free -= need;
            picked.push(*slot);
        }
        for slot in &picked {
            let Some(item) = self.order.remove(slot) else { continue };
            let id = slot.1 .0;
            if !packet.try_push(&item.msg) {
                // Cannot happen (we measured), but never lose the message.
                self.order.insert(*slot, item);
                continue;
            }
            let transmits = slot.0 + 1;
            if transmits >= limit.max(1) {
                self.by_id.remove(&id);
                self.forget(&item, id);
            } else {
                self.by_id.insert(id, transmits);
                self.order.insert((transmits, Reverse(id)), item);
            }
        }
        picked.len()
    }

    /// Copies as many queued messages as fit into `packet` (least sent
    /// first, as `fill`) without counting a transmission: for a recipient
    /// that may never read them.
    pub fn fill_uncounted(&self, packet: &mut PacketBuilder) -> usize {
        let mut copied = 0;
        let mut skipped = 0;
        for item in self.order.values() {
            if packet.free() < MIN_USEFUL || skipped > MAX_SKIPPED {
                break;
            }
            if packet.try_push(&item.msg) {
                copied += 1;
            } else {
                skipped += 1;
            }
        }
        copied
    }

    /// Drops the most-transmitted messages until at most `max` remain.
    pub fn prune(&mut self, max: usize) {
        while self.order.len() > max {
            let Some((slot, item)) = self.order.pop_last() else { break };
            let id = slot.1 .0;
            self.by_id.remove(&id);
            self.forget(&item, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut BroadcastQueue, budget: usize, limit: u32) -> Vec<Vec<u8>> {
        let mut p = PacketBuilder::new(budget);
        q.fill(&mut p, limit);
        crate::gossip::codec::split_packet(&p.finish())
            .map(|v| v.into_iter().map(|m| m.to_vec()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn retransmit_limit_and_invalidation() {
        let mut q = BroadcastQueue::new();
        let a = q.push(Some(BroadcastKey::Custom("x".into())), BroadcastClass::Event, b"old".to_vec());
        let b = q.push(Some(BroadcastKey::Custom("x".into())), BroadcastClass::Event, b"new".to_vec());
        assert!(!q.contains(a));
        assert!(q.contains(b));
        assert_eq!(q.len(), 1);
        assert_eq!(q.class_len(BroadcastClass::Event), 1);
        assert_eq!(drain(&mut q, 100, 2), vec![b"new".to_vec()]);
        assert_eq!(drain(&mut q, 100, 2), vec![b"new".to_vec()]);
        assert!(drain(&mut q, 100, 2).is_empty());
        assert!(!q.contains(b));
        assert_eq!(q.class_len(BroadcastClass::Event), 0);
    }

    #[test]
    fn least_sent_and_newest_first_within_budget() {
        let mut q = BroadcastQueue::new();
        q.push(None, BroadcastClass::Membership, vec![1; 10]);
        drain(&mut q, 100, 5);
        q.push(None, BroadcastClass::Membership, vec![2; 10]);
        q.push(None, BroadcastClass::Membership, vec![3; 10]);
        let got = drain(&mut q, 2 + 2 * 11, 5);
        assert_eq!(got, vec![vec![3; 10], vec![2; 10]]);
        q.prune(1);
        assert_eq!(q.len(), 1);
    }
}
