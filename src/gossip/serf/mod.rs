//! The sans-IO Serf layer above SWIM: member tags, graceful leave intents
//! (so a departed node is `left`, not `failed`), Lamport clocks for intents,
//! user events and queries, user events delivered once per member, queries
//! with responses sent straight back to the asker, reconnect attempts to
//! failed members, reaping after `reconnect_timeout` / the tombstone time,
//! `force_leave`, and the state a snapshot records.
//!
//! Like `Swim`, it never reads a clock or touches a socket: the driver
//! passes the time in and drains `poll_output` / `poll_event`. It owns the
//! `Swim` core and drives it.
//!
//! Owns: Serf semantics. Must not know about sockets, files or keys: key
//! operations arrive as `SerfEvent::Keyring` requests that the runtime
//! applies and answers with `respond`.

pub mod clock;
pub mod message;
pub mod query;

mod coords;
mod events;
mod members;

use crate::gossip::codec::CodecError;
use crate::gossip::member::{Member, MemberEvent, MemberStatus};
use crate::gossip::swim::broadcast::BroadcastClass;
use crate::gossip::swim::message::StreamMsg;
use crate::gossip::swim::{LocalNode, Output, StreamIn, Swim, SwimConfig, SwimEvent, SwimTimer, Time};
use clock::LamportClock;
use events::Ring;
use message::{SerfMsg, SerfState};
use query::{IncomingQuery, KeyringRequest, PendingQuery};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// Serf settings; `SerfConfig::new` fills in Serf's and Consul's defaults.
#[derive(Clone, Debug)]
pub struct SerfConfig {
    pub name: String,
    /// The address peers reach us at (advertise address).
    pub addr: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub swim: SwimConfig,
    /// How often to try to reconnect to a failed member.
    pub reconnect_interval: Duration,
    /// Failed members are reaped after this long (Consul: 72 h).
    pub reconnect_timeout: Duration,
    /// Left members are reaped after this long (24 h).
    pub tombstone_timeout: Duration,
    pub reap_interval: Duration,
    /// How long a leave waits for each of its broadcasts to go out.
    pub broadcast_timeout: Duration,
    /// Extra time after the leave broadcasts before we stop.
    pub leave_propagate_delay: Duration,
    /// User events remembered for de-duplication (by Lamport time).
    pub event_buffer: usize,
    pub query_buffer: usize,
    /// Default query timeout = GossipInterval × this × ceil(log10(N + 1)).
    pub query_timeout_mult: u32,
    pub recent_intent_timeout: Duration,
    pub user_event_size_limit: usize,
    pub query_size_limit: usize,
    pub query_response_size_limit: usize,
    /// A joining node does not replay user events older than the join.
    pub join_ignore_old_events: bool,
    /// Consul's `disable_coordinates`: no coordinate is computed, sent or
    /// accepted.
    pub disable_coordinates: bool,
}

impl SerfConfig {
    pub fn new(name: String, addr: SocketAddr, tags: BTreeMap<String, String>, swim: SwimConfig) -> Self {
        SerfConfig {
            name,
            addr,
            tags,
            swim,
            reconnect_interval: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            reap_interval: Duration::from_secs(15),
            broadcast_timeout: Duration::from_secs(5),
            leave_propagate_delay: Duration::from_secs(1),
            event_buffer: 512,
            query_buffer: 512,
            query_timeout_mult: 16,
            recent_intent_timeout: Duration::from_secs(300),
            user_event_size_limit: 512,
            query_size_limit: 1024,
            query_response_size_limit: 1024,
            join_ignore_old_events: true,
            disable_coordinates: false,
        }
    }
}

/// Timers Serf asks the driver to fire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SerfTimer {
    Swim(SwimTimer),
    Reap,
    Reconnect,
    QueryTimeout(u32),
    LeaveStep,
}

/// A user event as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEvent {
    pub ltime: u64,
    pub name: String,
    pub payload: Vec<u8>,
    pub coalesce: bool,
}

