//! A userspace delay proxy for gossip and RPC between agents that each
//! live in a network namespace of their own (`tc netem` is not available
//! on these kernels, and nftables cannot delay).
//!
//! Topology: the proxy owns one namespace, the hub. Agent `i` sits in its
//! own namespace at `agent_ip(i)` (10.77.i.2), joined to the hub by a veth
//! pair whose hub end holds `proxy_ip(i)` (10.77.i.1). Agent `i` advertises
//! `proxy_ip(i)`, so every peer reaches it only through the proxy; the hub
//! does not forward IP, so there is no other path. A packet from agent `j`
//! to `proxy_ip(i)` is held for `one_way[j][i]` and sent on to agent `i`
//! from a socket owned by that (j, i) flow; whatever agent `i` sends back
//! on the flow (the probe's ack) is held as long and delivered to `j` from
//! `proxy_ip(i)`. A probe j -> i -> j therefore sees twice the one-way
//! delay on top of the path's own (small) round trip. The answer leg gives
//! back whatever its request ran late, so this process's own waits for the
//! CPU do not add up over a round trip.
//!
//! Everything runs on one current-thread tokio runtime on a thread that
//! entered the hub namespace, so every socket it creates lives there.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

/// Serf LAN (UDP and TCP) and server RPC (TCP) ports.
const SERF_LAN: u16 = 8301;
const SERVER_RPC: u16 = 8300;

/// Where agent `i` listens (inside its own namespace).
pub fn agent_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, i as u8, 2)
}

/// The address agent `i` advertises: the hub end of its link.
pub fn proxy_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, i as u8, 1)
}

/// Which agent an address belongs to, if any of the first `n`.
fn agent_of(ip: IpAddr, n: usize) -> Option<usize> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (o[0] == 10 && o[1] == 77 && o[3] == 2 && (o[2] as usize) < n).then_some(o[2] as usize)
        }
        IpAddr::V6(_) => None,
    }
}

/// What the proxy saw, for the test's report and its sanity checks.
#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// UDP datagrams forwarded from agent j toward agent i, by (j, i).
    pub udp: BTreeMap<(usize, usize), u64>,
    /// TCP connections proxied from agent j to agent i, by (j, i).
    pub tcp: BTreeMap<(usize, usize), u64>,
    /// Datagrams from an address that is no agent's (dropped).
    pub strangers: u64,
    /// How late each held datagram toward a responder left (timer
    /// granularity and waiting for the CPU): the machine's noise.
    pub late_request: Vec<Duration>,
    /// How late each datagram back to an initiator left, after paying
    /// back its request's lateness: what stays in a round trip.
    pub late_answer: Vec<Duration>,
    /// How soon an agent answered a datagram on the same flow (within
    /// `TURNAROUND_MAX`): a probe's ack, so the agents' own share of a
    /// round trip.
    pub turnaround: Vec<Duration>,
}

#[derive(Clone, Copy)]
enum Leg {
    Request,
    Answer,
}

/// Answers slower than this are not taken as the answer to the datagram
/// just delivered (gossip messages are not answered at all).
const TURNAROUND_MAX: Duration = Duration::from_millis(20);

/// Samples kept per list; the proxy runs for minutes at most.
const SAMPLES_MAX: usize = 200_000;

pub struct DelayProxy {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<Stats>>,
}

