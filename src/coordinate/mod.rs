//! Network coordinates: Vivaldi as serf computes them, sans IO.
//!
//! Every agent keeps a point in an 8-dimensional Euclidean space plus a
//! "height" (the non-Euclidean access-link delay), an error estimate and an
//! adjustment term. The estimated round trip between two agents is the
//! distance between their points plus both heights plus both adjustments.
//! Each measured RTT (a gossip probe and its ack) moves the local point like
//! a spring toward or away from the peer (Dabek et al., "Vivaldi", SIGCOMM
//! 2004), filtered by a per-peer median of recent samples and held near the
//! origin by a weak gravity (Ledlie et al., "Network Coordinates in the
//! Wild", NSDI 2007); the adjustment term corrects for what the Euclidean
//! embedding cannot express (Lee et al., IEEE/ACM ToN 2010).
//!
//! - `Coordinate`: the value agents exchange, store in the catalog and answer
//!   in `/v1/coordinate/*` (units: seconds, as Consul's JSON).
//! - `VivaldiConfig`: serf's constants.
//! - `Client` (`client.rs`): one agent's evolving coordinate.
//!
//! Owns: the algorithm. No clock, no randomness of its own (the caller
//! passes the RTT it measured), no IO.

mod client;

pub use client::{Client, ClientStats, UpdateError};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// serf's tuning constants (coordinate.DefaultConfig).
#[derive(Clone, Debug, PartialEq)]
pub struct VivaldiConfig {
    /// Euclidean dimensions. Ledlie et al. saw no gain past about 7.
    pub dimensionality: usize,
    /// Error of a fresh node, and the cap on the error afterwards.
    pub error_max: f64,
    /// Vivaldi's c_e: how far one sample moves the error estimate.
    pub ce: f64,
    /// Vivaldi's c_c: how far one sample moves the coordinate.
    pub cc: f64,
    /// Samples in the adjustment window (0 turns the adjustment off).
    pub adjustment_window: usize,
    /// Smallest height: it must stay positive, so a tiny floor.
    pub height_min: f64,
    /// Samples per peer kept by the latency filter (the median of them is used).
    pub latency_filter_size: usize,
    /// Gravity's rho in seconds: a coordinate this far from the origin is
    /// pulled back by a force of one second squared over rho.
    pub gravity_rho: f64,
}

