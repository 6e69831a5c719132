//! Network coordinates of the datacenter's nodes (Consul's coordinates
//! table): what agents report, batched by the servers into one Raft
//! command. A node's coordinates go with the node: updates for a node the
//! catalog does not know are dropped, and deregistering a node drops them.

use crate::coordinate::Coordinate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Watch topic of the whole table (`/v1/coordinate/nodes` blocks on it).
pub const TOPIC_COORDINATES: &str = "coordinates";

/// One node's coordinate in one network segment ("" is the default one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinateEntry {
    pub node: String,
    pub segment: String,
    pub coord: Coordinate,
}

/// One datacenter's servers and their WAN coordinates
/// (`/v1/coordinate/datacenters`; not stored, read from the WAN pool).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatacenterCoordinates {
    pub datacenter: String,
    pub area_id: String,
    pub coordinates: Vec<CoordinateEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinateTable {
    entries: BTreeMap<(String, String), Coordinate>,
    /// Raft index of the last change.
    pub index: u64,
}

impl CoordinateTable {
    /// Applies a batch; `known` says whether a node is registered. Returns
    /// how many entries were stored.
    pub fn apply_batch(
        &mut self,
        index: u64,
        batch: &[CoordinateEntry],
        known: impl Fn(&str) -> bool,
    ) -> usize {
        let mut stored = 0;
        for e in batch {
            // Servers check coordinates before proposing; this guards the
            // table against a log written by a buggy or older server.
            if !e.coord.is_valid() || !known(&e.node) {
                continue;
            }
            self.entries.insert((e.node.clone(), e.segment.clone()), e.coord.clone());
            stored += 1;
        }
        if stored > 0 {
            self.index = index;
        }
        stored
    }

    /// Drops every coordinate of a node that was deregistered.
    pub fn remove_node(&mut self, index: u64, node: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _), _| n != node);
        let removed = self.entries.len() != before;
        if removed {
            self.index = index;
        }
        removed
    }

    /// Every entry, sorted by node then segment.
    pub fn list(&self) -> Vec<CoordinateEntry> {
        self.entries
            .iter()
            .map(|((node, segment), coord)| CoordinateEntry {
                node: node.clone(),
                segment: segment.clone(),
                coord: coord.clone(),
            })
            .collect()
    }

    /// A node's entries (one per segment).
    pub fn node(&self, node: &str) -> Vec<CoordinateEntry> {
        self.entries
            .range((node.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == node)
            .map(|((n, s), c)| CoordinateEntry { node: n.clone(), segment: s.clone(), coord: c.clone() })
            .collect()
    }

    /// A node's coordinate in the default segment, else its first one.
    pub fn get(&self, node: &str) -> Option<&Coordinate> {
        self.entries
            .range((node.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == node)
            .map(|(_, c)| c)
            .next()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinate::VivaldiConfig;

    fn entry(node: &str, x: f64) -> CoordinateEntry {
        let mut coord = Coordinate::origin(&VivaldiConfig::default());
        coord.vec[0] = x;
        CoordinateEntry { node: node.into(), segment: String::new(), coord }
    }

    #[test]
    fn batches_skip_unknown_nodes_and_bad_values() {
        let mut t = CoordinateTable::default();
        let mut nan = entry("b", 0.0);
        nan.coord.height = f64::NAN;
        let n = t.apply_batch(7, &[entry("a", 0.1), entry("ghost", 0.2), nan], |n| n != "ghost");
        assert_eq!(n, 1);
        assert_eq!(t.index, 7);
        assert_eq!(t.list(), vec![entry("a", 0.1)]);
        assert_eq!(t.get("a").map(|c| c.vec[0]), Some(0.1));
        assert_eq!(t.node("a").len(), 1);
        assert!(t.node("b").is_empty());
        // Nothing stored: the index stays.
        assert_eq!(t.apply_batch(9, &[entry("ghost", 0.3)], |_| false), 0);
        assert_eq!(t.index, 7);
        assert!(t.remove_node(10, "a"));
        assert!(t.is_empty());
        assert_eq!(t.index, 10);
    }
}
