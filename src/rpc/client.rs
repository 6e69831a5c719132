//! A pool of multiplexed connections to servers' RPC ports: one connection
//! per peer carries any number of concurrent requests, matched to their
//! responses by id. A broken connection fails its pending calls and is
//! replaced on the next call.
//!
//! With `verify_outgoing` every connection is TLS (the agent's `Tls`
//! handle says how, per connection, so renewed certificates apply to new
//! connections): the server must prove `server.<dc>.<domain>` under
//! `verify_server_hostname`, where `dc` is this agent's datacenter, or the
//! target's for a call relayed to another datacenter. One pooled
//! connection per address, so an address is assumed to stay in one
//! datacenter.

use super::context::RequestContext;
use super::frame::{self, Kind};
use super::message::RpcError;
use super::method::{self, Method, WireCall, WireReply};
use crate::tls::Tls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("failed to connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("RPC to {0} timed out")]
    Timeout(SocketAddr),
    #[error("connection to {0} closed")]
    Closed(SocketAddr),
    #[error("{0}")]
    Codec(String),
    /// The peer answered with an error.
    #[error(transparent)]
    Remote(RpcError),
}

impl CallError {
    /// Whether the peer may simply be down (worth trying another server).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CallError::Connect { .. } | CallError::Closed(_))
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<WireReply>>>>;

struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    closed: Arc<AtomicBool>,
}

#[derive(Clone, Default)]
pub struct RpcClient {
    conns: Arc<Mutex<HashMap<SocketAddr, Arc<Conn>>>>,
    next_id: Arc<AtomicU64>,
    /// `None`: plain text (no TLS configured).
    tls: Option<Tls>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl RpcClient {
    pub fn new() -> RpcClient {
        RpcClient::default()
    }

    /// A pool that dials with TLS whenever `tls` says to.
    pub(crate) fn with_tls(tls: Tls) -> RpcClient {
        RpcClient { tls: Some(tls), ..RpcClient::default() }
    }

    /// Calls method `M` on the server at `addr` and waits at most
    /// `timeout` for its answer (an error the server answered with comes
    /// back as `CallError::Remote`).
    pub async fn call<M: Method>(
        &self,
        addr: SocketAddr,
        ctx: RequestContext,
        args: &M,
        timeout: Duration,
    ) -> Result<M::Reply, CallError> {
        let call = WireCall::new(ctx, args).map_err(|e| CallError::Codec(e.to_string()))?;
        let reply = self.call_wire(addr, &call, timeout).await?;
        method::decode_reply::<M>(reply).map_err(CallError::Remote)
    }

    /// Sends an encoded call to `addr` and waits at most `timeout` for the
    /// answer (a server relaying a call it does not decode).
    pub async fn call_wire(
        &self,
        addr: SocketAddr,
        call: &WireCall,
        timeout: Duration,
    ) -> Result<WireReply, CallError> {
        let payload =
            postcard::to_allocvec(call).map_err(|e| CallError::Codec(format!("encoding request: {e}")))?;
        // A relayed call goes to a server of the call's datacenter; every
        // other call to one of this agent's own.
        let dc = if call.ctx.relayed { call.ctx.datacenter.as_deref() } else { None };
        let conn = self.conn(addr, dc).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes =
            frame::encode(id, Kind::Request, &payload).map_err(|e| CallError::Codec(e.to_string()))?;
        let (reply, rx) = oneshot::channel();
        conn.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, reply);
        if conn.tx.send(bytes).await.is_err() {
            self.forget(addr, &conn);
            return Err(CallError::Closed(addr));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => {
                self.forget(addr, &conn);
                Err(CallError::Closed(addr))
            }
            Err(_) => {
                conn.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                Err(CallError::Timeout(addr))
            }
        }
    }

    fn forget(&self, addr: SocketAddr, conn: &Arc<Conn>) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.get(&addr).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&addr);
        }
    }

    async fn conn(&self, addr: SocketAddr, dc: Option<&str>) -> Result<Arc<Conn>, CallError> {
        if let Some(c) = self.conns.lock().unwrap_or_else(|e| e.into_inner()).get(&addr) {
            if !c.closed.load(Ordering::Relaxed) {
                return Ok(c.clone());
            }
        }
        let connect_err = |reason: String| CallError::Connect { addr, reason };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let dial = self.tls.as_ref().and_then(|t| t.rpc_dial(dc));
        let conn = match dial {
            None => self.start_conn(stream, addr).await?,
            Some((config, name)) => {
                let handshake = tokio_rustls::TlsConnector::from(config).connect(name.clone(), stream);
                let tls = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                    Err(_) => return Err(connect_err("TLS handshake timed out".into())),
                    Ok(Err(e)) => {
                        tracing::warn!(
                            target: "agent.client.rpc",
                            server = %addr,
                            expected_name = ?name,
                            error = %e,
                            "TLS handshake with server failed; refusing it"
                        );
                        return Err(connect_err(format!("TLS handshake: {e}")));
                    }
                    Ok(Ok(s)) => s,
                };
                self.start_conn(tls, addr).await?
            }
        };
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(addr, conn.clone());
        Ok(conn)
    }

    /// Sends the preamble and starts the connection's reader and writer.
    async fn start_conn<S>(&self, stream: S, addr: SocketAddr) -> Result<Arc<Conn>, CallError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let connect_err = |reason: String| CallError::Connect { addr, reason };
        let (rd, mut wr) = tokio::io::split(stream);
        let mut rd = tokio::io::BufReader::with_capacity(frame::READ_BUFFER, rd);
        frame::write_preamble(&mut wr).await.map_err(|e| connect_err(e.to_string()))?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let conn = Arc::new(Conn { tx, pending: pending.clone(), closed: closed.clone() });
        let closed_w = closed.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(bytes) = rx.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::Relaxed);
        });
        tokio::spawn(async move {
            loop {
                match frame::read_frame(&mut rd).await {
                    Ok(f) if f.kind == Kind::Response => {
                        let waiter = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&f.id);
                        if let Some(w) = waiter {
                            let resp = postcard::from_bytes::<WireReply>(&f.payload).unwrap_or_else(|e| {
                                Err(RpcError::Internal(format!("malformed RPC response: {e}")))
                            });
                            let _ = w.send(resp);
                        }
                    }
                    _ => break,
                }
            }
            closed.store(true, Ordering::Relaxed);
            // Fail everything still waiting on this connection.
            pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(conn)
    }
}