/// What Serf reports to the driver.
#[derive(Clone, Debug, PartialEq)]
pub enum SerfEvent {
    Member(MemberEvent),
    User(UserEvent),
    /// A user query this node should answer (with `respond`) if it wants.
    Query(IncomingQuery),
    QueryAck {
        id: u32,
        from: String,
    },
    QueryResponse {
        id: u32,
        from: String,
        payload: Vec<u8>,
    },
    /// The query's timeout passed; no more responses are collected.
    QueryDone {
        id: u32,
    },
    /// An internal key query: apply it and `respond`.
    Keyring(KeyringRequest),
    /// A graceful leave has finished its broadcasts.
    LeaveDone,
}

/// Why the Serf layer refused a request (limits, names, deadlines).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerfError {
    #[error("encoded length of tags exceeds limit of {limit} bytes (got {got})")]
    TagsTooLarge { limit: usize, got: usize },
    #[error("user event exceeds configured limit of {0} bytes before encoding")]
    EventTooLarge(usize),
    #[error("no node found with name '{0}'")]
    NoSuchNode(String),
    #[error("query names starting with {} are reserved", query::INTERNAL_PREFIX)]
    ReservedQueryName,
    #[error("query exceeds limit of {0} bytes")]
    QueryTooLarge(usize),
    #[error("response is past the deadline")]
    ResponsePastDeadline,
    #[error("response exceeds limit of {0} bytes")]
    ResponseTooLarge(usize),
}

/// What a snapshot records (see `snapshot` for the file).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotData {
    pub member_time: u64,
    pub event_time: u64,
    pub query_time: u64,
    /// Whether this node left gracefully.
    pub left: bool,
    /// Other members that were alive: (name, address).
    pub alive: Vec<(String, SocketAddr)>,
}

#[derive(Clone, Debug)]
struct MemberState {
    member: Member,
    status_ltime: u64,
    /// When it failed or left (for reaping).
    leave_time: Option<Time>,
    /// A force-leave with prune arrived while the member still looked
    /// alive: erase it once it is gone (unless a newer join intent says it
    /// stays).
    prune_when_gone: bool,
}

