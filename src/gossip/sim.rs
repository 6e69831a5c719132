//! A deterministic in-memory network with a virtual clock that drives the
//! real sans-IO cores (`Swim`, `Serf`). Used by the tests and by the
//! performance measurements: thousands of members in one process, seeded
//! randomness, configurable latency, loss, crashed and slow nodes, byte
//! accounting. Nothing here is used by the agent at run time.
//!
//! Owns: event scheduling and the fake network. Must not contain protocol
//! logic: every decision is made by the machine under test.

use super::codec::CodecError;
use super::swim::message::StreamMsg;
use super::swim::{Output, StreamIn, Swim, SwimEvent, SwimTimer, Time};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// What the simulator needs from a protocol core.
pub trait Machine {
    type Timer: Clone + std::fmt::Debug;
    type Event;
    fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Result<(), CodecError>;
    fn handle_timer(&mut self, timer: Self::Timer, now: Time);
    /// An inbound stream request; returns the reply bytes.
    fn handle_stream(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Vec<u8>;
    fn handle_stream_reply(&mut self, token: u64, reply: Result<Vec<u8>, String>, now: Time);
    /// Push-pull bytes that start a join.
    fn join_request(&mut self, now: Time) -> Vec<u8>;
    fn handle_join_reply(&mut self, reply: Result<Vec<u8>, String>, now: Time);
    fn poll_output(&mut self, now: Time) -> Option<Output<Self::Timer>>;
    fn poll_event(&mut self) -> Option<Self::Event>;
}

/// The bare SWIM core as a simulated machine (no user state).
pub struct SwimMachine {
    pub swim: Swim,
}

impl Machine for SwimMachine {
    type Timer = SwimTimer;
    type Event = SwimEvent;

    fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Result<(), CodecError> {
        self.swim.handle_packet(from, bytes, now)
    }

    fn handle_timer(&mut self, timer: SwimTimer, now: Time) {
        self.swim.handle_timer(timer, now)
    }

    fn handle_stream(&mut self, _from: SocketAddr, bytes: &[u8], now: Time) -> Vec<u8> {
        match self.swim.handle_stream(bytes, now) {
            Ok(StreamIn::PushPull { .. }) => self.swim.encode_push_pull(false, Vec::new()),
            Ok(StreamIn::User(_)) => StreamMsg::Ok.encode(),
            Err(e) => StreamMsg::Error(e.to_string()).encode(),
        }
    }

    fn handle_stream_reply(&mut self, _token: u64, reply: Result<Vec<u8>, String>, now: Time) {
        if let Ok(b) = reply {
            let _ = self.swim.handle_push_pull_reply(&b, now);
        }
    }

    fn join_request(&mut self, _now: Time) -> Vec<u8> {
        self.swim.encode_push_pull(true, Vec::new())
    }

    fn handle_join_reply(&mut self, reply: Result<Vec<u8>, String>, now: Time) {
        self.handle_stream_reply(0, reply, now)
    }

    fn poll_output(&mut self, _now: Time) -> Option<Output<SwimTimer>> {
        match self.swim.poll_output()? {
            Output::PushPull { to, token } => {
                Some(Output::Stream { to, token, bytes: self.swim.encode_push_pull(false, Vec::new()) })
            }
            o => Some(o),
        }
    }

