//! The server RPC listener: accepts connections (through the shared loop,
//! `crate::accept`, which caps them per client IP), checks the preamble,
//! reads frames, runs each request concurrently through the `Handler`, and
//! writes responses (in any order; the request id pairs them). A bad
//! connection is closed and logged; it never affects others.
//!
//! TLS: a connection that opens with a TLS handshake is served over TLS
//! (the shared loop does the handshake, verifying the client's certificate
//! under `verify_incoming`); one that opens in plain text is served only
//! while `verify_incoming` is off (a rolling upgrade). Under
//! `verify_server_hostname`, server-only methods (Raft, forwarded writes)
//! are answered only to a peer whose certificate names this datacenter's
//! servers, so a client's certificate cannot make a client act as a server.

use super::frame::{self, FrameError, Kind};
use super::message::RpcError;
use super::method::{self, WireCall, WireReply};
use crate::accept;
use crate::tls::Tls;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Serves decoded calls (the server's wire dispatcher).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, call: WireCall) -> BoxFut<'_, WireReply>;
}

/// Requests in flight per connection.
const MAX_IN_FLIGHT: usize = 256;

/// Binds the server port and serves it in plain text until `shutdown`.
/// Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    handler: Arc<dyn Handler>,
    max_conns_per_client: usize,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, String> {
    serve_with(addr, handler, max_conns_per_client, None, shutdown, tasks).await
}

/// As `serve`, with the agent's TLS (see the module doc); `handshake_timeout`
/// bounds a client's TLS handshake (`limits.rpc_handshake_timeout`).
pub(crate) async fn serve_tls(
    addr: SocketAddr,
    handler: Arc<dyn Handler>,
    max_conns_per_client: usize,
    tls: Tls,
    handshake_timeout: std::time::Duration,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, String> {
    serve_with(addr, handler, max_conns_per_client, Some((tls, handshake_timeout)), shutdown, tasks).await
}

async fn serve_with(
    addr: SocketAddr,
    handler: Arc<dyn Handler>,
    max_conns_per_client: usize,
    tls: Option<(Tls, std::time::Duration)>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).await.map_err(|e| format!("Error starting RPC listener on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(target: "agent.server.rpc", address = %local, "RPC server listening");
    let accept_tls = tls.as_ref().map(|(t, timeout)| t.rpc_accept(*timeout));
    let tls = tls.map(|(t, _)| t);
    let conns =
        Arc::new(RpcConns { handler, max_conns_per_client, tls, accept_tls, shutdown: shutdown.clone() });
    let limits = accept::Limits { per_client: max_conns_per_client, ..accept::Limits::default() };
    tasks.spawn(accept::run(listener, conns, limits, shutdown, tasks.clone()));
    Ok(local)
}

/// The RPC side of the shared accept loop.
struct RpcConns {
    handler: Arc<dyn Handler>,
    max_conns_per_client: usize,
    tls: Option<Tls>,
    accept_tls: Option<accept::TlsAccept>,
    shutdown: CancellationToken,
}

/// Whether a connection's peer proved it is a server of this datacenter,
/// when that is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerRole {
    /// No check configured: every peer may call every method.
    Unchecked,
    Server,
    NotServer,
}

impl accept::ConnHandler for RpcConns {
    async fn serve(&self, conn: accept::Conn) {
        let role = match self.tls.as_ref().and_then(Tls::required_server_identity) {
            None => PeerRole::Unchecked,
            Some(name) => {
                let leaf = conn.tls.as_ref().and_then(|t| t.peer_certificates.first());
                if leaf.is_some_and(|c| crate::tls::identity::names(c, &name)) {
                    PeerRole::Server
                } else {
                    PeerRole::NotServer
                }
            }
        };
        let peer = conn.peer;
        if let Err(e) = serve_conn(conn.stream, peer, role, self.handler.clone(), self.shutdown.clone()).await
        {
            if !matches!(e, FrameError::Closed) {
                tracing::debug!(target: "agent.server.rpc", peer = %peer, error = %e, "RPC connection closed");
            }
        }
    }

    fn tls(&self) -> Option<&accept::TlsAccept> {
        self.accept_tls.as_ref()
    }

    fn open_failed(&self, peer: SocketAddr, error: &accept::OpenError) {
        match error {
            accept::OpenError::ClosedEarly => {}
            accept::OpenError::PlainRefused => tracing::warn!(
                target: "agent.server.rpc",
                peer = %peer,
                "plain-text RPC connection refused: tls.internal_rpc.verify_incoming requires TLS with a client certificate"
            ),
            accept::OpenError::NoCertificate => tracing::warn!(
                target: "agent.server.rpc",
                peer = %peer,
                "TLS RPC connection refused: this server has no certificate; set tls.internal_rpc.cert_file and key_file (or tls.defaults.*)"
            ),
            e => {
                tracing::warn!(target: "agent.server.rpc", peer = %peer, error = %e, "failed TLS handshake on the RPC port")
            }
        }
    }

    fn refused(&self, _: TcpStream, peer: SocketAddr, _: accept::Refused) -> Option<BoxFuture<'static, ()>> {
        tracing::warn!(target: "agent.server.rpc", peer = %peer, limit = self.max_conns_per_client, "too many RPC connections from one client; closing");
        None
    }

    fn accept_failed(&self, error: &std::io::Error, first: bool) {
        if first {
            tracing::warn!(target: "agent.server.rpc", error = %error, "accept failed");
        } else {
            tracing::debug!(target: "agent.server.rpc", error = %error, "accept failed");
        }
    }
}

