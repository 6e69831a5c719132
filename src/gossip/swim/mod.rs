//! The sans-IO SWIM core: membership by randomized probing (ping, indirect
//! ping via `indirect_checks` peers), suspicion with memberlist's shrinking
//! timeout, Lifeguard local health awareness, incarnation numbers with
//! refutation, piggy-backed dissemination with a bounded retransmit count,
//! periodic gossip (plus an early round as soon as news is queued, see
//! `note_news`), and periodic push-pull full-state exchange.
//!
//! It never reads a clock, sleeps, or touches a socket. The driver feeds it
//! `handle_packet`, `handle_timer`, `handle_stream` and user calls, each with
//! the current time, and drains `poll_output` (packets, stream requests,
//! timers to schedule) and `poll_event` (membership changes). Every timer is
//! validated when it fires, so stale or duplicated timers are harmless.
//!
//! Owns: SWIM/Lifeguard protocol state. Must not know about Serf semantics
//! (tags, intents, user events): the layer above speaks through `User`
//! messages and push-pull user state.

pub mod awareness;
pub mod broadcast;
pub mod message;
pub mod state;
pub mod suspicion;

mod probe;

use crate::config::runtime::GossipSettings;
use crate::gossip::codec::{self, CodecError, PacketBuilder};
use awareness::Awareness;
use broadcast::{BroadcastClass, BroadcastKey, BroadcastQueue};
use message::{Msg, PushNode, PushPull, StreamMsg};
use probe::AckWait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use state::{Meta, Name, NodeState, NodeStatus, NodeTable};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;
use suspicion::Suspicion;

/// Time as the driver measures it: elapsed since an arbitrary epoch of the
/// driver's choosing (monotonic). The core only compares and adds times.
pub type Time = Duration;

/// SWIM timings and limits (memberlist's names).
#[derive(Clone, Debug, PartialEq)]
pub struct SwimConfig {
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub indirect_checks: usize,
    pub suspicion_mult: u32,
    pub suspicion_max_timeout_mult: u32,
    pub retransmit_mult: u32,
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// How long dead nodes keep receiving gossip (so they can learn they
    /// were declared dead and refute) and stay in the SWIM table.
    pub gossip_to_the_dead: Duration,
    pub push_pull_interval: Duration,
    /// Lifeguard's AwarenessMaxMultiplier; 1 disables Lifeguard.
    pub awareness_max_multiplier: u32,
    /// Largest plaintext UDP packet we build (UDPBufferSize minus the
    /// encryption envelope).
    pub packet_budget: usize,
    /// Serf messages queued at most (Consul's MinQueueDepth 4096, or 2 × N
    /// if larger); beyond it the most-sent are dropped first.
    pub max_broadcasts: usize,
    /// Log targets.
    pub scope: crate::gossip::LogScope,
}

impl SwimConfig {
    /// Takes Consul's per-pool timings; the rest are memberlist's defaults.
    /// GossipToTheDeadTime equals the push-pull interval in all of
    /// memberlist's profiles (LAN 30 s, WAN 60 s, local 15 s), so it is
    /// derived from it.
    pub fn from_settings(s: &GossipSettings) -> Self {
        SwimConfig {
            probe_interval: s.probe_interval,
            probe_timeout: s.probe_timeout,
            indirect_checks: 3,
            suspicion_mult: s.suspicion_mult.max(1),
            suspicion_max_timeout_mult: 6,
            retransmit_mult: s.retransmit_mult.max(1),
            gossip_interval: s.gossip_interval,
            gossip_nodes: s.gossip_nodes,
            gossip_to_the_dead: s.push_pull_interval,
            push_pull_interval: s.push_pull_interval,
            awareness_max_multiplier: 8,
            packet_budget: 1400 - crate::gossip::crypto::ENVELOPE_OVERHEAD,
            max_broadcasts: 4096,
            scope: crate::gossip::LogScope::ServerLan,
        }
    }
}

/// This node as it introduces itself.
#[derive(Clone, Debug)]
pub struct LocalNode {
    pub name: String,
    pub addr: SocketAddr,
    pub meta: Vec<u8>,
    /// Starting incarnation (1 for a fresh node).
    pub incarnation: u32,
}

/// Timers the core asks the driver to fire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SwimTimer {
    Probe,
    ProbeTimeout(u32),
    ProbeDeadline(u32),
    RelayExpire(u32),
    Suspicion(Name),
    Gossip,
    /// An extra gossip round for news just queued (does not reschedule).
    GossipNews,
    PushPull,
}

