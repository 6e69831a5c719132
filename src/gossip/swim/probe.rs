//! Failure detection: the probe round (direct ping, then indirect pings
//! through `indirect_checks` random peers, then suspicion) and the relay
//! side of indirect probes. Lifeguard hooks: a direct ack lowers our
//! awareness score; a failed probe raises it by the number of nacks we
//! expected but did not get (or by 1 when nobody could relay), because
//! missing nacks point at *our* network or CPU rather than the target.
//!
//! Owns: ack bookkeeping. Must not change node status except by raising a
//! suspicion through `suspect_node`.

use super::message::Msg;
use super::state::{Name, NodeStatus};
use super::{Swim, SwimTimer, Time};
use std::net::SocketAddr;
use std::time::Duration;

/// What an outstanding sequence number is waiting for.
#[derive(Debug, Clone)]
pub(super) enum AckWait {
    Probe(ProbeState),
    /// We relay an indirect probe for `requester`.
    Relay {
        requester: SocketAddr,
        orig_seq: u32,
        nack: bool,
    },
}

#[derive(Debug, Clone)]
pub(super) struct ProbeState {
    target: Name,
    /// Past the direct timeout: indirect probes are out.
    indirect: bool,
    expected_nacks: u32,
    nacks: u32,
    /// When the direct ping left: the ack's RTT feeds network coordinates.
    sent: Time,
}

impl Swim {
    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(super) fn probe_tick(&mut self, now: Time) {
        let interval = self.awareness.scale(self.cfg.probe_interval);
        self.timer(now + interval, SwimTimer::Probe);
        if self.leaving {
            return;
        }
        if let Some((name, addr, status, inc)) = self.next_probe_target(now) {
            self.probe(name, addr, status, inc, now, interval);
        }
    }

    /// The next node in probe order that is alive or suspect; reshuffles
    /// (and forgets long-dead nodes) at the end of every pass.
    fn next_probe_target(&mut self, now: Time) -> Option<(Name, SocketAddr, NodeStatus, u32)> {
        let mut checked = 0;
        while checked <= self.nodes.len() {
            if self.probe_pos >= self.nodes.len() {
                self.reset_nodes(now);
                self.probe_pos = 0;
            }
            let node = self.nodes.at(self.probe_pos)?;
            self.probe_pos += 1;
            checked += 1;
            if node.name == self.local || node.status.is_dead_or_left() {
                continue;
            }
            return Some((node.name.clone(), node.addr, node.status, node.incarnation));
        }
        None
    }

    /// memberlist's resetNodes: drop nodes dead for longer than
    /// GossipToTheDeadTime, then reshuffle the probe order.
    fn reset_nodes(&mut self, now: Time) {
        let ttd = self.cfg.gossip_to_the_dead;
        let local = self.local.clone();
        let forgotten = self.nodes.remove_where(|n| {
            n.name != local && n.status.is_dead_or_left() && now.saturating_sub(n.status_change()) > ttd
        });
        if forgotten > 0 {
            glog!(self.cfg.scope, memberlist, debug, forgotten, "forgot long-dead nodes");
        }
        self.nodes.shuffle(&mut self.rng);
    }

    fn probe(
        &mut self,
        target: Name,
        addr: SocketAddr,
        status: NodeStatus,
        inc: u32,
        now: Time,
        interval: Duration,
    ) {
        let seq = self.next_seq();
        let mut msgs = vec![Msg::Ping { seq, target: target.to_string() }];
        if status == NodeStatus::Suspect {
            // Lifeguard's buddy system: tell a suspect directly so it can
            // refute at once instead of waiting for gossip to reach it.
            msgs.push(Msg::Suspect {
                incarnation: inc,
                node: target.to_string(),
                from: self.local.to_string(),
            });
        }
        self.send(addr, &msgs);
        self.counters.probes += 1;
        self.acks.insert(
            seq,
            AckWait::Probe(ProbeState { target, indirect: false, expected_nacks: 0, nacks: 0, sent: now }),
        );
        let timeout = self.awareness.scale(self.cfg.probe_timeout).min(interval);
        self.timer(now + timeout, SwimTimer::ProbeTimeout(seq));
        self.timer(now + interval, SwimTimer::ProbeDeadline(seq));
    }

