//! What `consul snapshot inspect` reports: how many records of each type a
//! snapshot holds and how many bytes they take, and optionally the KV
//! space broken down by key prefix.

use crate::catalog::State;
use serde::Serialize;
use std::collections::BTreeMap;

/// Count and encoded size of one record type (or key prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeStat {
    pub name: String,
    pub count: u64,
    pub sum: u64,
}

fn size_of<T: Serialize>(v: &T) -> u64 {
    postcard::to_allocvec(v).map(|b| b.len() as u64).unwrap_or(0)
}

/// Record statistics by type, largest first (as Consul sorts them).
pub fn type_stats(state: &State) -> Vec<TypeStat> {
    let mut stats: BTreeMap<&str, TypeStat> = BTreeMap::new();
    let mut add = |name: &'static str, size: u64| {
        let s =
            stats.entry(name).or_insert_with(|| TypeStat { name: name.to_string(), ..Default::default() });
        s.count += 1;
        s.sum += size;
    };
    for node in state.catalog.nodes() {
        // One "Register" record per node with its services and checks, as
        // Consul's snapshots hold them.
        let services: u64 = state.catalog.node_services(&node.node).map(size_of).sum();
        let checks: u64 = state.catalog.node_checks(&node.node).map(size_of).sum();
        add("Register", size_of(node) + services + checks);
    }
    for e in state.kv.list("") {
        add("KVS", size_of(e));
    }
    for (key, index) in &state.kv.tombstones {
        add("Tombstone", (key.len() + 8) as u64 + size_of(index).saturating_sub(8));
    }
    for s in state.sessions.list() {
        add("Session", size_of(s));
    }
    if let Some(a) = &state.autopilot {
        add("Autopilot", size_of(a));
    }
    let mut out: Vec<TypeStat> = stats.into_values().collect();
    out.sort_by(|a, b| b.sum.cmp(&a.sum).then(a.name.cmp(&b.name)));
    out
}

/// KV statistics grouped by the first `depth` path segments of each key,
/// for keys starting with `filter`.
pub fn kv_stats(state: &State, depth: usize, filter: &str) -> Vec<TypeStat> {
    let mut stats: BTreeMap<String, TypeStat> = BTreeMap::new();
    for e in state.kv.list(filter) {
        let prefix: Vec<&str> = e.key.split('/').take(depth.max(1)).collect();
        let name = prefix.join("/");
        let s = stats.entry(name.clone()).or_insert_with(|| TypeStat { name, ..Default::default() });
        s.count += 1;
        s.sum += size_of(e);
    }
    let mut out: Vec<TypeStat> = stats.into_values().collect();
    out.sort_by(|a, b| b.sum.cmp(&a.sum).then(a.name.cmp(&b.name)));
    out
}

/// Sizes as Consul prints them: bytes below 1 KiB, else one decimal.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Changes, Command};

    #[test]
    fn counts_by_type_and_prefix() {
        let mut s = State::default();
        let mut ch = Changes::default();
        for (i, k) in ["vault/a", "vault/b/c", "app/x"].iter().enumerate() {
            s.apply(
                i as u64 + 1,
                &Command::KvSet {
                    key: k.to_string(),
                    value: bytes::Bytes::from_static(b"0123456789"),
                    flags: 0,
                },
                &mut ch,
            );
        }
        let t = type_stats(&s);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].name.as_str(), t[0].count), ("KVS", 3));
        let kv = kv_stats(&s, 1, "");
        assert_eq!(
            kv.iter().map(|k| (k.name.as_str(), k.count)).collect::<Vec<_>>(),
            vec![("vault", 2), ("app", 1)]
        );
        assert_eq!(kv_stats(&s, 2, "vault/").len(), 2);
        assert_eq!(human_bytes(130), "130B");
        assert_eq!(human_bytes(1741), "1.7KB");
    }
}
