//! Network coordinates in the Serf layer, as serf does them: our
//! coordinate rides next to every ack we send (`Swim::set_ack_payload`),
//! and each direct probe we make pairs its measured RTT with the
//! responder's coordinate to update ours. Peers' coordinates are cached
//! (Consul reads the WAN pool's cache for `/v1/coordinate/datacenters`).
//!
//! An ack without a coordinate (an older agent of ours) is simply not a
//! sample. A bad coordinate or RTT is counted, never logged per packet.

use super::message::SerfMsg;
use super::Serf;
use crate::coordinate::{Client, ClientStats, Coordinate, VivaldiConfig};
use std::collections::HashMap;
use std::time::Duration;

pub(super) struct CoordState {
    pub(super) client: Client,
    cache: HashMap<String, Coordinate>,
    /// The probe answered by the packet being handled, if any: the
    /// coordinate travels in the ack's own packet and pairs only with it.
    pending: Option<(String, Duration)>,
    /// Bumped whenever our coordinate or the cache changes.
    generation: u64,
}

impl CoordState {
    pub(super) fn new(seed: u64) -> Self {
        CoordState {
            client: Client::new(VivaldiConfig::default(), seed ^ 0xc00d),
            cache: HashMap::new(),
            pending: None,
            generation: 0,
        }
    }
}

impl Serf {
    /// Our coordinate (None under `disable_coordinates`).
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.coords.as_ref().map(|c| c.client.coordinate().clone())
    }

    /// The last coordinate each peer sent us, ours included.
    pub fn cached_coordinates(&self) -> HashMap<String, Coordinate> {
        let Some(c) = &self.coords else { return HashMap::new() };
        let mut all = c.cache.clone();
        all.insert(self.cfg.name.clone(), c.client.coordinate().clone());
        all
    }

    /// Counters of the coordinate client (samples applied, refused, resets).
    pub fn coordinate_stats(&self) -> ClientStats {
        self.coords.as_ref().map(|c| c.client.stats()).unwrap_or_default()
    }

    /// Changes whenever our coordinate or a cached one changes.
    pub fn coordinate_generation(&self) -> u64 {
        self.coords.as_ref().map_or(0, |c| c.generation)
    }

    pub(super) fn refresh_ack_payload(&mut self) {
        let payload =
            self.coords.as_ref().map(|c| SerfMsg::Coordinate(c.client.coordinate().clone()).encode());
        self.swim.set_ack_payload(payload);
    }

    pub(super) fn probe_rtt(&mut self, node: &str, _seq: u32, rtt: Duration) {
        if let Some(c) = &mut self.coords {
            c.pending = Some((node.to_string(), rtt));
        }
    }

    pub(super) fn end_of_packet(&mut self) {
        if let Some(c) = &mut self.coords {
            c.pending = None;
        }
    }

    pub(super) fn ack_coordinate(&mut self, coord: Coordinate) {
        let Some(c) = &mut self.coords else { return };
        let Some((node, rtt)) = c.pending.take() else { return };
        if c.client.update(&node, &coord, rtt).is_ok() {
            c.cache.insert(node, coord);
            c.generation += 1;
            self.refresh_ack_payload();
        }
    }

    pub(super) fn forget_coordinate(&mut self, name: &str) {
        if let Some(c) = &mut self.coords {
            c.client.forget(name);
            if c.cache.remove(name).is_some() {
                c.generation += 1;
            }
        }
    }
}