    /// No direct ack in time: ask peers to probe the target for us.
    pub(super) fn probe_timeout(&mut self, seq: u32, _now: Time) {
        let target = match self.acks.get(&seq) {
            Some(AckWait::Probe(p)) if !p.indirect => p.target.clone(),
            _ => return,
        };
        let Some(target_addr) = self.nodes.get(&target).map(|n| n.addr) else { return };
        let local = self.local.clone();
        let peers = self.k_random(self.cfg.indirect_checks, |n| {
            n.name != local && n.name != target && n.status == NodeStatus::Alive
        });
        if let Some(AckWait::Probe(p)) = self.acks.get_mut(&seq) {
            p.indirect = true;
            p.expected_nacks = peers.len() as u32;
        }
        for (_, peer) in peers {
            self.send(
                peer,
                &[Msg::IndirectPing { seq, target: target.to_string(), target_addr, nack: true }],
            );
        }
    }

    /// The probe interval ran out without any ack: adjust our awareness
    /// and suspect the target.
    pub(super) fn probe_deadline(&mut self, seq: u32, now: Time) {
        let p = match self.acks.get(&seq) {
            Some(AckWait::Probe(p)) => p.clone(),
            _ => return,
        };
        self.acks.remove(&seq);
        self.counters.probes_failed += 1;
        let delta = if p.expected_nacks > 0 { p.expected_nacks.saturating_sub(p.nacks) as i32 } else { 1 };
        self.awareness.apply(delta);
        let Some(node) = self.nodes.get(&p.target) else { return };
        if matches!(node.status, NodeStatus::Alive | NodeStatus::Suspect) {
            let inc = node.incarnation;
            let local = self.local.clone();
            glog!(self.cfg.scope, memberlist, debug, node = %p.target, "probe failed; suspecting node");
            self.suspect_node(inc, &p.target, &local, now);
        }
    }

    pub(super) fn handle_ack(&mut self, seq: u32, now: Time) {
        match self.acks.remove(&seq) {
            // Only a direct ack proves our own health (Lifeguard), and only
            // a direct one measures the round trip to the target.
            Some(AckWait::Probe(p)) if !p.indirect => {
                self.awareness.apply(-1);
                let rtt = now.saturating_sub(p.sent);
                self.events.push_back(super::SwimEvent::ProbeRtt { node: p.target, seq, rtt });
            }
            Some(AckWait::Probe(_)) => {}
            Some(AckWait::Relay { requester, orig_seq, .. }) => {
                self.send(requester, &[Msg::Ack { seq: orig_seq }])
            }
            None => {}
        }
    }

    pub(super) fn handle_nack(&mut self, seq: u32) {
        if let Some(AckWait::Probe(p)) = self.acks.get_mut(&seq) {
            p.nacks += 1;
        }
    }

    /// Probes `target` on behalf of `requester`.
    pub(super) fn relay_probe(
        &mut self,
        requester: SocketAddr,
        orig_seq: u32,
        target: String,
        target_addr: SocketAddr,
        nack: bool,
        now: Time,
    ) {
        let seq = self.next_seq();
        self.acks.insert(seq, AckWait::Relay { requester, orig_seq, nack });
        // The requester may still probe a node we already hold dead: our
        // gossip rides along, but uncounted (see `gossip_tick`).
        let counted = !self.is_dead_or_left(&target);
        self.send_encoded(target_addr, &[Msg::Ping { seq, target }.encode()], counted);
        self.timer(now + self.cfg.probe_timeout, SwimTimer::RelayExpire(seq));
    }

    pub(super) fn relay_expire(&mut self, seq: u32) {
        if let Some(AckWait::Relay { requester, orig_seq, nack }) = self.acks.get(&seq).cloned() {
            self.acks.remove(&seq);
            if nack {
                self.send(requester, &[Msg::Nack { seq: orig_seq }]);
            }
        }
    }
}
