//! `Gossip`: the cheap-to-clone handle the agent uses for one gossip pool.
//! Starting it loads the keyring and snapshot files, binds the sockets and
//! spawns the driver; every method talks to the driver over a channel or
//! reads its published view.
//!
//! Owns: the public API and start-up order. Must not touch protocol state
//! directly.

use crate::coordinate::Coordinate;
use crate::gossip::config::GossipConfig;
use crate::gossip::crypto::{Crypto, Keyring};
use crate::gossip::error::GossipError;
use crate::gossip::files;
use crate::gossip::member::{Member, MemberEvent};
use crate::gossip::runtime::{self, Command, KeyringResponse, Prepared, QueryEvent, Shared};
use crate::gossip::serf::query::{IncomingQuery, KeyringOp, QueryParams, QueryRef};
use crate::gossip::serf::{Serf, SerfConfig, UserEvent};
use crate::gossip::swim::SwimConfig;
use crate::gossip::transport::{self, TransportError};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Responses to a query as they arrive; ends at the query's timeout.
pub struct QueryResponses {
    pub id: u32,
    rx: mpsc::Receiver<QueryEvent>,
}

/// All acks and responses of a finished query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub acks: Vec<String>,
    pub responses: Vec<(String, Vec<u8>)>,
}

impl QueryResponses {
    /// The next ack or response; `None` once the query timed out.
    pub async fn next(&mut self) -> Option<QueryEvent> {
        self.rx.recv().await
    }

    /// Waits for the query's timeout and returns everything received.
    pub async fn collect(mut self) -> QueryResult {
        let mut r = QueryResult::default();
        while let Some(ev) = self.rx.recv().await {
            match ev {
                QueryEvent::Ack(n) => r.acks.push(n),
                QueryEvent::Response { from, payload } => r.responses.push((from, payload)),
            }
        }
        r
    }
}

/// A running gossip pool.
#[derive(Clone)]
pub struct Gossip {
    inner: Arc<Shared>,
    name: String,
    default_port: u16,
}

impl std::fmt::Debug for Gossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossip").field("name", &self.name).field("addr", &self.inner.addr).finish()
    }
}

fn load_keyring(cfg: &GossipConfig) -> Result<Option<Keyring>, GossipError> {
    let scope = cfg.scope();
    let from_file = match &cfg.keyring_file {
        Some(p) => files::read_keyring(p)?,
        None => None,
    };
    let keys = match from_file {
        Some(file_keys) => {
            if let Some(first) = cfg.keys.first() {
                if !file_keys.iter().any(|k| k == first) {
                    glog!(scope, serf, warn, "a keyring file exists; ignoring the configured encrypt key (use the keyring operations to change keys)");
                }
            }
            file_keys
        }
        None => {
            if let (Some(p), false) = (&cfg.keyring_file, cfg.keys.is_empty()) {
                files::write_keyring(p, &cfg.keys)?;
            }
            cfg.keys.clone()
        }
    };
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(Keyring::new(&keys)?))
}

