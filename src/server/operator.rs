//! Operator endpoints on the server side: the Raft configuration, removing
//! a peer, the replicated autopilot configuration and autopilot's health
//! view. Writes and leader-only answers reach the leader from any server.

use super::{LeaderAt, Server};
use crate::catalog::operator::AutopilotConfig;
use crate::catalog::{Command, CommandResult};
use crate::config::runtime::Autopilot as AutopilotSettings;
use crate::rpc::client::CallError;
use crate::rpc::method::{self, Method};
use crate::rpc::operator::{AutopilotHealth, RaftConfiguration, RaftServer};
use crate::rpc::{QueryOptions, RequestContext, RpcError};
use std::time::{Duration, Instant};

const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// `/v1/operator/raft/configuration`: the configuration as this server
    /// holds it, after the usual consistency check (so without `?stale` a
    /// server with no leader answers "No cluster leader").
    /// Without `?stale` the leader answers (it alone knows how far each
    /// follower has replicated).
    pub async fn raft_configuration(&self, ctx: &RequestContext) -> Result<RaftConfiguration, RpcError> {
        if ctx.query.consistency != crate::rpc::Consistency::Stale {
            if let Some(c) = self.forward_to_leader(ctx, &method::RaftConfigurationGet {}).await? {
                return Ok(c);
            }
        }
        Ok(self.local_raft_configuration())
    }

    pub(crate) fn local_raft_configuration(&self) -> RaftConfiguration {
        let status = self.consensus.status();
        let m = &status.membership;
        let me = self.consensus.node_id;
        let my_last = self.consensus.last_log().map(|l| l.index);
        let matched = status.replication.clone().unwrap_or_default();
        let servers = m
            .nodes
            .iter()
            .map(|(id, n)| RaftServer {
                id: n.node_id.clone(),
                node: n.name.clone(),
                address: n.addr.clone(),
                leader: status.leader == Some(*id),
                voter: m.is_voter(*id),
                last_index: if *id == me { my_last } else { matched.get(id).copied().flatten() },
            })
            .collect();
        RaftConfiguration {
            servers,
            index: m.index.unwrap_or(0),
            commit_index: self.consensus.committed_index().unwrap_or(0),
        }
    }

    /// `DELETE /v1/operator/raft/peer`: removes a server from Raft, done by
    /// the leader (forwarded there from any server).
    pub async fn operator_remove_peer(
        &self,
        ctx: &RequestContext,
        id: Option<String>,
        address: Option<String>,
    ) -> Result<(), RpcError> {
        if id.is_none() && address.is_none() {
            return Err(RpcError::BadRequest(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
                    .into(),
            ));
        }
        let req = method::RaftRemovePeer { id: id.clone(), address: address.clone() };
        match self.forward_to_leader(ctx, &req).await? {
            Some(()) => Ok(()),
            None => self.remove_peer_as_leader(id.as_deref(), address.as_deref()).await,
        }
    }

    /// The leader's half of a peer removal (also what a forwarded
    /// `RaftRemovePeer` runs).
    pub(crate) async fn remove_peer_as_leader(
        &self,
        id: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), RpcError> {
        // Consul refuses a request naming no peer as bad (400) but returns a
        // peer it cannot find as a plain error (500).
        let rid = self.find_peer(id, address).map_err(|e| {
            if id.is_none() && address.is_none() {
                RpcError::BadRequest(e)
            } else {
                RpcError::Internal(e)
            }
        })?;
        self.remove_peer(rid).await.map_err(|e| match e {
            super::leave::RemoveError::NotLeader => RpcError::NoLeader,
            e => RpcError::Internal(e.to_string()),
        })
    }

    /// The autopilot configuration in effect: the stored one, or (until an
    /// operator writes one) the settings from this server's config file.
    pub fn autopilot_settings(&self) -> AutopilotSettings {
        match self.consensus.store.read(|s| s.autopilot.clone()) {
            Some(c) => AutopilotSettings {
                cleanup_dead_servers: c.cleanup_dead_servers,
                last_contact_threshold: Duration::from_nanos(c.last_contact_threshold_ns),
                max_trailing_logs: c.max_trailing_logs,
                min_quorum: c.min_quorum,
                server_stabilization_time: Duration::from_nanos(c.server_stabilization_time_ns),
            },
            None => self.settings.autopilot.clone(),
        }
    }

    /// `GET /v1/operator/autopilot/configuration`.
    pub async fn autopilot_get_config(&self, opts: &QueryOptions) -> Result<AutopilotConfig, RpcError> {
        self.check_consistency(opts).await?;
        Ok(self.consensus.store.read(|s| s.autopilot.clone()).unwrap_or_else(|| {
            let a = &self.settings.autopilot;
            AutopilotConfig {
                cleanup_dead_servers: a.cleanup_dead_servers,
                last_contact_threshold_ns: a.last_contact_threshold.as_nanos() as u64,
                max_trailing_logs: a.max_trailing_logs,
                min_quorum: a.min_quorum,
                server_stabilization_time_ns: a.server_stabilization_time.as_nanos() as u64,
                create_index: 0,
                modify_index: 0,
            }
        }))
    }

    /// `PUT /v1/operator/autopilot/configuration[?cas=N]`.
    pub async fn autopilot_set_config(
        &self,
        config: AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<bool, RpcError> {
        match self.apply(Command::AutopilotSet { config, cas }).await? {
            CommandResult::Bool(b) => Ok(b),
            CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    /// `GET /v1/operator/autopilot/health`: the leader's latest view.
    pub async fn autopilot_health_view(&self, ctx: &RequestContext) -> Result<AutopilotHealth, RpcError> {
        match self.forward_to_leader(ctx, &method::AutopilotHealthGet {}).await? {
            Some(h) => Ok(h),
            None => self.local_autopilot_health(),
        }
    }

    /// Sends a call to the leader and returns its answer, or `None` when
    /// this server is the leader (the caller serves it). The leader serves
    /// it only while it leads (`RequestContext::leader_only`). Retries while
    /// no leader is known, up to `rpc_hold_timeout`.
    pub(crate) async fn forward_to_leader<M: Method>(
        &self,
        ctx: &RequestContext,
        args: &M,
    ) -> Result<Option<M::Reply>, RpcError> {
        let ctx = RequestContext { leader_only: true, ..ctx.clone() };
        let deadline = Instant::now() + self.settings.rpc_hold_timeout;
        loop {
            let err = match self.leader_at() {
                Some(LeaderAt::Here) => return Ok(None),
                Some(LeaderAt::Remote(addr)) => {
                    match self.rpc.call(addr, ctx.clone(), args, FORWARD_TIMEOUT).await {
                        Ok(r) => return Ok(Some(r)),
                        Err(CallError::Remote(e)) => e,
                        // Down or gone mid-call: as good as no leader; try again.
                        Err(e) if e.is_unreachable() => RpcError::NoLeader,
                        Err(e) => RpcError::Internal(format!("rpc error: {e}")),
                    }
                }
                None => RpcError::NoLeader,
            };
            if err != RpcError::NoLeader || Instant::now() >= deadline {
                return Err(err);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