#[derive(Clone, Copy, Debug)]
struct Intent {
    ltime: u64,
    leave: bool,
    at: Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeavePhase {
    None,
    Intent { id: u64, deadline: Time },
    Dead { id: Option<u64>, deadline: Time },
    Propagate { until: Time },
    Done,
}

pub struct Serf {
    cfg: SerfConfig,
    swim: Swim,
    tags: BTreeMap<String, String>,
    members: HashMap<String, MemberState>,
    member_clock: LamportClock,
    event_clock: LamportClock,
    query_clock: LamportClock,
    recent_intents: HashMap<String, Intent>,
    event_ring: Ring<(String, Vec<u8>)>,
    event_min_time: u64,
    query_ring: Ring<u32>,
    query_min_time: u64,
    pending_queries: HashMap<u32, PendingQuery>,
    leave: LeavePhase,
    outputs: VecDeque<Output<SerfTimer>>,
    out_events: VecDeque<SerfEvent>,
    rng: SmallRng,
    dirty: bool,
    bad_messages: u64,
    /// Peers from the previous run's snapshot that we have not heard about
    /// yet; kept in our snapshot so a restart that cannot reach anyone (or
    /// stops early) does not forget them.
    restored_peers: Vec<(String, SocketAddr)>,
    /// Bumped on every change to any member's status, address or tags.
    members_gen: u64,
    /// Network coordinates (None under `disable_coordinates`).
    coords: Option<coords::CoordState>,
}

impl Serf {
    /// Creates the Serf layer and its SWIM core. `restore` carries the
    /// clocks of a previous run (from the snapshot) so that our new
    /// intents and events are newer than anything we sent before, and so
    /// events and queries we already processed are not delivered again;
    /// its peers stay in our snapshot until we learn about them. (The
    /// caller empties `alive` to forget them, as after a graceful leave
    /// without `rejoin_after_leave`.)
    pub fn new(
        cfg: SerfConfig,
        seed: u64,
        now: Time,
        restore: Option<&SnapshotData>,
    ) -> Result<Serf, SerfError> {
        let meta = message::encode_tags(&cfg.tags)?;
        let local = LocalNode { name: cfg.name.clone(), addr: cfg.addr, meta, incarnation: 1 };
        let swim = Swim::new(cfg.swim.clone(), local, seed, now);
        let mut s = Serf {
            tags: cfg.tags.clone(),
            swim,
            members: HashMap::new(),
            member_clock: LamportClock::new(0),
            event_clock: LamportClock::new(0),
            query_clock: LamportClock::new(0),
            recent_intents: HashMap::new(),
            event_ring: Ring::new(cfg.event_buffer),
            event_min_time: 0,
            query_ring: Ring::new(cfg.query_buffer),
            query_min_time: 0,
            pending_queries: HashMap::new(),
            leave: LeavePhase::None,
            outputs: VecDeque::new(),
            out_events: VecDeque::new(),
            rng: SmallRng::seed_from_u64(seed ^ 0x5e4f),
            dirty: true,
            bad_messages: 0,
            restored_peers: Vec::new(),
            members_gen: 0,
            coords: None,
            cfg,
        };
        if !s.cfg.disable_coordinates {
            s.coords = Some(coords::CoordState::new(seed));
            s.refresh_ack_payload();
        }
        if let Some(r) = restore {
            s.member_clock.witness(r.member_time);
            s.event_clock.witness(r.event_time);
            s.query_clock.witness(r.query_time);
            s.event_min_time = r.event_time.saturating_add(1);
            s.query_min_time = r.query_time.saturating_add(1);
            s.restored_peers = r.alive.iter().filter(|(n, _)| *n != s.cfg.name).cloned().collect();
        }
        s.timer(now + s.cfg.reap_interval, SerfTimer::Reap);
        s.timer(now + s.cfg.reconnect_interval, SerfTimer::Reconnect);
        s.pump(now);
        Ok(s)
    }

    // ----- accessors -------------------------------------------------------

    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &SerfConfig {
        &self.cfg
    }

    pub fn local_member(&self) -> Member {
        match self.members.get(&self.cfg.name) {
            Some(m) => m.member.clone(),
            None => Member::new(self.cfg.name.clone(), self.cfg.addr, self.tags.clone(), MemberStatus::Alive),
        }
    }

    /// Every member, including this node and failed/left ones not yet reaped.
    pub fn members(&self) -> Vec<Member> {
        let mut v: Vec<Member> = self.members.values().map(|m| m.member.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name).map(|m| &m.member)
    }

    pub fn member_time(&self) -> u64 {
        self.member_clock.time()
    }

    pub fn event_time(&self) -> u64 {
        self.event_clock.time()
    }

    pub fn query_time(&self) -> u64 {
        self.query_clock.time()
    }

    /// Messages that could not be decoded (garbage from a peer).
    pub fn bad_messages(&self) -> u64 {
        self.bad_messages
    }

    /// `consul info`'s serf keys (all but `encrypted`, which the transport
    /// knows).
    pub fn stats(&self) -> BTreeMap<String, String> {
        let count = |st: MemberStatus| self.members.values().filter(|m| m.member.status == st).count();
        let mut s = BTreeMap::new();
        s.insert("members".into(), self.members.len().to_string());
        s.insert("failed".into(), count(MemberStatus::Failed).to_string());
        s.insert("left".into(), count(MemberStatus::Left).to_string());
        s.insert("member_time".into(), self.member_clock.time().to_string());
        s.insert("event_time".into(), self.event_clock.time().to_string());
        s.insert("query_time".into(), self.query_clock.time().to_string());
        s.insert("intent_queue".into(), self.swim.queue_len(BroadcastClass::Intent).to_string());
        s.insert("event_queue".into(), self.swim.queue_len(BroadcastClass::Event).to_string());
        s.insert("query_queue".into(), self.swim.queue_len(BroadcastClass::Query).to_string());
        s.insert("health_score".into(), self.swim.health_score().to_string());
        let resets = self.coords.as_ref().map_or(0, |c| c.client.stats().resets);
        s.insert("coordinate_resets".into(), resets.to_string());
        s
    }

