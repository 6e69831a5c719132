//! User events: Lamport-stamped, delivered to every member once
//! (de-duplicated by time + name + payload in a ring of recent times), and
//! carried in push-pull so a member that missed the gossip still gets them.
//!
//! Owns: the ring buffer and event acceptance. Must not deliver anything
//! but `SerfEvent::User`.

use super::message::{EventsAt, SerfMsg};
use super::{Serf, SerfError, SerfEvent, UserEvent};
use crate::gossip::swim::broadcast::BroadcastClass;

/// Recent items by Lamport time: slot `ltime % len` holds the items of the
/// latest time that mapped there.
#[derive(Debug)]
pub(super) struct Ring<T> {
    slots: Vec<Option<(u64, Vec<T>)>>,
}

impl<T: PartialEq + Clone> Ring<T> {
    pub(super) fn new(len: usize) -> Self {
        Ring { slots: vec![None; len.max(1)] }
    }

    pub(super) fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Adds `item` at `ltime`; false if it was already there.
    pub(super) fn insert(&mut self, ltime: u64, item: T) -> bool {
        let len = self.len();
        let Some(slot) = self.slots.get_mut((ltime % len) as usize) else { return false };
        match slot {
            Some((t, items)) if *t == ltime => {
                if items.contains(&item) {
                    return false;
                }
                items.push(item);
            }
            _ => *slot = Some((ltime, vec![item])),
        }
        true
    }

    /// Whether `ltime` is too far behind `now` to be remembered.
    pub(super) fn too_old(&self, ltime: u64, now: u64) -> bool {
        now > self.len() && ltime < now - self.len()
    }
}

impl Ring<(String, Vec<u8>)> {
    pub(super) fn export(&self) -> Vec<EventsAt> {
        self.slots.iter().flatten().map(|(t, ev)| EventsAt { ltime: *t, events: ev.clone() }).collect()
    }
}

impl Serf {
    /// Fires a user event to the whole pool (and to ourselves).
    pub fn user_event(
        &mut self,
        name: &str,
        payload: &[u8],
        coalesce: bool,
        now: crate::gossip::swim::Time,
    ) -> Result<(), SerfError> {
        let size = name.len() + payload.len();
        if size > self.cfg.user_event_size_limit {
            return Err(SerfError::EventTooLarge(self.cfg.user_event_size_limit));
        }
        let ltime = self.event_clock.time();
        self.event_clock.increment();
        let msg = SerfMsg::UserEvent { ltime, name: name.to_string(), payload: payload.to_vec(), coalesce };
        self.handle_user_event(ltime, name.to_string(), payload.to_vec(), coalesce);
        self.swim.queue_broadcast(None, BroadcastClass::Event, msg.encode());
        self.dirty = true;
        self.pump(now);
        Ok(())
    }

    /// Returns whether the event was new (and so is re-broadcast).
    pub(super) fn handle_user_event(
        &mut self,
        ltime: u64,
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
    ) -> bool {
        self.event_clock.witness(ltime);
        if ltime < self.event_min_time {
            return false;
        }
        if self.event_ring.too_old(ltime, self.event_clock.time()) {
            glog!(self.cfg.swim.scope, serf, warn, ltime, name = %name, "received an old event; ignoring");
            return false;
        }
        if !self.event_ring.insert(ltime, (name.clone(), payload.clone())) {
            return false;
        }
        glog!(self.cfg.swim.scope, serf, debug, name = %name, ltime, "EventUser");
        self.out_events.push_back(SerfEvent::User(UserEvent { ltime, name, payload, coalesce }));
        true
    }
}
