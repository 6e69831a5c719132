//! Process-wide counters and gauges, named as Consul's telemetry names
//! them, served by `/v1/agent/metrics`. Deliberately tiny: a map of atomic
//! counters, registered on first use.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<BTreeMap<&'static str, &'static AtomicU64>> {
    static REG: OnceLock<Mutex<BTreeMap<&'static str, &'static AtomicU64>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

fn counter(name: &'static str) -> &'static AtomicU64 {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.entry(name).or_insert_with(|| Box::leak(Box::new(AtomicU64::new(0))))
}

/// Adds `n` to a counter.
pub fn incr(name: &'static str, n: u64) {
    counter(name).fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub fn get(name: &'static str) -> u64 {
    counter(name).load(Ordering::Relaxed)
}

/// Every counter, by name.
pub fn snapshot() -> Vec<(&'static str, u64)> {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect()
}

fn gauges() -> &'static Mutex<BTreeMap<&'static str, &'static std::sync::atomic::AtomicI64>> {
    static REG: OnceLock<Mutex<BTreeMap<&'static str, &'static std::sync::atomic::AtomicI64>>> =
        OnceLock::new();
    REG.get_or_init(Default::default)
}

fn gauge(name: &'static str) -> &'static std::sync::atomic::AtomicI64 {
    let mut reg = gauges().lock().unwrap_or_else(|e| e.into_inner());
    reg.entry(name).or_insert_with(|| Box::leak(Box::new(std::sync::atomic::AtomicI64::new(0))))
}

/// Moves a gauge up or down.
pub fn gauge_add(name: &'static str, delta: i64) {
    gauge(name).fetch_add(delta, Ordering::Relaxed);
}

/// Sets a gauge.
pub fn gauge_set(name: &'static str, value: i64) {
    gauge(name).store(value, Ordering::Relaxed);
}

/// Every gauge, by name.
pub fn gauge_snapshot() -> Vec<(&'static str, i64)> {
    let reg = gauges().lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect()
}
