//! Response size rules: how many bytes and records a reply may carry, the
//! per-query random (weighted) order, and fitting answers into the budget.
//!
//! Owns: the UDP/EDNS/TCP size budget, `udp_answer_limit` (UDP without
//! EDNS), the largest-prefix search. Must not decide which records exist
//! (records.rs) nor set the TC flag policy (the handler does, from
//! `enable_truncate`).

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, Query};
use hickory_proto::rr::Record;
use hickory_server::net::xfer::Protocol;
use rand::Rng;

use super::wire::{encode, Parts};
use crate::config::runtime::DnsSettings;

/// Classic DNS message limit over UDP without EDNS (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_SIZE: usize = 512;
/// Largest EDNS payload we honour: 64 KiB less IP and UDP headers.
pub const MAX_EDNS_UDP_SIZE: u16 = u16::MAX - 68;
/// Largest DNS message over TCP (two-byte length prefix).
pub const MAX_TCP_SIZE: usize = u16::MAX as usize;
/// Consul's hard ceiling on `udp_answer_limit`.
pub const MAX_UDP_ANSWER_LIMIT: usize = 8;

/// What one response may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_bytes: usize,
    /// Record-count cap from `udp_answer_limit` (UDP without EDNS only).
    pub count_cap: Option<usize>,
    /// Refine size estimates by real (compressed) encoding. Off for classic
    /// 512-byte UDP, where we stay within 512 bytes even uncompressed, and
    /// when compression is disabled (the estimate is then exact).
    pub refine_compressed: bool,
}

impl Budget {
    pub fn new(protocol: Protocol, edns: Option<&Edns>, settings: &DnsSettings) -> Budget {
        let classic = protocol == Protocol::Udp && edns.is_none();
        let max_bytes = match (protocol, edns) {
            (Protocol::Udp, Some(e)) => usize::from(clamp_edns_payload(e.max_payload())),
            (Protocol::Udp, None) => CLASSIC_UDP_SIZE,
            _ => MAX_TCP_SIZE,
        };
        let count_cap = (classic && settings.udp_answer_limit > 0)
            .then(|| settings.udp_answer_limit.min(MAX_UDP_ANSWER_LIMIT));
        Budget { max_bytes, count_cap, refine_compressed: !classic && !settings.disable_compression }
    }
}

/// The client's advertised EDNS size, within [512, 65467].
pub fn clamp_edns_payload(p: u16) -> u16 {
    p.clamp(CLASSIC_UDP_SIZE as u16, MAX_EDNS_UDP_SIZE)
}

/// A random order of `weights.len()` items where an item's chance of coming
/// early is proportional to its weight; see `random_prefix`.
pub fn weighted_order(weights: &[u32], rng: &mut impl Rng) -> Vec<usize> {
    random_prefix(|i| weights.get(i).copied().unwrap_or(0), weights.len(), weights.len(), rng)
}

/// The first `k` of a random order of `0..n`. An item's chance of coming
/// early is proportional to `weight(i)` (Efraimidis–Spirakis keys), weight 0
/// last; with equal weights it is a uniform sample drawn in O(k).
pub fn random_prefix(weight: impl Fn(usize) -> u32, n: usize, k: usize, rng: &mut impl Rng) -> Vec<usize> {
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let w0 = weight(0);
    if (1..n).all(|i| weight(i) == w0) {
        return rand::seq::index::sample(rng, n, k).into_vec();
    }
    let mut keyed: Vec<(f64, usize)> = (0..n)
        .map(|i| {
            let w = weight(i);
            let key = if w == 0 {
                f64::NEG_INFINITY
            } else {
                let u: f64 = rng.random();
                (1.0 - u).ln() / f64::from(w)
            };
            (key, i)
        })
        .collect();
    let by_key_desc = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0);
    if k < n {
        keyed.select_nth_unstable_by(k - 1, by_key_desc);
        keyed.truncate(k);
    }
    keyed.sort_unstable_by(by_key_desc);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// How many of `sizes` (in order) fit in `room` bytes, at most `cap`, and
/// at least one when any is offered (an oversized single record is still
/// sent; the encoder then sets TC).
pub fn greedy_fit(sizes: impl Iterator<Item = usize>, room: usize, cap: usize) -> usize {
    let mut used = 0usize;
    let mut n = 0;
    for s in sizes.take(cap) {
        used = used.saturating_add(s);
        if used > room && n > 0 {
            break;
        }
        n += 1;
        if used > room {
            break;
        }
    }
    n
}

