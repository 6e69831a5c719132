//! The one TCP accept loop every listener runs: the HTTP API
//! (`http::listener`), the server RPC port (`rpc::server`), DNS over TCP
//! (`dns::server`) and gossip streams (`gossip::runtime`).
//!
//! Owns: the listener, admission (connections per client IP, counted by
//! an RAII slot that the connection's task holds until it ends, however
//! it ends, panics included; and an optional semaphore of connections in
//! all), stopping on the shutdown token, backing off when `accept` fails
//! (one warning per run of failures, the rest at debug) and spawning each
//! admitted connection's handler on the caller's `TaskTracker`. Must not
//! know any protocol: a surface passes a `ConnHandler` that serves one
//! connection, says what to do with a refused one and logs in its own
//! words and target (tracing targets are static, so the loop cannot log
//! for a surface).
//!
//! Handlers end their connections on shutdown themselves (HTTP drains
//! gracefully, gossip drops the exchange), so the loop only stops
//! accepting; waiting for the connections is the tracker's job.
//!
//! # TLS
//! Handlers get a `Conn` whose stream is a `Stream` (plain or TLS), never
//! the accepted socket itself, and `open` is the one place a socket
//! becomes a `Conn`. It runs in the connection's own task, holding its
//! slot, under the handshake deadline, so a slow or garbage-sending client
//! delays no other. A surface that speaks TLS returns a `TlsAccept` from
//! `ConnHandler::tls`: either TLS only (HTTPS) or TLS when the first byte
//! is a TLS handshake record and plain text otherwise, if the surface
//! still allows it (the server port during a rolling upgrade). The
//! `rustls::ServerConfig` is asked for per connection, so a reloaded
//! certificate applies to new connections while open ones keep theirs.
//! `Conn` carries the negotiated ALPN protocol (HTTP picks h2 or HTTP/1.1
//! from it) and the client's verified certificate chain. Refused
//! connections are answered (HTTP's 429) on the plain socket, before any
//! handshake, so a refusal stays cheap.

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What handlers read and write: the socket, or TLS over it (see "TLS").
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// An admitted connection, as its handler gets it.
pub struct Conn {
    pub stream: Stream,
    pub peer: SocketAddr,
    /// What the TLS handshake settled, for a TLS connection.
    pub tls: Option<TlsInfo>,
}

/// The outcome of a connection's TLS handshake.
#[derive(Clone, Debug, Default)]
pub struct TlsInfo {
    /// The application protocol both sides agreed on (ALPN), if any.
    pub alpn: Option<Vec<u8>>,
    /// The client's certificate chain, end entity first; verified against
    /// the CA when the server config asks for client certificates.
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

/// Where a surface's TLS server settings come from, asked once per
/// connection (so a reload applies to new connections only).
pub trait TlsSource: Send + Sync + 'static {
    /// The settings for a new handshake; `None` when no certificate is
    /// configured (the handshake is then refused with `OpenError::NoCertificate`).
    fn server_config(&self) -> Option<Arc<rustls::ServerConfig>>;

    /// Whether a connection that does not start with a TLS handshake is
    /// served in plain text (only asked in `TlsMode::Sniff`).
    fn plain_allowed(&self) -> bool {
        false
    }
}

/// How a listener uses TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Every connection must be TLS (HTTPS).
    Required,
    /// TLS when the first byte is a TLS handshake record, plain text
    /// otherwise if `TlsSource::plain_allowed` (the server port).
    Sniff,
}

/// A surface's TLS: the settings source, the mode and how long a client
/// may take to finish the handshake.
#[derive(Clone)]
pub struct TlsAccept {
    pub source: Arc<dyn TlsSource>,
    pub mode: TlsMode,
    pub handshake_timeout: Duration,
}

/// Why an admitted connection was closed before its handler saw it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("TLS handshake timed out")]
    Timeout,
    #[error("connection closed before the TLS handshake")]
    ClosedEarly,
    #[error("TLS handshake refused: no certificate is configured for this listener")]
    NoCertificate,
    #[error("plain-text connection refused: this listener requires TLS")]
    PlainRefused,
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its client IP already holds `Limits::per_client` connections.
    PerClient,
    /// Every slot of `Limits::total` is held.
    Total,
}

/// What a listener admits.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Open connections per client IP; 0 means unlimited.
    pub per_client: usize,
    /// Open connections in all, when set; may be shared by several
    /// listeners (DNS shares one across its addresses).
    pub total: Option<Arc<Semaphore>>,
}

