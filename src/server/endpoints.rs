//! The server's RPC dispatcher: every `rpc::Request` a peer can send, mapped
//! to the server method that serves it (the same methods the local HTTP
//! layer calls in-process).

use super::Server;
use crate::rpc::message::{QueryMeta, RaftRpc, Request, Response, RpcError};
use crate::rpc::server::{BoxFut, Handler};
use std::sync::Arc;

/// Wraps a server as an RPC handler.
pub struct RpcEndpoints(pub Arc<Server>);

impl Handler for RpcEndpoints {
    fn handle(&self, req: Request) -> BoxFut<'_, Response> {
        Box::pin(async move { self.0.dispatch(req).await })
    }
}

fn reply<T>(r: Result<T, RpcError>, f: impl FnOnce(T) -> Response) -> Response {
    match r {
        Ok(v) => f(v),
        Err(e) => Response::Error(e),
    }
}

impl Server {
    pub async fn dispatch(&self, req: Request) -> Response {
        match req {
            Request::Ping => Response::Pong,
            Request::Raft(kind, target, payload) => {
                if target != self.consensus.node_id {
                    return Response::Error(RpcError::BadRequest(format!(
                        "raft RPC for server id {target:016x} reached server id {:016x}",
                        self.consensus.node_id
                    )));
                }
                if kind == RaftRpc::AppendEntries {
                    self.consensus.touch_contact();
                }
                match self.consensus.serve_raft(kind, &payload).await.map_err(|e| e.to_string()) {
                    Ok(bytes) => Response::Raft(bytes),
                    Err(e) => Response::Error(RpcError::BadRequest(e)),
                }
            }
            Request::Propose(cmd) => {
                // Only the leader proposes; a follower never forwards a
                // forwarded write again (no loops between stale views).
                if !self.consensus.is_leader() {
                    return Response::Error(RpcError::NoLeader);
                }
                match self.propose_as_leader(cmd).await {
                    Ok(r) => Response::Result(r),
                    Err(e) => Response::Error(e),
                }
            }
            Request::ReadIndex => {
                if !self.consensus.is_leader() {
                    return Response::Error(RpcError::NoLeader);
                }
                match self.consensus.reads.confirm().await {
                    Ok(index) => Response::ReadIndex(index),
                    Err(e) => Response::Error(super::read_error(e)),
                }
            }
            Request::KvGet { key, opts } => {
                reply(self.kv_get(&key, &opts).await, |(m, e)| Response::KvEntry(m, e))
            }
            Request::KvList { prefix, opts } => {
                reply(self.kv_list(&prefix, &opts).await, |(m, e)| Response::KvEntries(m, e))
            }
            Request::KvKeys { prefix, separator, opts } => {
                reply(self.kv_keys(&prefix, separator.as_deref(), &opts).await, |(m, k)| Response::Keys(m, k))
            }
            Request::KvApply(cmd) => reply(self.kv_apply(cmd).await, Response::Bool),
            Request::Txn { ops, opts } => reply(self.txn(ops, &opts).await, |(m, o)| Response::Txn(m, o)),
            Request::CatalogRegister(reg) => reply(self.catalog_register(reg).await, |_| Response::Unit),
            Request::CatalogDeregister(d) => reply(self.catalog_deregister(d).await, |_| Response::Unit),
            Request::CatalogNodes { node_meta, opts } => {
                reply(self.catalog_nodes(&node_meta, &opts).await, |(m, n)| Response::Nodes(m, n))
            }
            Request::CatalogServices { node_meta, opts } => {
                reply(self.catalog_services(&node_meta, &opts).await, |(m, s)| Response::Services(m, s))
            }
            Request::CatalogService { name, filter, opts } => {
                reply(self.catalog_service(&name, &filter, &opts).await, |(m, s)| {
                    Response::ServiceNodes(m, s)
                })
            }
            Request::CatalogNode { name, opts } => {
                reply(self.catalog_node(&name, &opts).await, |(m, n)| Response::NodeServices(m, n))
            }
            Request::HealthService { name, filter, opts } => {
                reply(self.health_service(&name, &filter, &opts).await, |(m, s)| {
                    Response::ServiceHealth(m, s)
                })
            }
            Request::HealthNode { name, opts } => {
                reply(self.health_node(&name, &opts).await, |(m, c)| Response::Checks(m, c))
            }
            Request::HealthChecks { service, node_meta, opts } => {
                reply(self.health_checks(&service, &node_meta, &opts).await, |(m, c)| Response::Checks(m, c))
            }
            Request::HealthState { state, node_meta, opts } => {
                reply(self.health_state(&state, &node_meta, &opts).await, |(m, c)| Response::Checks(m, c))
            }
            Request::SessionCreate(s) => reply(self.session_create(s).await, Response::Text),
            Request::SessionDestroy(id) => reply(self.session_destroy(&id).await, |_| Response::Unit),
            Request::SessionInfo { id, opts } => {
                reply(self.session_info(&id, &opts).await, |(m, s)| Response::Sessions(m, s))
            }
            Request::SessionNode { node, opts } => {
                reply(self.session_node(&node, &opts).await, |(m, s)| Response::Sessions(m, s))
            }
            Request::SessionList { opts } => {
                reply(self.session_list(&opts).await, |(m, s)| Response::Sessions(m, s))
            }
            Request::SessionRenew(id) => {
                // A forwarded renewal is answered by the leader only (no second hop).
                reply(self.renew_local(&id), |s| Response::Sessions(QueryMeta::default(), s))
            }
            Request::RaftRemovePeer { id, address } => {
                reply(self.operator_remove_peer(id, address).await, |_| Response::Unit)
            }
            Request::LeaderOnly(inner) => self.dispatch_leader_only(*inner).await,
            Request::Forward { dc, req } => self.forward_to_dc(&dc, *req).await,
            Request::Datacenters => Response::Texts(self.datacenters()),
            Request::EventFire { serf_name, body } => self.fire_relayed_event(&serf_name, &body).await,
            Request::CatalogReverse { ip, opts } => {
                reply(self.catalog_reverse(&ip, &opts).await, Response::Reverse)
            }
            Request::OperatorRaftConfiguration { opts } => {
                reply(self.raft_configuration(&opts).await, Response::RaftConfiguration)
            }
            Request::AutopilotGetConfig { opts } => {
                reply(self.autopilot_get_config(&opts).await, Response::AutopilotConfig)
            }
            Request::AutopilotSetConfig { config, cas } => {
                reply(self.autopilot_set_config(config, cas).await, Response::Bool)
            }
            Request::AutopilotHealth => reply(self.autopilot_health_view().await, Response::AutopilotHealth),
            Request::SnapshotSave { opts } => {
                reply(self.snapshot_save(&opts).await, |(m, i, t, s)| Response::Snapshot(m, i, t, s))
            }
            Request::SnapshotRestore { state } => {
                reply(self.snapshot_restore(state).await, |_| Response::Unit)
            }
            Request::StatusLeader => Response::Text(self.leader_addr()),
            Request::StatusPeers => Response::Texts(self.peers()),
        }
    }
}
