//! The SWIM node table: every node this member knows, in probe order, with
//! a name index. Probe order is a random permutation that is reshuffled at
//! every full pass (and new nodes are inserted at a random position) so that
//! every node is probed once per pass in an unpredictable order.
//!
//! Owns: storage and ordering of node states. Must not change a node's
//! status (that is the protocol's job in `swim/mod.rs`).

use super::Time;
use hashbrown::hash_table::{Entry, HashTable};
use rand::Rng;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Node names are shared, cheap to clone.
pub type Name = Arc<str>;
/// Node metadata (encoded Serf tags).
pub type Meta = Arc<[u8]>;

/// A node's SWIM status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    Alive,
    Suspect,
    /// Declared failed by the protocol.
    Dead,
    /// Announced its own departure.
    Left,
}

impl NodeStatus {
    pub fn to_wire(self) -> u8 {
        match self {
            NodeStatus::Alive => 0,
            NodeStatus::Suspect => 1,
            NodeStatus::Dead => 2,
            NodeStatus::Left => 3,
        }
    }

    pub fn from_wire(b: u8) -> Option<Self> {
        Some(match b {
            0 => NodeStatus::Alive,
            1 => NodeStatus::Suspect,
            2 => NodeStatus::Dead,
            3 => NodeStatus::Left,
            _ => return None,
        })
    }

    pub fn is_dead_or_left(self) -> bool {
        matches!(self, NodeStatus::Dead | NodeStatus::Left)
    }
}

/// What identifies a node and rarely changes: its name, address and
/// metadata. Shared (`Arc`) between a node's table entry, the events about
/// it and, in the simulator, between every member's copy of the table, so
/// an entry costs one pointer instead of three owned fields.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeIdent {
    pub name: Name,
    pub addr: SocketAddr,
    pub meta: Meta,
}

/// One node as this member sees it. Kept small (32 bytes): every member
/// holds one per known node, so a table of N members costs N entries per
/// member and N² across a simulated cluster.
#[derive(Clone, Debug)]
pub struct NodeState {
    ident: Arc<NodeIdent>,
    pub incarnation: u32,
    pub status: NodeStatus,
    /// `status_change` in nanoseconds (a `Duration` would take 16 bytes).
    status_change_ns: u64,
}

/// Field reads (`n.name`, `n.addr`, `n.meta`) go to the shared identity.
impl std::ops::Deref for NodeState {
    type Target = NodeIdent;

    fn deref(&self) -> &NodeIdent {
        &self.ident
    }
}

fn to_ns(t: Time) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

impl NodeState {
    pub fn new(
        name: Name,
        addr: SocketAddr,
        meta: Meta,
        incarnation: u32,
        status: NodeStatus,
        now: Time,
    ) -> Self {
        NodeState {
            ident: Arc::new(NodeIdent { name, addr, meta }),
            incarnation,
            status,
            status_change_ns: to_ns(now),
        }
    }

    /// The same identity (shared, not copied) in a new state.
    pub fn with_status(&self, incarnation: u32, status: NodeStatus, now: Time) -> Self {
        NodeState { ident: self.ident.clone(), incarnation, status, status_change_ns: to_ns(now) }
    }

    /// When `status` last changed.
    pub fn status_change(&self) -> Time {
        Duration::from_nanos(self.status_change_ns)
    }

    /// Sets `status`, restarting the clock when it differs.
    pub fn set_status(&mut self, status: NodeStatus, now: Time) {
        if self.status != status {
            self.status = status;
            self.status_change_ns = to_ns(now);
        }
    }

    /// Sets `status` and restarts its clock even if it did not change.
    pub fn reset_status(&mut self, status: NodeStatus, now: Time) {
        self.status = status;
        self.status_change_ns = to_ns(now);
    }

    /// Replaces address and metadata; the identity is re-allocated only
    /// when one of them changed, so unchanged news keeps sharing it.
    pub fn set_addr_meta(&mut self, addr: SocketAddr, meta: Meta) {
        if self.ident.addr != addr || self.ident.meta != meta {
            self.ident = Arc::new(NodeIdent { name: self.ident.name.clone(), addr, meta });
        }
    }
}

/// The table: entries in probe order plus a name index. The index holds
/// only positions (4 bytes a slot) and hashes the name found at that
/// position, instead of a second copy of every name as a map key would.
#[derive(Default)]
pub struct NodeTable {
    nodes: Vec<NodeState>,
    index: HashTable<u32>,
    hasher: RandomState,
}

