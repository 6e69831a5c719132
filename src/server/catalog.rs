//! The catalog and health endpoints (Consul's `Catalog.*` and `Health.*`
//! RPCs): registration, and reads that block on exactly what they read.

use super::blocking::Interest;
use super::Server;
use crate::catalog::registry::{topic_node, topic_service, TOPIC_CHECKS, TOPIC_NODES, TOPIC_SERVICES};
use crate::catalog::types::{
    aggregate, Deregistration, HealthCheck, Node, NodeService, Registration, PASSING,
};
use crate::catalog::{Command, CommandResult};
use crate::consensus::state_machine::ServiceNames;
use crate::rpc::{NodeDump, QueryMeta, QueryOptions, RpcError};
pub use crate::rpc::{ServiceFilter, ServiceHealth};
use std::collections::BTreeMap;

fn meta_matches(meta: &BTreeMap<String, String>, want: &[(String, String)]) -> bool {
    want.iter().all(|(k, v)| meta.get(k) == Some(v))
}

fn tags_match(tags: &[String], want: &[String]) -> bool {
    want.iter().all(|w| tags.iter().any(|t| t.eq_ignore_ascii_case(w)))
}

impl Server {
    pub async fn catalog_register(&self, reg: Registration) -> Result<(), RpcError> {
        match self.apply(Command::Register(Box::new(reg))).await? {
            CommandResult::Unit => Ok(()),
            CommandResult::Error(e) => Err(RpcError::Internal(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    pub async fn catalog_deregister(&self, d: Deregistration) -> Result<(), RpcError> {
        match self.apply(Command::Deregister(d)).await? {
            CommandResult::Unit => Ok(()),
            CommandResult::Error(e) => Err(RpcError::Internal(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    fn topic(&self, topic: String) -> impl Fn() -> Interest + '_ {
        let hub = self.consensus.store.catalog_hub().clone();
        move || Interest(hub.watch_key(&topic))
    }

    pub async fn catalog_nodes(
        &self,
        node_meta: &[(String, String)],
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<Node>), RpcError> {
        self.blocking(opts, self.topic(TOPIC_NODES.into()), |s| {
            let nodes = s.catalog.nodes().filter(|n| meta_matches(&n.meta, node_meta)).cloned().collect();
            (s.catalog.index.nodes, nodes)
        })
        .await
    }

    /// `/v1/operator/usage`: counts over the whole catalog.
    pub async fn operator_usage(
        &self,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, crate::rpc::operator::ServiceUsage), RpcError> {
        use crate::catalog::mesh;
        self.blocking(opts, self.topic(TOPIC_SERVICES.into()), |s| {
            let mut u = crate::rpc::operator::ServiceUsage::default();
            for k in [
                mesh::KIND_API_GATEWAY,
                "connect-native",
                mesh::KIND_CONNECT_PROXY,
                mesh::KIND_INGRESS_GATEWAY,
                mesh::KIND_MESH_GATEWAY,
                mesh::KIND_TERMINATING_GATEWAY,
            ] {
                u.connect_service_instances.insert(k.to_string(), 0);
            }
            let mut names = std::collections::BTreeSet::new();
            for n in s.catalog.nodes() {
                u.nodes += 1;
                for svc in s.catalog.node_services(&n.node) {
                    names.insert(svc.service.as_str());
                    u.service_instances += 1;
                    if !svc.kind.is_empty() {
                        *u.connect_service_instances.entry(svc.kind.clone()).or_default() += 1;
                    } else if svc.connect.native {
                        *u.connect_service_instances.entry("connect-native".into()).or_default() += 1;
                    }
                    if svc.kind.is_empty() && svc.service != "consul" {
                        u.billable_service_instances += 1;
                    }
                }
            }
            u.services = names.len() as u64;
            (s.catalog.index.services.max(s.catalog.index.nodes), u)
        })
        .await
    }

    /// Service names with the union of their tags.
    pub async fn catalog_services(
        &self,
        node_meta: &[(String, String)],
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, ServiceNames), RpcError> {
        let store = &self.consensus.store;
        self.blocking(opts, self.topic(TOPIC_SERVICES.into()), |s| {
            let out = if node_meta.is_empty() {
                store.service_names(s)
            } else {
                let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for n in s.catalog.nodes().filter(|n| meta_matches(&n.meta, node_meta)) {
                    for svc in s.catalog.node_services(&n.node) {
                        let tags = out.entry(svc.service.clone()).or_default();
                        for t in &svc.tags {
                            if !tags.contains(t) {
                                tags.push(t.clone());
                            }
                        }
                    }
                }
                for tags in out.values_mut() {
                    tags.sort();
                }
                std::sync::Arc::new(out)
            };
            (s.catalog.index.services, out)
        })
        .await
    }

    pub async fn catalog_service(
        &self,
        name: &str,
        filter: &ServiceFilter,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<(Node, NodeService)>), RpcError> {
        self.blocking(opts, self.topic(topic_service(name)), |s| {
            let instances = if filter.connect {
                s.catalog.connect_instances(name)
            } else {
                s.catalog.service_instances(name)
            };
            let out = instances
                .into_iter()
                .filter(|(n, svc)| {
                    tags_match(&svc.tags, &filter.tags) && meta_matches(&n.meta, &filter.node_meta)
                })
                .map(|(n, svc)| (n.clone(), svc.clone()))
                .collect();
            (s.catalog.service_index(name), out)
        })
        .await
    }

    pub async fn catalog_node(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<(Node, Vec<NodeService>)>), RpcError> {
        self.blocking(opts, self.topic(topic_node(name)), |s| {
            let out =
                s.catalog.node(name).map(|n| (n.clone(), s.catalog.node_services(name).cloned().collect()));
            (s.catalog.node_index(name), out)
        })
        .await
    }

    pub async fn health_service(
        &self,
        name: &str,
        filter: &ServiceFilter,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<ServiceHealth>), RpcError> {
        self.blocking(opts, self.topic(topic_service(name)), |s| {
            let mut out = Vec::new();
            let instances = if filter.connect {
                s.catalog.connect_instances(name)
            } else {
                s.catalog.service_instances(name)
            };
            for (n, svc) in instances {
                if !tags_match(&svc.tags, &filter.tags) || !meta_matches(&n.meta, &filter.node_meta) {
                    continue;
                }
                let checks: Vec<HealthCheck> =
                    s.catalog.instance_checks(&n.node, &svc.id).into_iter().cloned().collect();
                if filter.passing_only && aggregate(checks.iter().map(|c| c.status.as_str())) != PASSING {
                    continue;
                }
                out.push(ServiceHealth { node: n.clone(), service: svc.clone(), checks });
            }
            (s.catalog.service_index(name), out)
        })
        .await
    }

    /// The first node whose address is `ip`, else the first service
    /// instance whose service address is `ip`: `(is_node, name, dc)`.
    pub async fn catalog_reverse(
        &self,
        ip: &str,
        opts: &QueryOptions,
    ) -> Result<Option<(bool, String, String)>, RpcError> {
        self.check_consistency(opts).await?;
        Ok(self.consensus.store.read(|s| {
            if let Some(n) = s.catalog.nodes().find(|n| n.address == ip) {
                return Some((true, n.node.clone(), n.datacenter.clone()));
            }
            for n in s.catalog.nodes() {
                if let Some(svc) = s.catalog.node_services(&n.node).find(|svc| svc.address == ip) {
                    return Some((false, svc.service.clone(), n.datacenter.clone()));
                }
            }
            None
        }))
    }

    pub async fn health_node(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<HealthCheck>), RpcError> {
        self.blocking(opts, self.topic(topic_node(name)), |s| {
            (s.catalog.node_index(name), s.catalog.node_checks(name).cloned().collect())
        })
        .await
    }

    pub async fn health_checks(
        &self,
        service: &str,
        node_meta: &[(String, String)],
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<HealthCheck>), RpcError> {
        self.blocking(opts, self.topic(topic_service(service)), |s| {
            let checks = s
                .catalog
                .service_checks(service)
                .into_iter()
                .filter(|c| {
                    node_meta.is_empty()
                        || s.catalog.node(&c.node).is_some_and(|n| meta_matches(&n.meta, node_meta))
                })
                .cloned()
                .collect();
            (s.catalog.service_index(service), checks)
        })
        .await
    }

    /// Every node (or the one named) with its services and checks, for the
    /// web UI's internal endpoints. The dump reads all three tables, so it
    /// reports the latest of their indexes and wakes on any catalog change.
    pub async fn internal_node_dump(
        &self,
        node: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<NodeDump>), RpcError> {
        let hub = self.consensus.store.catalog_hub().clone();
        let interest = move || Interest(hub.watch_prefix(""));
        self.blocking(opts, interest, |s| {
            let c = &s.catalog;
            let dump = c
                .nodes()
                .filter(|n| node.is_none_or(|want| n.node == want))
                .map(|n| NodeDump {
                    node: n.clone(),
                    services: c.node_services(&n.node).cloned().collect(),
                    checks: c.node_checks(&n.node).cloned().collect(),
                })
                .collect();
            let index = c.index.nodes.max(c.index.services).max(c.index.checks);
            (index, dump)
        })
        .await
    }

    /// Checks in a state (`any`, `passing`, `warning`, `critical`).
    pub async fn health_state(
        &self,
        state: &str,
        node_meta: &[(String, String)],
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<HealthCheck>), RpcError> {
        self.blocking(opts, self.topic(TOPIC_CHECKS.into()), |s| {
            let checks = s
                .catalog
                .checks()
                .filter(|c| state == "any" || c.status == state)
                .filter(|c| {
                    node_meta.is_empty()
                        || s.catalog.node(&c.node).is_some_and(|n| meta_matches(&n.meta, node_meta))
                })
                .cloned()
                .collect();
            (s.catalog.index.checks, checks)
        })
        .await
    }
}
