//! Serf member bookkeeping: SWIM's joins, updates, failures and departures
//! become member statuses (alive / leaving / left / failed); leave and join
//! intents, ordered by the member Lamport clock, decide between `left` and
//! `failed` and let a node that comes back override an older leave.
//!
//! Owns: member status transitions. Must not send anything except intent
//! broadcasts.

use super::message::{decode_tags, SerfMsg};
use super::{Intent, LeavePhase, MemberState, Serf};
use crate::gossip::member::{Member, MemberEvent, MemberStatus};
use crate::gossip::swim::broadcast::BroadcastClass;
use crate::gossip::swim::Time;
use std::net::SocketAddr;

impl Serf {
    pub(super) fn node_joined(&mut self, name: &str, addr: SocketAddr, meta: &[u8], _now: Time) {
        let tags = decode_tags(meta).unwrap_or_else(|e| {
            glog!(self.cfg.swim.scope, serf, warn, node = %name, error = %e, "failed to decode member tags");
            Default::default()
        });
        let intent = self.recent_intents.remove(name);
        let entry = self.members.entry(name.to_string()).or_insert_with(|| MemberState {
            member: Member::new(name.to_string(), addr, tags.clone(), MemberStatus::Alive),
            status_ltime: 0,
            leave_time: None,
            prune_when_gone: false,
        });
        entry.member.addr = addr.ip();
        entry.member.port = addr.port();
        entry.member.tags = tags;
        entry.member.status = MemberStatus::Alive;
        entry.leave_time = None;
        entry.prune_when_gone = false;
        // An intent that arrived before the member did applies now.
        if let Some(i) = intent {
            if i.ltime > entry.status_ltime {
                entry.status_ltime = i.ltime;
                if i.leave {
                    entry.member.status = MemberStatus::Leaving;
                }
            }
        }
        let m = entry.member.clone();
        if name != self.cfg.name {
            glog!(self.cfg.swim.scope, serf, info, member = %name, addr = %addr.ip(), "EventMemberJoin");
        }
        self.touch_members();
        self.out_events.push_back(super::SerfEvent::Member(MemberEvent::Join(m)));
    }

    pub(super) fn node_updated(&mut self, name: &str, addr: SocketAddr, meta: &[u8]) {
        let Some(entry) = self.members.get_mut(name) else { return };
        match decode_tags(meta) {
            Ok(t) => entry.member.tags = t,
            Err(e) => {
                glog!(self.cfg.swim.scope, serf, warn, node = %name, error = %e, "failed to decode member tags")
            }
        }
        entry.member.addr = addr.ip();
        entry.member.port = addr.port();
        let m = entry.member.clone();
        glog!(self.cfg.swim.scope, serf, info, member = %name, "EventMemberUpdate");
        self.touch_members();
        self.out_events.push_back(super::SerfEvent::Member(MemberEvent::Update(m)));
    }

    /// SWIM says the node is gone: `left` if it announced it or we saw its
    /// leave intent, else `failed`.
    pub(super) fn node_gone(&mut self, name: &str, graceful: bool, now: Time) {
        if name == self.cfg.name {
            return;
        }
        let Some(entry) = self.members.get_mut(name) else { return };
        if matches!(entry.member.status, MemberStatus::Left | MemberStatus::Failed) {
            return;
        }
        entry.leave_time = Some(now);
        let prune = entry.prune_when_gone;
        let ev = if graceful || entry.member.status == MemberStatus::Leaving {
            entry.member.status = MemberStatus::Left;
            glog!(self.cfg.swim.scope, serf, info, member = %name, "EventMemberLeave");
            MemberEvent::Leave(entry.member.clone())
        } else {
            entry.member.status = MemberStatus::Failed;
            glog!(self.cfg.swim.scope, serf, info, member = %name, "EventMemberFailed");
            MemberEvent::Failed(entry.member.clone())
        };
        self.touch_members();
        self.out_events.push_back(super::SerfEvent::Member(ev));
        if prune {
            self.erase(name);
        }
    }