impl std::fmt::Debug for NodeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTable").field("nodes", &self.nodes).finish()
    }
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn position(&self, name: &str) -> Option<usize> {
        let nodes = &self.nodes;
        self.index
            .find(self.hash(name), |&i| nodes.get(i as usize).is_some_and(|n| &*n.name == name))
            .map(|&i| i as usize)
    }

    pub fn get(&self, name: &str) -> Option<&NodeState> {
        self.position(name).and_then(|i| self.nodes.get(i))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        match self.position(name) {
            Some(i) => self.nodes.get_mut(i),
            None => None,
        }
    }

    pub fn at(&self, i: usize) -> Option<&NodeState> {
        self.nodes.get(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter()
    }

    /// Makes room for `extra` more nodes up front (large warm starts).
    pub fn reserve(&mut self, extra: usize) {
        self.nodes.reserve_exact(extra);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.reserve(extra, |&i| nodes.get(i as usize).map_or(0, |n| hasher.hash_one(&*n.name)));
    }

    /// Points the index entry of the node at position `i` to `i`
    /// (inserting it when the name is new to the index).
    fn index_at(&mut self, i: usize) {
        let Some(name) = self.nodes.get(i).map(|n| n.name.clone()) else { return };
        let h = self.hash(&name);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        let entry = self.index.entry(
            h,
            |&j| nodes.get(j as usize).is_some_and(|n| n.name == name),
            |&j| nodes.get(j as usize).map_or(0, |n| hasher.hash_one(&*n.name)),
        );
        match entry {
            Entry::Occupied(mut o) => *o.get_mut() = i as u32,
            Entry::Vacant(v) => {
                v.insert(i as u32);
            }
        }
    }

    /// Adds a node at a random position of the probe order. The caller
    /// makes sure the name is not in the table yet.
    pub fn insert_random<R: Rng>(&mut self, node: NodeState, rng: &mut R) {
        self.nodes.push(node);
        let last = self.nodes.len() - 1;
        let j = rng.random_range(0..=last);
        if j != last {
            // The node now at `last` is found by name through its old
            // position `j`: swap, then repoint both entries.
            let moved = self.nodes[j].name.clone();
            let h = self.hash(&moved);
            let nodes = &self.nodes;
            if let Some(slot) =
                self.index.find_mut(h, |&k| nodes.get(k as usize).is_some_and(|n| n.name == moved))
            {
                *slot = last as u32;
            }
            self.nodes.swap(j, last);
        }
        self.index_at(j);
    }

    /// Removes every node matching `drop`; returns how many went.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&NodeState) -> bool) -> usize {
        let before = self.nodes.len();
        self.nodes.retain(|n| !drop(n));
        if self.nodes.len() != before {
            self.reindex();
        }
        before - self.nodes.len()
    }

    /// Reshuffles the probe order (Fisher–Yates).
    pub fn shuffle<R: Rng>(&mut self, rng: &mut R) {
        for i in (1..self.nodes.len()).rev() {
            let j = rng.random_range(0..=i);
            self.nodes.swap(i, j);
        }
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index.clear();
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.reserve(nodes.len(), |&i| nodes.get(i as usize).map_or(0, |n| hasher.hash_one(&*n.name)));
        for (i, n) in nodes.iter().enumerate() {
            let h = hasher.hash_one(&*n.name);
            self.index.insert_unique(h, i as u32, |&j| {
                nodes.get(j as usize).map_or(0, |n| hasher.hash_one(&*n.name))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn node(i: usize) -> NodeState {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16));
        NodeState::new(format!("n{i}").into(), addr, Vec::new().into(), 1, NodeStatus::Alive, Duration::ZERO)
    }

    /// Every entry is found by its name at its own position.
    fn assert_indexed(t: &NodeTable) {
        for (i, n) in t.iter().enumerate() {
            let found = t.get(&n.name).map(|m| m.name.clone());
            assert_eq!(found.as_deref(), Some(&*n.name), "entry {i} not found by name");
            assert_eq!(t.position(&n.name), Some(i));
        }
    }

    #[test]
    fn index_follows_inserts_shuffles_and_removals() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut t = NodeTable::default();
        for i in 0..500 {
            t.insert_random(node(i), &mut rng);
        }
        assert_eq!(t.len(), 500);
        assert_indexed(&t);
        assert!(t.get("n500").is_none());
        t.shuffle(&mut rng);
        assert_indexed(&t);
        assert_eq!(t.remove_where(|n| n.name.ends_with('3')), 50);
        assert_indexed(&t);
        assert!(t.get("n13").is_none() && t.get("n12").is_some());
        t.reserve(100);
        for i in 500..600 {
            t.insert_random(node(i), &mut rng);
        }
        assert_eq!(t.len(), 550);
        assert_indexed(&t);
    }

    #[test]
    fn entries_stay_small_and_share_their_identity() {
        // Simulated clusters hold N² entries: keep one entry at 32 bytes.
        assert!(std::mem::size_of::<NodeState>() <= 32, "{}", std::mem::size_of::<NodeState>());
        let a = node(1);
        let mut b = a.with_status(2, NodeStatus::Suspect, Duration::from_secs(1));
        assert!(Arc::ptr_eq(&a.ident, &b.ident));
        assert_eq!(b.status_change(), Duration::from_secs(1));
        b.set_addr_meta(a.addr, a.meta.clone());
        assert!(Arc::ptr_eq(&a.ident, &b.ident), "unchanged news must keep sharing");
        b.set_status(NodeStatus::Suspect, Duration::from_secs(5));
        assert_eq!(b.status_change(), Duration::from_secs(1), "same status keeps its clock");
        b.set_addr_meta(a.addr, vec![1u8].into());
        assert!(!Arc::ptr_eq(&a.ident, &b.ident));
        assert_eq!((&*b.name, b.addr, &*b.meta), (&*a.name, a.addr, &[1u8][..]));
    }
}
