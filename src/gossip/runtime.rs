//! The tokio driver: one task owns the `Serf` core and the UDP socket and
//! runs the select loop (datagrams in, commands from handles, replies from
//! stream tasks, timers); the shared accept loop (`crate::accept`) accepts
//! TCP streams and spawns a bounded number of per-connection tasks that
//! decrypt, hand the request to the core and write the reply. Outbound
//! streams (push-pull, joins, reconnects, large messages) run in their own
//! tasks.
//!
//! Owns: time (a monotonic clock since start), the timer heap, encryption
//! of everything on the wire, applying key operations, the keyring and
//! snapshot files, and delivering events to subscribers. Must not contain
//! protocol decisions: those are the core's.

use crate::accept;
use crate::gossip::config::{GossipConfig, WireDirection, WireTap};
use crate::gossip::crypto::{decode_key, Channel, Crypto, ENVELOPE_OVERHEAD};
use crate::gossip::error::GossipError;
use crate::gossip::files;
use crate::gossip::member::{Member, MemberEvent};
use crate::gossip::serf::query::{
    IncomingQuery, KeyResponse, KeyringOp, KeyringRequest, QueryParams, QueryRef,
};
use crate::gossip::serf::{Serf, SerfEvent, SerfTimer, UserEvent};
use crate::gossip::swim::{Output, Time};
use crate::gossip::transport::{self, Throttle, TransportError, MAX_FRAME, MAX_UDP};
use crate::gossip::LogScope;
use futures::future::BoxFuture;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Concurrent inbound stream connections at most.
const MAX_INBOUND_STREAMS: usize = 128;
/// How often the snapshot file is rewritten at most.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

// What the driver hands back to handles is defined here, with the code
// that produces it: `handle` then depends on `runtime` and never the
// other way round.

/// One item of a running query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryEvent {
    Ack(String),
    Response { from: String, payload: Vec<u8> },
}

/// The outcome of a cluster-wide keyring operation (Consul's
/// `KeyringResponse` for one pool).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyringResponse {
    /// Members alive when the operation started.
    pub num_nodes: usize,
    pub num_resp: usize,
    pub num_err: usize,
    /// Node → error message, for the nodes that failed.
    pub messages: BTreeMap<String, String>,
    /// Key → how many members have it installed (list).
    pub keys: BTreeMap<String, usize>,
    /// Key → how many members use it as primary.
    pub primary_keys: BTreeMap<String, usize>,
}

impl KeyringResponse {
    pub(crate) fn absorb(&mut self, from: &str, payload: &[u8]) {
        self.num_resp += 1;
        match KeyResponse::decode(payload) {
            Ok(r) => {
                if !r.result {
                    self.num_err += 1;
                    self.messages.insert(from.to_string(), r.message);
                }
                for k in r.keys {
                    *self.keys.entry(k).or_default() += 1;
                }
                if !r.primary.is_empty() {
                    *self.primary_keys.entry(r.primary).or_default() += 1;
                }
            }
            Err(e) => {
                self.num_err += 1;
                self.messages.insert(from.to_string(), format!("failed to decode the response: {e}"));
            }
        }
    }

    /// True when every member that answered succeeded and all answered.
    pub fn all_ok(&self) -> bool {
        self.num_err == 0 && self.num_resp >= self.num_nodes
    }
}

pub(crate) type JoinResult = (usize, Vec<(String, GossipError)>);