    /// What a snapshot should record now.
    pub fn snapshot(&self) -> SnapshotData {
        let mut alive: Vec<(String, SocketAddr)> = self
            .members
            .values()
            .filter(|m| {
                m.member.name != self.cfg.name
                    && matches!(m.member.status, MemberStatus::Alive | MemberStatus::Leaving)
            })
            .map(|m| (m.member.name.clone(), m.member.socket_addr()))
            .collect();
        alive.extend(self.restored_peers.iter().filter(|(n, _)| !self.members.contains_key(n)).cloned());
        alive.sort();
        SnapshotData {
            member_time: self.member_clock.time(),
            event_time: self.event_clock.time(),
            query_time: self.query_clock.time(),
            left: self.leave == LeavePhase::Done,
            alive,
        }
    }

    /// Changes whenever any member's status, address or tags change.
    pub fn members_generation(&self) -> u64 {
        self.members_gen
    }

    /// True once after anything a snapshot records has changed.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn poll_output(&mut self) -> Option<Output<SerfTimer>> {
        self.outputs.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SerfEvent> {
        self.out_events.pop_front()
    }

    // ----- driver interface -------------------------------------------------

    pub fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Result<(), CodecError> {
        let r = self.swim.handle_packet(from, bytes, now);
        self.pump(now);
        // An ack's coordinate pairs only with the ack in its own packet.
        self.end_of_packet();
        r
    }

    pub fn handle_timer(&mut self, timer: SerfTimer, now: Time) {
        match timer {
            SerfTimer::Swim(t) => self.swim.handle_timer(t, now),
            SerfTimer::Reap => self.reap(now),
            SerfTimer::Reconnect => self.reconnect(now),
            SerfTimer::QueryTimeout(id) => self.query_timeout(id, now),
            SerfTimer::LeaveStep => self.leave_step(now),
        }
        self.pump(now);
    }

    /// An inbound stream request; returns the reply to send.
    pub fn handle_stream(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: Time,
    ) -> Result<Vec<u8>, CodecError> {
        let r = match self.swim.handle_stream(bytes, now) {
            Ok(StreamIn::PushPull { join, user }) => {
                self.merge_state(&user, join, false, now);
                Ok(self.swim.encode_push_pull(false, self.local_state()))
            }
            Ok(StreamIn::User(payload)) => {
                self.handle_user_msg(from, &payload, now);
                Ok(StreamMsg::Ok.encode())
            }
            Err(e) => Err(e),
        };
        self.pump(now);
        r
    }

    /// The reply to a stream request we made (periodic push-pull,
    /// reconnect, or a large direct message).
    pub fn handle_stream_reply(&mut self, token: u64, reply: Result<Vec<u8>, String>, now: Time) {
        match reply {
            Ok(bytes) => match StreamMsg::decode(&bytes) {
                Ok(StreamMsg::Ok) => {}
                Ok(_) => match self.swim.handle_push_pull_reply(&bytes, now) {
                    Ok(user) => self.merge_state(&user, false, false, now),
                    Err(e) => {
                        glog!(self.cfg.swim.scope, serf, debug, token, error = %e, "push-pull reply rejected")
                    }
                },
                Err(e) => glog!(self.cfg.swim.scope, serf, debug, token, error = %e, "bad stream reply"),
            },
            Err(e) => glog!(self.cfg.swim.scope, serf, debug, token, error = %e, "stream request failed"),
        }
        self.pump(now);
    }

    /// The push-pull bytes that start a join.
    pub fn join_request(&mut self, _now: Time) -> Vec<u8> {
        self.swim.encode_push_pull(true, self.local_state())
    }

