//! The events this agent accepted: the newest 256, oldest first, and the
//! blocking read of `/v1/event/list`.
//!
//! Consul's blocking rule for this list differs from the catalog's: the
//! index is derived from the newest listed event's ID (so it is not
//! monotonic), and a query blocks only while the index it would answer
//! *equals* the one it was given; any other index answers at once.
//!
//! Owns the ring and its wake-ups. Must not decode or filter gossip.

use super::types::{index_of, UserEvent};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

struct Inner {
    events: Mutex<VecDeque<Arc<UserEvent>>>,
    capacity: usize,
    /// Bumped on every insert; blocked readers wait for it to change.
    changes: watch::Sender<u64>,
}

/// A cheap, cloneable handle to the ring.
#[derive(Clone)]
pub struct EventRing {
    inner: Arc<Inner>,
}

impl Default for EventRing {
    fn default() -> Self {
        EventRing::new(super::RING_SIZE)
    }
}

/// The index a list of events answers with: from the newest event's ID,
/// or 1 when the list is empty (never 0, which would make watchers spin).
pub fn list_index(events: &[Arc<UserEvent>]) -> u64 {
    events.last().map(|e| index_of(&e.id)).unwrap_or(1).max(1)
}

impl EventRing {
    pub fn new(capacity: usize) -> EventRing {
        let capacity = capacity.max(1);
        let (changes, _) = watch::channel(0);
        EventRing {
            inner: Arc::new(Inner {
                events: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
                changes,
            }),
        }
    }

    /// Adds an event, dropping the oldest when full, and wakes readers.
    pub fn push(&self, ev: UserEvent) {
        {
            let mut events = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
            while events.len() >= self.inner.capacity {
                events.pop_front();
            }
            events.push_back(Arc::new(ev));
        }
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The events, oldest first; only those named `name` if given.
    pub fn list(&self, name: Option<&str>) -> Vec<Arc<UserEvent>> {
        let events = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter(|e| name.is_none_or(|n| e.name == n)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.inner.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `list` under Consul's blocking rule: with `min_index` > 0, waits
    /// (at most `wait`) while the answer's index equals `min_index`.
    /// Returns the index and the events.
    pub async fn list_blocking(
        &self,
        name: Option<&str>,
        min_index: u64,
        wait: Duration,
    ) -> (u64, Vec<Arc<UserEvent>>) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Subscribe before reading (the current value counts as seen), so
            // an insert in between still wakes us.
            let mut changed = self.inner.changes.subscribe();
            let events = self.list(name);
            let index = list_index(&events);
            if min_index == 0 || index != min_index {
                return (index, events);
            }
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        return (index, events);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return (index, events),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, n: u128) -> UserEvent {
        UserEvent {
            id: uuid::Uuid::from_u128(n),
            name: name.into(),
            payload: None,
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            version: 1,
            ltime: n as u64,
        }
    }

    #[test]
    fn keeps_the_newest_events_oldest_first() {
        let ring = EventRing::new(256);
        for i in 1..=300u128 {
            ring.push(ev("e", i));
        }
        let all = ring.list(None);
        assert_eq!(all.len(), 256);
        assert_eq!(all.first().unwrap().ltime, 45);
        assert_eq!(all.last().unwrap().ltime, 300);
        assert!(all.windows(2).all(|w| w[0].ltime + 1 == w[1].ltime));
    }

    #[test]
    fn name_filter_and_index() {
        let ring = EventRing::new(4);
        assert_eq!(list_index(&ring.list(None)), 1, "empty list answers 1");
        ring.push(ev("a", 5));
        ring.push(ev("b", 7));
        let a = ring.list(Some("a"));
        assert_eq!(a.len(), 1);
        assert_eq!(list_index(&a), 5, "low half 5, high half 0");
        assert_eq!(list_index(&ring.list(None)), 7);
        assert!(ring.list(Some("zzz")).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn blocks_only_on_an_equal_index_and_times_out() {
        let ring = EventRing::new(8);
        ring.push(ev("a", 5));
        // A different index answers at once, without waiting.
        let t0 = tokio::time::Instant::now();
        let (i, _) = ring.list_blocking(None, 99, Duration::from_secs(60)).await;
        assert_eq!(i, 5);
        assert_eq!(t0.elapsed(), Duration::ZERO);
        // The same index waits for the whole wait when nothing arrives.
        let (i, evs) = ring.list_blocking(None, 5, Duration::from_secs(3)).await;
        assert_eq!((i, evs.len()), (5, 1));
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_event_wakes_a_blocked_reader() {
        let ring = EventRing::new(8);
        ring.push(ev("a", 5));
        let r2 = ring.clone();
        let reader = tokio::spawn(async move { r2.list_blocking(None, 5, Duration::from_secs(600)).await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!reader.is_finished());
        ring.push(ev("a", 9));
        let (i, evs) = reader.await.unwrap();
        assert_eq!(i, 9);
        assert_eq!(evs.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_outside_the_name_filter_does_not_end_the_wait() {
        let ring = EventRing::new(8);
        ring.push(ev("a", 5));
        let r2 = ring.clone();
        let t0 = tokio::time::Instant::now();
        let reader =
            tokio::spawn(async move { r2.list_blocking(Some("a"), 5, Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        ring.push(ev("b", 9));
        let (i, evs) = reader.await.unwrap();
        assert_eq!((i, evs.len()), (5, 1));
        assert_eq!(t0.elapsed(), Duration::from_secs(30));
    }
}
