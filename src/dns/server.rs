//! UDP and TCP listeners that feed the `DnsHandler`.
//!
//! Owns: binding (UDP and TCP on the same port, port 0 allowed), the UDP
//! receive loop (TCP accepts through the shared `crate::accept` loop),
//! bounded concurrency (drop rather than queue under overload), TCP
//! framing and idle timeout, graceful stop, and counting/logging malformed
//! packets. Must not interpret names or build answers.
//!
//! We run our own loops instead of hickory's `Server` so that malformed
//! packets are counted and logged at a bounded rate, concurrency is capped,
//! per-query logging stays off the hot path, and replies go through our
//! encoder (wire.rs). `DnsHandler` still implements hickory's
//! `RequestHandler`, so it can also be hosted on `hickory_server::Server`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::compiled::Scratch;
use super::handler::DnsHandler;
use super::hot::HotKey;
use super::packet;
use super::udp_batch::Batch;
use crate::accept;
use futures::future::BoxFuture;

const LOG_TARGET: &str = "agent.dns";
/// At most one malformed-packet log line per this interval.
const MALFORMED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Attempts at finding a port free for both UDP and TCP when asked for 0.
const PORT_ZERO_ATTEMPTS: usize = 32;

/// Binds UDP and TCP listeners on every address and serves `handler` until
/// `shutdown` is cancelled. Returns the bound UDP addresses (TCP listens on
/// the same port). Either every listener starts or none does.
pub async fn serve_handler(
    handler: DnsHandler,
    addrs: &[SocketAddr],
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Vec<SocketAddr>, String> {
    let mut bound = Vec::with_capacity(addrs.len());
    let sockets = udp_socket_count();
    for addr in addrs {
        let (udp, tcp) = bind_pair(*addr, sockets).await?;
        let local = udp
            .first()
            .ok_or_else(|| format!("Error starting DNS listener on {addr} (udp): no socket"))?
            .local_addr()
            .map_err(|e| format!("Error starting DNS listener on {addr} (udp): {e}"))?;
        bound.push((udp, tcp, local));
    }
    let cfg = handler.config();
    let udp_slots = Arc::new(Semaphore::new(cfg.max_inflight_udp.max(1)));
    let tcp_slots = Arc::new(Semaphore::new(cfg.max_tcp_connections.max(1)));
    let idle = cfg.tcp_idle_timeout;
    let mut out = Vec::with_capacity(bound.len());
    for (udp, tcp, local) in bound {
        tracing::info!(target: LOG_TARGET, address = %local, sockets = udp.len(), "started DNS server (udp and tcp)");
        out.push(local);
        for socket in udp {
            let (h, s, t) = (handler.clone(), shutdown.clone(), tasks.clone());
            tasks.spawn(udp_loop(Arc::new(socket), h, s, t, udp_slots.clone()));
        }
        let (h, s, t) = (handler.clone(), shutdown.clone(), tasks.clone());
        tasks.spawn(tcp_loop(tcp, h, s, t, tcp_slots.clone(), idle));
    }
    Ok(out)
}

/// UDP sockets per address: one per core (at most 8), bound to the same
/// port with SO_REUSEPORT so the kernel spreads clients over them and
/// each receive loop answers on its own core.
fn udp_socket_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// A UDP socket with SO_REUSEPORT set before binding (when `shared`).
fn bind_udp(addr: SocketAddr, shared: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProtocol::UDP))?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// `count` UDP sockets (SO_REUSEPORT when more than one) and a TCP listener
/// on the same port of `addr`.
async fn bind_pair(addr: SocketAddr, count: usize) -> Result<(Vec<UdpSocket>, TcpListener), String> {
    let err = |proto: &str, a: SocketAddr, e: std::io::Error| {
        format!("Error starting DNS listener on {a} ({proto}): {e}")
    };
    let shared = count > 1;
    let more = |first: UdpSocket, at: SocketAddr| -> Result<Vec<UdpSocket>, String> {
        let mut all = vec![first];
        for _ in 1..count {
            all.push(bind_udp(at, shared).map_err(|e| err("udp", at, e))?);
        }
        Ok(all)
    };
    if addr.port() != 0 {
        let udp = bind_udp(addr, shared).map_err(|e| err("udp", addr, e))?;
        let tcp = TcpListener::bind(addr).await.map_err(|e| err("tcp", addr, e))?;
        return Ok((more(udp, addr)?, tcp));
    }
    // Port 0: take the kernel's UDP port, then the same port for TCP.
    let mut last = String::new();
    for _ in 0..PORT_ZERO_ATTEMPTS {
        let udp = bind_udp(addr, shared).map_err(|e| err("udp", addr, e))?;
        let chosen = udp.local_addr().map_err(|e| err("udp", addr, e))?;
        match TcpListener::bind(chosen).await {
            Ok(tcp) => return Ok((more(udp, chosen)?, tcp)),
            Err(e) => last = err("tcp", chosen, e),
        }
    }
    Err(last)
}