impl DelayProxy {
    /// Creates the hub's links to `agent_ns` (one namespace per agent,
    /// already created) and starts forwarding with `one_way[j][i]` of delay
    /// from agent j to agent i (and back on the same flow).
    pub fn start(
        hub_ns: &str,
        agent_ns: &[String],
        one_way: Vec<Vec<Duration>>,
    ) -> Result<DelayProxy, String> {
        let n = agent_ns.len();
        if one_way.len() != n || one_way.iter().any(|r| r.len() != n) {
            return Err(format!("delay matrix is not {n} x {n}"));
        }
        for (i, ns) in agent_ns.iter().enumerate() {
            link(hub_ns, ns, i)?;
        }
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let hub = hub_ns.to_string();
        let st = stats.clone();
        let thread = std::thread::spawn(move || {
            if let Err(e) = crate::common::netns::enter(&hub) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("proxy runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                match Forwarder::bind(n, Arc::new(one_way), st).await {
                    Ok(f) => {
                        let _ = ready_tx.send(Ok(()));
                        f.spawn_all();
                        let _ = stop_rx.await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("proxy bind: {e}")));
                    }
                }
            });
            // Dropping the runtime drops every task and closes every socket.
        });
        ready_rx.recv().map_err(|_| "delay proxy thread died".to_string())??;
        Ok(DelayProxy { stop: Some(stop_tx), thread: Some(thread), stats })
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A veth pair: `eth0` = agent_ip(i)/24 in the agent's namespace, `v<i>` =
/// proxy_ip(i)/24 in the hub; the agent routes everything to the hub.
fn link(hub: &str, ns: &str, i: usize) -> Result<(), String> {
    use crate::common::netns::ip;
    let hub_end = format!("v{i}");
    ip(&["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", &hub_end, "netns", hub])?;
    ip(&["-n", ns, "addr", "add", &format!("{}/24", agent_ip(i)), "dev", "eth0"])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", hub, "addr", "add", &format!("{}/24", proxy_ip(i)), "dev", &hub_end])?;
    ip(&["-n", hub, "link", "set", &hub_end, "up"])?;
    ip(&["-n", ns, "route", "add", "default", "via", &proxy_ip(i).to_string()])
}

/// A flow's state: where its initiator sends from (for answers), when
/// the proxy last delivered to the responder (for the turnaround) and how
/// late that delivery was.
#[derive(Default)]
struct Flow {
    reply_to: Option<SocketAddr>,
    delivered: Option<(Instant, Duration)>,
}

struct Forwarder {
    n: usize,
    one_way: Arc<Vec<Vec<Duration>>>,
    stats: Arc<Mutex<Stats>>,
    /// `front[i]`: UDP at proxy_ip(i):8301, what peers of agent i send to.
    front: Vec<Arc<UdpSocket>>,
    /// `flow[j][i]`: UDP socket carrying j's datagrams to agent i (None on the diagonal).
    flow: Vec<Vec<Option<Arc<UdpSocket>>>>,
    flow_state: Arc<Mutex<BTreeMap<(usize, usize), Flow>>>,
    listeners: Vec<(usize, u16, TcpListener)>,
}

impl Forwarder {
    async fn bind(
        n: usize,
        one_way: Arc<Vec<Vec<Duration>>>,
        stats: Arc<Mutex<Stats>>,
    ) -> io::Result<Forwarder> {
        let mut front = Vec::new();
        let mut flow = Vec::new();
        let mut listeners = Vec::new();
        for i in 0..n {
            front.push(Arc::new(UdpSocket::bind((proxy_ip(i), SERF_LAN)).await?));
            for port in [SERF_LAN, SERVER_RPC] {
                listeners.push((i, port, TcpListener::bind((proxy_ip(i), port)).await?));
            }
        }
        for j in 0..n {
            let mut row = Vec::new();
            for i in 0..n {
                if i == j {
                    row.push(None);
                    continue;
                }
                let s = UdpSocket::bind((proxy_ip(i), 0)).await?;
                s.connect((agent_ip(i), SERF_LAN)).await?;
                row.push(Some(Arc::new(s)));
            }
            flow.push(row);
        }
        Ok(Forwarder { n, one_way, stats, front, flow, flow_state: Arc::default(), listeners })
    }

    fn spawn_all(mut self) {
        let listeners = std::mem::take(&mut self.listeners);
        let this = Arc::new(self);
        for i in 0..this.n {
            tokio::spawn(this.clone().front_loop(i));
            for j in 0..this.n {
                if i != j {
                    tokio::spawn(this.clone().flow_loop(j, i));
                }
            }
        }
        for (i, port, l) in listeners {
            tokio::spawn(this.clone().accept_loop(i, port, l));
        }
    }

