//! Server-mode duties: the endpoints that read and write the replicated
//! state (with Consul's consistency modes and blocking queries), and,
//! later, forwarding to the leader and the leader's own loops.
//!
//! Must not know HTTP: it speaks `rpc` types. Uses openraft only through
//! `consensus`.

pub mod blocking;
pub mod catalog;
pub mod kv;
pub mod leader;
pub mod stats;

use crate::consensus::proposer::ProposeError;
use crate::consensus::reads::ReadError;
use crate::consensus::Consensus;
use crate::rpc::{Consistency, QueryMeta, QueryOptions, RpcError};
use std::time::Duration;

/// Settings the server endpoints need.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub datacenter: String,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
}

pub struct Server {
    pub(crate) consensus: Consensus,
    pub(crate) settings: ServerSettings,
}

impl Server {
    pub fn new(consensus: Consensus, settings: ServerSettings) -> Server {
        Server { consensus, settings }
    }

    pub fn consensus(&self) -> &Consensus {
        &self.consensus
    }

    /// Checks the read guarantee `opts` asks for and reports leader facts.
    pub(crate) async fn check_consistency(&self, opts: &QueryOptions) -> Result<QueryMeta, RpcError> {
        let known_leader = self.consensus.leader().is_some();
        let meta = QueryMeta { index: 0, known_leader, last_contact: Duration::ZERO, consistency: opts.consistency };
        match opts.consistency {
            Consistency::Stale => Ok(meta),
            Consistency::Default | Consistency::Consistent => {
                if !self.consensus.is_leader() {
                    return Err(RpcError::NoLeader);
                }
                self.consensus.reads.confirm().await.map_err(read_error)?;
                Ok(meta)
            }
        }
    }

    /// Proposes a command and returns its result once applied.
    pub(crate) async fn apply(&self, cmd: crate::catalog::Command) -> Result<crate::catalog::CommandResult, RpcError> {
        if !self.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        self.consensus.proposer.propose(cmd).await.map_err(propose_error)
    }

    /// `ip:port` of the leader's server RPC address, or "" when none is known.
    pub fn leader_addr(&self) -> String {
        self.consensus.leader().map(|(_, n)| n.addr).unwrap_or_default()
    }

    /// Server RPC addresses of the Raft voters.
    pub fn peers(&self) -> Vec<String> {
        let membership = self.consensus.store.membership();
        let m = membership.membership();
        let voters: Vec<u64> = m.voter_ids().collect();
        voters.iter().filter_map(|id| m.get_node(id).map(|n| n.addr.clone())).collect()
    }
}

fn read_error(e: ReadError) -> RpcError {
    match e {
        ReadError::NotLeader { .. } => RpcError::NoLeader,
        ReadError::ShuttingDown => RpcError::ShuttingDown,
        ReadError::Raft(m) => RpcError::Internal(m),
    }
}

fn propose_error(e: ProposeError) -> RpcError {
    match e {
        ProposeError::NotLeader { .. } => RpcError::NoLeader,
        ProposeError::ShuttingDown => RpcError::ShuttingDown,
        ProposeError::Raft(m) => RpcError::Internal(m),
    }
}
