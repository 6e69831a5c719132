//! The server's handlers, one `Serve` impl per RPC method of
//! `rpc::method`, and the single way to reach them: `Server::serve` (in
//! process) and `Server::serve_wire` (from the RPC port, generated from the
//! method table, so a method without a handler does not compile). Both
//! relay calls for another datacenter first, then pass the authorisation
//! hook (`authz`), then run the handler.

use super::authz::{Authorized, Guard};
use super::Server;
use crate::rpc::method::{self, encode_reply, Method, WireCall, WireReply};
use crate::rpc::server::{BoxFut, Handler};
use crate::rpc::{RequestContext, RpcError};
use std::future::Future;
use std::sync::Arc;

/// A method's handler on the server.
pub trait Serve: Guard {
    /// Serves one call. Only `Server::serve` can produce the `Authorized`
    /// proof, so this runs after the authorisation hook or not at all.
    fn serve(
        self,
        server: &Server,
        ctx: &RequestContext,
        auth: Authorized,
    ) -> impl Future<Output = Result<Self::Reply, RpcError>> + Send;
}

/// Wraps a server as the RPC port's handler.
pub struct RpcEndpoints(pub Arc<Server>);

impl Handler for RpcEndpoints {
    fn handle(&self, call: WireCall) -> BoxFut<'_, WireReply> {
        Box::pin(self.0.serve_wire(call))
    }
}

impl Server {
    /// Serves one call of `M`: relayed to another datacenter if the context
    /// names one, refused if it was meant for the leader and this server no
    /// longer leads, then authorised, then handled.
    pub async fn serve<M: Serve>(&self, ctx: RequestContext, args: M) -> Result<M::Reply, RpcError> {
        if let Some(dc) = ctx.foreign_dc(&self.settings.datacenter) {
            let dc = dc.to_string();
            let call = WireCall::new(ctx, &args)?;
            return method::decode_reply::<M>(Box::pin(self.relay_to_dc(&dc, call)).await);
        }
        if ctx.leader_only && !self.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        // A blocking read under ACLs also waits on its caller's token (see
        // `blocking`): what it resolved to is taken before the check, so a
        // change after it cannot go unnoticed.
        let acl_blocking =
            ctx.query.min_index > 0 && self.acl_enabled() && M::RESOLVES_CALLER && !M::SERVERS_ONLY;
        let seen = acl_blocking.then(|| self.first_seen(ctx.token.as_deref()));
        // Boxed, as the relay above: steps that end before the handler
        // runs would otherwise size the future a parked blocking query
        // holds for its whole wait (issue 22: bytes per idle watcher).
        let auth = match Box::pin(self.authorize(&ctx, &args)).await? {
            super::authz::Verdict::Allowed(auth) => auth,
            super::authz::Verdict::Answered(reply) => return Ok(reply),
        };
        let mut reply = match seen {
            Some(seen) => {
                let again = args.clone();
                let reply = self.as_caller(ctx.token.clone(), seen, args.serve(self, &ctx, auth)).await?;
                // The wait may have ended because the token, its policies
                // or roles changed: the call is decided again, so a token
                // that lost the right gets the refusal, not the data.
                Box::pin(self.authorize(&ctx, &again)).await?;
                reply
            }
            None => args.serve(self, &ctx, auth).await?,
        };
        self.filter_reply::<M>(&ctx, &mut reply).await?;
        Ok(reply)
    }
}

