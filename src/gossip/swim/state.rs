//! The SWIM node table: every node this member knows, in probe order, with
//! a name index. Probe order is a random permutation that is reshuffled at
//! every full pass (and new nodes are inserted at a random position) so that
//! every node is probed once per pass in an unpredictable order.
//!
//! Owns: storage and ordering of node states. Must not change a node's
//! status (that is the protocol's job in `swim/mod.rs`).

use super::Time;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

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

#[derive(Clone, Debug)]
pub struct NodeState {
    pub name: Name,
    pub addr: SocketAddr,
    pub meta: Meta,
    pub incarnation: u32,
    pub status: NodeStatus,
    pub status_change: Time,
}

#[derive(Debug, Default)]
pub struct NodeTable {
    nodes: Vec<NodeState>,
    index: HashMap<Name, usize>,
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&NodeState> {
        self.index.get(name).and_then(|i| self.nodes.get(*i))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        match self.index.get(name) {
            Some(i) => self.nodes.get_mut(*i),
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
        self.index.reserve(extra);
    }

    /// Adds a node at a random position of the probe order.
    pub fn insert_random<R: Rng>(&mut self, node: NodeState, rng: &mut R) {
        let name = node.name.clone();
        self.nodes.push(node);
        let last = self.nodes.len() - 1;
        let j = rng.random_range(0..=last);
        self.nodes.swap(j, last);
        if let Some(moved) = self.nodes.get(last) {
            self.index.insert(moved.name.clone(), last);
        }
        self.index.insert(name, j);
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
        for (i, n) in self.nodes.iter().enumerate() {
            self.index.insert(n.name.clone(), i);
        }
    }
}