    fn poll_event(&mut self) -> Option<SwimEvent> {
        self.swim.poll_event()
    }
}

enum Item<T> {
    Packet { from: SocketAddr, to: usize, bytes: Vec<u8> },
    Timer { node: usize, timer: T },
    StreamRequest { from: usize, to: SocketAddr, token: Option<u64>, bytes: Vec<u8> },
    StreamReply { node: usize, token: Option<u64>, reply: Result<Vec<u8>, String> },
}

struct Scheduled<T> {
    at: Time,
    seq: u64,
    item: Item<T>,
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Scheduled<T> {}
impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Scheduled<T> {
    // Min-heap on (time, insertion order).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

pub struct SimNode<M> {
    pub machine: M,
    pub addr: SocketAddr,
    /// A crashed node neither receives nor fires timers.
    pub up: bool,
    /// Extra delay on everything delivered to this node (a CPU-starved
    /// node processes its input late).
    pub inbound_delay: Duration,
    /// A partitioned node keeps running but every packet and stream to or
    /// from it is lost.
    pub isolated: bool,
}

/// Network-wide counters.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub packets_sent: u64,
    pub packets_lost: u64,
    pub packet_bytes: u64,
    pub stream_bytes: u64,
    pub streams: u64,
    pub decode_errors: u64,
}

/// Called with (node index, time, event) for every event a machine emits.
pub type Observer<E> = Box<dyn FnMut(usize, Time, &E)>;

pub struct Sim<M: Machine> {
    pub now: Time,
    pub nodes: Vec<SimNode<M>>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Scheduled<M::Timer>>,
    seq: u64,
    rng: SmallRng,
    /// Probability that a UDP packet is lost.
    pub loss: f64,
    /// One-way delay; each packet also gets up to `jitter` more.
    pub latency: Duration,
    pub jitter: Duration,
    pub stats: NetStats,
    /// Called with (node index, time, event) for every event a machine emits.
    pub observer: Option<Observer<M::Event>>,
}

/// The simulated address of node `i` (10.0.0.0/8, port 8301).
pub fn sim_addr(i: usize) -> SocketAddr {
    let n = i as u32 + 1;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)), 8301)
}

impl<M: Machine> Sim<M> {
    pub fn new(seed: u64) -> Self {
        Sim {
            now: Duration::ZERO,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: SmallRng::seed_from_u64(seed),
            loss: 0.0,
            latency: Duration::from_micros(500),
            jitter: Duration::from_micros(500),
            stats: NetStats::default(),
            observer: None,
        }
    }

    /// Adds a node whose machine is built by `make(addr)`; returns its index.
    pub fn add(&mut self, make: impl FnOnce(SocketAddr, Time) -> M) -> usize {
        let i = self.nodes.len();
        let addr = sim_addr(i);
        let machine = make(addr, self.now);
        self.nodes.push(SimNode { machine, addr, up: true, inbound_delay: Duration::ZERO, isolated: false });
        self.by_addr.insert(addr, i);
        self.drain(i);
        i
    }

    pub fn machine(&self, i: usize) -> &M {
        &self.nodes[i].machine
    }

    pub fn machine_mut(&mut self, i: usize) -> &mut M {
        &mut self.nodes[i].machine
    }

