//! Server-mode duties: the endpoints that read and write the replicated
//! state (with Consul's consistency modes and blocking queries), forwarding
//! writes and read-index requests to the leader, the RPC dispatcher
//! (`endpoints`), and the leader's own loops.
//!
//! Must not know HTTP: it speaks `rpc` types. Never names openraft: Raft is
//! reached only through `Consensus`'s methods.

pub mod acl;
pub mod authz;
pub mod autopilot;
pub mod autopilot_health;
pub mod blocking;
pub mod bootstrap;
pub mod catalog;
pub mod config_entry;
pub mod coordinate;
pub mod endpoints;
pub mod gateway_services;
pub mod kv;
pub mod leader;
pub mod leave;
pub mod members;
pub mod operator;
pub mod prepared_query;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod wan;

use crate::catalog::{Command, CommandResult};
use crate::consensus::proposer::ProposeError;
use crate::consensus::reads::ReadError;
use crate::consensus::Consensus;
use crate::rpc::client::{CallError, RpcClient};
use crate::rpc::method;
use crate::rpc::{Consistency, QueryMeta, QueryOptions, RequestContext, RpcError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Settings the server endpoints need.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub datacenter: String,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
    /// How long a request waits for a leader before failing (Consul's
    /// `performance.rpc_hold_timeout`).
    pub rpc_hold_timeout: Duration,
    /// Autopilot settings from the config file, used until an operator
    /// stores a configuration through the API.
    pub autopilot: crate::config::runtime::Autopilot,
    pub acl: acl::AclServerSettings,
    /// Coordinate batching (None: `disable_coordinates`).
    pub coordinates: Option<crate::config::runtime::CoordinateSync>,
    /// `config_entries.bootstrap` (validated at load): the leader writes
    /// each one that is absent.
    pub config_entry_bootstrap: Vec<crate::config_entry::ConfigEntry>,
}

pub struct Server {
    pub(crate) consensus: Consensus,
    pub(crate) settings: ServerSettings,
    pub(crate) rpc: RpcClient,
    pub(crate) session_timers: std::sync::Arc<session::SessionTimers>,
    /// Since when (unix ms) each server has been continuously healthy, as
    /// this server judged it while leading (the health view's `StableSince`).
    pub(crate) stable_since: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
    /// The gossip pools: the WAN one for `?dc=` routing (see `wan`), the
    /// LAN one to fire events relayed from another datacenter.
    pub(crate) pools: std::sync::OnceLock<crate::gossip::Pools>,
    /// What the authorisation hook decides (`authz`); tests may close it.
    #[cfg(test)]
    pub(crate) authz: authz::Policy,
    /// Held by every change of the Raft configuration this server makes
    /// as leader (autopilot rounds, peer removals), so two never race and
    /// each sees the configuration the previous one committed.
    pub(crate) membership_changes: tokio::sync::Mutex<()>,
    /// Set when this server starts leaving (`leave`).
    pub(crate) leaving: std::sync::atomic::AtomicBool,
    /// Resolved tokens by secret (`acl`).
    pub(crate) acl_cache: acl::IdentityCache,
    /// Tokens resolved through the primary datacenter (`acl::remote`).
    pub(crate) acl_remote: acl::remote::RemoteIdentities,
    /// What this server's replication loop last did (`acl::replication`).
    pub(crate) acl_replication: acl::replication::ReplicationStatus,
    /// Coordinate updates waiting for the next batch (`coordinate`).
    pub(crate) coordinate_updates: coordinate::PendingUpdates,
    /// `jwt` auth methods' login checks with their fetched keys (`acl::auth`).
    pub(crate) auth_validators: crate::authmethod::validator::ValidatorCache,
    /// This server, for work it starts in the background from a `&self`
    /// method (`acl::remote`'s async-cache refresh); set by `into_shared`.
    pub(crate) shared: std::sync::OnceLock<std::sync::Weak<Server>>,
}

/// How long one forwarded call may take before it is abandoned.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a leader waits for a write to commit; shorter than
/// `FORWARD_TIMEOUT` so a forwarding follower hears the reason.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(8);
/// Longest pause between attempts while no leader is known (an election
/// that ends sooner ends the pause).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Where the Raft leader is, for a call that must run there.
pub(crate) enum LeaderAt {
    Here,
    /// Another server, at this RPC address.
    Remote(SocketAddr),
}