/// The pause after a failed accept. Failures are mostly out of file
/// descriptors, which retrying at once would only spin on.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// One surface's part of the loop. Its methods must not panic on network
/// input; a panic in `serve` still only ends that connection.
pub trait ConnHandler: Send + Sync + 'static {
    /// Serves one admitted connection to its end. Runs in its own task on
    /// the loop's tracker; the connection's slot is released when it returns.
    fn serve(&self, conn: Conn) -> impl Future<Output = ()> + Send;

    /// Called in the loop for a connection that was not admitted: counts and
    /// logs it, and returns what to run for it (on the tracker, holding no
    /// slot), or `None` to close it now.
    fn refused(&self, stream: TcpStream, peer: SocketAddr, why: Refused) -> Option<BoxFuture<'static, ()>>;

    /// Logs a failed accept. `first` is true for the first failure after a
    /// successful accept (or at start): log that one as a warning and the
    /// repeats at debug, so a long run of failures is one line.
    fn accept_failed(&self, error: &io::Error, first: bool);

    /// The listener's TLS, if it speaks TLS.
    fn tls(&self) -> Option<&TlsAccept> {
        None
    }

    /// Logs a connection closed before it was served: a failed or refused
    /// TLS handshake.
    fn open_failed(&self, _peer: SocketAddr, _error: &OpenError) {}
}

/// Accepts on `listener` until `shutdown` fires, admitting by `limits` and
/// serving each admitted connection with `handler` on `tasks`. Returns
/// when it stops accepting (the listener is closed then); connections
/// still open keep running on `tasks`.
pub async fn run<H: ConnHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let clients = Clients::default();
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                handler.accept_failed(&e, !failing);
                failing = true;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ERROR_BACKOFF) => continue,
                }
            }
        };
        failing = false;
        match Slot::admit(&clients, &limits, peer.ip()) {
            Ok(slot) => {
                let handler = handler.clone();
                tasks.spawn(async move {
                    let _slot = slot;
                    match open(stream, peer, handler.tls()).await {
                        Ok(conn) => handler.serve(conn).await,
                        Err(e) => handler.open_failed(peer, &e),
                    }
                });
            }
            Err(why) => {
                if let Some(answer) = handler.refused(stream, peer, why) {
                    tasks.spawn(answer);
                }
            }
        }
    }
}

/// Turns an accepted socket into what handlers serve: the one place a TLS
/// handshake happens (see "TLS").
async fn open(stream: TcpStream, peer: SocketAddr, tls: Option<&TlsAccept>) -> Result<Conn, OpenError> {
    let Some(tls) = tls else { return Ok(Conn { stream: Stream::Plain(stream), peer, tls: None }) };
    let deadline = tokio::time::Instant::now() + tls.handshake_timeout;
    if tls.mode == TlsMode::Sniff {
        let mut first = [0u8; 1];
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .map_err(|_| OpenError::Timeout)?
            .map_err(OpenError::Io)?;
        if n == 0 {
            return Err(OpenError::ClosedEarly);
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            return if tls.source.plain_allowed() {
                Ok(Conn { stream: Stream::Plain(stream), peer, tls: None })
            } else {
                Err(OpenError::PlainRefused)
            };
        }
    }
    let config = tls.source.server_config().ok_or(OpenError::NoCertificate)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream = tokio::time::timeout_at(deadline, acceptor.accept(stream))
        .await
        .map_err(|_| OpenError::Timeout)?
        .map_err(OpenError::Handshake)?;
    let (_, session) = stream.get_ref();
    let info = TlsInfo {
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        peer_certificates: session.peer_certificates().map(|c| c.to_vec()).unwrap_or_default(),
    };
    Ok(Conn { stream: Stream::Tls(Box::new(stream)), peer, tls: Some(info) })
}

/// Open connections per client IP; an IP leaves the map at zero so the map
/// stays as small as the set of connected clients.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One admitted connection's share of the limits, given back when dropped.
struct Slot {
    client: Option<(Clients, IpAddr)>,
    _total: Option<OwnedSemaphorePermit>,
}

impl Slot {
    fn admit(clients: &Clients, limits: &Limits, ip: IpAddr) -> Result<Slot, Refused> {
        let mut slot = Slot { client: None, _total: None };
        if limits.per_client > 0 {
            let mut counts = clients.0.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(ip).or_insert(0);
            if *n >= limits.per_client {
                return Err(Refused::PerClient);
            }
            *n += 1;
            slot.client = Some((clients.clone(), ip));
        }
        if let Some(total) = &limits.total {
            // On refusal `slot` drops here and gives back the client count.
            slot._total = Some(total.clone().try_acquire_owned().map_err(|_| Refused::Total)?);
        }
        Ok(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((clients, ip)) = self.client.take() else { return };
        let mut counts = clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;
    use tokio::sync::mpsc;

    /// Reads one command byte, then: `p` panics, `e` ends at once (as a
    /// handler does on a protocol error), anything else is answered `ok`
    /// and held until the client closes. Reports refusals.
    struct Probe {
        refused: mpsc::UnboundedSender<Refused>,
    }

    impl ConnHandler for Probe {
        async fn serve(&self, mut conn: Conn) {
            let mut cmd = [0u8; 1];
            if conn.stream.read_exact(&mut cmd).await.is_err() {
                return;
            }
            match cmd[0] {
                b'p' => panic!("probe handler panics on purpose"),
                b'e' => {}
                _ => {
                    let _ = conn.stream.write_all(b"ok").await;
                    let mut rest = Vec::new();
                    let _ = conn.stream.read_to_end(&mut rest).await;
                }
            }
        }

        fn refused(&self, _: TcpStream, _: SocketAddr, why: Refused) -> Option<BoxFuture<'static, ()>> {
            let _ = self.refused.send(why);
            None
        }

        fn accept_failed(&self, _: &io::Error, _: bool) {}
    }

    struct Server {
        addr: SocketAddr,
        refused: mpsc::UnboundedReceiver<Refused>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        accepting: tokio::task::JoinHandle<()>,
    }

    async fn start(limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, refused) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let accepting = tokio::spawn(run(
            listener,
            Arc::new(Probe { refused: tx }),
            limits,
            shutdown.clone(),
            tasks.clone(),
        ));
        Server { addr, refused, shutdown, tasks, accepting }
    }

