//! Wake-ups for blocking queries. A reader registers interest in exactly
//! what it reads (one KV key or key prefix; one catalog topic such as a
//! service name) before it reads; the state machine notifies only the
//! watchers whose data changed. So a watcher of `kv/a` sleeps through any
//! number of writes to `kv/b`, a watcher of service `web` through changes
//! to `db`, and idle watchers cost no CPU.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
}

struct Slot {
    signal: Arc<Signal>,
    refs: usize,
}

/// What a slot's watchers wait on: the notifier, and a count of the
/// changes, so a watcher that was not waiting when one happened (a parked
/// query between two runs) still sees it (`Watch::changed_since`).
#[derive(Default)]
struct Signal {
    notify: Notify,
    changes: AtomicU64,
}

#[derive(Default)]
struct Registry {
    exact: BTreeMap<String, Slot>,
    prefix: BTreeMap<String, Slot>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut BTreeMap<String, Slot> {
        match kind {
            Kind::Exact => &mut self.exact,
            Kind::Prefix => &mut self.prefix,
        }
    }
}

/// Per-key and per-prefix watchers (one hub for KV keys, one for catalog topics).
#[derive(Default)]
pub struct WatchHub {
    registry: Mutex<Registry>,
    notified: AtomicU64,
}

impl WatchHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Watches one key.
    pub fn watch_key(self: &Arc<Self>, key: &str) -> Watch {
        self.register(Kind::Exact, key)
    }

    /// Watches every key under a prefix (the empty prefix is the whole table).
    pub fn watch_prefix(self: &Arc<Self>, prefix: &str) -> Watch {
        self.register(Kind::Prefix, prefix)
    }

    fn register(self: &Arc<Self>, kind: Kind, key: &str) -> Watch {
        let mut reg = lock(&self.registry);
        let slot = reg
            .map(kind)
            .entry(key.to_string())
            .or_insert_with(|| Slot { signal: Arc::new(Signal::default()), refs: 0 });
        slot.refs += 1;
        crate::metrics::gauge_add("consul.blocking_query.watchers", 1);
        Watch { hub: self.clone(), kind, key: key.into(), signal: slot.signal.clone() }
    }

    fn unregister(&self, kind: Kind, key: &str) {
        crate::metrics::gauge_add("consul.blocking_query.watchers", -1);
        let mut reg = lock(&self.registry);
        let map = reg.map(kind);
        if let Some(slot) = map.get_mut(key) {
            slot.refs -= 1;
            if slot.refs == 0 {
                map.remove(key);
            }
        }
    }

    /// Wakes the watchers of `key` and of every prefix of it.
    pub fn key_changed(&self, key: &str) {
        let reg = lock(&self.registry);
        if let Some(slot) = reg.exact.get(key) {
            self.fire(slot);
        }
        if reg.prefix.is_empty() {
            return;
        }
        for end in key.char_indices().map(|(i, _)| i).chain(std::iter::once(key.len())) {
            if let Some(slot) = reg.prefix.get(&key[..end]) {
                self.fire(slot);
            }
        }
    }

    /// Wakes every watcher that could see a change under `prefix`: exact
    /// and prefix watchers inside it, and prefix watchers above it.
    pub fn tree_changed(&self, prefix: &str) {
        let reg = lock(&self.registry);
        for (k, slot) in reg.exact.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            self.fire(slot);
        }
        for (k, slot) in reg.prefix.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            self.fire(slot);
        }
        for end in prefix.char_indices().map(|(i, _)| i) {
            if let Some(slot) = reg.prefix.get(&prefix[..end]) {
                self.fire(slot);
            }
        }
    }

    fn fire(&self, slot: &Slot) {
        self.notified.fetch_add(1, Ordering::Relaxed);
        // Counted before waking: a watcher that enables its `Notified` and
        // then finds the count unchanged is sure to be woken.
        slot.signal.changes.fetch_add(1, Ordering::SeqCst);
        slot.signal.notify.notify_waiters();
    }

    /// How many watch slots are registered (for metrics and tests).
    pub fn watched(&self) -> usize {
        let reg = lock(&self.registry);
        reg.exact.len() + reg.prefix.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the registry inconsistent
    // (every mutation is a single map operation), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered interest; unregisters on drop.
pub struct Watch {
    hub: Arc<WatchHub>,
    kind: Kind,
    key: Box<str>,
    signal: Arc<Signal>,
}

impl Watch {
    /// The notifier to wait on. Create and enable the `Notified` future
    /// before reading, so a change between the read and the wait is not lost.
    pub fn notify(&self) -> &Notify {
        &self.signal.notify
    }

    /// How many changes the watched data has seen (take it before reading).
    pub fn changes(&self) -> u64 {
        self.signal.changes.load(Ordering::SeqCst)
    }

    /// Waits until the watched data changed after `changes` (a count from
    /// `changes`): returns at once if it already has.
    pub async fn changed_since(&self, changes: u64) {
        let notified = self.signal.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.changes() != changes {
            return;
        }
        notified.await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.hub.unregister(self.kind, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_affected_watchers_wake() {
        let hub = WatchHub::new();
        let a = hub.watch_key("kv/a");
        let tree = hub.watch_prefix("kv/");
        let other = hub.watch_prefix("other/");
        let fa = a.notify().notified();
        let ft = tree.notify().notified();
        let fo = other.notify().notified();
        tokio::pin!(fa, ft, fo);
        fa.as_mut().enable();
        ft.as_mut().enable();
        fo.as_mut().enable();
        hub.key_changed("kv/b");
        assert!(futures::poll!(fa.as_mut()).is_pending());
        assert!(futures::poll!(ft.as_mut()).is_ready());
        assert!(futures::poll!(fo.as_mut()).is_pending());
        hub.tree_changed("kv/");
        assert!(futures::poll!(fa.as_mut()).is_ready());
    }

    #[test]
    fn slots_are_released_on_drop() {
        let hub = WatchHub::new();
        let a = hub.watch_key("x");
        let b = hub.watch_key("x");
        let c = hub.watch_prefix("");
        assert_eq!(hub.watched(), 2);
        drop((a, b, c));
        assert_eq!(hub.watched(), 0);
    }
}