    /// Applies a join reply; on success broadcasts our join intent.
    pub fn handle_join_reply(&mut self, bytes: &[u8], now: Time) -> Result<(), CodecError> {
        let user = self.swim.handle_push_pull_reply(bytes, now);
        let r = match user {
            Ok(user) => {
                self.merge_state(&user, true, true, now);
                if self.leave == LeavePhase::None {
                    let lt = self.member_clock.time();
                    self.broadcast_join(lt, now);
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.pump(now);
        r
    }

    /// Changes our tags (≤ 512 bytes encoded); gossiped with a new
    /// incarnation.
    pub fn set_tags(&mut self, tags: BTreeMap<String, String>, now: Time) -> Result<(), SerfError> {
        let meta = message::encode_tags(&tags)?;
        self.tags = tags;
        self.swim.set_meta(meta, now);
        self.pump(now);
        Ok(())
    }

    /// Starts a graceful leave; `SerfEvent::LeaveDone` reports the end.
    pub fn leave(&mut self, now: Time) {
        if self.leave != LeavePhase::None {
            return;
        }
        let ltime = self.member_clock.time();
        self.member_clock.increment();
        let local = self.cfg.name.clone();
        if let Some(m) = self.members.get_mut(&local) {
            m.member.status = MemberStatus::Leaving;
            m.status_ltime = ltime;
        }
        self.touch_members();
        let msg = SerfMsg::Leave { ltime, node: local.clone(), prune: false };
        let id = self.swim.queue_broadcast(None, BroadcastClass::Intent, msg.encode());
        glog!(self.cfg.swim.scope, serf, info, node = %local, "leaving: broadcasting leave intent");
        self.leave = LeavePhase::Intent { id, deadline: now + self.cfg.broadcast_timeout };
        self.leave_step(now);
        self.pump(now);
    }

    /// Marks a member as left: a failed member becomes `left`; with `prune`
    /// it is also erased from the member list. A live member briefly shows
    /// `leaving` and refutes.
    pub fn force_leave(&mut self, name: &str, prune: bool, now: Time) -> Result<(), SerfError> {
        if !self.members.contains_key(name) {
            return Err(SerfError::NoSuchNode(name.to_string()));
        }
        let ltime = self.member_clock.time();
        self.member_clock.increment();
        self.handle_leave_intent(ltime, name, prune, now);
        if self.swim.has_alive_peers() {
            let msg = SerfMsg::Leave { ltime, node: name.to_string(), prune };
            self.swim.queue_broadcast(None, BroadcastClass::Intent, msg.encode());
        }
        self.pump(now);
        Ok(())
    }

    // ----- internals -------------------------------------------------------

    fn timer(&mut self, at: Time, timer: SerfTimer) {
        self.outputs.push_back(Output::Timer { at, timer });
    }

    /// Moves SWIM's outputs up and reacts to its events until both are
    /// drained.
    fn pump(&mut self, now: Time) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.swim.poll_output() {
                progressed = true;
                let o = match o {
                    Output::Timer { at, timer } => Output::Timer { at, timer: SerfTimer::Swim(timer) },
                    Output::Packet { to, bytes } => Output::Packet { to, bytes },
                    Output::Stream { to, token, bytes } => Output::Stream { to, token, bytes },
                    Output::PushPull { to, token } => {
                        let bytes = self.swim.encode_push_pull(false, self.local_state());
                        Output::Stream { to, token, bytes }
                    }
                };
                self.outputs.push_back(o);
            }
            while let Some(ev) = self.swim.poll_event() {
                progressed = true;
                self.on_swim_event(ev, now);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_swim_event(&mut self, ev: SwimEvent, now: Time) {
        match ev {
            SwimEvent::Joined(n) => self.node_joined(&n.name, n.addr, &n.meta, now),
            SwimEvent::Updated(n) => self.node_updated(&n.name, n.addr, &n.meta),
            SwimEvent::Failed(n) => self.node_gone(&n.name, false, now),
            SwimEvent::Left(n) => self.node_gone(&n.name, true, now),
            SwimEvent::User { from, payload } => self.handle_user_msg(from, &payload, now),
            SwimEvent::ProbeRtt { node, seq, rtt } => self.probe_rtt(&node, seq, rtt),
            SwimEvent::Suspected { .. } | SwimEvent::Refuted { .. } => {}
        }
    }

    fn handle_user_msg(&mut self, from: SocketAddr, payload: &[u8], now: Time) {
        let msg = match SerfMsg::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.bad_messages += 1;
                crate::metrics::incr("consul.serf.messages.bad", 1);
                glog!(self.cfg.swim.scope, serf, debug, from = %from, error = %e, "failed to decode a serf message");
                return;
            }
        };
        // Intents are queued without an invalidation key: a node that has
        // pruned a member treats a late copy of an *older* intent as news,
        // and keyed, that copy would displace the newer one in the queue.
        match msg {
            SerfMsg::Leave { ltime, node, prune } => {
                if self.handle_leave_intent(ltime, &node, prune, now) {
                    self.swim.queue_broadcast(None, BroadcastClass::Intent, payload.to_vec());
                }
            }
            SerfMsg::Join { ltime, node } => {
                if self.handle_join_intent(ltime, &node, now) {
                    self.swim.queue_broadcast(None, BroadcastClass::Intent, payload.to_vec());
                }
            }
            SerfMsg::UserEvent { ltime, name, payload: body, coalesce } => {
                if self.handle_user_event(ltime, name, body, coalesce) {
                    self.swim.queue_broadcast(None, BroadcastClass::Event, payload.to_vec());
                }
            }
            SerfMsg::Query(q) => {
                if self.handle_query(q, now) {
                    self.swim.queue_broadcast(None, BroadcastClass::Query, payload.to_vec());
                }
            }
            SerfMsg::QueryResponse { ltime, id, from: node, ack, payload: body } => {
                self.handle_query_response(ltime, id, node, ack, body, now)
            }
            SerfMsg::Coordinate(coord) => self.ack_coordinate(coord),
        }
    }

    /// Our half of a push-pull.
    fn local_state(&self) -> Vec<u8> {
        let mut st = SerfState {
            member_ltime: self.member_clock.time(),
            event_ltime: self.event_clock.time(),
            query_ltime: self.query_clock.time(),
            ..SerfState::default()
        };
        for (name, m) in &self.members {
            st.status_ltimes.push((name.clone(), m.status_ltime));
            if m.member.status == MemberStatus::Left {
                st.left_members.push(name.clone());
            }
        }
        st.events = self.event_ring.export();
        st.encode()
    }

    fn merge_state(&mut self, bytes: &[u8], join: bool, as_joiner: bool, now: Time) {
        if bytes.is_empty() {
            return;
        }
        let st = match SerfState::decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                self.bad_messages += 1;
                glog!(self.cfg.swim.scope, serf, warn, error = %e, "failed to decode remote serf state");
                return;
            }
        };
        if st.member_ltime > 0 {
            self.member_clock.witness(st.member_ltime - 1);
        }
        if st.event_ltime > 0 {
            self.event_clock.witness(st.event_ltime - 1);
        }
        if st.query_ltime > 0 {
            self.query_clock.witness(st.query_ltime - 1);
        }
        let ltimes: HashMap<&str, u64> = st.status_ltimes.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        for name in &st.left_members {
            let lt = ltimes.get(name.as_str()).copied().unwrap_or(0);
            self.handle_leave_intent(lt, name, false, now);
        }
        for (name, lt) in &st.status_ltimes {
            if !st.left_members.contains(name) {
                self.handle_join_intent(*lt, name, now);
            }
        }
        if join && as_joiner && self.cfg.join_ignore_old_events && st.event_ltime > self.event_min_time {
            self.event_min_time = st.event_ltime;
        }
        for slot in st.events {
            for (name, payload) in slot.events {
                self.handle_user_event(slot.ltime, name, payload, false);
            }
        }
        self.dirty = true;
    }

