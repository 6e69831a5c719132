//! One agent's Vivaldi state: its coordinate, the per-peer latency filter
//! and the adjustment window. Fed one (peer coordinate, RTT) sample per
//! answered probe.

use super::{median, Coordinate, VivaldiConfig, MAX_RTT, ZERO_THRESHOLD};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Why a sample was refused; the coordinate is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    #[error("coordinate has {got} dimensions, expected {want}")]
    Dimensions { got: usize, want: usize },
    #[error("coordinate has a component that is not a finite number")]
    NotFinite,
    #[error("round-trip time {0:?} is outside 0..=10s")]
    BadRtt(Duration),
}

/// Counters a caller can report (`consul info`, metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Samples applied.
    pub updates: u64,
    /// Samples refused (bad coordinate or RTT).
    pub rejected: u64,
    /// Times the local coordinate became invalid and was reset to the origin.
    pub resets: u64,
}

/// The local node's coordinate and what it needs to evolve.
pub struct Client {
    cfg: VivaldiConfig,
    coord: Coordinate,
    origin: Coordinate,
    adjustment_samples: Vec<f64>,
    adjustment_next: usize,
    latency: HashMap<String, VecDeque<f64>>,
    stats: ClientStats,
    /// xorshift64 state: the only randomness (a direction when two points
    /// coincide), seeded by the caller so simulations are reproducible.
    rng: u64,
}

impl Client {
    pub fn new(cfg: VivaldiConfig, seed: u64) -> Self {
        let origin = Coordinate::origin(&cfg);
        Client {
            coord: origin.clone(),
            origin,
            adjustment_samples: vec![0.0; cfg.adjustment_window],
            adjustment_next: 0,
            latency: HashMap::new(),
            stats: ClientStats::default(),
            rng: seed | 1,
            cfg,
        }
    }

    pub fn config(&self) -> &VivaldiConfig {
        &self.cfg
    }

    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Replaces the local coordinate (restored from a snapshot); refused
    /// when it does not fit this configuration.
    pub fn set_coordinate(&mut self, c: Coordinate) -> Result<(), UpdateError> {
        c.check(&self.cfg)?;
        self.coord = c;
        Ok(())
    }

    /// Drops the latency samples of a peer that left.
    pub fn forget(&mut self, node: &str) {
        self.latency.remove(node);
    }

    /// Estimated RTT from us to `other`.
    pub fn distance_to(&self, other: &Coordinate) -> Option<Duration> {
        self.coord.distance_to(other)
    }

    /// One sample: `node`, at `other`, answered in `rtt`. Returns the new
    /// local coordinate.
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<&Coordinate, UpdateError> {
        if let Err(e) = other.check(&self.cfg) {
            self.stats.rejected += 1;
            return Err(e);
        }
        if rtt > MAX_RTT {
            self.stats.rejected += 1;
            return Err(UpdateError::BadRtt(rtt));
        }
        let rtt_secs = self.latency_filter(node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt_secs);
        self.update_adjustment(other, rtt_secs);
        self.update_gravity();
        if !self.coord.is_valid() {
            // Cannot happen with valid inputs, but a poisoned coordinate
            // would never recover: start over rather than keep it.
            self.stats.resets += 1;
            self.coord = self.origin.clone();
        }
        self.stats.updates += 1;
        Ok(&self.coord)
    }

    /// The median of the last few samples from this peer: one slow answer
    /// (a GC pause, a queue) does not yank the coordinate around.
    pub(super) fn latency_filter(&mut self, node: &str, rtt: f64) -> f64 {
        let size = self.cfg.latency_filter_size.max(1);
        let samples = self.latency.entry(node.to_string()).or_default();
        samples.push_back(rtt);
        while samples.len() > size {
            samples.pop_front();
        }
        let mut sorted: Vec<f64> = samples.iter().copied().collect();
        median(&mut sorted).unwrap_or(rtt)
    }

    fn update_vivaldi(&mut self, other: &Coordinate, rtt: f64) {
        let rtt = rtt.max(ZERO_THRESHOLD);
        let dist = self.coord.distance_secs(other).unwrap_or(rtt);
        let wrongness = (dist - rtt).abs() / rtt;
        let total_error = (self.coord.error + other.error).max(ZERO_THRESHOLD);
        // Trust the sample in proportion to how unsure we are compared
        // with the peer.
        let weight = self.coord.error / total_error;
        let ce = self.cfg.ce * weight;
        self.coord.error = (ce * wrongness + self.coord.error * (1.0 - ce)).min(self.cfg.error_max);
        let force = self.cfg.cc * weight * (rtt - dist);
        let mut rng = self.rng;
        let mut jitter = || next_unit(&mut rng);
        self.coord = self.coord.apply_force(&self.cfg, force, other, &mut jitter);
        self.rng = rng;
    }

    /// The adjustment is half the mean residual (measured minus raw
    /// estimate) over the window; each side of a pair adds its own half.
    pub(super) fn update_adjustment(&mut self, other: &Coordinate, rtt: f64) {
        let window = self.adjustment_samples.len();
        if window == 0 {
            return;
        }
        self.adjustment_samples[self.adjustment_next] = rtt - self.coord.raw_distance_to(other);
        self.adjustment_next = (self.adjustment_next + 1) % window;
        let sum: f64 = self.adjustment_samples.iter().sum();
        self.coord.adjustment = sum / (2.0 * window as f64);
    }

    /// A weak pull toward the origin, growing with the square of the
    /// distance, so the whole system does not drift away over time.
    pub(super) fn update_gravity(&mut self) {
        let dist = self.origin.distance_secs(&self.coord).unwrap_or(0.0);
        let force = -(dist / self.cfg.gravity_rho).powi(2);
        let origin = self.origin.clone();
        let mut rng = self.rng;
        let mut jitter = || next_unit(&mut rng);
        self.coord = self.coord.apply_force(&self.cfg, force, &origin, &mut jitter);
        self.rng = rng;
    }
}

/// xorshift64*: a number in [0, 1).
fn next_unit(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}
