//! The agent as the DNS server's view of the catalog. Every lookup is a
//! stale read when `dns_config.allow_stale` is on (Consul's default), so
//! DNS never waits on Raft; on a server it is served from local state, on a
//! client by any server.

use super::Agent;
use crate::catalog::types::{aggregate, CRITICAL, PASSING, WARNING};
use crate::dns::backend::{
    BackendError, BoxFut, DnsBackend, Health, NodeInfo, PreparedAnswer, ReverseHit, ServiceInstance,
};
use crate::rpc::{method, Consistency, QueryOptions, RequestContext, RpcError, ServiceFilter};
use std::net::IpAddr;
use std::sync::Arc;

pub struct AgentDns {
    agent: Agent,
}

impl AgentDns {
    pub fn new(agent: Agent) -> AgentDns {
        AgentDns { agent }
    }

    /// Lookups carry the agent's DNS token (`acl.tokens.dns`, else the
    /// default token): answers hold only what it may read.
    fn ctx(&self, allow_stale: bool) -> RequestContext {
        RequestContext {
            token: self.agent.tokens().dns_token(),
            ..RequestContext::query(QueryOptions {
                consistency: if allow_stale { Consistency::Stale } else { Consistency::Default },
                ..Default::default()
            })
        }
    }

    fn check_dc(&self, dc: Option<&str>) -> Result<(), BackendError> {
        self.agent.check_dc(dc).map_err(|_| BackendError::NoPathToDatacenter)
    }

    /// `translate_wan_addrs`: answers about another datacenter than ours
    /// carry its nodes' and services' WAN addresses where they have one, as
    /// Consul's DNS does (the LAN addresses are unreachable from here).
    fn use_wan(&self, answer_dc: Option<&str>) -> bool {
        let cfg = self.agent.config();
        cfg.translate_wan_addrs && answer_dc.is_some_and(|dc| !dc.eq_ignore_ascii_case(&cfg.datacenter))
    }
}

/// The WAN view of one catalog entry (see `AgentDns::use_wan`).
fn translate_wan(mut e: crate::rpc::message::ServiceHealth) -> crate::rpc::message::ServiceHealth {
    if let Some(wan) = e.node.tagged_addresses.get("wan") {
        e.node.address = wan.clone();
    }
    if let Some(wan) = e.service.tagged_addresses.get("wan") {
        e.service.address = wan.address.clone();
        e.service.port = wan.port;
    }
    e
}

/// One catalog entry as the DNS layer sees it.
fn instance(e: crate::rpc::message::ServiceHealth) -> ServiceInstance {
    let health = match aggregate(e.checks.iter().map(|c| c.status.as_str())) {
        PASSING => Health::Passing,
        WARNING => Health::Warning,
        CRITICAL => Health::Critical,
        _ => Health::Critical,
    };
    ServiceInstance {
        node: e.node.node,
        node_address: e.node.address,
        datacenter: e.node.datacenter,
        node_meta: e.node.meta,
        node_tagged_addresses: e.node.tagged_addresses,
        service_id: e.service.id,
        service_name: e.service.service,
        service_address: e.service.address,
        service_port: e.service.port,
        service_tags: e.service.tags,
        weight_passing: e.service.weights.passing.max(0) as u32,
        weight_warning: e.service.weights.warning.max(0) as u32,
        health,
    }
}

fn backend_err(e: RpcError) -> BackendError {
    match e {
        RpcError::NoPathToDatacenter => BackendError::NoPathToDatacenter,
        RpcError::NoLeader => BackendError::NoLeader,
        other => BackendError::Other(other.to_string()),
    }
}

fn node_info(n: &crate::catalog::types::Node) -> NodeInfo {
    NodeInfo {
        node: n.node.clone(),
        address: n.address.clone(),
        datacenter: n.datacenter.clone(),
        meta: n.meta.clone(),
        tagged_addresses: n.tagged_addresses.clone(),
    }
}

impl DnsBackend for AgentDns {
    fn local_datacenter(&self) -> String {
        self.agent.config().datacenter.clone()
    }

