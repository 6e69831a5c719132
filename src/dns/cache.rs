//! A bounded cache of built service answer sets, keyed by what they depend
//! on and validated by the backend's catalog index.
//!
//! Owns: single-flight building (one build per key and index even under
//! concurrent queries), eviction of the least recently used entry when full,
//! and the build counter. Must not shuffle or truncate (per query work) or
//! call the backend (the caller passes the index it got).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::records::AnswerSet;

/// What an answer set depends on besides the catalog index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub service: String,
    pub tag: Option<String>,
    pub dc: String,
    /// Which of our domains SRV targets are rendered under.
    pub domain: usize,
    /// The ACL state the set was filtered under (`DnsBackend::acl_generation`):
    /// a new DNS token or a changed policy builds a new set.
    pub acl: u64,
}

struct Entry {
    index: u64,
    cell: Arc<OnceLock<Arc<AnswerSet>>>,
    last_used: u64,
}

/// Bounded map from `CacheKey` to the answer set built at one index.
pub struct AnswerCache {
    entries: Mutex<HashMap<CacheKey, Entry>>,
    capacity: usize,
    clock: AtomicU64,
    builds: AtomicU64,
}

impl AnswerCache {
    pub fn new(capacity: usize) -> Self {
        AnswerCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            builds: AtomicU64::new(0),
        }
    }

    /// The set for `key` at `index`, building it with `build` only if no
    /// entry exists for exactly that index. Concurrent callers for the same
    /// key and index wait for the one build instead of repeating it.
    pub fn get_or_build(
        &self,
        key: CacheKey,
        index: u64,
        build: impl FnOnce() -> AnswerSet,
    ) -> Arc<AnswerSet> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.get_mut(&key) {
                Some(e) if e.index == index => {
                    e.last_used = now;
                    e.cell.clone()
                }
                _ => {
                    if !entries.contains_key(&key) && entries.len() >= self.capacity {
                        evict_oldest(&mut entries);
                    }
                    let cell = Arc::new(OnceLock::new());
                    entries.insert(key, Entry { index, cell: cell.clone(), last_used: now });
                    cell
                }
            }
        };
        // Built outside the map lock so other services keep being answered.
        cell.get_or_init(|| {
            self.builds.fetch_add(1, Ordering::Relaxed);
            crate::metrics::incr("consul.dns.answer_set_builds", 1);
            Arc::new(build())
        })
        .clone()
    }

    /// The set for `key` if one was built at exactly `index`.
    pub fn get(&self, key: &CacheKey, index: u64) -> Option<Arc<AnswerSet>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get_mut(key).filter(|e| e.index == index)?;
        let set = e.cell.get()?.clone();
        e.last_used = now;
        Some(set)
    }

    /// How many answer sets have been built since start.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict_oldest(entries: &mut HashMap<CacheKey, Entry>) {
    if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) {
        entries.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey { service: s.into(), tag: None, dc: "dc1".into(), domain: 0, acl: 0 }
    }

    #[test]
    fn builds_once_per_index() {
        let c = AnswerCache::new(8);
        for _ in 0..5 {
            c.get_or_build(key("web"), 7, AnswerSet::default);
        }
        assert_eq!(c.builds(), 1);
        c.get_or_build(key("web"), 8, AnswerSet::default);
        c.get_or_build(key("web"), 8, AnswerSet::default);
        assert_eq!(c.builds(), 2);
        assert_eq!(c.len(), 1);
        assert!(c.get(&key("web"), 8).is_some());
        assert!(c.get(&key("web"), 7).is_none(), "only the index it was built at");
        assert!(c.get(&key("api"), 8).is_none());
    }

    #[test]
    fn bounded_with_lru_eviction() {
        let c = AnswerCache::new(2);
        c.get_or_build(key("a"), 1, AnswerSet::default);
        c.get_or_build(key("b"), 1, AnswerSet::default);
        c.get_or_build(key("a"), 1, AnswerSet::default); // a is now newest
        c.get_or_build(key("c"), 1, AnswerSet::default); // evicts b
        assert_eq!(c.len(), 2);
        let before = c.builds();
        c.get_or_build(key("a"), 1, AnswerSet::default);
        assert_eq!(c.builds(), before);
        c.get_or_build(key("b"), 1, AnswerSet::default);
        assert_eq!(c.builds(), before + 1);
    }

    #[test]
    fn concurrent_callers_share_one_build() {
        let c = Arc::new(AnswerCache::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    c.get_or_build(key("web"), 3, || {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        AnswerSet::default()
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.builds(), 1);
    }
}
