//! Accepts HTTP API connections and bounds what one client can hold:
//! connections per client IP (`limits.http_max_conns_per_client`, refused
//! beyond it with a 429 as Consul does), time to send a request's headers
//! (`limits.http_read_header_timeout`, so a client dribbling its headers
//! cannot pin a connection forever; it also closes keep-alive connections
//! idle that long) and the size of a request head (431 beyond it).
//!
//! Owns: the accept loop and each connection's hyper settings. Must not
//! know about routes or handlers: it serves whatever `Router` it is given.
//! Request bodies are bounded by each endpoint (see `body::read_limited`).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The largest request head (request line plus headers) we read. Go's
/// default is 1 MiB; real Consul clients send well under 8 KiB, and every
/// connection may hold this much, so we keep it smaller.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

const TARGET: &str = "agent.http";

/// What one connection and one client may use.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections per client IP; 0 means unlimited (as in Consul).
    pub max_per_client: usize,
    pub read_header_timeout: Duration,
    pub max_header_bytes: usize,
}

impl ConnLimits {
    pub fn from_config(l: &crate::config::runtime::Limits) -> Self {
        ConnLimits {
            max_per_client: l.http_max_conns_per_client,
            read_header_timeout: l.http_read_header_timeout,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One admitted connection; releases its slot when dropped.
struct Slot {
    counts: Counts,
    ip: IpAddr,
}

impl Slot {
    fn admit(counts: &Counts, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { counts: counts.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires, then lets open
/// requests finish. Runs on `tasks`.
pub fn spawn(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    tasks.spawn(async move {
        let counts: Counts = Arc::default();
        let conns = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => r,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning on the error.
                    tracing::warn!(target: TARGET, error = %e, "failed to accept HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = Slot::admit(&counts, peer.ip(), limits.max_per_client) else {
                crate::metrics::incr("consul.http.conns.rejected", 1);
                tracing::warn!(
                    target: TARGET,
                    client = %peer.ip(),
                    limit = limits.max_per_client,
                    "too many HTTP connections from one client; refusing (limits.http_max_conns_per_client)"
                );
                conns.spawn(refuse(stream, limits.max_per_client));
                continue;
            };
            let app = app.clone();
            let token = shutdown.clone();
            conns.spawn(async move {
                serve_conn(stream, peer, app, limits, token).await;
                drop(slot);
            });
        }
        conns.close();
        conns.wait().await;
    });
}

async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout)
        // hyper refuses a smaller buffer than 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts, oversized heads and resets end here; hyper has
        // already answered what deserved an answer (408/431).
        tracing::debug!(target: TARGET, client = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Answers a connection over the per-client limit with a 429 and closes
/// it, reading what the client sent first so the close does not turn into
/// a reset that would lose the answer.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = format!(
        "Your IP is issuing too many concurrent connections, please rate limit your calls (limits.http_max_conns_per_client = {limit})\n"
    );
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(Duration::from_secs(1), write).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut total = 0usize;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}
