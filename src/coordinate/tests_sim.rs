//! A deterministic simulation: nodes placed in a synthetic latency space
//! (a 2-D "continent" plus per-node access-link delays, with a little
//! jitter per sample) run Vivaldi against random peers as gossip probes
//! would; then every pair's estimate is compared with the true RTT.

use super::*;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Node {
    x: f64,
    y: f64,
    access: f64,
}

/// True RTT in seconds: propagation across the plane (coordinates in ms)
/// plus both access links.
fn true_rtt(a: &Node, b: &Node) -> f64 {
    (((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt() + a.access + b.access) / 1000.0
}

/// Median and 90th percentile of |estimate - true| / true over all pairs.
fn simulate(nodes: usize, rounds: usize, seed: u64) -> (f64, f64) {
    let mut rng = Rng(seed);
    let world: Vec<Node> = (0..nodes)
        .map(|_| Node { x: rng.unit() * 80.0, y: rng.unit() * 40.0, access: 0.5 + rng.unit() * 4.0 })
        .collect();
    let mut clients: Vec<Client> =
        (0..nodes).map(|i| Client::new(VivaldiConfig::default(), i as u64 + 1)).collect();
    for _ in 0..rounds {
        for i in 0..nodes {
            let mut j = (rng.unit() * nodes as f64) as usize % nodes;
            if j == i {
                j = (j + 1) % nodes;
            }
            // Up to 10% queueing delay on top of the path.
            let rtt = true_rtt(&world[i], &world[j]) * (1.0 + 0.1 * rng.unit());
            let peer = clients[j].coordinate().clone();
            clients[i].update(&format!("n{j}"), &peer, Duration::from_secs_f64(rtt)).unwrap();
        }
    }
    let mut errors = Vec::new();
    for i in 0..nodes {
        for j in (i + 1)..nodes {
            let est = clients[i].coordinate().distance_secs(clients[j].coordinate()).unwrap();
            let truth = true_rtt(&world[i], &world[j]);
            errors.push((est - truth).abs() / truth);
        }
    }
    errors.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| errors[((errors.len() - 1) as f64 * q).round() as usize];
    assert!(clients.iter().all(|c| c.stats().resets == 0));
    (p(0.5), p(0.9))
}

#[test]
fn simulated_rtt_estimates_are_accurate() {
    let (median, p90) = simulate(40, 400, 0x5eed);
    eprintln!("vivaldi simulation, 40 nodes, 400 rounds: median relative error {median:.3}, p90 {p90:.3}");
    assert!(median < 0.10, "median relative error {median}");
    assert!(p90 < 0.25, "p90 relative error {p90}");
}

#[test]
fn simulation_is_deterministic() {
    assert_eq!(simulate(10, 50, 42), simulate(10, 50, 42));
}

/// The size of the real-network test (`tests/it/coordinates_netns.rs`):
/// five nodes, 60 rounds (60 s of one probe per second). Even with no
/// more than 10 % noise per sample the p90 lands between 9 and 23 %
/// depending on the layout, so that test's 25 % bound has little headroom
/// before any scheduling noise is added (docs/queries.md).
#[test]
fn small_cluster_after_sixty_rounds() {
    let mut worst = 0.0f64;
    for seed in 1..=6 {
        let (median, p90) = simulate(5, 60, seed);
        eprintln!("vivaldi simulation, 5 nodes, 60 rounds, seed {seed}: median {median:.3}, p90 {p90:.3}");
        worst = worst.max(p90);
    }
    assert!(worst < 0.25, "worst p90 relative error {worst}");
}