impl Default for VivaldiConfig {
    fn default() -> Self {
        VivaldiConfig {
            dimensionality: 8,
            error_max: 1.5,
            ce: 0.25,
            cc: 0.25,
            adjustment_window: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// Below this two points are taken to be on top of each other (seconds).
pub(crate) const ZERO_THRESHOLD: f64 = 1.0e-6;

/// Largest RTT accepted as a sample; anything longer is a broken clock or
/// a paused process, not a network path.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// A network coordinate (Consul's `Coord`: `Vec`, `Error`, `Adjustment`,
/// `Height`; seconds). Equality is bit-for-bit, so it is an equivalence
/// (NaN equals itself) and coordinates can sit in `Eq` types such as the
/// Raft command enum.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Coordinate {
    #[serde(rename = "Vec")]
    pub vec: Vec<f64>,
    #[serde(rename = "Error")]
    pub error: f64,
    #[serde(rename = "Adjustment")]
    pub adjustment: f64,
    #[serde(rename = "Height")]
    pub height: f64,
}

impl PartialEq for Coordinate {
    fn eq(&self, o: &Self) -> bool {
        self.vec.len() == o.vec.len()
            && self.vec.iter().zip(&o.vec).all(|(a, b)| a.to_bits() == b.to_bits())
            && self.error.to_bits() == o.error.to_bits()
            && self.adjustment.to_bits() == o.adjustment.to_bits()
            && self.height.to_bits() == o.height.to_bits()
    }
}

impl Eq for Coordinate {}

impl Coordinate {
    /// The origin, with the largest error: where every node starts.
    pub fn origin(cfg: &VivaldiConfig) -> Self {
        Coordinate {
            vec: vec![0.0; cfg.dimensionality],
            error: cfg.error_max,
            adjustment: 0.0,
            height: cfg.height_min,
        }
    }

    /// Every component is a finite number (NaN or infinities come from a
    /// broken or hostile peer and would poison every later estimate).
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|v| v.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    /// Same number of dimensions.
    pub fn is_compatible_with(&self, other: &Coordinate) -> bool {
        self.vec.len() == other.vec.len()
    }

    /// Checks a coordinate that came from outside (a peer, an HTTP body)
    /// against the local configuration.
    pub fn check(&self, cfg: &VivaldiConfig) -> Result<(), UpdateError> {
        if self.vec.len() != cfg.dimensionality {
            return Err(UpdateError::Dimensions { got: self.vec.len(), want: cfg.dimensionality });
        }
        if !self.is_valid() {
            return Err(UpdateError::NotFinite);
        }
        Ok(())
    }

    /// Distance in seconds without the adjustment terms.
    pub(crate) fn raw_distance_to(&self, other: &Coordinate) -> f64 {
        magnitude_of_difference(&self.vec, &other.vec) + self.height + other.height
    }

    /// The estimated round trip to `other`, in seconds. Adjustments are
    /// added unless that would make the estimate non-positive (they can be
    /// negative). Incompatible coordinates estimate nothing: `None`.
    pub fn distance_secs(&self, other: &Coordinate) -> Option<f64> {
        if !self.is_compatible_with(other) {
            return None;
        }
        let dist = self.raw_distance_to(other);
        let adjusted = dist + self.adjustment + other.adjustment;
        Some(if adjusted > 0.0 { adjusted } else { dist })
    }

    /// `distance_secs` as a `Duration` (saturating; invalid values give `None`).
    pub fn distance_to(&self, other: &Coordinate) -> Option<Duration> {
        let secs = self.distance_secs(other)?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
    }

    /// The coordinate after a push of `force` seconds away from `other`
    /// (toward it when negative). Heights grow or shrink in proportion, as
    /// the push is shared between the Euclidean part and both access links.
    /// `jitter` gives a direction when the two points coincide.
    pub(crate) fn apply_force(
        &self,
        cfg: &VivaldiConfig,
        force: f64,
        other: &Coordinate,
        jitter: &mut dyn FnMut() -> f64,
    ) -> Coordinate {
        let mut out = self.clone();
        let (unit, mag) = unit_vector_away(&self.vec, &other.vec, jitter);
        for (v, u) in out.vec.iter_mut().zip(&unit) {
            *v += u * force;
        }
        if mag > ZERO_THRESHOLD {
            out.height = ((out.height + other.height) * force / mag + out.height).max(cfg.height_min);
        }
        out
    }
}

fn magnitude_of_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// The unit vector pointing from `to` toward `from` (the way `from` moves
/// when pushed away from `to`) and the distance between them. Coinciding
/// points get a direction from `jitter` (values in [0, 1)), or the first axis.
fn unit_vector_away(from: &[f64], to: &[f64], jitter: &mut dyn FnMut() -> f64) -> (Vec<f64>, f64) {
    let diff: Vec<f64> = from.iter().zip(to).map(|(a, b)| a - b).collect();
    let mag = diff.iter().map(|d| d * d).sum::<f64>().sqrt();
    if mag > ZERO_THRESHOLD {
        return (diff.iter().map(|d| d / mag).collect(), mag);
    }
    let random: Vec<f64> = diff.iter().map(|_| jitter() - 0.5).collect();
    let rmag = random.iter().map(|d| d * d).sum::<f64>().sqrt();
    if rmag > ZERO_THRESHOLD {
        return (random.iter().map(|d| d / rmag).collect(), 0.0);
    }
    let mut axis = vec![0.0; from.len()];
    if let Some(first) = axis.first_mut() {
        *first = 1.0;
    }
    (axis, 0.0)
}

/// The median of `values` (upper middle for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    Some(values[values.len() / 2])
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sim;