impl Server {
    pub fn new(consensus: Consensus, settings: ServerSettings, rpc: RpcClient) -> Server {
        Server {
            consensus,
            settings,
            rpc,
            session_timers: Default::default(),
            stable_since: Default::default(),
            pools: Default::default(),
            #[cfg(test)]
            authz: Default::default(),
            membership_changes: Default::default(),
            leaving: Default::default(),
            acl_cache: Default::default(),
            acl_remote: Default::default(),
            acl_replication: Default::default(),
            coordinate_updates: Default::default(),
            auth_validators: Default::default(),
            shared: Default::default(),
        }
    }

    /// Wraps the server for sharing, remembering the handle so the server
    /// can start background work of its own.
    pub fn into_shared(self) -> std::sync::Arc<Server> {
        let server = std::sync::Arc::new(self);
        let _ = server.shared.set(std::sync::Arc::downgrade(&server));
        server
    }

    /// The shared handle, when the server was made with `into_shared`.
    pub(crate) fn shared(&self) -> Option<std::sync::Arc<Server>> {
        self.shared.get().and_then(std::sync::Weak::upgrade)
    }

    pub fn consensus(&self) -> &Consensus {
        &self.consensus
    }

    /// Where the leader is, as this server knows it (`None`: no leader, or
    /// its address is not known). This server's own address is not looked up.
    fn leader_at(&self) -> Option<LeaderAt> {
        if self.consensus.leader_id()? == self.consensus.node_id {
            return Some(LeaderAt::Here);
        }
        let (id, addr) = self.consensus.leader_rpc_addr()?;
        Some(if id == self.consensus.node_id { LeaderAt::Here } else { LeaderAt::Remote(addr) })
    }