    /// Lets node `i` run a user call, then collects its outputs.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut M, Time) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].machine, now);
        self.drain(i);
        r
    }

    /// Node `i` joins through node `j` (a push-pull with the join flag).
    pub fn join(&mut self, i: usize, j: usize) {
        let now = self.now;
        let bytes = self.nodes[i].machine.join_request(now);
        let to = self.nodes[j].addr;
        let at = now + self.delay();
        self.push(at, Item::StreamRequest { from: i, to, token: None, bytes });
    }

    /// Crash: the node stops receiving and its timers are dropped.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].up
    }

    fn delay(&mut self) -> Duration {
        let j = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.random::<f64>())
        };
        self.latency + j
    }

    fn push(&mut self, at: Time, item: Item<M::Timer>) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, item });
    }

    /// Moves a machine's outputs onto the network and the timer queue.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        loop {
            let Some(out) = self.nodes[i].machine.poll_output(now) else { break };
            match out {
                Output::Packet { to, bytes } => {
                    self.stats.packets_sent += 1;
                    self.stats.packet_bytes += bytes.len() as u64;
                    if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
                        self.stats.packets_lost += 1;
                        continue;
                    }
                    let Some(&dst) = self.by_addr.get(&to) else { continue };
                    if self.nodes[i].isolated || self.nodes[dst].isolated {
                        self.stats.packets_lost += 1;
                        continue;
                    }
                    let from = self.nodes[i].addr;
                    let at = now + self.delay() + self.nodes[dst].inbound_delay;
                    self.push(at, Item::Packet { from, to: dst, bytes });
                }
                Output::Stream { to, token, bytes } => {
                    let at = now + self.delay();
                    self.push(at, Item::StreamRequest { from: i, to, token: Some(token), bytes });
                }
                Output::PushPull { .. } => {}
                Output::Timer { at, timer } => self.push(at.max(now), Item::Timer { node: i, timer }),
            }
        }
        if let Some(obs) = self.observer.as_mut() {
            while let Some(ev) = self.nodes[i].machine.poll_event() {
                obs(i, now, &ev);
            }
        } else {
            while self.nodes[i].machine.poll_event().is_some() {}
        }
    }

    /// Runs every scheduled item up to and including time `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(top) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Some(s) = self.queue.pop() else { break };
            self.now = s.at;
            self.dispatch(s.item);
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs in steps of `step` until `done` holds or `limit` passes;
    /// returns the time it took, or None.
    pub fn run_until_cond(
        &mut self,
        step: Duration,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start < limit {
            if done(self) {
                return Some(self.now - start);
            }
            self.run_for(step);
        }
        done(self).then(|| self.now - start)
    }

    fn dispatch(&mut self, item: Item<M::Timer>) {
        let now = self.now;
        match item {
            Item::Packet { from, to, bytes } => {
                if !self.nodes[to].up {
                    return;
                }
                if self.nodes[to].machine.handle_packet(from, &bytes, now).is_err() {
                    self.stats.decode_errors += 1;
                }
                self.drain(to);
            }
            Item::Timer { node, timer } => {
                if !self.nodes[node].up {
                    return;
                }
                self.nodes[node].machine.handle_timer(timer, now);
                self.drain(node);
            }
            Item::StreamRequest { from, to, token, bytes } => {
                self.stats.streams += 1;
                self.stats.stream_bytes += bytes.len() as u64;
                let reply = match self.by_addr.get(&to).copied() {
                    Some(dst)
                        if self.nodes[dst].up && !self.nodes[dst].isolated && !self.nodes[from].isolated =>
                    {
                        let src = self.nodes[from].addr;
                        let r = self.nodes[dst].machine.handle_stream(src, &bytes, now);
                        self.drain(dst);
                        self.stats.stream_bytes += r.len() as u64;
                        Ok(r)
                    }
                    _ => Err(format!("dial tcp {to}: connection refused")),
                };
                let at = now + self.delay();
                self.push(at, Item::StreamReply { node: from, token, reply });
            }
            Item::StreamReply { node, token, reply } => {
                if !self.nodes[node].up {
                    return;
                }
                match token {
                    Some(t) => self.nodes[node].machine.handle_stream_reply(t, reply, now),
                    None => self.nodes[node].machine.handle_join_reply(reply, now),
                }
                self.drain(node);
            }
        }
    }
}

/// The Serf layer (with its SWIM core) as a simulated machine.
pub struct SerfMachine {
    pub serf: super::serf::Serf,
}

impl Machine for SerfMachine {
    type Timer = super::serf::SerfTimer;
    type Event = super::serf::SerfEvent;

    fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Result<(), CodecError> {
        self.serf.handle_packet(from, bytes, now)
    }

    fn handle_timer(&mut self, timer: Self::Timer, now: Time) {
        self.serf.handle_timer(timer, now)
    }

    fn handle_stream(&mut self, from: SocketAddr, bytes: &[u8], now: Time) -> Vec<u8> {
        self.serf.handle_stream(from, bytes, now).unwrap_or_else(|e| StreamMsg::Error(e.to_string()).encode())
    }

    fn handle_stream_reply(&mut self, token: u64, reply: Result<Vec<u8>, String>, now: Time) {
        self.serf.handle_stream_reply(token, reply, now)
    }

    fn join_request(&mut self, now: Time) -> Vec<u8> {
        self.serf.join_request(now)
    }

    fn handle_join_reply(&mut self, reply: Result<Vec<u8>, String>, now: Time) {
        if let Ok(b) = reply {
            let _ = self.serf.handle_join_reply(&b, now);
        }
    }

    fn poll_output(&mut self, _now: Time) -> Option<Output<Self::Timer>> {
        self.serf.poll_output()
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        self.serf.poll_event()
    }
}
