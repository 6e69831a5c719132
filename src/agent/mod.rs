//! The agent: this node's identity and the one handle the front ends
//! (HTTP, DNS) use. It routes each request to its delegate: the local
//! server in server mode (and, with the servers work, a remote server over
//! RPC in client mode).
//!
//! Must not know HTTP or DNS types.

use crate::catalog::txn::{TxnOp, TxnOutcome};
use crate::catalog::{Command, KvEntry};
use crate::config::RuntimeConfig;
use crate::rpc::{QueryMeta, QueryOptions, RpcError};
use crate::server::Server;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Where requests that need the replicated state go.
#[derive(Clone)]
pub enum Delegate {
    Server(Arc<Server>),
}

struct Inner {
    config: RwLock<Arc<RuntimeConfig>>,
    node_id: uuid::Uuid,
    delegate: Delegate,
    shutdown: CancellationToken,
}

/// A cheap, cloneable handle to the running agent.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

impl Agent {
    pub fn new(config: Arc<RuntimeConfig>, node_id: uuid::Uuid, delegate: Delegate, shutdown: CancellationToken) -> Agent {
        Agent { inner: Arc::new(Inner { config: RwLock::new(config), node_id, delegate, shutdown }) }
    }

    /// The configuration in effect (replaced wholesale on reload).
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.inner.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn node_id(&self) -> uuid::Uuid {
        self.inner.node_id
    }

    pub fn delegate(&self) -> &Delegate {
        &self.inner.delegate
    }

    /// Asks the agent to stop (as `consul leave` or a signal does).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Checks `?dc=`: only this datacenter is reachable until the WAN pool exists.
    pub fn check_dc(&self, dc: Option<&str>) -> Result<(), RpcError> {
        match dc {
            None | Some("") => Ok(()),
            Some(dc) if dc.eq_ignore_ascii_case(&self.config().datacenter) => Ok(()),
            Some(_) => Err(RpcError::NoPathToDatacenter),
        }
    }

    pub async fn kv_get(&self, key: &str, opts: &QueryOptions) -> Result<(QueryMeta, Option<KvEntry>), RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.kv_get(key, opts).await,
        }
    }

    pub async fn kv_list(&self, prefix: &str, opts: &QueryOptions) -> Result<(QueryMeta, Vec<KvEntry>), RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.kv_list(prefix, opts).await,
        }
    }

    pub async fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<String>), RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.kv_keys(prefix, separator, opts).await,
        }
    }

    pub async fn kv_apply(&self, cmd: Command) -> Result<bool, RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.kv_apply(cmd).await,
        }
    }

    pub async fn txn(&self, ops: Vec<TxnOp>, opts: &QueryOptions) -> Result<(Option<QueryMeta>, TxnOutcome), RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.txn(ops, opts).await,
        }
    }

    /// `/v1/status/leader`: the leader's server address, or "".
    pub async fn status_leader(&self) -> Result<String, RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => Ok(s.leader_addr()),
        }
    }

    /// `/v1/status/peers`: the Raft voters' server addresses.
    pub async fn status_peers(&self) -> Result<Vec<String>, RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => Ok(s.peers()),
        }
    }
}