/// What the core asks the driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<T> {
    /// Send one UDP datagram.
    Packet { to: SocketAddr, bytes: Vec<u8> },
    /// Open a stream, send `bytes`, and hand the reply back with `token`.
    Stream { to: SocketAddr, token: u64, bytes: Vec<u8> },
    /// (SWIM only) a periodic push-pull with `to` is due; the layer above
    /// adds its own state and turns it into a `Stream`.
    PushPull { to: SocketAddr, token: u64 },
    /// Call `handle_timer(timer)` at `at` (or later).
    Timer { at: Time, timer: T },
}

/// Membership changes and messages for the layer above.
#[derive(Clone, Debug)]
pub enum SwimEvent {
    Joined(NodeState),
    Updated(NodeState),
    Failed(NodeState),
    Left(NodeState),
    Suspected {
        node: Name,
        from: Name,
    },
    /// We heard we were suspected or dead and bumped our incarnation.
    Refuted {
        incarnation: u32,
    },
    User {
        from: SocketAddr,
        payload: Vec<u8>,
    },
    /// Our direct probe of `node` (sequence `seq`) was answered after
    /// `rtt`. Any `User` message the responder put next to its ack (see
    /// `set_ack_payload`) follows this event.
    ProbeRtt {
        node: Name,
        seq: u32,
        rtt: Duration,
    },
}

/// What an inbound stream carried, once SWIM has taken its part.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamIn {
    /// Remote nodes are merged already; reply with `encode_push_pull`.
    PushPull { join: bool, user: Vec<u8> },
    /// A large message for the layer above; reply with `StreamMsg::Ok`.
    User(Vec<u8>),
}

/// Running totals, for tests, stats and the simulation report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwimCounters {
    pub probes: u64,
    pub probes_failed: u64,
    pub suspicions_raised: u64,
    pub refutations: u64,
    pub declared_dead: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

pub struct Swim {
    cfg: SwimConfig,
    local: Name,
    local_addr: SocketAddr,
    local_meta: Meta,
    incarnation: u32,
    nodes: NodeTable,
    probe_pos: usize,
    seq: u32,
    acks: HashMap<u32, AckWait>,
    suspicions: HashMap<Name, Suspicion>,
    awareness: Awareness,
    broadcasts: BroadcastQueue,
    rng: SmallRng,
    outputs: VecDeque<Output<SwimTimer>>,
    events: VecDeque<SwimEvent>,
    leaving: bool,
    next_token: u64,
    counters: SwimCounters,
    /// A message for the layer above sent as a `User` message in the same
    /// packet as every ack we give (Serf puts our coordinate there). Older
    /// agents of ours decode `User` and skip what they do not understand,
    /// so the ack itself stays readable to them.
    ack_payload: Option<Vec<u8>>,
    /// A `GossipNews` round is scheduled and has not run yet.
    news_round_due: bool,
    /// The earliest time the next `GossipNews` round may run.
    news_round_not_before: Time,
}

/// News rounds run at most once per gossip interval / this (20 ms on
/// LAN timings): a burst of news shares one round, and a steady stream of
/// broadcasts cannot turn every message into its own packets.
const NEWS_ROUNDS_PER_INTERVAL: u32 = 10;