    async fn connect(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(from.into(), 0)).unwrap();
        s.connect(to).await.unwrap()
    }

    /// Sends `cmd` and returns what comes back before the server closes or
    /// answers `ok`.
    async fn exchange(s: &mut TcpStream, cmd: u8) -> Vec<u8> {
        let _ = s.write_all(&[cmd]).await;
        let mut got = vec![0u8; 2];
        match s.read_exact(&mut got).await {
            Ok(_) => got,
            Err(_) => Vec::new(),
        }
    }

    /// A held, served connection from `from`.
    async fn served(server: &Server, from: Ipv4Addr) -> TcpStream {
        let mut s = connect(from, server.addr).await;
        assert_eq!(exchange(&mut s, b'h').await, b"ok");
        s
    }

    /// Connects from `from` until a connection is admitted rather than
    /// refused: a slot is given back just after its connection closes, so
    /// the first attempts may still find it held. Each refusal is an
    /// accept round trip, not a busy wait.
    async fn served_eventually(server: &mut Server, from: Ipv4Addr, cmd: u8) -> (TcpStream, Vec<u8>) {
        let attempts = async {
            loop {
                let mut s = connect(from, server.addr).await;
                let got = exchange(&mut s, cmd).await;
                if server.refused.try_recv().is_err() {
                    return (s, got);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), attempts).await.expect("never admitted")
    }

    const ME: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

    #[tokio::test]
    async fn cap_is_per_client_ip_and_released_when_a_connection_ends() {
        let mut server = start(Limits { per_client: 2, ..Limits::default() }).await;
        let first = served(&server, ME).await;
        let _second = served(&server, ME).await;
        // The third from the same IP is closed unanswered.
        let mut third = connect(ME, server.addr).await;
        assert!(exchange(&mut third, b'h').await.is_empty());
        assert_eq!(server.refused.recv().await, Some(Refused::PerClient));
        // Another IP has its own count.
        let _other = served(&server, OTHER).await;
        // Closing one gives its slot back.
        drop(first);
        let (_s, got) = served_eventually(&mut server, ME, b'h').await;
        assert_eq!(got, b"ok");
    }

    #[tokio::test]
    async fn total_cap_counts_every_client() {
        let mut server =
            start(Limits { total: Some(Arc::new(Semaphore::new(1))), ..Limits::default() }).await;
        let held = served(&server, ME).await;
        let mut other = connect(OTHER, server.addr).await;
        assert!(exchange(&mut other, b'h').await.is_empty());
        assert_eq!(server.refused.recv().await, Some(Refused::Total));
        drop(held);
        let (_s, got) = served_eventually(&mut server, OTHER, b'h').await;
        assert_eq!(got, b"ok");
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_leaves_connections_to_the_tracker() {
        let server = start(Limits::default()).await;
        let held = served(&server, ME).await;
        server.shutdown.cancel();
        server.accepting.await.unwrap();
        // The listener is closed with the loop.
        assert!(TcpStream::connect(server.addr).await.is_err());
        // The open connection still runs until its client closes it.
        server.tasks.close();
        assert_eq!(server.tasks.len(), 1);
        drop(held);
        server.tasks.wait().await;
    }

    #[tokio::test]
    async fn a_panicking_or_failing_handler_does_not_stop_the_loop() {
        let mut server = start(Limits { per_client: 1, ..Limits::default() }).await;
        let mut s = connect(ME, server.addr).await;
        assert!(exchange(&mut s, b'p').await.is_empty(), "the panicking handler answered");
        // The panicked connection's slot comes back (the cap is one), and
        // so does the one of a handler that ended early.
        let (_s, got) = served_eventually(&mut server, ME, b'e').await;
        assert!(got.is_empty());
        let (_s, got) = served_eventually(&mut server, ME, b'h').await;
        assert_eq!(got, b"ok");
        assert!(!server.accepting.is_finished());
    }
}