    /// Checks the read guarantee `opts` asks for and reports leader facts.
    /// Default and `?consistent` reads on a follower ask the leader for a
    /// read index and wait until this server has applied it, so they are
    /// linearizable without moving the read itself to the leader.
    pub(crate) async fn check_consistency(&self, opts: &QueryOptions) -> Result<QueryMeta, RpcError> {
        let meta = |c: &Consensus| QueryMeta {
            index: 0,
            known_leader: c.leader_id().is_some(),
            last_contact: c.last_contact().unwrap_or(Duration::ZERO),
            consistency: opts.consistency,
            filtered_by_acls: false,
        };
        if opts.consistency == Consistency::Stale {
            return Ok(meta(&self.consensus));
        }
        if opts.consistency == Consistency::Default && crate::inject::enabled(crate::inject::Bug::LocalReads)
        {
            return Ok(meta(&self.consensus));
        }
        // `?consistent` always confirms leadership with a quorum round;
        // a default read may rely on the leader's lease.
        let confirm = match opts.consistency {
            Consistency::Consistent => crate::consensus::reads::Confirm::Quorum,
            _ => crate::consensus::reads::Confirm::Lease,
        };
        let deadline = Instant::now() + self.settings.rpc_hold_timeout;
        loop {
            let seen = self.consensus.leader_id();
            let attempt = match self.leader_at() {
                Some(LeaderAt::Here) => {
                    self.consensus.reads.confirm(confirm).await.map(|_| ()).map_err(read_error)
                }
                Some(LeaderAt::Remote(addr)) => {
                    let internal = RequestContext::default();
                    let asked = match confirm {
                        crate::consensus::reads::Confirm::Quorum => {
                            self.rpc
                                .call(addr, internal, &method::ReadIndexConsistent {}, FORWARD_TIMEOUT)
                                .await
                        }
                        crate::consensus::reads::Confirm::Lease => {
                            self.rpc.call(addr, internal, &method::ReadIndex {}, FORWARD_TIMEOUT).await
                        }
                    };
                    match asked {
                        Ok(index) => self.wait_applied(index, deadline).await,
                        Err(CallError::Remote(e)) => Err(e),
                        Err(e) if e.is_unreachable() => Err(RpcError::NoLeader),
                        Err(e) => Err(RpcError::Internal(format!("rpc error: {e}"))),
                    }
                }
                None => Err(RpcError::NoLeader),
            };
            match attempt {
                Ok(()) => return Ok(meta(&self.consensus)),
                Err(RpcError::NoLeader) if Instant::now() < deadline => {
                    self.consensus.leader_changed(seen, RETRY_PAUSE).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until this server has applied `index` (a leader's read index).
    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), RpcError> {
        let mut applied = self.consensus.store.subscribe_applied();
        loop {
            if *applied.borrow_and_update() >= index {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline.into(), applied.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(RpcError::ShuttingDown),
                Err(_) => return Err(RpcError::NoLeader),
            }
        }
    }

    /// Proposes a command (through the leader) and returns its result once
    /// applied. Retries only when the command certainly was not applied
    /// (no leader, or the leader could not be reached at all).
    pub(crate) async fn apply(&self, cmd: Command) -> Result<CommandResult, RpcError> {
        let deadline = Instant::now() + self.settings.rpc_hold_timeout;
        loop {
            let seen = self.consensus.leader_id();
            let attempt = match self.leader_at() {
                Some(LeaderAt::Here) => self.propose_as_leader(cmd.clone()).await,
                Some(LeaderAt::Remote(addr)) => {
                    let propose = method::Propose { command: cmd.clone() };
                    // With ACLs on, the leader takes a raw command only from
                    // a server: one that knows the replicated server secret.
                    let secret = self.consensus.store.read(|s| s.acl.server_secret.clone());
                    let ctx = RequestContext {
                        token: Some(secret).filter(|s| !s.is_empty()),
                        ..Default::default()
                    };
                    match self.rpc.call(addr, ctx, &propose, FORWARD_TIMEOUT).await {
                        Ok(r) => Ok(r),
                        Err(CallError::Remote(e)) => Err(e),
                        Err(e @ CallError::Connect { .. }) => {
                            tracing::debug!(target: "agent.server", error = %e, "leader unreachable; retrying");
                            Err(RpcError::NoLeader)
                        }
                        Err(e) => Err(RpcError::Internal(format!("rpc error: {e}"))),
                    }
                }
                None => Err(RpcError::NoLeader),
            };
            match attempt {
                Err(RpcError::NoLeader) if Instant::now() < deadline => {
                    self.consensus.leader_changed(seen, RETRY_PAUSE).await
                }
                other => return other,
            }
        }
    }

    /// The leader's checks before a command goes to Raft (Consul's
    /// pre-apply): a lock on a key still in its lock-delay is refused here
    /// without a Raft round. An invalidation proposed but not yet applied
    /// is invisible to this check; the state machine checks again in log
    /// order, against the proposals' leader timestamps.
    pub(crate) async fn propose_as_leader(&self, cmd: Command) -> Result<CommandResult, RpcError> {
        if let Command::KvLock { key, .. } = &cmd {
            if let Some(left) = self.consensus.store.lock_delay(key) {
                if !crate::inject::enabled(crate::inject::Bug::NoLockDelay) {
                    tracing::debug!(target: "agent.server.kvs", key = %key, remaining = ?left, "lock refused: lock-delay in effect");
                    return Ok(CommandResult::Bool(false));
                }
            }
        }
        // While the log cannot be written for lack of space, refuse at once:
        // the write is certainly not applied (consensus::disk_full).
        if let Some(why) = self.consensus.log.disk_full().message() {
            return Err(RpcError::Internal(format!("{why}; the write was not accepted")));
        }
        // A leader cut off from its quorum keeps believing it leads (openraft
        // 0.9 has no lease step-down), so its writes would wait forever: give
        // up after COMMIT_TIMEOUT. The outcome is unknown (it may still commit
        // if the quorum comes back), as with Consul's own apply timeouts.
        match tokio::time::timeout(COMMIT_TIMEOUT, self.consensus.proposer.propose(cmd)).await {
            Ok(r) => r.map_err(propose_error),
            Err(_) => {
                let (cause, outcome) = match self.consensus.log.disk_full().message() {
                    Some(why) => (why, "it will be applied if space is freed"),
                    None => ("is a quorum of servers reachable?".to_string(), "it may still be applied"),
                };
                Err(RpcError::Internal(format!(
                    "timed out after {} waiting for the write to commit ({cause}); {outcome}",
                    crate::duration::format(COMMIT_TIMEOUT)
                )))
            }
        }
    }

    /// `ip:port` of the leader's server RPC address, or "" when none is
    /// known, or when this server leads but has lost touch with its quorum.
    pub fn leader_addr(&self) -> String {
        if !self.consensus.quorum_contact() {
            return String::new();
        }
        self.consensus.leader().map(|(_, n)| n.addr).unwrap_or_default()
    }

    /// Server RPC addresses of the Raft voters.
    pub fn peers(&self) -> Vec<String> {
        let m = self.consensus.applied_membership();
        m.voters.iter().filter_map(|id| m.nodes.get(id).map(|n| n.addr.clone())).collect()
    }
}

pub(crate) fn read_error(e: ReadError) -> RpcError {
    match e {
        ReadError::NotLeader { .. } => RpcError::NoLeader,
        ReadError::ShuttingDown => RpcError::ShuttingDown,
        ReadError::Raft(m) => RpcError::Internal(m),
    }
}

pub(crate) fn propose_error(e: ProposeError) -> RpcError {
    match e {
        ProposeError::NotLeader { .. } => RpcError::NoLeader,
        ProposeError::ShuttingDown => RpcError::ShuttingDown,
        ProposeError::Raft(m) => RpcError::Internal(m),
    }
}