impl Gossip {
    /// Binds the sockets and starts the pool. Rejoins the snapshot's peers
    /// in the background unless the snapshot says we left gracefully and
    /// `rejoin_after_leave` is off.
    pub async fn start(
        cfg: GossipConfig,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Gossip, GossipError> {
        if cfg.node_name.is_empty() {
            return Err(GossipError::EmptyNodeName);
        }
        let scope = cfg.scope();
        let keyring = load_keyring(&cfg)?;
        let crypto =
            Crypto { keyring, verify_incoming: cfg.verify_incoming, verify_outgoing: cfg.verify_outgoing };
        let snapshot = match &cfg.snapshot_path {
            Some(p) => match files::read_snapshot(p) {
                Ok(s) => s,
                Err(e) => {
                    glog!(scope, serf, warn, error = %e, "ignoring an unreadable snapshot");
                    None
                }
            },
            None => None,
        };
        let (udp, tcp) = transport::bind(cfg.bind).await?;
        let bound = tcp.local_addr().map_err(TransportError::LocalAddr)?;
        let addr = match cfg.advertise {
            Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), bound.port()),
            Some(a) => a,
            None => bound,
        };
        if addr.ip().is_unspecified() {
            return Err(GossipError::UnspecifiedAdvertise(addr));
        }
        let mut swim = SwimConfig::from_settings(&cfg.settings);
        swim.scope = scope;
        let mut sc = SerfConfig::new(cfg.node_name.clone(), addr, cfg.tags.clone(), swim);
        sc.reconnect_timeout = cfg.reconnect_timeout;
        sc.tombstone_timeout = cfg.tombstone_timeout;
        sc.disable_coordinates = cfg.disable_coordinates;
        // After a graceful leave, the previous peers are forgotten unless
        // the agent rejoins after leaving (Serf's rule); the clocks are kept.
        let snapshot = snapshot.map(|mut s| {
            if s.left && !cfg.rejoin_after_leave {
                s.alive.clear();
            }
            s
        });
        let seed: u64 = rand::random();
        let serf = Serf::new(sc, seed, Duration::ZERO, snapshot.as_ref())?;
        let encrypted = crypto.encrypted();
        glog!(scope, serf, info, node = %cfg.node_name, addr = %addr, encrypted, "gossip pool {} started", cfg.pool.label());
        let rejoin = snapshot.filter(|s| !s.alive.is_empty());
        let shared = runtime::spawn(
            Prepared { cfg: cfg.clone(), serf, udp, tcp, crypto: Arc::new(RwLock::new(crypto)), addr },
            tasks,
            cancel,
        );
        let g = Gossip { inner: Arc::new(shared), name: cfg.node_name.clone(), default_port: addr.port() };
        if let Some(s) = rejoin {
            let g2 = g.clone();
            tasks.spawn(async move {
                for (name, peer) in s.alive {
                    glog!(scope, serf, info, node = %name, addr = %peer, "attempting re-join to previously known node");
                    let (n, _) = g2.join(&[peer.to_string()]).await;
                    if n > 0 {
                        glog!(scope, serf, info, node = %name, "re-joined to previously known node");
                        return;
                    }
                }
                glog!(scope, serf, warn, "failed to re-join any previously known node");
            });
        }
        Ok(g)
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmd.send(make(tx)).await.map_err(|_| GossipError::ShutDown)?;
        self.reply_or_stopped(rx).await
    }

    /// The driver's reply, or `ShutDown` once it has stopped (see
    /// `crate::reply`). No grace: the driver sends every reply it owes
    /// before it stops, and the reply is polled first.
    async fn reply_or_stopped<T>(&self, rx: oneshot::Receiver<T>) -> Result<T, GossipError> {
        crate::reply::reply_or_stop(rx, &self.inner.stopped, Duration::ZERO)
            .await
            .ok_or(GossipError::ShutDown)
    }

    /// The address peers reach us at.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn local_member(&self) -> Member {
        self.inner.view.read().map(|v| v.local.clone()).unwrap_or_else(|e| e.into_inner().local.clone())
    }

    /// Every known member (alive, leaving, left, failed), sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.inner.view.read().map(|v| v.members.clone()).unwrap_or_else(|e| e.into_inner().members.clone())
    }

    /// Our network coordinate in this pool (None under `disable_coordinates`).
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.inner
            .view
            .read()
            .map(|v| v.coordinate.clone())
            .unwrap_or_else(|e| e.into_inner().coordinate.clone())
    }

    /// The coordinates peers sent with their acks, ours included, by node name.
    pub fn coordinates(&self) -> HashMap<String, Coordinate> {
        self.inner
            .view
            .read()
            .map(|v| v.coordinates.clone())
            .unwrap_or_else(|e| e.into_inner().coordinates.clone())
    }

    /// Whether the driver is still running.
    pub fn is_running(&self) -> bool {
        !self.inner.stopped.is_cancelled()
    }

    /// Joins through each address ("ip:port", "ip" with our port, or
    /// "host[:port]"); returns how many succeeded and the errors.
    pub async fn join(&self, addrs: &[String]) -> (usize, Vec<(String, GossipError)>) {
        let mut targets = Vec::new();
        let mut errors = Vec::new();
        for a in addrs {
            match resolve(a, self.default_port).await {
                Ok(sa) => targets.push((a.clone(), sa)),
                Err(e) => errors.push((a.clone(), e)),
            }
        }
        match self.call(|reply| Command::Join { targets, reply }).await {
            Ok((n, mut errs)) => {
                errors.append(&mut errs);
                (n, errors)
            }
            // `call` fails only when the driver is gone, and then every
            // address not already failed fails for that reason.
            Err(_) => {
                for a in addrs {
                    if !errors.iter().any(|(x, _)| x == a) {
                        errors.push((a.clone(), GossipError::ShutDown));
                    }
                }
                (0, errors)
            }
        }
    }

    /// Leaves gracefully (others see `left`), then stops the pool. Gives up
    /// waiting after `timeout` and stops anyway.
    pub async fn leave(&self, timeout: Duration) -> Result<(), GossipError> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmd.send(Command::Leave { reply: tx }).await.map_err(|_| GossipError::ShutDown)?;
        let r = match tokio::time::timeout(timeout, self.reply_or_stopped(rx)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(e),
            Err(_) => Err(GossipError::LeaveTimeout(timeout)),
        };
        self.shutdown().await;
        r
    }

    /// Failed → left; with `prune`, also removed from the member list.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<(), GossipError> {
        let name = name.to_string();
        self.call(|reply| Command::ForceLeave { name, prune, reply }).await?
    }

    /// Replaces our tags (≤ 512 bytes encoded).
    pub async fn set_tags(&self, tags: BTreeMap<String, String>) -> Result<(), GossipError> {
        self.call(|reply| Command::SetTags { tags, reply }).await?
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.members_tx.subscribe()
    }

    /// Fires a user event (name + payload ≤ 512 bytes) to every member.
    pub async fn user_event(&self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), GossipError> {
        let (name, payload) = (name.to_string(), payload.to_vec());
        self.call(|reply| Command::UserEvent { name, payload, coalesce, reply }).await?
    }

    pub fn subscribe_user_events(&self) -> broadcast::Receiver<UserEvent> {
        self.inner.user_tx.subscribe()
    }

    /// User queries delivered to this node; answer with `respond`.
    pub fn subscribe_queries(&self) -> broadcast::Receiver<IncomingQuery> {
        self.inner.query_tx.subscribe()
    }

    pub async fn respond(&self, query: &QueryRef, payload: Vec<u8>) -> Result<(), GossipError> {
        let query = query.clone();
        self.call(|reply| Command::Respond { query, payload, reply }).await?
    }

    /// Starts a query; its responses stream in until the timeout.
    pub async fn query(
        &self,
        name: &str,
        payload: &[u8],
        params: QueryParams,
    ) -> Result<QueryResponses, GossipError> {
        let (name, payload) = (name.to_string(), payload.to_vec());
        let (id, rx) = self.call(|reply| Command::Query { name, payload, params, reply }).await??;
        Ok(QueryResponses { id, rx })
    }

    async fn keyring(&self, op: KeyringOp, key: &str) -> Result<KeyringResponse, GossipError> {
        let key = key.to_string();
        self.call(|reply| Command::Keyring { op, key, reply }).await?
    }

    /// Every member reports its keys.
    pub async fn keyring_list(&self) -> Result<KeyringResponse, GossipError> {
        self.keyring(KeyringOp::List, "").await
    }

    pub async fn keyring_install(&self, key: &str) -> Result<KeyringResponse, GossipError> {
        self.keyring(KeyringOp::Install, key).await
    }

    /// Makes an installed key the primary everywhere.
    pub async fn keyring_use(&self, key: &str) -> Result<KeyringResponse, GossipError> {
        self.keyring(KeyringOp::Use, key).await
    }

    /// Removes a key everywhere; members refuse to remove their primary.
    pub async fn keyring_remove(&self, key: &str) -> Result<KeyringResponse, GossipError> {
        self.keyring(KeyringOp::Remove, key).await
    }

    /// This node's keys, primary first (empty without encryption).
    pub fn local_keys(&self) -> Vec<String> {
        self.inner
            .crypto
            .read()
            .map(|c| c.keyring.as_ref().map(|k| k.keys()).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn encrypted(&self) -> bool {
        self.inner.crypto.read().map(|c| c.encrypted()).unwrap_or(false)
    }

    /// `consul info`'s serf section.
    pub async fn stats(&self) -> Result<BTreeMap<String, String>, GossipError> {
        self.call(|reply| Command::Stats { reply }).await
    }

    /// Datagrams dropped (garbage, oversized, undecryptable).
    pub fn dropped_packets(&self) -> u64 {
        self.inner.counters.dropped_packets.load(Ordering::Relaxed)
    }

    /// Stream connections refused (bad frames, undecryptable, overload).
    pub fn rejected_streams(&self) -> u64 {
        self.inner.counters.rejected_streams.load(Ordering::Relaxed)
    }

    /// Stops at once without telling anyone (peers will see us fail).
    pub async fn shutdown(&self) {
        // No need to wait for the reply: the driver's end is what counts.
        let (reply, _rx) = oneshot::channel();
        let _ = self.inner.cmd.send(Command::Shutdown { reply }).await;
        self.inner.stopped.cancelled().await;
    }
}

/// "ip:port", "ip" (default port), "[v6]:port", or "host[:port]".
async fn resolve(s: &str, default_port: u16) -> Result<SocketAddr, GossipError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let host = if s.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        s.to_string()
    } else {
        format!("{s}:{default_port}")
    };
    let mut addrs = tokio::net::lookup_host(host.as_str())
        .await
        .map_err(|source| GossipError::Resolve { addr: s.to_string(), source })?;
    addrs.next().ok_or_else(|| GossipError::NoAddresses(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::member::MemberStatus;
    use crate::gossip::runtime::{Counters, View};

    /// A handle in the state the exit race leaves behind: the driver has
    /// stopped, yet a command sits in the channel where nobody will ever
    /// answer it (a sender acquired its slot before the driver dropped the
    /// receiver and pushed after the drain; the message then lives as long
    /// as the handle). Here the receiver is simply kept and never read.
    fn stopped_handle() -> (Gossip, mpsc::Receiver<Command>) {
        let addr: SocketAddr = "127.0.0.1:8301".parse().unwrap();
        let local = Member::new("n".into(), addr, BTreeMap::new(), MemberStatus::Left);
        let view = View {
            local,
            members: Vec::new(),
            running: false,
            coordinate: None,
            coordinates: HashMap::new(),
        };
        let (cmd, cmd_rx) = mpsc::channel(8);
        let stopped = CancellationToken::new();
        stopped.cancel();
        let shared = Shared {
            cmd,
            view: Arc::new(RwLock::new(view)),
            members_tx: broadcast::channel(1).0,
            user_tx: broadcast::channel(1).0,
            query_tx: broadcast::channel(1).0,
            crypto: Arc::new(RwLock::new(Crypto {
                keyring: None,
                verify_incoming: true,
                verify_outgoing: true,
            })),
            counters: Arc::new(Counters::default()),
            addr,
            stopped,
        };
        (Gossip { inner: Arc::new(shared), name: "n".into(), default_port: 8301 }, cmd_rx)
    }

    #[tokio::test]
    async fn calls_to_a_stopped_driver_return_even_if_their_command_was_never_read() {
        let (g, _unread) = stopped_handle();
        let bound = Duration::from_secs(5);
        let stats = tokio::time::timeout(bound, g.stats()).await.expect("stats hung");
        assert!(matches!(stats, Err(GossipError::ShutDown)), "{stats:?}");
        let left = tokio::time::timeout(bound, g.leave(Duration::from_secs(60))).await.expect("leave hung");
        assert!(matches!(left, Err(GossipError::ShutDown)), "{left:?}");
        tokio::time::timeout(bound, g.shutdown()).await.expect("shutdown hung");
    }
}