    fn service_instances<'a>(
        &'a self,
        service: &'a str,
        dc: Option<&'a str>,
        allow_stale: bool,
    ) -> BoxFut<'a, Result<(u64, Arc<Vec<ServiceInstance>>), BackendError>> {
        let local = self.local_datacenter();
        Box::pin(super::dc::in_datacenter(dc.map(str::to_string), &local, async move {
            self.check_dc(dc)?;
            let args = method::HealthService { name: service.to_string(), filter: ServiceFilter::default() };
            let (meta, entries) = self.agent.call(self.ctx(allow_stale), args).await.map_err(backend_err)?;
            let wan = self.use_wan(dc);
            let out = entries.into_iter().map(|e| instance(if wan { translate_wan(e) } else { e })).collect();
            Ok((meta.index, Arc::new(out)))
        }))
    }

    /// On a server, for stale-allowed lookups in the local datacenter: the
    /// same index `health_service` would report (`service_index`, at least
    /// 1), read without copying anything.
    fn service_index(&self, service: &str, dc: Option<&str>, allow_stale: bool) -> Option<u64> {
        if !allow_stale || dc.is_some_and(|d| !d.eq_ignore_ascii_case(&self.agent.config().datacenter)) {
            return None;
        }
        let super::Delegate::Server(server) = &self.agent.inner.delegate else { return None };
        Some(server.consensus.store.read(|s| s.catalog.service_index(service)).max(1))
    }

    fn acl_generation(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let cfg = self.agent.config();
        if !cfg.acl.enabled {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.agent.tokens().dns_token().hash(&mut h);
        match &self.agent.inner.delegate {
            // A server knows when any token or policy changed.
            super::Delegate::Server(server) => {
                server.consensus.store.read(|s| s.acl.max_index()).hash(&mut h)
            }
            // A client re-resolves within the token TTL, as its own endpoints do.
            super::Delegate::Client(_) => {
                let ttl = cfg.acl.token_ttl.as_millis().max(1);
                (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    / ttl)
                    .hash(&mut h)
            }
        }
        h.finish()
    }

    fn prepared_query<'a>(
        &'a self,
        name: &'a str,
        dc: Option<&'a str>,
        allow_stale: bool,
        source: Option<IpAddr>,
    ) -> BoxFut<'a, Result<Option<PreparedAnswer>, BackendError>> {
        let local = self.local_datacenter();
        Box::pin(super::dc::in_datacenter(dc.map(str::to_string), &local, async move {
            self.check_dc(dc)?;
            // `_agent` in the query means this agent; `_ip` the node at the
            // DNS client's address.
            let args = method::QueryExecute {
                key: name.to_string(),
                limit: 0,
                near: String::new(),
                agent_node: self.agent.node_name(),
                source_ip: source.map(|ip| ip.to_string()).unwrap_or_default(),
            };
            let out = match self.agent.call(self.ctx(allow_stale), args).await {
                Ok((_, out)) => out,
                Err(RpcError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(backend_err(e)),
            };
            let ttl = (!out.dns_ttl.is_empty()).then(|| crate::duration::parse(&out.dns_ttl).ok()).flatten();
            let wan = self.use_wan(Some(&out.datacenter));
            Ok(Some(PreparedAnswer {
                service: out.service,
                instances: out
                    .nodes
                    .into_iter()
                    .map(|e| instance(if wan { translate_wan(e) } else { e }))
                    .collect(),
                datacenter: out.datacenter,
                ttl,
            }))
        }))
    }

    fn node<'a>(
        &'a self,
        name: &'a str,
        dc: Option<&'a str>,
        allow_stale: bool,
    ) -> BoxFut<'a, Result<Option<NodeInfo>, BackendError>> {
        let local = self.local_datacenter();
        Box::pin(super::dc::in_datacenter(dc.map(str::to_string), &local, async move {
            self.check_dc(dc)?;
            let ctx = self.ctx(allow_stale);
            let args = method::CatalogNode { name: name.to_string() };
            let (_, found) = self.agent.call(ctx.clone(), args).await.map_err(backend_err)?;
            let wan = self.use_wan(dc);
            let view = |n: &crate::catalog::types::Node| {
                let mut info = node_info(n);
                if let Some(addr) = n.tagged_addresses.get("wan").filter(|_| wan) {
                    info.address = addr.clone();
                }
                info
            };
            if let Some((n, _)) = found {
                return Ok(Some(view(&n)));
            }
            // Names arrive lowercased; node names may not be.
            let args = method::CatalogNodes { node_meta: Vec::new() };
            let (_, nodes) = self.agent.call(ctx, args).await.map_err(backend_err)?;
            Ok(nodes.iter().find(|n| n.node.eq_ignore_ascii_case(name)).map(view))
        }))
    }

    fn reverse<'a>(&'a self, ip: IpAddr) -> BoxFut<'a, Result<Option<ReverseHit>, BackendError>> {
        Box::pin(async move {
            let args = method::CatalogReverse { ip: ip.to_string() };
            Ok(match self.agent.call(self.ctx(true), args).await.map_err(backend_err)? {
                None => None,
                Some((true, node, datacenter)) => Some(ReverseHit::Node { node, datacenter }),
                Some((false, service, datacenter)) => Some(ReverseHit::Service { service, datacenter }),
            })
        })
    }

    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<NodeInfo>, BackendError>> {
        Box::pin(async move {
            let args = method::CatalogService { name: "consul".into(), filter: ServiceFilter::default() };
            let (_, list) = self.agent.call(self.ctx(true), args).await.map_err(backend_err)?;
            Ok(list.iter().map(|(n, _)| node_info(n)).collect())
        })
    }
}