impl Swim {
    /// Creates the core with only itself as a member and schedules the
    /// periodic timers, staggered randomly so a fleet started together does
    /// not probe in lock-step.
    pub fn new(cfg: SwimConfig, local: LocalNode, seed: u64, now: Time) -> Swim {
        let name: Name = local.name.as_str().into();
        let meta: Meta = local.meta.into();
        let mut rng = SmallRng::seed_from_u64(seed);
        let incarnation = local.incarnation.max(1);
        let mut nodes = NodeTable::default();
        let me = NodeState::new(name.clone(), local.addr, meta.clone(), incarnation, NodeStatus::Alive, now);
        nodes.insert_random(me.clone(), &mut rng);
        let mut s = Swim {
            awareness: Awareness::new(cfg.awareness_max_multiplier),
            cfg,
            local: name,
            local_addr: local.addr,
            local_meta: meta,
            incarnation,
            nodes,
            probe_pos: 0,
            seq: rng.random(),
            acks: HashMap::new(),
            suspicions: HashMap::new(),
            broadcasts: BroadcastQueue::new(),
            rng,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            leaving: false,
            next_token: 0,
            counters: SwimCounters::default(),
            ack_payload: None,
            news_round_due: false,
            news_round_not_before: now,
        };
        // Our own alive message waits in the queue from the start, as
        // memberlist's does: once a join tells us of peers, the first probes
        // and gossip rounds carry it. Without it only the node we joined
        // spreads the news (a few retransmits), and a member those happen
        // to miss learns of us only at its next push-pull, up to 30 s later.
        s.broadcast_alive_of(&me);
        s.events.push_back(SwimEvent::Joined(me));
        let (pi, gi, ppi) = (s.cfg.probe_interval, s.cfg.gossip_interval, s.cfg.push_pull_interval);
        let p = pi.mul_f64(s.rng.random::<f64>());
        s.timer(now + p, SwimTimer::Probe);
        let g = gi.mul_f64(s.rng.random::<f64>());
        s.timer(now + g, SwimTimer::Gossip);
        let pp = ppi.mul_f64(s.rng.random::<f64>());
        s.timer(now + pp, SwimTimer::PushPull);
        s
    }

    /// Creates the core with a known, converged member table: every node in
    /// `members` is taken as alive at its incarnation, without gossiping
    /// the news (everyone is assumed to know already). Used by the
    /// simulator to start large clusters without a mass-join storm; the
    /// protocol runs normally from there.
    pub fn with_members(
        cfg: SwimConfig,
        local: LocalNode,
        members: &[NodeState],
        seed: u64,
        now: Time,
    ) -> Swim {
        let mut s = Swim::new(cfg, local, seed, now);
        // Everyone knows us already: drop the self-introduction `new` queued.
        s.broadcasts = BroadcastQueue::new();
        s.nodes.reserve(members.len());
        for m in members {
            if m.name == s.local || s.nodes.get(&m.name).is_some() {
                continue;
            }
            let node = m.with_status(m.incarnation, NodeStatus::Alive, now);
            s.nodes.insert_random(node.clone(), &mut s.rng);
            s.events.push_back(SwimEvent::Joined(node));
        }
        s
    }

    // ----- accessors -------------------------------------------------------

    pub fn config(&self) -> &SwimConfig {
        &self.cfg
    }

    pub fn local_name(&self) -> &Name {
        &self.local
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter()
    }