/// The largest `k` in `[lo, hi]` with `len(k) <= max`, given `len(lo)` fits
/// and `len` grows with `k`.
pub fn largest_fitting(lo: usize, hi: usize, max: usize, mut len: impl FnMut(usize) -> usize) -> usize {
    if hi <= lo || len(hi) <= max {
        return hi.max(lo);
    }
    let (mut lo, mut hi) = (lo, hi);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if len(mid) <= max {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Exact encoded size of a response with these sections (question and OPT
/// included), as `wire::encode` writes it.
pub fn encoded_len(
    queries: &[Query],
    edns: Option<&Edns>,
    answers: &[Record],
    additionals: &[Record],
    compress: bool,
) -> usize {
    let parts = Parts {
        metadata: Metadata::new(0, MessageType::Response, OpCode::Query),
        queries,
        answers,
        authorities: &[],
        additionals,
        edns,
    };
    encode(&parts, usize::MAX, compress).len()
}

/// Uncompressed size of a response's fixed parts: header, question, OPT.
pub fn overhead(qname_len: usize, edns: Option<&Edns>) -> usize {
    let opt = edns
        .map(|e| 11 + e.options().options.iter().map(|(_, o)| 4 + usize::from(o.len())).sum::<usize>())
        .unwrap_or(0);
    12 + qname_len + 4 + opt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::config::default_dns_settings;

    #[test]
    fn budgets_follow_transport_and_edns() {
        let mut s = default_dns_settings();
        let b = Budget::new(Protocol::Udp, None, &s);
        assert_eq!(b, Budget { max_bytes: 512, count_cap: Some(3), refine_compressed: false });
        s.udp_answer_limit = 20;
        assert_eq!(Budget::new(Protocol::Udp, None, &s).count_cap, Some(8));
        s.udp_answer_limit = 0;
        assert_eq!(Budget::new(Protocol::Udp, None, &s).count_cap, None);
        let mut e = Edns::new();
        e.set_max_payload(4096);
        let b = Budget::new(Protocol::Udp, Some(&e), &s);
        assert_eq!(b, Budget { max_bytes: 4096, count_cap: None, refine_compressed: true });
        e.set_max_payload(100);
        assert_eq!(Budget::new(Protocol::Udp, Some(&e), &s).max_bytes, 512);
        e.set_max_payload(u16::MAX);
        assert_eq!(Budget::new(Protocol::Udp, Some(&e), &s).max_bytes, 65467);
        assert_eq!(Budget::new(Protocol::Tcp, None, &s).max_bytes, 65535);
        s.disable_compression = true;
        assert!(!Budget::new(Protocol::Tcp, None, &s).refine_compressed);
    }

    #[test]
    fn greedy_fit_keeps_at_least_one() {
        assert_eq!(greedy_fit([10, 10, 10].into_iter(), 25, 10), 2);
        assert_eq!(greedy_fit([10, 10, 10].into_iter(), 100, 2), 2);
        assert_eq!(greedy_fit([100].into_iter(), 10, 10), 1);
        assert_eq!(greedy_fit(std::iter::empty(), 10, 10), 0);
    }

    #[test]
    fn largest_fitting_binary_search() {
        let len = |k: usize| k * 10;
        assert_eq!(largest_fitting(1, 100, 555, len), 55);
        assert_eq!(largest_fitting(1, 10, 555, len), 10);
        assert_eq!(largest_fitting(3, 3, 5, len), 3);
    }

    #[test]
    fn weighted_order_prefers_heavy_items() {
        let mut rng = rand::rng();
        let weights = [1, 1, 1, 7];
        let first_heavy = (0..2000).filter(|_| weighted_order(&weights, &mut rng)[0] == 3).count();
        // Expected 70 %; the bound is ~10 standard deviations wide.
        assert!((1200..1600).contains(&first_heavy), "{first_heavy}");
        let zero_last = weighted_order(&[0, 5, 5, 1], &mut rng);
        assert_eq!(zero_last[3], 0);
        let mut seen = weighted_order(&[2; 50], &mut rng);
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        let prefix = random_prefix(|i| if i == 7 { 1000 } else { 1 }, 100, 3, &mut rng);
        assert_eq!(prefix.len(), 3);
        assert_eq!(prefix.iter().collect::<std::collections::HashSet<_>>().len(), 3);
        assert!(random_prefix(|_| 1, 100, 0, &mut rng).is_empty());
        assert_eq!(random_prefix(|_| 1, 2, 5, &mut rng).len(), 2);
    }
}