    /// Records an intent for a node we do not know yet; true if it was new.
    fn upsert_intent(&mut self, node: &str, ltime: u64, leave: bool, now: Time) -> bool {
        match self.recent_intents.get(node) {
            Some(i) if i.ltime >= ltime => false,
            _ => {
                self.recent_intents.insert(node.to_string(), Intent { ltime, leave, at: now });
                true
            }
        }
    }

    /// Returns whether the intent is news worth re-broadcasting.
    pub(super) fn handle_leave_intent(&mut self, ltime: u64, node: &str, prune: bool, now: Time) -> bool {
        self.member_clock.witness(ltime);
        let Some(entry) = self.members.get_mut(node) else {
            return self.upsert_intent(node, ltime, true, now);
        };
        if ltime <= entry.status_ltime {
            return false;
        }
        if node == self.cfg.name && self.leave == LeavePhase::None {
            // Somebody thinks we are leaving (an old intent of a previous
            // run, or a force-leave while we live): say we are here.
            glog!(self.cfg.swim.scope, serf, debug, "refuting an older leave intent");
            let lt = self.member_clock.time();
            self.broadcast_join(lt, now);
            return false;
        }
        entry.status_ltime = ltime;
        match entry.member.status {
            MemberStatus::Alive => {
                // A force-leave can reach us before SWIM here has declared
                // the node dead; the prune then waits for that.
                entry.member.status = MemberStatus::Leaving;
                entry.prune_when_gone = prune;
                self.touch_members();
                true
            }
            MemberStatus::Failed => {
                entry.member.status = MemberStatus::Left;
                if entry.leave_time.is_none() {
                    entry.leave_time = Some(now);
                }
                let m = entry.member.clone();
                glog!(self.cfg.swim.scope, serf, info, member = %node, "EventMemberLeave (forced)");
                self.touch_members();
                self.out_events.push_back(super::SerfEvent::Member(MemberEvent::Leave(m)));
                if prune {
                    self.erase(node);
                }
                true
            }
            MemberStatus::Leaving | MemberStatus::Left => {
                if prune && entry.member.status == MemberStatus::Left {
                    self.erase(node);
                } else if prune {
                    entry.prune_when_gone = true;
                }
                true
            }
            MemberStatus::None => false,
        }
    }

    pub(super) fn handle_join_intent(&mut self, ltime: u64, node: &str, now: Time) -> bool {
        self.member_clock.witness(ltime);
        let Some(entry) = self.members.get_mut(node) else {
            return self.upsert_intent(node, ltime, false, now);
        };
        if ltime <= entry.status_ltime {
            return false;
        }
        entry.status_ltime = ltime;
        if entry.member.status == MemberStatus::Leaving {
            // The leave we saw is older than this join.
            entry.member.status = MemberStatus::Alive;
            entry.prune_when_gone = false;
            self.touch_members();
        }
        true
    }

    /// Announces that we are a member as of `ltime`.
    pub(super) fn broadcast_join(&mut self, ltime: u64, now: Time) {
        let local = self.cfg.name.clone();
        self.member_clock.witness(ltime);
        self.handle_join_intent(ltime, &local, now);
        let msg = SerfMsg::Join { ltime, node: local.clone() };
        self.swim.queue_broadcast(None, BroadcastClass::Intent, msg.encode());
    }

    /// Records that the member list changed (for the snapshot and views).
    pub(super) fn touch_members(&mut self) {
        self.dirty = true;
        self.members_gen += 1;
    }

    /// Removes a member from the list for good.
    pub(super) fn erase(&mut self, name: &str) {
        if let Some(m) = self.members.remove(name) {
            self.forget_coordinate(name);
            self.touch_members();
            self.out_events.push_back(super::SerfEvent::Member(MemberEvent::Reap(m.member)));
        }
    }
}
