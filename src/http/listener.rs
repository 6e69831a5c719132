//! Accepts HTTP API connections and bounds what one client can hold:
//! connections per client IP (`limits.http_max_conns_per_client`, refused
//! beyond it with a 429 as Consul does), time to send a request's headers
//! (`limits.http_read_header_timeout`, so a client dribbling its headers
//! cannot pin a connection forever; it also closes keep-alive connections
//! idle that long) and the size of a request head (431 beyond it).
//!
//! The HTTPS listener is the same, with the TLS handshake done by the
//! shared loop; a connection that negotiated `h2` (ALPN) is served as
//! HTTP/2, so many blocking queries share one connection.
//!
//! Owns: each connection's hyper settings and the 429 answer; accepting
//! and counting connections, and TLS handshakes, are the shared loop's
//! (`crate::accept`). Must not know about routes or handlers: it serves
//! whatever `Router` it is given.
//! Request bodies are bounded by each endpoint (see `body::read_limited`).

use crate::accept;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
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

/// Serves `app` on `listener` until `shutdown` fires, then lets open
/// requests finish. Runs on `tasks`. With `tls`, every connection must
/// complete a TLS handshake first (HTTPS).
pub fn spawn(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<accept::TlsAccept>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    let conns = Arc::new(HttpConns { app, limits, tls, shutdown: shutdown.clone() });
    let admit = accept::Limits { per_client: limits.max_per_client, ..accept::Limits::default() };
    tasks.spawn(accept::run(listener, conns, admit, shutdown, tasks.clone()));
}

/// The HTTP side of the shared accept loop.
struct HttpConns {
    app: Router,
    limits: ConnLimits,
    tls: Option<accept::TlsAccept>,
    shutdown: CancellationToken,
}

impl accept::ConnHandler for HttpConns {
    async fn serve(&self, conn: accept::Conn) {
        serve_conn(conn, self.app.clone(), self.limits, self.shutdown.clone()).await;
    }

    fn tls(&self) -> Option<&accept::TlsAccept> {
        self.tls.as_ref()
    }

    fn open_failed(&self, peer: SocketAddr, error: &accept::OpenError) {
        // Go's HTTP server logs every failed handshake; so do we, at
        // warning, since a wrong or expired certificate shows up here.
        match error {
            accept::OpenError::ClosedEarly => {
                tracing::debug!(target: TARGET, client = %peer, "HTTPS client closed before the TLS handshake")
            }
            accept::OpenError::NoCertificate => tracing::warn!(
                target: TARGET,
                client = %peer,
                "TLS handshake refused: the HTTPS port has no certificate; set tls.https.cert_file and key_file (or tls.defaults.*)"
            ),
            e => tracing::warn!(target: TARGET, client = %peer, error = %e, "http: TLS handshake error"),
        }
    }

    fn refused(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        _: accept::Refused,
    ) -> Option<BoxFuture<'static, ()>> {
        crate::metrics::incr("consul.http.conns.rejected", 1);
        tracing::warn!(
            target: TARGET,
            client = %peer.ip(),
            limit = self.limits.max_per_client,
            "too many HTTP connections from one client; refusing (limits.http_max_conns_per_client)"
        );
        Some(Box::pin(refuse(stream, self.limits.max_per_client)))
    }

    fn accept_failed(&self, error: &std::io::Error, first: bool) {
        if first {
            tracing::warn!(target: TARGET, error = %error, "failed to accept HTTP connection");
        } else {
            tracing::debug!(target: TARGET, error = %error, "failed to accept HTTP connection");
        }
    }
}

async fn serve_conn(conn: accept::Conn, app: Router, limits: ConnLimits, shutdown: CancellationToken) {
    let accept::Conn { stream, peer, tls } = conn;
    let h2 = tls.as_ref().and_then(|t| t.alpn.as_deref()) == Some(b"h2".as_slice());
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            if !may_block(&req) {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app;
                return app.call(req).await;
            }
            // A read that may block: while it waits, this connection holds
            // the request's head and a ticket, not the handler and
            // middleware futures (`serve_parking`); each run gets a copy.
            let (mut parts, body) = req.into_parts();
            drop(body);
            parts.extensions.insert(ConnectInfo(peer));
            crate::agent::serve_parking(|| {
                let req = axum::http::Request::from_parts(parts.clone(), Body::empty());
                let mut app = app.clone();
                async move { app.call(req).await }
            })
            .await
        }
    });
    let result = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_bytes as u32)
            // Many blocking queries on one connection: Go's default limit.
            .max_concurrent_streams(1000);
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.read_header_timeout)
            // hyper refuses a smaller buffer than 8 KiB.
            .max_buf_size(limits.max_header_bytes.max(8192))
            // Go writes HTTP/1 header names in canonical form
            // (`X-Consul-Index`, `X-Consul-Knownleader`), and scripts grep
            // for exactly that; hyper's title case is the same spelling.
            // HTTP/2 names stay lower-case, as the protocol requires.
            .title_case_headers(true);
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
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

/// A bodiless GET with `index=` in its query: a blocking query, if its
/// handler makes it one (one that does not is served as usual, once).
fn may_block(req: &hyper::Request<Incoming>) -> bool {
    use hyper::body::Body as _;
    req.method() == hyper::Method::GET
        && req.body().is_end_stream()
        && req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("index=")))
}