/// Generates `Server::serve_wire` from the method table: decode the
/// arguments of the numbered method, then `serve` them.
macro_rules! wire_dispatch {
    ($( $(#[$doc:meta])* $id:literal $name:ident { $($field:ident : $ty:ty),* $(,)? } -> $reply:ty; )*) => {
        impl Server {
            /// Serves a call that arrived on the RPC port. A call for
            /// another datacenter is relayed without decoding it.
            pub async fn serve_wire(&self, call: WireCall) -> WireReply {
                if let Some(dc) = call.ctx.foreign_dc(&self.settings.datacenter) {
                    let dc = dc.to_string();
                    return self.relay_to_dc(&dc, call).await;
                }
                match call.method {
                    $(
                        $id => {
                            let args = call.args::<method::$name>()?;
                            encode_reply::<method::$name>(self.serve(call.ctx, args).await)
                        }
                    )*
                    other => Err(RpcError::BadRequest(format!("unknown RPC method {other}"))),
                }
            }
        }
    };
}
crate::rpc::method::method_table!(wire_dispatch);

impl Serve for method::Ping {
    async fn serve(self, _: &Server, _: &RequestContext, _: Authorized) -> Result<(), RpcError> {
        Ok(())
    }
}

impl Serve for method::Raft {
    async fn serve(self, s: &Server, _: &RequestContext, _: Authorized) -> Result<bytes::Bytes, RpcError> {
        if self.target != s.consensus.node_id {
            return Err(RpcError::BadRequest(format!(
                "raft RPC for server id {:016x} reached server id {:016x}",
                self.target, s.consensus.node_id
            )));
        }
        if self.kind == crate::rpc::message::RaftRpc::AppendEntries {
            s.consensus.touch_contact();
        }
        s.consensus
            .serve_raft(self.kind, &self.payload)
            .await
            .map(bytes::Bytes::from)
            .map_err(|e| RpcError::BadRequest(e.to_string()))
    }
}

impl Serve for method::Propose {
    async fn serve(
        self,
        s: &Server,
        _: &RequestContext,
        _: Authorized,
    ) -> Result<crate::catalog::CommandResult, RpcError> {
        // Only the leader proposes; a follower never forwards a forwarded
        // write again (no loops between stale views).
        if !s.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        s.propose_as_leader(self.command).await
    }
}

impl Serve for method::ReadIndex {
    async fn serve(self, s: &Server, _: &RequestContext, _: Authorized) -> Result<u64, RpcError> {
        if !s.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        s.consensus
            .read_index_for_follower(crate::consensus::reads::Confirm::Lease)
            .await
            .map_err(super::read_error)
    }
}

impl Serve for method::ReadIndexConsistent {
    async fn serve(self, s: &Server, _: &RequestContext, _: Authorized) -> Result<u64, RpcError> {
        if !s.consensus.is_leader() {
            return Err(RpcError::NoLeader);
        }
        s.consensus
            .read_index_for_follower(crate::consensus::reads::Confirm::Quorum)
            .await
            .map_err(super::read_error)
    }
}

/// Handlers that only call the server method of the same name.
macro_rules! delegate {
    ($($m:ident => |$s:ident, $ctx:ident, $a:ident| $body:expr;)*) => {
        $(
            impl Serve for method::$m {
                async fn serve(
                    self,
                    $s: &Server,
                    $ctx: &RequestContext,
                    _: Authorized,
                ) -> Result<<Self as Method>::Reply, RpcError> {
                    let $a = self;
                    $body
                }
            }
        )*
    };
}

delegate! {
    KvGet => |s, ctx, a| s.kv_get(&a.key, &ctx.query).await;
    KvList => |s, ctx, a| s.kv_list(&a.prefix, &ctx.query).await;
    KvKeys => |s, ctx, a| s.kv_keys(&a.prefix, a.separator.as_deref(), &ctx.query).await;
    KvApply => |s, _ctx, a| s.kv_apply(a.command).await;
    Txn => |s, ctx, a| s.txn(a.ops, &ctx.query).await;
    CatalogRegister => |s, _ctx, a| s.catalog_register(a.registration).await;
    CatalogDeregister => |s, _ctx, a| s.catalog_deregister(a.deregistration).await;
    CatalogNodes => |s, ctx, a| s.catalog_nodes(&a.node_meta, &ctx.query).await;
    CatalogServices => |s, ctx, a| s.catalog_services(&a.node_meta, &ctx.query).await;
    CatalogService => |s, ctx, a| s.catalog_service(&a.name, &a.filter, &ctx.query).await;
    CatalogNode => |s, ctx, a| s.catalog_node(&a.name, &ctx.query).await;
    CatalogReverse => |s, ctx, a| s.catalog_reverse(&a.ip, &ctx.query).await;
    HealthService => |s, ctx, a| s.health_service(&a.name, &a.filter, &ctx.query).await;
    HealthNode => |s, ctx, a| s.health_node(&a.name, &ctx.query).await;
    InternalNodeDump => |s, ctx, a| s.internal_node_dump(a.node.as_deref(), &ctx.query).await;
    HealthChecks => |s, ctx, a| s.health_checks(&a.service, &a.node_meta, &ctx.query).await;
    HealthState => |s, ctx, a| s.health_state(&a.state, &a.node_meta, &ctx.query).await;
    OperatorUsage => |s, ctx, _a| s.operator_usage(&ctx.query).await;
    StatusLeader => |s, _ctx, _a| Ok(s.leader_addr());
    StatusPeers => |s, _ctx, _a| Ok(s.peers());
    SessionCreate => |s, _ctx, a| s.session_create(a.session).await;
    SessionDestroy => |s, _ctx, a| s.session_destroy(&a.id).await;
    SessionInfo => |s, ctx, a| s.session_info(&a.id, &ctx.query).await;
    SessionNode => |s, ctx, a| s.session_node(&a.node, &ctx.query).await;
    SessionList => |s, ctx, _a| s.session_list(&ctx.query).await;
    // A renewal forwarded to the leader is answered there (no second hop).
    SessionRenew => |s, ctx, a| if ctx.leader_only { s.renew_local(&a.id) } else { s.session_renew(ctx, &a.id).await };
    RaftRemovePeer => |s, ctx, a| if ctx.leader_only {
        s.remove_peer_as_leader(a.id.as_deref(), a.address.as_deref()).await
    } else {
        s.operator_remove_peer(ctx, a.id, a.address).await
    };
    RaftLeave => |s, ctx, a| if ctx.leader_only {
        s.leave_as_leader(&a.id).await
    } else {
        s.leave_via_leader(ctx, &a.id).await
    };
    RaftConfigurationGet => |s, ctx, _a| if ctx.leader_only {
        Ok(s.local_raft_configuration())
    } else {
        s.raft_configuration(ctx).await
    };
    AutopilotGetConfig => |s, ctx, _a| s.autopilot_get_config(&ctx.query).await;
    AutopilotSetConfig => |s, _ctx, a| s.autopilot_set_config(a.config, a.cas).await;
    AutopilotHealthGet => |s, ctx, _a| if ctx.leader_only {
        s.local_autopilot_health()
    } else {
        s.autopilot_health_view(ctx).await
    };
    Datacenters => |s, _ctx, _a| Ok(s.datacenters());
    CoordinateUpdate => |s, _ctx, a| s.coordinate_update(a.entry).await;
    CoordinateNodes => |s, ctx, a| s.coordinate_nodes(a.segment.as_deref(), &ctx.query).await;
    CoordinateNode => |s, ctx, a| s.coordinate_node(&a.node, &ctx.query).await;
    CoordinateDatacenters => |s, _ctx, _a| s.coordinate_datacenters();
    QuerySet => |s, _ctx, a| s.query_set(a.query, a.create).await;
    QueryDelete => |s, _ctx, a| s.query_delete(&a.id).await;
    QueryGet => |s, ctx, a| s.query_get(&a.id, &ctx.query).await;
    QueryList => |s, ctx, _a| s.query_list(&ctx.query).await;
    QueryExecute => |s, ctx, a| s.query_execute(ctx, a).await;
    QueryExecuteRemote => |s, ctx, a| s.query_execute_remote(ctx, &a.query, a.limit);
    QueryExplain => |s, ctx, a| s.query_explain(&a.key, &ctx.query).await;
    ConfigEntryApply => |s, _ctx, a| s.config_entry_apply(a.entry, a.cas).await;
    ConfigEntryGet => |s, ctx, a| s.config_entry_get(&a.kind, &a.name, &ctx.query).await;
    ConfigEntryList => |s, ctx, a| s.config_entry_list(std::slice::from_ref(&a.kind), &ctx.query).await;
    ConfigEntryListAll => |s, ctx, a| s.config_entry_list(&a.kinds, &ctx.query).await;
    ConfigEntryDelete => |s, _ctx, a| s.config_entry_delete(&a.kind, &a.name, a.cas).await;
    DiscoveryChainGet => |s, ctx, a| s.discovery_chain(&a.service, &a.compile_dc, a.overrides, &ctx.query).await;
    ResolvedServiceConfig => |s, ctx, a| s.resolved_service_config(&a.service, &ctx.query).await;
    GatewayServices => |s, ctx, a| s.gateway_services(&a.gateway, &ctx.query).await;
    HealthIngress => |s, ctx, a| s.health_ingress(&a.service, &a.filter, &ctx.query).await;
    EventFire => |s, _ctx, a| s.fire_relayed_event(&a.serf_name, &a.body).await;
    SnapshotSave => |s, ctx, _a| s.snapshot_save(&ctx.query).await;
    SnapshotRestore => |s, _ctx, a| s.snapshot_restore(a.state).await;
    // In a secondary datacenter, ACL writes (and token reads while tokens
    // are not replicated) are served by the primary (`via_primary`).
    // Bootstrap happens in the primary only; a secondary answers as if ACLs
    // were off there (Consul's answer).
    AclBootstrap => |s, ctx, a| if s.acl_primary().is_some() {
        Err(RpcError::AclDisabled)
    } else {
        s.acl_bootstrap(ctx, a.secret).await
    };
    AclTokenSet => |s, ctx, a| match s.via_primary(ctx, &a, !a.token.local).await? {
        Some(reply) => Ok(reply),
        None if !s.local_tokens_enabled() => Err(RpcError::Internal("Cannot upsert tokens within this datacenter".into())),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_token_set(a.token, a.create).await,
        },
    };
    AclTokenRead => |s, ctx, a| match s.via_primary(ctx, &a, s.token_call_needs_primary(Some(&a.accessor))).await? {
        Some(reply) => Ok(reply),
        None => s.acl_token_read(&a.accessor, &ctx.query).await,
    };
    AclTokenSelf => |s, ctx, a| {
        let here = s.consensus.store.read(|st| {
            ctx.token.as_deref().is_some_and(|t| !t.is_empty() && st.acl.token_by_secret(t).is_some())
        });
        match s.via_primary(ctx, &a, !here && s.acl_primary().is_some()).await? {
            Some(reply) => Ok(reply),
            None => s.acl_token_self(ctx).await,
        }
    };
    AclTokenList => |s, ctx, a| match s.via_primary(ctx, &a, s.token_call_needs_primary(None)).await? {
        Some(reply) => Ok(reply),
        None => s.acl_token_list(&a.filter, &ctx.query).await,
    };
    AclTokenDelete => |s, ctx, a| match s.via_primary(ctx, &a, s.token_call_needs_primary(Some(&a.accessor))).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_token_delete(ctx, &a.accessor).await,
        },
    };
    AclTokenClone => |s, ctx, a| match s.via_primary(ctx, &a, s.token_call_needs_primary(Some(&a.accessor))).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_token_clone(&a.accessor, a.description).await,
        },
    };
    AclPolicySet => |s, ctx, a| match s.via_primary(ctx, &a, true).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_policy_set(a.policy, a.create).await,
        },
    };
    AclPolicyRead => |s, ctx, a| s.acl_policy_read(&a.key, a.by_name, &ctx.query).await;
    AclPolicyList => |s, ctx, _a| s.acl_policy_list(&ctx.query).await;
    AclPolicyDelete => |s, ctx, a| match s.via_primary(ctx, &a, true).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_policy_delete(&a.id).await,
        },
    };
    AclRoleSet => |s, ctx, a| match s.via_primary(ctx, &a, true).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_role_set(a.role, a.create).await,
        },
    };
    AclRoleRead => |s, ctx, a| s.acl_role_read(&a.key, a.by_name, &ctx.query).await;
    AclRoleList => |s, ctx, a| s.acl_role_list(a.policy.as_deref(), &ctx.query).await;
    AclRoleDelete => |s, ctx, a| match s.via_primary(ctx, &a, true).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_role_delete(&a.id).await,
        },
    };
    AclResolveRemote => |s, ctx, a| s.resolve_for_datacenter(ctx, &a.datacenter);
    AclReplicationFetch => |s, ctx, a| s.replication_fetch(&a.have, a.tokens, &ctx.query).await;
    AclReplicationStatusGet => |s, ctx, a| s.replication_status(ctx, &a).await;
    AclAuthMethodSet => |s, ctx, a| match s.on_leader(ctx, &a).await? {
        Some(reply) => Ok(reply),
        None => s.acl_auth_method_set(a.method, a.create).await,
    };
    AclAuthMethodRead => |s, ctx, a| s.acl_auth_method_read(&a.name, &ctx.query).await;
    AclAuthMethodList => |s, ctx, _a| s.acl_auth_method_list(&ctx.query).await;
    AclAuthMethodDelete => |s, ctx, a| match s.on_leader(ctx, &a).await? {
        Some(reply) => Ok(reply),
        None => s.acl_auth_method_delete(&a.name).await,
    };
    AclBindingRuleSet => |s, ctx, a| match s.on_leader(ctx, &a).await? {
        Some(reply) => Ok(reply),
        None => s.acl_binding_rule_set(a.rule, a.create).await,
    };
    AclBindingRuleRead => |s, ctx, a| s.acl_binding_rule_read(&a.id, &ctx.query).await;
    AclBindingRuleList => |s, ctx, a| s.acl_binding_rule_list(a.auth_method.as_deref(), &ctx.query).await;
    AclBindingRuleDelete => |s, ctx, a| match s.on_leader(ctx, &a).await? {
        Some(reply) => Ok(reply),
        None => s.acl_binding_rule_delete(&a.id).await,
    };
    // Auth methods and binding rules belong to the datacenter they are
    // written in (Consul's model): their calls stay here, on this
    // datacenter's leader, never in the primary. Login writes a token, so
    // it runs on the leader (which also keeps the fetched JWKS keys warm);
    // a logout of a global token goes to the primary, which owns it.
    AclLogin => |s, ctx, a| match s.on_leader(ctx, &a).await? {
        Some(reply) => Ok(reply),
        None => s.acl_login(&a.auth_method, &a.bearer_token, &a.meta).await,
    };
    AclLogout => |s, ctx, a| match s.via_primary(ctx, &a, s.logout_needs_primary(ctx)).await? {
        Some(reply) => Ok(reply),
        None => match s.on_leader(ctx, &a).await? {
            Some(reply) => Ok(reply),
            None => s.acl_logout(ctx).await,
        },
    };
    // The hook has resolved the secret already (catching up with the
    // leader if it did not know it): this only packs the answer.
    AclResolve => |s, ctx, _a| s.consensus.store.read(|st| s.resolve_for_agent(st, ctx.token.as_deref()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::typ::{raft_id, RaftNode};
    use crate::consensus::{Consensus, ConsensusConfig};
    use crate::rpc::client::RpcClient;
    use std::time::Duration;

    /// A server whose hook refuses everything: every method, called by its
    /// wire number with arguments decoded from zero bytes, must come back
    /// refused by the hook. A method whose handler ran (or that the
    /// dispatcher does not know) fails the test.
    #[tokio::test]
    async fn no_method_reaches_its_handler_without_the_hook() {
        let uuid = uuid::Uuid::new_v4();
        let node = RaftNode { addr: "127.0.0.1:1".into(), name: "s1".into(), node_id: uuid.to_string() };
        let tasks = tokio_util::task::TaskTracker::new();
        let rpc = RpcClient::new();
        let consensus =
            Consensus::start(ConsensusConfig::dev_single(raft_id(&uuid), node), rpc.clone(), &tasks)
                .await
                .unwrap();
        let settings = super::super::ServerSettings {
            datacenter: "dc1".into(),
            default_query_time: Duration::from_secs(300),
            max_query_time: Duration::from_secs(600),
            rpc_hold_timeout: Duration::from_secs(1),
            autopilot: Default::default(),
            acl: Default::default(),
            coordinates: None,
            config_entry_bootstrap: Vec::new(),
        };
        let mut server = Server::new(consensus, settings, rpc);
        server.authz = super::super::authz::Policy::DenyAll;
        let zeros = bytes::Bytes::from(vec![0u8; 256]);
        for (id, name) in method::ALL {
            let call = WireCall { method: *id, ctx: RequestContext::default(), body: zeros.clone() };
            match server.serve_wire(call).await {
                Err(RpcError::PermissionDenied(msg)) => assert!(msg.contains(name), "{name}: {msg}"),
                other => panic!("method {name} ({id}) answered {other:?} past a deny-all hook"),
            }
        }
        // The in-process path is the same function.
        let r = server.serve(RequestContext::default(), method::StatusPeers {}).await;
        assert!(matches!(r, Err(RpcError::PermissionDenied(_))), "{r:?}");
        // And with the hook open, a call goes through.
        server.authz = super::super::authz::Policy::Acl;
        assert_eq!(server.serve(RequestContext::default(), method::Ping {}).await, Ok(()));
        server.consensus.shutdown().await;
    }
}
