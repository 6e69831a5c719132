//! A client agent's way to the servers: the set of known servers (learned
//! from gossip) and calls that pick one at random, moving on to another
//! when a server cannot be reached, as Consul's client router does.

use crate::rpc::client::{CallError, RpcClient};
use crate::rpc::{method, Method, RequestContext, RpcError, WireCall};
use rand::seq::SliceRandom;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

/// How long one call may take: longer than the longest blocking query.
const CALL_TIMEOUT: Duration = Duration::from_secs(11 * 60);

pub struct ServerPool {
    rpc: RpcClient,
    servers: RwLock<Vec<SocketAddr>>,
}

impl ServerPool {
    pub fn new(rpc: RpcClient) -> ServerPool {
        ServerPool { rpc, servers: RwLock::new(Vec::new()) }
    }

    /// Replaces the known servers (from gossip membership).
    pub fn set_servers(&self, servers: Vec<SocketAddr>) {
        *self.servers.write().unwrap_or_else(|e| e.into_inner()) = servers;
    }

    pub fn servers(&self) -> Vec<SocketAddr> {
        self.servers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls a random known server, trying the others when one is unreachable.
    pub async fn call<M: Method>(&self, ctx: RequestContext, args: &M) -> Result<M::Reply, RpcError> {
        let call = WireCall::new(ctx, args)?;
        let mut servers = self.servers();
        if servers.is_empty() {
            return Err(RpcError::Internal("No known Consul servers".into()));
        }
        servers.shuffle(&mut rand::rng());
        let mut last = None;
        for addr in servers {
            match self.rpc.call_wire(addr, &call, CALL_TIMEOUT).await {
                Ok(reply) => return method::decode_reply::<M>(reply),
                Err(e @ (CallError::Connect { .. } | CallError::Closed(_))) => {
                    tracing::debug!(target: "agent.client", server = %addr, error = %e, "server unreachable; trying another");
                    last = Some(e);
                }
                Err(e) => return Err(RpcError::Internal(format!("rpc error: {e}"))),
            }
        }
        Err(RpcError::Internal(format!(
            "rpc error: no server could be reached: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}