/// Packets a receive loop handles before letting the other tasks on its
/// worker run (a loop that always finds queries waiting never awaits).
const UDP_PACKETS_PER_YIELD: usize = 256;

async fn udp_loop(
    socket: Arc<UdpSocket>,
    handler: DnsHandler,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    slots: Arc<Semaphore>,
) {
    // Boxed: the slots' headers and addresses are kilobytes.
    let mut batch = Box::<Batch>::default();
    let mut scratch = Scratch::default();
    let mut since_yield = 0usize;
    loop {
        let ready = tokio::select! {
            r = socket.readable() => r,
            _ = shutdown.cancelled() => break,
        };
        if let Err(e) = ready {
            tracing::debug!(target: LOG_TARGET, error = %e, "udp receive failed");
            tokio::task::yield_now().await;
            continue;
        }
        // Everything queued now, a batch per call, until the queue is empty.
        loop {
            let count = match batch.recv(&socket) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // Readiness stays set after an error: let others run
                    // before trying again, as the one-at-a-time loop did.
                    tracing::debug!(target: LOG_TARGET, error = %e, "udp receive failed");
                    tokio::task::yield_now().await;
                    break;
                }
            };
            for i in 0..count {
                let (packet, src) = batch.datagram(i);
                let Some(src) = src.filter(|s| s.port() != 0) else { continue };
                // Hot answers are written here, without a task or a decode.
                if handler.serve_hot(packet, &mut scratch) {
                    batch.queue_reply(i, &scratch.buf);
                    continue;
                }
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    crate::metrics::incr("consul.dns.dropped", 1);
                    continue;
                };
                let packet = packet.to_vec();
                let (socket, handler) = (socket.clone(), handler.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    if let Some(reply) = handle_packet(&handler, packet, src, Protocol::Udp).await {
                        if let Err(e) = socket.send_to(&reply, src).await {
                            send_failed(Some(src), &e);
                        }
                    }
                });
            }
            batch.flush(&socket, send_failed).await;
            since_yield += count;
            if since_yield >= UDP_PACKETS_PER_YIELD {
                since_yield = 0;
                if shutdown.is_cancelled() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }
    tracing::info!(target: LOG_TARGET, hot_answers = handler.hot_hits(), "stopped DNS server (udp)");
}

fn send_failed(client: Option<SocketAddr>, e: &std::io::Error) {
    match client {
        Some(client) => tracing::debug!(target: LOG_TARGET, %client, error = %e, "failed to send udp reply"),
        None => tracing::debug!(target: LOG_TARGET, error = %e, "failed to send udp reply"),
    }
}

async fn tcp_loop(
    listener: TcpListener,
    handler: DnsHandler,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    slots: Arc<Semaphore>,
    idle: Duration,
) {
    let conns = Arc::new(TcpConns { handler, shutdown: shutdown.clone(), idle });
    let limits = accept::Limits { total: Some(slots), ..accept::Limits::default() };
    accept::run(listener, conns, limits, shutdown, tasks).await;
    tracing::info!(target: LOG_TARGET, "stopped DNS server (tcp)");
}

/// The DNS-over-TCP side of the shared accept loop.
struct TcpConns {
    handler: DnsHandler,
    shutdown: CancellationToken,
    idle: Duration,
}