async fn serve_conn(
    stream: accept::Stream,
    peer: SocketAddr,
    role: PeerRole,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = tokio::io::BufReader::with_capacity(frame::READ_BUFFER, rd);
    tokio::select! {
        r = frame::read_preamble(&mut rd) => r?,
        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => return Err(FrameError::BadPreamble),
    }
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Requests in flight, so shutdown can end them: a blocking query may
    // wait minutes, and the agent must not wait for it before exiting.
    let mut inflight = JoinSet::new();
    let result = loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            f = frame::read_frame(&mut rd) => f,
        };
        // Reap the requests that have finished, so the set stays small.
        while inflight.try_join_next().is_some() {}
        let frame = match frame {
            Ok(f) => f,
            Err(e) => break Err(e),
        };
        if frame.kind != Kind::Request {
            break Err(FrameError::BadKind(frame.kind as u8));
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = shutdown.cancelled() => break Ok(()),
        };
        let Ok(permit) = permit else { break Ok(()) };
        let handler = handler.clone();
        let tx = tx.clone();
        inflight.spawn(async move {
            let reply = match postcard::from_bytes::<WireCall>(&frame.payload) {
                Ok(call)
                    if role == PeerRole::NotServer
                        && (method::is_server_only(call.method) || call.ctx.leader_only) =>
                {
                    tracing::warn!(
                        target: "agent.server.rpc",
                        peer = %peer,
                        method = method::name_of(call.method).unwrap_or("?"),
                        "refused a server-only RPC from a peer without this datacenter's server certificate (verify_server_hostname)"
                    );
                    Err(RpcError::PermissionDenied(
                        "Permission denied: this RPC is for servers only and the peer's certificate does not name a server of this datacenter".into(),
                    ))
                }
                Ok(call) => handler.handle(call).await,
                Err(e) => Err(RpcError::BadRequest(format!("malformed RPC request: {e}"))),
            };
            let payload = postcard::to_allocvec(&reply)
                .or_else(|e| {
                    postcard::to_allocvec::<WireReply>(&Err(RpcError::Internal(format!(
                        "encoding response: {e}"
                    ))))
                })
                .unwrap_or_default();
            match frame::encode(frame.id, Kind::Response, &payload) {
                Ok(bytes) => {
                    let _ = tx.send(bytes).await;
                }
                Err(e) => {
                    let err: WireReply = Err(RpcError::Internal(e.to_string()));
                    if let Ok(p) = postcard::to_allocvec(&err) {
                        if let Ok(b) = frame::encode(frame.id, Kind::Response, &p) {
                            let _ = tx.send(b).await;
                        }
                    }
                }
            }
            drop(permit);
        });
    };
    drop(tx);
    // Let the requests in flight answer, unless the agent is stopping:
    // then they end now (the caller sees the connection close and retries
    // elsewhere), as do those still running when it starts stopping.
    tokio::select! {
        _ = async { while inflight.join_next().await.is_some() {} } => {}
        _ = shutdown.cancelled() => {}
    }
    drop(inflight);
    if shutdown.is_cancelled() {
        writer.abort();
    }
    let _ = writer.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::method::Ping;
    use std::time::Duration;

    /// Never answers: stands for a blocking query that waits minutes.
    struct Stuck(Arc<tokio::sync::Notify>);

    impl Handler for Stuck {
        fn handle(&self, _call: WireCall) -> BoxFut<'_, WireReply> {
            Box::pin(async move {
                self.0.notify_one();
                std::future::pending().await
            })
        }
    }

    /// Shutdown ends a connection with a request in flight at once, instead
    /// of waiting for its answer (which held `consul agent` 5 s on SIGTERM).
    #[tokio::test]
    async fn shutdown_ends_requests_in_flight() {
        let entered = Arc::new(tokio::sync::Notify::new());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Stuck(entered.clone())),
            10,
            shutdown.clone(),
            &tasks,
        )
        .await
        .unwrap();
        let client = crate::rpc::client::RpcClient::new();
        let call = tokio::spawn(async move {
            client.call(addr, crate::rpc::RequestContext::default(), &Ping {}, Duration::from_secs(60)).await
        });
        tokio::time::timeout(Duration::from_secs(5), entered.notified()).await.expect("request arrived");
        shutdown.cancel();
        tasks.close();
        let stopped = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
        assert!(stopped.is_ok(), "the connection kept the agent waiting for its request");
        let answer =
            tokio::time::timeout(Duration::from_secs(2), call).await.expect("the caller saw the close");
        assert!(answer.expect("join").is_err());
    }
}
