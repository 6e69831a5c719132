//! The server RPC listener: accepts connections, checks the preamble,
//! reads frames, runs each request concurrently through the `Handler`, and
//! writes responses (in any order; the request id pairs them). A bad
//! connection is closed and logged; it never affects others.

use super::frame::{self, FrameError, Kind};
use super::message::RpcError;
use super::method::{WireCall, WireReply};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Serves decoded calls (the server's wire dispatcher).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, call: WireCall) -> BoxFut<'_, WireReply>;
}

/// Requests in flight per connection.
const MAX_IN_FLIGHT: usize = 256;

/// Binds the server port and serves until `shutdown`. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    handler: Arc<dyn Handler>,
    max_conns_per_client: usize,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).await.map_err(|e| format!("Error starting RPC listener on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(target: "agent.server.rpc", address = %local, "RPC server listening");
    let conns: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let tasks_inner = tasks.clone();
    tasks.spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(target: "agent.server.rpc", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            {
                let mut c = conns.lock().unwrap_or_else(|e| e.into_inner());
                let n = c.entry(peer.ip()).or_insert(0);
                if max_conns_per_client > 0 && *n >= max_conns_per_client {
                    tracing::warn!(target: "agent.server.rpc", peer = %peer, limit = max_conns_per_client, "too many RPC connections from one client; closing");
                    continue;
                }
                *n += 1;
            }
            let handler = handler.clone();
            let shutdown = shutdown.clone();
            let conns = conns.clone();
            tasks_inner.spawn(async move {
                if let Err(e) = serve_conn(stream, handler, shutdown).await {
                    if !matches!(e, FrameError::Closed) {
                        tracing::debug!(target: "agent.server.rpc", peer = %peer, error = %e, "RPC connection closed");
                    }
                }
                let mut c = conns.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = c.get_mut(&peer.ip()) {
                    *n -= 1;
                    if *n == 0 {
                        c.remove(&peer.ip());
                    }
                }
            });
        }
    });
    Ok(local)
}

async fn serve_conn(
    stream: TcpStream,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
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
    let result = loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            f = frame::read_frame(&mut rd) => f,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => break Err(e),
        };
        if frame.kind != Kind::Request {
            break Err(FrameError::BadKind(frame.kind as u8));
        }
        let Ok(permit) = permits.clone().acquire_owned().await else { break Ok(()) };
        let handler = handler.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let reply = match postcard::from_bytes::<WireCall>(&frame.payload) {
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
    let _ = writer.await;
    result
}