    /// Datagrams to agent i from its peers: held, then sent on the flow.
    async fn front_loop(self: Arc<Self>, i: usize) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((len, src)) = self.front[i].recv_from(&mut buf).await else { continue };
            let Some(j) = agent_of(src.ip(), self.n).filter(|j| *j != i) else {
                self.stats.lock().unwrap_or_else(|e| e.into_inner()).strangers += 1;
                continue;
            };
            let Some(sock) = self.flow[j][i].clone() else { continue };
            self.flow_state.lock().unwrap_or_else(|e| e.into_inner()).entry((j, i)).or_default().reply_to =
                Some(src);
            *self.stats.lock().unwrap_or_else(|e| e.into_inner()).udp.entry((j, i)).or_default() += 1;
            let due = Instant::now() + self.one_way[j][i];
            let data = buf[..len].to_vec();
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                let sent = Instant::now();
                if sock.send(&data).await.is_ok() {
                    me.flow_state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry((j, i))
                        .or_default()
                        .delivered = Some((sent, sent - due));
                    me.record_late(Leg::Request, sent - due);
                }
            });
        }
    }

    /// What agent i sends back on flow (j, i): held, then delivered to j
    /// from agent i's advertised address.
    async fn flow_loop(self: Arc<Self>, j: usize, i: usize) {
        let Some(sock) = self.flow[j][i].clone() else { return };
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok(len) = sock.recv(&mut buf).await else { continue };
            let now = Instant::now();
            let (reply_to, owed) = {
                let mut fs = self.flow_state.lock().unwrap_or_else(|e| e.into_inner());
                let f = fs.entry((j, i)).or_default();
                let mut owed = Duration::ZERO;
                if let Some((at, late)) = f.delivered.take() {
                    let t = now - at;
                    if t <= TURNAROUND_MAX {
                        // An answer: the time its request ran late comes
                        // off this leg, so the initiator sees the injected
                        // round trip, not that plus this process's waits.
                        owed = late;
                        let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                        if st.turnaround.len() < SAMPLES_MAX {
                            st.turnaround.push(t);
                        }
                    }
                }
                (f.reply_to, owed)
            };
            let Some(dest) = reply_to else { continue };
            let due = now + self.one_way[j][i].saturating_sub(owed);
            let data = buf[..len].to_vec();
            let front = self.front[i].clone();
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                let sent = Instant::now();
                if front.send_to(&data, dest).await.is_ok() {
                    me.record_late(Leg::Answer, sent - due);
                }
            });
        }
    }

    fn record_late(&self, leg: Leg, late: Duration) {
        let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let list = match leg {
            Leg::Request => &mut st.late_request,
            Leg::Answer => &mut st.late_answer,
        };
        if list.len() < SAMPLES_MAX {
            list.push(late);
        }
    }

    /// TCP to agent i on `port` (push-pull, joins, RPC): each chunk held
    /// for the pair's one-way delay, in order, both ways.
    async fn accept_loop(self: Arc<Self>, i: usize, port: u16, listener: TcpListener) {
        loop {
            let Ok((inbound, src)) = listener.accept().await else { continue };
            let Some(j) = agent_of(src.ip(), self.n) else { continue };
            let delay = if i == j { Duration::ZERO } else { self.one_way[j][i] };
            *self.stats.lock().unwrap_or_else(|e| e.into_inner()).tcp.entry((j, i)).or_default() += 1;
            tokio::spawn(async move {
                let Ok(outbound) = connect_from(proxy_ip(i), SocketAddr::from((agent_ip(i), port))).await
                else {
                    return;
                };
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(pump(ir, ow, delay));
                tokio::spawn(pump(or, iw, delay));
            });
        }
    }
}

async fn connect_from(local: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((local, 0)))?;
    tokio::time::timeout(Duration::from_secs(2), s.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Copies `from` to `to`, each chunk leaving `delay` after it arrived
/// (never before the previous one, so the stream stays in order).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