    /// Known nodes, including dead ones not yet forgotten (memberlist's
    /// estimate of N for the formulas).
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn num_alive(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.status, NodeStatus::Alive | NodeStatus::Suspect)).count()
    }

    /// Lifeguard score (0 = healthy).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    pub fn counters(&self) -> &SwimCounters {
        &self.counters
    }

    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    pub fn queue_len(&self, class: BroadcastClass) -> usize {
        self.broadcasts.class_len(class)
    }

    /// Whether anyone but us could still receive gossip.
    pub fn has_alive_peers(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.name != self.local && matches!(n.status, NodeStatus::Alive | NodeStatus::Suspect))
    }

    /// RetransmitMult × ceil(log10(N + 1)).
    pub fn retransmit_limit(&self) -> u32 {
        let scale = ((self.nodes.len() + 1) as f64).log10().ceil() as u32;
        self.cfg.retransmit_mult * scale.max(1)
    }

    // ----- driver interface -------------------------------------------------

    pub fn poll_output(&mut self) -> Option<Output<SwimTimer>> {
        self.outputs.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SwimEvent> {
        let ev = self.events.pop_front();
        // A warm start (`with_members`) queues one event per member; give
        // that memory back once drained instead of keeping it per member.
        if ev.is_none() && self.events.capacity() > 1024 {
            self.events.shrink_to(64);
        }
        ev
    }

    /// Sets (or clears) what rides along with every ack we send.
    pub fn set_ack_payload(&mut self, payload: Option<Vec<u8>>) {
        self.ack_payload = payload;
    }

    /// One UDP datagram (plaintext, already decrypted) from `from`. Either
    /// every message in it is applied or none is.
    pub fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Result<(), CodecError> {
        let parts = codec::split_packet(bytes)?;
        let mut msgs = Vec::with_capacity(parts.len());
        for p in parts {
            msgs.push(Msg::decode(p)?);
        }
        for m in msgs {
            self.handle_msg(from, m, now);
        }
        Ok(())
    }

    pub fn handle_timer(&mut self, timer: SwimTimer, now: Time) {
        match timer {
            SwimTimer::Probe => self.probe_tick(now),
            SwimTimer::ProbeTimeout(seq) => self.probe_timeout(seq, now),
            SwimTimer::ProbeDeadline(seq) => self.probe_deadline(seq, now),
            SwimTimer::RelayExpire(seq) => self.relay_expire(seq),
            SwimTimer::Suspicion(name) => self.suspicion_expired(&name, now),
            SwimTimer::Gossip => self.gossip_tick(now),
            SwimTimer::GossipNews => self.gossip_news(now),
            SwimTimer::PushPull => self.push_pull_tick(now),
        }
    }

    /// An inbound stream request. Push-pull state is merged here.
    pub fn handle_stream(&mut self, bytes: &[u8], now: Time) -> Result<StreamIn, CodecError> {
        match StreamMsg::decode(bytes)? {
            StreamMsg::PushPull(pp) => {
                self.merge_remote(&pp.nodes, now);
                Ok(StreamIn::PushPull { join: pp.join, user: pp.user })
            }
            StreamMsg::User(b) => Ok(StreamIn::User(b)),
            StreamMsg::Ok | StreamMsg::Error(_) => {
                Err(CodecError::Invalid("unexpected reply frame as a request".into()))
            }
        }
    }

    /// Our full state for a push-pull (request or reply).
    pub fn encode_push_pull(&self, join: bool, user: Vec<u8>) -> Vec<u8> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| PushNode {
                name: n.name.to_string(),
                addr: n.addr,
                meta: n.meta.to_vec(),
                incarnation: n.incarnation,
                state: n.status.to_wire(),
            })
            .collect();
        StreamMsg::PushPull(PushPull { join, nodes, user }).encode()
    }

    /// The reply to a push-pull we started; merges it and returns the
    /// remote's user state.
    pub fn handle_push_pull_reply(&mut self, bytes: &[u8], now: Time) -> Result<Vec<u8>, CodecError> {
        match StreamMsg::decode(bytes)? {
            StreamMsg::PushPull(pp) => {
                self.merge_remote(&pp.nodes, now);
                Ok(pp.user)
            }
            StreamMsg::Error(e) => Err(CodecError::Invalid(format!("remote refused the push-pull: {e}"))),
            _ => Err(CodecError::Invalid("unexpected reply to a push-pull".into())),
        }
    }

    /// Queues a message of the layer above for dissemination.
    pub fn queue_broadcast(
        &mut self,
        key: Option<BroadcastKey>,
        class: BroadcastClass,
        payload: Vec<u8>,
    ) -> u64 {
        let id = self.push_broadcast(key, class, Msg::User(payload).encode());
        // Consul's MinQueueDepth rule: keep at least 2 × N messages.
        self.broadcasts.prune(self.cfg.max_broadcasts.max(2 * self.nodes.len()));
        id
    }

    /// Whether broadcast `id` is still queued for (re)transmission.
    pub fn broadcast_pending(&self, id: u64) -> bool {
        self.broadcasts.contains(id)
    }

    /// Sends a message of the layer above straight to `to`: in one UDP
    /// packet when it fits, else over a stream.
    pub fn send_user(&mut self, to: SocketAddr, payload: Vec<u8>) {
        let msg = Msg::User(payload);
        let bytes = msg.encode();
        if codec::HEADER_LEN + PacketBuilder::framed_len(bytes.len()) <= self.cfg.packet_budget {
            self.send_encoded(to, &[bytes], true);
        } else if let Msg::User(payload) = msg {
            let token = self.token();
            self.outputs.push_back(Output::Stream { to, token, bytes: StreamMsg::User(payload).encode() });
        }
    }

    /// Changes our metadata: new incarnation, gossiped as alive.
    pub fn set_meta(&mut self, meta: Vec<u8>, now: Time) {
        self.local_meta = meta.into();
        self.incarnation = self.incarnation.saturating_add(1);
        let me = self.update_local(now);
        self.broadcast_alive_of(&me);
        self.events.push_back(SwimEvent::Updated(me));
    }

    /// Starts a graceful leave: we gossip our own death (which peers record
    /// as `Left`) and stop probing. Returns the broadcast to wait for, or
    /// `None` when nobody is left to tell.
    pub fn leave(&mut self, now: Time) -> Option<u64> {
        if self.leaving {
            return None;
        }
        self.leaving = true;
        let local = self.local.clone();
        let id = self.dead_node(self.incarnation, &local, &local, now);
        id.filter(|_| self.has_alive_peers())
    }

    /// A fresh token for a stream request.
    pub fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    // ----- message dispatch ------------------------------------------------

    fn handle_msg(&mut self, from: SocketAddr, m: Msg, now: Time) {
        match m {
            Msg::Ping { seq, target } => {
                if !target.is_empty() && *target != *self.local {
                    glog!(self.cfg.scope, memberlist, debug, from = %from, target_node = %target, "got a ping for another node; ignoring");
                    return;
                }
                match &self.ack_payload {
                    Some(p) => {
                        let user = Msg::User(p.clone());
                        self.send(from, &[Msg::Ack { seq }, user]);
                    }
                    None => self.send(from, &[Msg::Ack { seq }]),
                }
                self.tell_if_dead(from);
            }
            Msg::IndirectPing { seq, target, target_addr, nack } => {
                self.relay_probe(from, seq, target, target_addr, nack, now)
            }
            Msg::Ack { seq } => self.handle_ack(seq, now),
            Msg::Nack { seq } => self.handle_nack(seq),
            Msg::Alive { incarnation, node, addr, meta } => {
                self.alive_node(incarnation, &node, addr, meta.into(), now)
            }
            Msg::Suspect { incarnation, node, from: accuser } => {
                let accuser: Name = accuser.into();
                self.suspect_node(incarnation, &node, &accuser, now);
            }
            Msg::Dead { incarnation, node, from: accuser } => {
                self.dead_node(incarnation, &node, &accuser, now);
            }
            Msg::User(payload) => self.events.push_back(SwimEvent::User { from, payload }),
        }
    }

    /// A node we declared dead (failed, not left) is probing us: it is
    /// back, but may never hear of its death if the dead broadcast used up
    /// its retransmits while a partition still held; then only the next
    /// push-pull (up to 30 s) would heal the view. Telling it directly lets
    /// it refute at once, as Lifeguard's buddy system does for suspects.
    /// (An extension of memberlist, which waits for push-pull.)
    fn tell_if_dead(&mut self, from: SocketAddr) {
        let dead = self
            .nodes
            .iter()
            .find(|n| n.addr == from && n.status == NodeStatus::Dead && n.name != self.local);
        if let Some(n) = dead {
            let msg = Msg::Dead {
                incarnation: n.incarnation,
                node: n.name.to_string(),
                from: self.local.to_string(),
            };
            self.send(from, &[msg]);
        }
    }

    // ----- state transitions (memberlist's aliveNode/suspectNode/deadNode) --

    fn alive_node(&mut self, incarnation: u32, name: &str, addr: SocketAddr, meta: Meta, now: Time) {
        if name == &*self.local {
            if self.leaving || incarnation < self.incarnation {
                return;
            }
            if incarnation == self.incarnation && meta == self.local_meta && addr == self.local_addr {
                return; // our own news echoed back
            }
            // Someone spreads a different story about us: out-shout it.
            self.refute(incarnation, now);
            return;
        }
        let prev = self.nodes.get(name).map(|n| (n.status, n.incarnation, n.addr, n.meta.clone()));
        if let Some((status, inc, old_addr, _)) = &prev {
            let moved = *old_addr != addr;
            if moved && !status.is_dead_or_left() {
                glog!(self.cfg.scope, memberlist, warn, node = %name, old = %old_addr, new = %addr, "conflicting address for a live node; ignoring the newer claim");
                return;
            }
            // A dead node may come back at a new address with any
            // incarnation (restart); otherwise only newer news counts.
            if incarnation <= *inc && !moved {
                return;
            }
        }
        let name: Name = match self.nodes.get(name) {
            Some(n) => n.name.clone(),
            None => name.into(),
        };
        let msg = Msg::Alive { incarnation, node: name.to_string(), addr, meta: meta.to_vec() };
        self.push_broadcast(Some(BroadcastKey::Node(name.clone())), BroadcastClass::Membership, msg.encode());
        self.suspicions.remove(&name);
        match prev {
            None => {
                let node = NodeState::new(name, addr, meta, incarnation, NodeStatus::Alive, now);
                self.nodes.insert_random(node.clone(), &mut self.rng);
                glog!(self.cfg.scope, memberlist, debug, node = %node.name, addr = %addr, "node joined");
                self.events.push_back(SwimEvent::Joined(node));
            }
            Some((status, _, old_addr, old_meta)) => {
                let Some(n) = self.nodes.get_mut(&name) else { return };
                n.incarnation = incarnation;
                n.set_addr_meta(addr, meta);
                n.set_status(NodeStatus::Alive, now);
                let snapshot = n.clone();
                if status.is_dead_or_left() {
                    self.events.push_back(SwimEvent::Joined(snapshot));
                } else if old_meta != snapshot.meta || old_addr != snapshot.addr {
                    self.events.push_back(SwimEvent::Updated(snapshot));
                }
            }
        }
    }

    fn suspect_node(&mut self, incarnation: u32, name: &str, from: &Name, now: Time) {
        let Some(n) = self.nodes.get(name) else { return };
        if incarnation < n.incarnation {
            return;
        }
        let (node_name, status, inc) = (n.name.clone(), n.status, n.incarnation);
        if let Some(s) = self.suspicions.get_mut(name) {
            if s.confirm(from) {
                let deadline = s.deadline;
                self.timer(deadline, SwimTimer::Suspicion(node_name.clone()));
                let msg = Msg::Suspect { incarnation, node: name.to_string(), from: from.to_string() };
                self.push_broadcast(
                    Some(BroadcastKey::Node(node_name)),
                    BroadcastClass::Membership,
                    msg.encode(),
                );
            }
            return;
        }
        if status != NodeStatus::Alive {
            return;
        }
        if node_name == self.local {
            if !self.leaving {
                self.refute(incarnation, now);
            }
            return;
        }
        let _ = inc;
        let msg = Msg::Suspect { incarnation, node: name.to_string(), from: from.to_string() };
        self.push_broadcast(
            Some(BroadcastKey::Node(node_name.clone())),
            BroadcastClass::Membership,
            msg.encode(),
        );
        if let Some(n) = self.nodes.get_mut(name) {
            n.incarnation = incarnation;
            n.reset_status(NodeStatus::Suspect, now);
        }
        let total = self.nodes.len();
        let mut k = self.cfg.suspicion_mult.saturating_sub(2);
        if total.saturating_sub(2) < k as usize {
            k = 0;
        }
        let min = suspicion::suspicion_timeout(self.cfg.suspicion_mult, total, self.cfg.probe_interval);
        let max = min * self.cfg.suspicion_max_timeout_mult.max(1);
        let s = Suspicion::new(from.clone(), k, min, max, now);
        self.timer(s.deadline, SwimTimer::Suspicion(node_name.clone()));
        self.suspicions.insert(node_name.clone(), s);
        if *from == self.local {
            self.counters.suspicions_raised += 1;
        }
        glog!(self.cfg.scope, memberlist, debug, node = %node_name, accuser = %from, "node suspected");
        self.events.push_back(SwimEvent::Suspected { node: node_name, from: from.clone() });
    }

    /// Returns the id of the broadcast it queued, if any.
    fn dead_node(&mut self, incarnation: u32, name: &str, from: &str, now: Time) -> Option<u64> {
        let n = self.nodes.get(name)?;
        if incarnation < n.incarnation {
            return None;
        }
        let node_name = n.name.clone();
        self.suspicions.remove(name);
        if n.status.is_dead_or_left() {
            return None;
        }
        if node_name == self.local && !self.leaving {
            self.refute(incarnation, now);
            return None;
        }
        let left = name == from;
        let msg = Msg::Dead { incarnation, node: name.to_string(), from: from.to_string() };
        let id = self.push_broadcast(
            Some(BroadcastKey::Node(node_name.clone())),
            BroadcastClass::Membership,
            msg.encode(),
        );
        let n = self.nodes.get_mut(name)?;
        n.incarnation = incarnation;
        n.reset_status(if left { NodeStatus::Left } else { NodeStatus::Dead }, now);
        let snapshot = n.clone();
        if left {
            glog!(self.cfg.scope, memberlist, debug, node = %node_name, "node left");
            self.events.push_back(SwimEvent::Left(snapshot));
        } else {
            if *from == *self.local {
                self.counters.declared_dead += 1;
            }
            self.events.push_back(SwimEvent::Failed(snapshot));
        }
        Some(id)
    }

    fn refute(&mut self, accused: u32, now: Time) {
        let mut inc = self.incarnation.saturating_add(1);
        if accused >= inc {
            inc = accused.saturating_add(1);
        }
        self.incarnation = inc;
        let me = self.update_local(now);
        self.broadcast_alive_of(&me);
        self.awareness.apply(1);
        self.counters.refutations += 1;
        glog!(self.cfg.scope, memberlist, debug, incarnation = inc, "refuting a suspicion about this node");
        self.events.push_back(SwimEvent::Refuted { incarnation: inc });
    }

    fn update_local(&mut self, now: Time) -> NodeState {
        let (inc, meta) = (self.incarnation, self.local_meta.clone());
        let local = self.local.clone();
        match self.nodes.get_mut(&local) {
            Some(n) => {
                n.incarnation = inc;
                let addr = n.addr;
                n.set_addr_meta(addr, meta);
                if !self.leaving {
                    n.set_status(NodeStatus::Alive, now);
                }
                n.clone()
            }
            None => NodeState::new(local, self.local_addr, meta, inc, NodeStatus::Alive, now),
        }
    }

    fn broadcast_alive_of(&mut self, n: &NodeState) {
        let msg = Msg::Alive {
            incarnation: n.incarnation,
            node: n.name.to_string(),
            addr: n.addr,
            meta: n.meta.to_vec(),
        };
        self.push_broadcast(
            Some(BroadcastKey::Node(n.name.clone())),
            BroadcastClass::Membership,
            msg.encode(),
        );
    }

    fn suspicion_expired(&mut self, name: &str, now: Time) {
        let Some(s) = self.suspicions.get(name) else { return };
        if s.deadline > now {
            return; // superseded by a later timer
        }
        let confirmations = s.confirmations();
        self.suspicions.remove(name);
        let Some(n) = self.nodes.get(name) else { return };
        if n.status != NodeStatus::Suspect {
            return;
        }
        let inc = n.incarnation;
        glog!(self.cfg.scope, memberlist, info, node = %name, confirmations, "marking node as failed, suspect timeout reached");
        let local = self.local.clone();
        self.dead_node(inc, name, &local, now);
    }

    /// Applies remote state from a push-pull. Dead or suspect entries only
    /// make us suspect the node ourselves; we do not take a peer's word that
    /// a node is dead.
    fn merge_remote(&mut self, nodes: &[PushNode], now: Time) {
        let local = self.local.clone();
        for n in nodes {
            match NodeStatus::from_wire(n.state) {
                Some(NodeStatus::Alive) => {
                    self.alive_node(n.incarnation, &n.name, n.addr, n.meta.as_slice().into(), now)
                }
                Some(NodeStatus::Left) => {
                    self.dead_node(n.incarnation, &n.name, &n.name, now);
                }
                Some(NodeStatus::Dead | NodeStatus::Suspect) => {
                    self.suspect_node(n.incarnation, &n.name, &local, now)
                }
                None => {}
            }
        }
    }

    // ----- periodic work ---------------------------------------------------

    fn gossip_tick(&mut self, now: Time) {
        self.timer(now + self.cfg.gossip_interval, SwimTimer::Gossip);
        self.gossip_round(now);
    }

    /// Queues a broadcast and makes sure news does not wait for the next
    /// gossip tick: each hop of an infection-style spread would otherwise
    /// cost half a gossip interval on average (100 ms on LAN timings), so
    /// a join took several ticks to reach every member of a 10-node
    /// cluster. The early round only sends sooner what the queue would
    /// send anyway: every copy counts toward the message's retransmit
    /// limit, so no message is sent more often than before (a round may
    /// carry fewer messages per packet than a tick would).
    fn push_broadcast(&mut self, key: Option<BroadcastKey>, class: BroadcastClass, msg: Vec<u8>) -> u64 {
        let id = self.broadcasts.push(key, class, msg);
        self.note_news();
        id
    }

    /// Schedules a `GossipNews` round (once; at the earliest its rate
    /// limit allows, which is at once unless one ran very recently).
    fn note_news(&mut self) {
        if !self.news_round_due {
            self.news_round_due = true;
            self.timer(self.news_round_not_before, SwimTimer::GossipNews);
        }
    }

    fn gossip_news(&mut self, now: Time) {
        if !self.news_round_due {
            return;
        }
        self.news_round_due = false;
        self.news_round_not_before = now + self.cfg.gossip_interval / NEWS_ROUNDS_PER_INTERVAL;
        self.gossip_round(now);
    }

    /// One gossip round: the queue's least-sent messages to `gossip_nodes`
    /// random members.
    fn gossip_round(&mut self, now: Time) {
        if self.broadcasts.is_empty() {
            return;
        }
        let ttd = self.cfg.gossip_to_the_dead;
        let local = self.local.clone();
        let targets = self.k_random(self.cfg.gossip_nodes, |n| {
            n.name != local
                && match n.status {
                    NodeStatus::Alive | NodeStatus::Suspect => true,
                    NodeStatus::Dead | NodeStatus::Left => now.saturating_sub(n.status_change()) < ttd,
                }
        });
        let limit = self.retransmit_limit();
        for (name, addr) in targets {
            let mut p = PacketBuilder::new(self.cfg.packet_budget);
            // A dead node still hears the news (so it can refute), but a
            // copy it may never read must not use up a retransmission the
            // live members need: in a small cluster with two members just
            // declared dead, a force-leave's intent could otherwise be spent
            // entirely on them and never reach the one live peer.
            let filled = if self.is_dead_or_left(&name) {
                self.broadcasts.fill_uncounted(&mut p)
            } else {
                self.broadcasts.fill(&mut p, limit)
            };
            if filled == 0 {
                break;
            }
            self.emit_packet(addr, p.finish());
        }
    }

    fn push_pull_tick(&mut self, now: Time) {
        let interval = push_pull_scale(self.cfg.push_pull_interval, self.nodes.len());
        self.timer(now + interval, SwimTimer::PushPull);
        let local = self.local.clone();
        let target = self.k_random(1, |n| n.name != local && n.status == NodeStatus::Alive);
        if let Some((_, to)) = target.into_iter().next() {
            let token = self.token();
            self.outputs.push_back(Output::PushPull { to, token });
        }
    }

    /// Up to `k` distinct random nodes passing `keep` (memberlist's
    /// kRandomNodes: bounded random tries, no full scan).
    fn k_random(&mut self, k: usize, keep: impl Fn(&NodeState) -> bool) -> Vec<(Name, SocketAddr)> {
        let n = self.nodes.len();
        let mut out: Vec<(Name, SocketAddr)> = Vec::with_capacity(k);
        if n == 0 || k == 0 {
            return out;
        }
        for _ in 0..(3 * n).max(3 * k) {
            if out.len() >= k {
                break;
            }
            let i = self.rng.random_range(0..n);
            let Some(node) = self.nodes.at(i) else { continue };
            if !keep(node) || out.iter().any(|(name, _)| *name == node.name) {
                continue;
            }
            out.push((node.name.clone(), node.addr));
        }
        out
    }

    // ----- output helpers --------------------------------------------------

    fn timer(&mut self, at: Time, timer: SwimTimer) {
        self.outputs.push_back(Output::Timer { at, timer });
    }

    /// Whether our table holds `name` as dead or left.
    fn is_dead_or_left(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|n| n.status.is_dead_or_left())
    }

    /// Sends messages to `to`, filling the rest of the packet with gossip.
    fn send(&mut self, to: SocketAddr, msgs: &[Msg]) {
        let encoded: Vec<Vec<u8>> = msgs.iter().map(Msg::encode).collect();
        self.send_encoded(to, &encoded, true);
    }

    /// Sends messages to `to`, filling the rest of the packet with gossip;
    /// the gossip counts as a retransmission only if `counted` (a recipient
    /// we believe alive).
    fn send_encoded(&mut self, to: SocketAddr, msgs: &[Vec<u8>], counted: bool) {
        let mut p = PacketBuilder::new(self.cfg.packet_budget);
        for m in msgs {
            if !p.try_push(m) {
                p.push_unchecked(m);
            }
        }
        if counted {
            let limit = self.retransmit_limit();
            self.broadcasts.fill(&mut p, limit);
        } else {
            self.broadcasts.fill_uncounted(&mut p);
        }
        self.emit_packet(to, p.finish());
    }

    fn emit_packet(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.counters.packets_out += 1;
        self.counters.bytes_out += bytes.len() as u64;
        self.outputs.push_back(Output::Packet { to, bytes });
    }
}

/// memberlist's pushPullScale: beyond 32 nodes the push-pull interval grows
/// with log2(N) so full-state traffic does not grow quadratically.
pub fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: f64 = 32.0;
    if n <= 32 {
        return interval;
    }
    let mult = ((n as f64).log2() - THRESHOLD.log2()).ceil() + 1.0;
    interval.mul_f64(mult)
}

#[cfg(test)]
mod tests;