pub(crate) enum Command {
    Join {
        targets: Vec<(String, SocketAddr)>,
        reply: oneshot::Sender<JoinResult>,
    },
    Leave {
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    ForceLeave {
        name: String,
        prune: bool,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    SetTags {
        tags: BTreeMap<String, String>,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    UserEvent {
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    Query {
        name: String,
        payload: Vec<u8>,
        params: QueryParams,
        reply: oneshot::Sender<Result<(u32, mpsc::Receiver<QueryEvent>), GossipError>>,
    },
    Respond {
        query: QueryRef,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    Keyring {
        op: KeyringOp,
        key: String,
        reply: oneshot::Sender<Result<KeyringResponse, GossipError>>,
    },
    Stats {
        reply: oneshot::Sender<BTreeMap<String, String>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

enum Internal {
    StreamIn { from: SocketAddr, payload: Vec<u8>, reply: oneshot::Sender<Vec<u8>> },
    StreamReply { token: u64, result: Result<Vec<u8>, TransportError> },
    JoinReply { op: u64, target: String, result: Result<Vec<u8>, TransportError> },
}

/// Counters shared with handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dropped_packets: AtomicU64,
    pub rejected_streams: AtomicU64,
}

/// What handles can read without a round trip.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub local: Member,
    pub members: Vec<Member>,
    pub running: bool,
    pub coordinate: Option<crate::coordinate::Coordinate>,
    pub coordinates: std::collections::HashMap<String, crate::coordinate::Coordinate>,
}

/// Channels and shared state a handle holds.
pub(crate) struct Shared {
    pub cmd: mpsc::Sender<Command>,
    pub view: Arc<RwLock<View>>,
    pub members_tx: broadcast::Sender<MemberEvent>,
    pub user_tx: broadcast::Sender<UserEvent>,
    pub query_tx: broadcast::Sender<IncomingQuery>,
    pub crypto: Arc<RwLock<Crypto>>,
    pub counters: Arc<Counters>,
    pub addr: SocketAddr,
    pub stopped: CancellationToken,
}

struct TimerEntry {
    at: Time,
    seq: u64,
    timer: SerfTimer,
}

impl PartialEq for TimerEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct JoinOp {
    remaining: usize,
    ok: usize,
    errors: Vec<(String, GossipError)>,
    reply: Option<oneshot::Sender<JoinResult>>,
}

struct KeyringAgg {
    resp: KeyringResponse,
    reply: Option<oneshot::Sender<Result<KeyringResponse, GossipError>>>,
}

enum QuerySink {
    User(mpsc::Sender<QueryEvent>),
    Keyring(KeyringAgg),
}

struct Actor {
    serf: Serf,
    scope: LogScope,
    udp: Arc<UdpSocket>,
    crypto: Arc<RwLock<Crypto>>,
    start: Instant,
    timers: BinaryHeap<TimerEntry>,
    timer_seq: u64,
    internal_tx: mpsc::Sender<Internal>,
    tasks: TaskTracker,
    cancel: CancellationToken,
    view: Arc<RwLock<View>>,
    members_tx: broadcast::Sender<MemberEvent>,
    user_tx: broadcast::Sender<UserEvent>,
    query_tx: broadcast::Sender<IncomingQuery>,
    counters: Arc<Counters>,
    tcp_timeout: Duration,
    tap: Option<WireTap>,
    keyring_file: Option<PathBuf>,
    snapshot_path: Option<PathBuf>,
    snapshot_due: Option<Time>,
    joins: HashMap<u64, JoinOp>,
    next_op: u64,
    queries: HashMap<u32, QuerySink>,
    leave_reply: Option<oneshot::Sender<Result<(), GossipError>>>,
    stop: bool,
    udp_throttle: Throttle,
    /// The member generation the published view reflects.
    view_gen: u64,
    coord_gen: u64,
}

/// Everything `Gossip::start` prepared.
pub(crate) struct Prepared {
    pub cfg: GossipConfig,
    pub serf: Serf,
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub crypto: Arc<RwLock<Crypto>>,
    pub addr: SocketAddr,
}

/// Spawns the driver tasks and returns what handles share.
pub(crate) fn spawn(p: Prepared, tasks: &TaskTracker, cancel: CancellationToken) -> Shared {
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (internal_tx, internal_rx) = mpsc::channel(1024);
    let (members_tx, _) = broadcast::channel(1024);
    let (user_tx, _) = broadcast::channel(1024);
    let (query_tx, _) = broadcast::channel(256);
    let view = Arc::new(RwLock::new(View {
        local: p.serf.local_member(),
        members: p.serf.members(),
        running: true,
        coordinate: p.serf.coordinate(),
        coordinates: p.serf.cached_coordinates(),
    }));
    let counters = Arc::new(Counters::default());
    let scope = p.cfg.scope();
    let stopped = CancellationToken::new();
    let udp = Arc::new(p.udp);
    let actor = Actor {
        serf: p.serf,
        scope,
        udp: udp.clone(),
        crypto: p.crypto.clone(),
        start: Instant::now(),
        timers: BinaryHeap::new(),
        timer_seq: 0,
        internal_tx: internal_tx.clone(),
        tasks: tasks.clone(),
        cancel: cancel.clone(),
        view: view.clone(),
        members_tx: members_tx.clone(),
        user_tx: user_tx.clone(),
        query_tx: query_tx.clone(),
        counters: counters.clone(),
        tcp_timeout: p.cfg.tcp_timeout,
        tap: p.cfg.wire_tap.clone(),
        keyring_file: p.cfg.keyring_file.clone(),
        snapshot_path: p.cfg.snapshot_path.clone(),
        snapshot_due: None,
        joins: HashMap::new(),
        next_op: 0,
        queries: HashMap::new(),
        leave_reply: None,
        stop: false,
        udp_throttle: Throttle::new(Duration::from_secs(10)),
        view_gen: u64::MAX,
        coord_gen: 0,
    };
    let accept_cancel = cancel.child_token();
    let stop_accept = accept_cancel.clone();
    let done = stopped.clone();
    tasks.spawn(async move {
        actor.run(cmd_rx, internal_rx).await;
        stop_accept.cancel();
        done.cancel();
    });
    let acceptor = Acceptor {
        internal_tx,
        crypto: p.crypto.clone(),
        tcp_timeout: p.cfg.tcp_timeout,
        tap: p.cfg.wire_tap.clone(),
        counters: counters.clone(),
        scope,
        throttle: Arc::new(Mutex::new(Throttle::new(Duration::from_secs(10)))),
        cancel: accept_cancel.clone(),
    };
    let limits = accept::Limits {
        total: Some(Arc::new(Semaphore::new(MAX_INBOUND_STREAMS))),
        ..accept::Limits::default()
    };
    tasks.spawn(accept::run(p.tcp, Arc::new(acceptor), limits, accept_cancel, tasks.clone()));
    Shared {
        cmd: cmd_tx,
        view,
        members_tx,
        user_tx,
        query_tx,
        crypto: p.crypto,
        counters,
        addr: p.addr,
        stopped,
    }
}

impl Actor {
    fn now(&self) -> Time {
        self.start.elapsed()
    }

    async fn run(mut self, mut cmd_rx: mpsc::Receiver<Command>, mut internal_rx: mpsc::Receiver<Internal>) {
        let udp = self.udp.clone();
        let mut buf = vec![0u8; 65_536];
        self.flush();
        while !self.stop {
            let wake = self.next_wake();
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let bytes = buf.get(..n).unwrap_or_default().to_vec();
                        self.on_datagram(from, &bytes);
                    }
                    Err(e) => {
                        // ICMP errors (port unreachable) surface here on Linux
                        // and are harmless; a short pause keeps a persistent
                        // error from spinning the loop.
                        glog!(self.scope, memberlist, debug, error = %e, "udp receive error");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                },
                c = cmd_rx.recv() => match c {
                    Some(c) => self.on_command(c),
                    None => break, // every handle is gone
                },
                Some(i) = internal_rx.recv() => self.on_internal(i),
                _ = sleep_until_opt(wake.map(|t| self.start + t)) => self.on_wake(),
            }
            self.flush();
        }
        self.write_snapshot(true);
        if let Ok(mut v) = self.view.write() {
            v.running = false;
        }
        if let Some(r) = self.leave_reply.take() {
            let _ = r.send(Err(GossipError::StoppedBeforeLeft));
        }
        glog!(self.scope, memberlist, debug, "gossip driver stopped");
    }

    fn next_wake(&self) -> Option<Time> {
        let t = self.timers.peek().map(|e| e.at);
        match (t, self.snapshot_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_wake(&mut self) {
        let now = self.now();
        while self.timers.peek().is_some_and(|e| e.at <= now) {
            let Some(e) = self.timers.pop() else { break };
            self.serf.handle_timer(e.timer, now);
        }
        if self.snapshot_due.is_some_and(|t| t <= now) {
            self.snapshot_due = None;
            self.write_snapshot(false);
        }
    }

    fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        if let Some(t) = &self.tap {
            t(WireDirection::UdpIn, from, bytes);
        }
        if bytes.len() > MAX_UDP {
            self.drop_packet(from, &format!("oversized packet of {} bytes", bytes.len()));
            return;
        }
        let plain = {
            let c = self.crypto.read().unwrap_or_else(|e| e.into_inner());
            c.unwrap(bytes, Channel::Packet)
        };
        let plain = match plain {
            Ok(p) => p,
            Err(e) => {
                self.drop_packet(from, &e.to_string());
                return;
            }
        };
        let now = self.now();
        if let Err(e) = self.serf.handle_packet(from, &plain, now) {
            self.drop_packet(from, &format!("failed to decode packet: {e}"));
        }
    }

    fn drop_packet(&mut self, from: SocketAddr, why: &str) {
        self.counters.dropped_packets.fetch_add(1, AtomicOrdering::Relaxed);
        crate::metrics::incr("consul.memberlist.udp.dropped", 1);
        if let Some(suppressed) = self.udp_throttle.allow() {
            glog!(self.scope, memberlist, warn, from = %from, suppressed, "dropping packet: {why}");
        }
    }

    fn on_internal(&mut self, i: Internal) {
        let now = self.now();
        match i {
            Internal::StreamIn { from, payload, reply } => {
                let out = match self.serf.handle_stream(from, &payload, now) {
                    Ok(r) => r,
                    Err(e) => {
                        self.counters.rejected_streams.fetch_add(1, AtomicOrdering::Relaxed);
                        glog!(self.scope, memberlist, warn, from = %from, error = %e, "failed to handle stream");
                        crate::gossip::swim::message::StreamMsg::Error(e.to_string()).encode()
                    }
                };
                let _ = reply.send(out);
            }
            Internal::StreamReply { token, result } => {
                if let Err(e) = &result {
                    glog!(self.scope, memberlist, debug, error = %e, "stream exchange failed");
                }
                // The core only logs why an exchange failed.
                self.serf.handle_stream_reply(token, result.map_err(|e| e.to_string()), now);
            }
            Internal::JoinReply { op, target, result } => {
                let outcome = match result {
                    Ok(bytes) => self.serf.handle_join_reply(&bytes, now).map_err(GossipError::from),
                    Err(e) => Err(GossipError::from(e)),
                };
                if let Some(j) = self.joins.get_mut(&op) {
                    j.remaining = j.remaining.saturating_sub(1);
                    match outcome {
                        Ok(()) => j.ok += 1,
                        Err(e) => {
                            glog!(self.scope, memberlist, warn, addr = %target, error = %e, "failed to join");
                            j.errors.push((target, e));
                        }
                    }
                    if j.remaining == 0 {
                        if let Some(j) = self.joins.remove(&op) {
                            if let Some(r) = j.reply {
                                let _ = r.send((j.ok, j.errors));
                            }
                        }
                    }
                }
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        let now = self.now();
        match c {
            Command::Join { targets, reply } => {
                if targets.is_empty() {
                    let _ = reply.send((0, Vec::new()));
                    return;
                }
                self.next_op += 1;
                let op = self.next_op;
                self.joins.insert(
                    op,
                    JoinOp { remaining: targets.len(), ok: 0, errors: Vec::new(), reply: Some(reply) },
                );
                for (label, addr) in targets {
                    glog!(self.scope, serf, info, addr = %addr, "attempting join");
                    let bytes = self.serf.join_request(now);
                    let tx = self.internal_tx.clone();
                    let crypto = self.crypto.clone();
                    let (timeout, tap) = (self.tcp_timeout, self.tap.clone());
                    self.tasks.spawn(async move {
                        let result = transport::exchange(addr, bytes, &crypto, timeout, tap.as_ref()).await;
                        let _ = tx.send(Internal::JoinReply { op, target: label, result }).await;
                    });
                }
            }
            Command::Leave { reply } => {
                if self.leave_reply.is_some() {
                    let _ = reply.send(Err(GossipError::LeaveInProgress));
                    return;
                }
                self.leave_reply = Some(reply);
                self.serf.leave(now);
            }
            Command::ForceLeave { name, prune, reply } => {
                let _ = reply.send(self.serf.force_leave(&name, prune, now).map_err(GossipError::from));
            }
            Command::SetTags { tags, reply } => {
                let _ = reply.send(self.serf.set_tags(tags, now).map_err(GossipError::from));
            }
            Command::UserEvent { name, payload, coalesce, reply } => {
                let _ = reply
                    .send(self.serf.user_event(&name, &payload, coalesce, now).map_err(GossipError::from));
            }
            Command::Query { name, payload, params, reply } => {
                match self.serf.query(&name, &payload, &params, now) {
                    Ok(q) => {
                        let (tx, rx) = mpsc::channel(1024);
                        self.queries.insert(q.id, QuerySink::User(tx));
                        let _ = reply.send(Ok((q.id, rx)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Respond { query, payload, reply } => {
                let _ = reply.send(self.serf.respond(&query, payload, now).map_err(GossipError::from));
            }
            Command::Keyring { op, key, reply } => self.start_keyring_op(op, key, reply, now),
            Command::Stats { reply } => {
                let mut s = self.serf.stats();
                let enc = self.crypto.read().map(|c| c.encrypted()).unwrap_or(false);
                s.insert("encrypted".into(), enc.to_string());
                let _ = reply.send(s);
            }
            Command::Shutdown { reply } => {
                self.stop = true;
                let _ = reply.send(());
            }
        }
    }

    fn start_keyring_op(
        &mut self,
        op: KeyringOp,
        key: String,
        reply: oneshot::Sender<Result<KeyringResponse, GossipError>>,
        now: Time,
    ) {
        let enabled = self.crypto.read().map(|c| c.encrypted()).unwrap_or(false);
        if !enabled {
            let _ = reply.send(Err(GossipError::EncryptionDisabled));
            return;
        }
        if op != KeyringOp::List {
            if let Err(e) = decode_key(&key) {
                let _ = reply.send(Err(e.into()));
                return;
            }
        }
        let num_nodes = self
            .serf
            .members()
            .iter()
            .filter(|m| {
                matches!(
                    m.status,
                    crate::gossip::member::MemberStatus::Alive | crate::gossip::member::MemberStatus::Leaving
                )
            })
            .count();
        match self.serf.keyring_query(op, &key, None, now) {
            Ok(q) => {
                let resp = KeyringResponse { num_nodes, ..Default::default() };
                self.queries.insert(q.id, QuerySink::Keyring(KeyringAgg { resp, reply: Some(reply) }));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Applies a key operation another node (or we) asked for, persists the
    /// keyring, and answers.
    fn apply_keyring(&mut self, req: KeyringRequest, now: Time) {
        let mut resp = KeyResponse::default();
        let mut persist: Option<Vec<String>> = None;
        {
            let mut c = self.crypto.write().unwrap_or_else(|e| e.into_inner());
            match c.keyring.as_mut() {
                None => resp.message = GossipError::EncryptionDisabled.to_string(),
                Some(k) => {
                    let r = match req.op {
                        KeyringOp::Install => k.install(&req.key),
                        KeyringOp::Use => k.use_key(&req.key),
                        KeyringOp::Remove => k.remove(&req.key),
                        KeyringOp::List => Ok(()),
                    };
                    match r {
                        Ok(()) => {
                            resp.result = true;
                            if req.op == KeyringOp::List {
                                resp.keys = k.keys();
                            } else {
                                persist = Some(k.keys());
                            }
                        }
                        Err(e) => resp.message = e.to_string(),
                    }
                    resp.primary = k.primary().unwrap_or_default();
                }
            }
        }
        if let (Some(keys), Some(path)) = (persist, self.keyring_file.as_ref()) {
            if let Err(e) = files::write_keyring(path, &keys) {
                glog!(self.scope, serf, error, error = %e, "failed to persist the keyring");
                resp.result = false;
                resp.message = e.to_string();
            }
        }
        if resp.result && req.op != KeyringOp::List {
            glog!(self.scope, serf, info, op = ?req.op, "applied a keyring operation");
        }
        if let Err(e) = self.serf.respond(&req.query, resp.encode(), now) {
            glog!(self.scope, serf, warn, error = %e, "failed to answer a keyring query");
        }
    }

    /// Moves the core's outputs to sockets/tasks/timers and its events to
    /// subscribers.
    fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.serf.poll_output() {
                progressed = true;
                self.on_output(o);
            }
            while let Some(ev) = self.serf.poll_event() {
                progressed = true;
                self.on_event(ev);
            }
            let generation = self.serf.members_generation();
            if generation != self.view_gen {
                self.view_gen = generation;
                if let Ok(mut v) = self.view.write() {
                    v.local = self.serf.local_member();
                    v.members = self.serf.members();
                }
            }
            let coord_gen = self.serf.coordinate_generation();
            if coord_gen != self.coord_gen {
                self.coord_gen = coord_gen;
                if let Ok(mut v) = self.view.write() {
                    v.coordinate = self.serf.coordinate();
                    v.coordinates = self.serf.cached_coordinates();
                }
            }
            if !progressed {
                break;
            }
        }
        if self.serf.take_dirty() && self.snapshot_path.is_some() && self.snapshot_due.is_none() {
            self.snapshot_due = Some(self.now() + SNAPSHOT_EVERY);
        }
    }

    fn on_output(&mut self, o: Output<SerfTimer>) {
        match o {
            Output::Packet { to, bytes } => {
                let wire = {
                    let c = self.crypto.read().unwrap_or_else(|e| e.into_inner());
                    c.wrap(bytes, Channel::Packet)
                };
                match wire {
                    Ok(w) => {
                        if let Some(t) = &self.tap {
                            t(WireDirection::UdpOut, to, &w);
                        }
                        if let Err(e) = self.udp.try_send_to(&w, to) {
                            glog!(self.scope, memberlist, debug, to = %to, error = %e, "failed to send packet");
                        }
                    }
                    Err(e) => glog!(self.scope, memberlist, error, error = %e, "failed to encrypt packet"),
                }
            }
            Output::Stream { to, token, bytes } => {
                if bytes.len() > MAX_FRAME {
                    glog!(
                        self.scope,
                        memberlist,
                        error,
                        size = bytes.len(),
                        "refusing to send a stream message over the size limit"
                    );
                    return;
                }
                let tx = self.internal_tx.clone();
                let crypto = self.crypto.clone();
                let (timeout, tap) = (self.tcp_timeout, self.tap.clone());
                self.tasks.spawn(async move {
                    let result = transport::exchange(to, bytes, &crypto, timeout, tap.as_ref()).await;
                    let _ = tx.send(Internal::StreamReply { token, result }).await;
                });
            }
            Output::PushPull { .. } => {}
            Output::Timer { at, timer } => {
                self.timer_seq += 1;
                self.timers.push(TimerEntry { at, seq: self.timer_seq, timer });
            }
        }
    }

    fn on_event(&mut self, ev: SerfEvent) {
        let now = self.now();
        match ev {
            SerfEvent::Member(m) => {
                let _ = self.members_tx.send(m);
            }
            SerfEvent::User(u) => {
                let _ = self.user_tx.send(u);
            }
            SerfEvent::Query(q) => {
                let _ = self.query_tx.send(q);
            }
            SerfEvent::QueryAck { id, from } => {
                if let Some(QuerySink::User(tx)) = self.queries.get(&id) {
                    let _ = tx.try_send(QueryEvent::Ack(from));
                }
            }
            SerfEvent::QueryResponse { id, from, payload } => match self.queries.get_mut(&id) {
                Some(QuerySink::User(tx)) => {
                    let _ = tx.try_send(QueryEvent::Response { from, payload });
                }
                Some(QuerySink::Keyring(agg)) => {
                    agg.resp.absorb(&from, &payload);
                    if agg.resp.num_resp >= agg.resp.num_nodes {
                        self.serf.finish_query(id);
                        self.finish_keyring(id);
                    }
                }
                None => {}
            },
            SerfEvent::QueryDone { id } => {
                if matches!(self.queries.get(&id), Some(QuerySink::Keyring(_))) {
                    self.finish_keyring(id);
                } else {
                    self.queries.remove(&id);
                }
            }
            SerfEvent::Keyring(req) => self.apply_keyring(req, now),
            SerfEvent::LeaveDone => {
                if let Some(r) = self.leave_reply.take() {
                    let _ = r.send(Ok(()));
                }
                self.stop = true;
            }
        }
    }

    fn finish_keyring(&mut self, id: u32) {
        if let Some(QuerySink::Keyring(mut agg)) = self.queries.remove(&id) {
            if let Some(r) = agg.reply.take() {
                let _ = r.send(Ok(agg.resp));
            }
        }
    }

    fn write_snapshot(&mut self, durable: bool) {
        let Some(path) = self.snapshot_path.clone() else { return };
        let data = self.serf.snapshot();
        if let Err(e) = files::write_snapshot(&path, self.serf.name(), &data, durable) {
            glog!(self.scope, serf, error, error = %e, "failed to write the snapshot");
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}

/// The TCP side: serves one request per stream connection, accepted by
/// the shared loop (`crate::accept`).
struct Acceptor {
    internal_tx: mpsc::Sender<Internal>,
    crypto: Arc<RwLock<Crypto>>,
    tcp_timeout: Duration,
    tap: Option<WireTap>,
    counters: Arc<Counters>,
    scope: LogScope,
    throttle: Arc<Mutex<Throttle>>,
    /// Fires at shutdown or when the actor stops; ends open exchanges too.
    cancel: CancellationToken,
}

impl accept::ConnHandler for Acceptor {
    async fn serve(&self, conn: accept::Conn) {
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = self.exchange(conn.stream, conn.peer) => {}
        }
    }

    fn refused(&self, _: TcpStream, peer: SocketAddr, _: accept::Refused) -> Option<BoxFuture<'static, ()>> {
        self.reject(peer, "too many concurrent stream connections");
        None
    }

    fn accept_failed(&self, error: &std::io::Error, first: bool) {
        if first {
            glog!(self.scope, memberlist, warn, error = %error, "failed to accept a stream connection");
        } else {
            glog!(self.scope, memberlist, debug, error = %error, "failed to accept a stream connection");
        }
    }
}

impl Acceptor {
    fn reject(&self, from: SocketAddr, why: &str) {
        self.counters.rejected_streams.fetch_add(1, AtomicOrdering::Relaxed);
        crate::metrics::incr("consul.memberlist.tcp.rejected", 1);
        let allow = self.throttle.lock().map(|mut t| t.allow()).unwrap_or(Some(0));
        if let Some(suppressed) = allow {
            glog!(self.scope, memberlist, warn, from = %from, suppressed, "rejected stream: {why}");
        }
    }

    async fn exchange(&self, mut s: accept::Stream, from: SocketAddr) {
        let _ = s.set_nodelay(true);
        let frame = match tokio::time::timeout(
            self.tcp_timeout,
            transport::read_frame(&mut s, MAX_FRAME + ENVELOPE_OVERHEAD),
        )
        .await
        {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return self.reject(from, &e.to_string()),
            Err(_) => return self.reject(from, "timed out reading the request"),
        };
        if let Some(t) = &self.tap {
            t(WireDirection::TcpIn, from, &frame);
        }
        let plain = {
            let c = self.crypto.read().unwrap_or_else(|e| e.into_inner());
            c.unwrap(&frame, Channel::Stream)
        };
        let plain = match plain {
            Ok(p) => p,
            Err(e) => {
                self.reject(from, &e.to_string());
                let _ = tokio::time::timeout(
                    self.tcp_timeout,
                    transport::write_frame(&mut s, &transport::refusal(&e.to_string())),
                )
                .await;
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        if self.internal_tx.send(Internal::StreamIn { from, payload: plain, reply: tx }).await.is_err() {
            return;
        }
        let Ok(Ok(reply)) = tokio::time::timeout(self.tcp_timeout, rx).await else { return };
        let wire = {
            let c = self.crypto.read().unwrap_or_else(|e| e.into_inner());
            c.wrap(reply, Channel::Stream)
        };
        let Ok(wire) = wire else { return };
        if let Some(t) = &self.tap {
            t(WireDirection::TcpOut, from, &wire);
        }
        let _ = tokio::time::timeout(self.tcp_timeout, transport::write_frame(&mut s, &wire)).await;
    }
}