impl accept::ConnHandler for TcpConns {
    async fn serve(&self, conn: accept::Conn) {
        tcp_connection(conn.stream, conn.peer, self.handler.clone(), self.shutdown.clone(), self.idle).await;
    }

    fn refused(&self, _: TcpStream, _: SocketAddr, _: accept::Refused) -> Option<BoxFuture<'static, ()>> {
        // Dropped rather than queued under overload, like UDP queries.
        crate::metrics::incr("consul.dns.dropped", 1);
        None
    }

    fn accept_failed(&self, error: &std::io::Error, first: bool) {
        if first {
            tracing::warn!(target: LOG_TARGET, error = %error, "tcp accept failed");
        } else {
            tracing::debug!(target: LOG_TARGET, error = %error, "tcp accept failed");
        }
    }
}

/// Serves length-prefixed queries on one connection, in order, until the
/// client closes, stays idle past `idle`, or the server stops.
async fn tcp_connection(
    mut stream: accept::Stream,
    src: SocketAddr,
    handler: DnsHandler,
    shutdown: CancellationToken,
    idle: Duration,
) {
    loop {
        let mut len_buf = [0u8; 2];
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_exact(&mut len_buf)) => r,
            _ = shutdown.cancelled() => return,
        };
        if !matches!(read, Ok(Ok(_))) {
            return; // closed, idle or reset
        }
        let len = usize::from(u16::from_be_bytes(len_buf));
        let mut packet = vec![0u8; len];
        if len == 0 || !matches!(tokio::time::timeout(idle, stream.read_exact(&mut packet)).await, Ok(Ok(_)))
        {
            malformed(src, "truncated tcp message");
            return;
        }
        let Some(reply) = handle_packet(&handler, packet, src, Protocol::Tcp).await else { continue };
        let Ok(reply_len) = u16::try_from(reply.len()) else { return };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(tokio::time::timeout(idle, stream.write_all(&framed)).await, Ok(Ok(_))) {
            return;
        }
    }
}

/// Decodes one packet and returns the encoded reply, if any. Packets too
/// short for a header and responses (reflection) are dropped; undecodable
/// queries get FORMERR. Never panics on any input.
pub async fn handle_packet(
    handler: &DnsHandler,
    packet: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let header = match Header::read(&mut BinDecoder::new(&packet)) {
        Ok(h) => h,
        Err(_) => {
            malformed(src, "shorter than a DNS header");
            return None;
        }
    };
    if header.metadata.message_type == MessageType::Response {
        malformed(src, "a response sent as a query");
        return None;
    }
    // A plain UDP query may leave its answer pre-encoded for the next ones.
    let hot = if protocol == Protocol::Udp { packet::parse(&packet).map(|v| HotKey::of(&v)) } else { None };
    let request = match Request::from_bytes(packet, src, protocol) {
        Ok(r) => r,
        Err(e) => {
            malformed(src, &e.to_string());
            return Some(form_error(&header.metadata));
        }
    };
    Some(handler.respond_bytes_with(&request, hot).await)
}

/// A bare FORMERR header answering an undecodable query.
fn form_error(request: &Metadata) -> Vec<u8> {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::FormErr;
    let mut buf = Vec::with_capacity(12);
    let mut enc = BinEncoder::new(&mut buf);
    // A 12-byte header always encodes; on the impossible error send nothing.
    if (Header { metadata, counts: HeaderCounts::default() }).emit(&mut enc).is_err() {
        buf.clear();
    }
    buf
}

static MALFORMED_SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static MALFORMED_LAST_LOG: Mutex<Option<Instant>> = Mutex::new(None);

/// Counts a malformed packet and logs it, at most once per interval (with
/// how many were not logged since).
fn malformed(src: SocketAddr, reason: &str) {
    crate::metrics::incr("consul.dns.malformed", 1);
    let now = Instant::now();
    let mut last = MALFORMED_LAST_LOG.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|t| now.duration_since(t) < MALFORMED_LOG_INTERVAL) {
        MALFORMED_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *last = Some(now);
    drop(last);
    let suppressed = MALFORMED_SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(target: LOG_TARGET, client = %src, reason, suppressed, "failed to decode DNS packet");
}