    fn reap(&mut self, now: Time) {
        self.timer(now + self.cfg.reap_interval, SerfTimer::Reap);
        let (rt, tt) = (self.cfg.reconnect_timeout, self.cfg.tombstone_timeout);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                let age = m.leave_time.map(|t| now.saturating_sub(t)).unwrap_or_default();
                match m.member.status {
                    MemberStatus::Failed => age > rt,
                    MemberStatus::Left => age > tt,
                    _ => false,
                }
            })
            .map(|m| m.member.name.clone())
            .collect();
        for name in expired {
            glog!(self.cfg.swim.scope, serf, info, node = %name, "event: EventMemberReap");
            self.erase(&name);
        }
        let rit = self.cfg.recent_intent_timeout;
        self.recent_intents.retain(|_, i| now.saturating_sub(i.at) <= rit);
    }

    /// Serf's reconnect: with probability failed/alive, pick one failed
    /// member and try a push-pull with it.
    fn reconnect(&mut self, now: Time) {
        self.timer(now + self.cfg.reconnect_interval, SerfTimer::Reconnect);
        if self.leave != LeavePhase::None {
            return;
        }
        let failed: Vec<(String, SocketAddr)> = self
            .members
            .values()
            .filter(|m| m.member.status == MemberStatus::Failed)
            .map(|m| (m.member.name.clone(), m.member.socket_addr()))
            .collect();
        if failed.is_empty() {
            return;
        }
        let left = self.members.values().filter(|m| m.member.status == MemberStatus::Left).count();
        let alive = self.members.len().saturating_sub(failed.len() + left).max(1);
        let prob = failed.len() as f64 / alive as f64;
        if self.rng.random::<f64>() > prob {
            return;
        }
        let i = self.rng.random_range(0..failed.len());
        let Some((name, to)) = failed.get(i).cloned() else { return };
        glog!(self.cfg.swim.scope, serf, info, node = %name, addr = %to, "attempting reconnect");
        let token = self.swim.token();
        let bytes = self.swim.encode_push_pull(true, self.local_state());
        self.outputs.push_back(Output::Stream { to, token, bytes });
    }

    fn leave_step(&mut self, now: Time) {
        let step = self.cfg.swim.gossip_interval.max(Duration::from_millis(10));
        match self.leave {
            LeavePhase::Intent { id, deadline } => {
                if !self.swim.broadcast_pending(id) || !self.swim.has_alive_peers() || now >= deadline {
                    let id = self.swim.leave(now);
                    self.leave = LeavePhase::Dead { id, deadline: now + self.cfg.broadcast_timeout };
                    self.leave_step(now);
                } else {
                    self.timer(now + step, SerfTimer::LeaveStep);
                }
            }
            LeavePhase::Dead { id, deadline } => {
                let pending = id.is_some_and(|id| self.swim.broadcast_pending(id));
                if !pending || !self.swim.has_alive_peers() || now >= deadline {
                    let delay = if self.swim.has_alive_peers() {
                        self.cfg.leave_propagate_delay
                    } else {
                        Duration::ZERO
                    };
                    self.leave = LeavePhase::Propagate { until: now + delay };
                    self.timer(now + delay, SerfTimer::LeaveStep);
                } else {
                    self.timer(now + step, SerfTimer::LeaveStep);
                }
            }
            LeavePhase::Propagate { until } => {
                if now >= until {
                    self.leave = LeavePhase::Done;
                    let local = self.cfg.name.clone();
                    if let Some(m) = self.members.get_mut(&local) {
                        m.member.status = MemberStatus::Left;
                    }
                    self.touch_members();
                    glog!(self.cfg.swim.scope, serf, info, node = %local, "left the cluster");
                    self.out_events.push_back(SerfEvent::LeaveDone);
                } else {
                    self.timer(until, SerfTimer::LeaveStep);
                }
            }
            LeavePhase::None | LeavePhase::Done => {}
        }
    }

    pub fn has_left(&self) -> bool {
        self.leave == LeavePhase::Done
    }
}

#[cfg(test)]
mod tests;
