//! Gateway reads built from config entries and the catalog together:
//! the services a gateway fronts (`/v1/catalog/gateway-services/:gateway`)
//! and the ingress gateways in front of a service
//! (`/v1/health/ingress/:service`). Both block on the whole catalog hub
//! (config entries and registrations share it): a wildcard mapping changes
//! when any service is registered or removed.

use super::blocking::Interest;
use super::Server;
use crate::catalog::types::{aggregate, HealthCheck, PASSING};
use crate::catalog::State;
use crate::config_entry::gateways::{self, GatewayService};
use crate::config_entry::{self as ce, ConfigEntry};
use crate::rpc::{QueryMeta, QueryOptions, RpcError, ServiceFilter, ServiceHealth};
use std::collections::BTreeMap;

/// The typical services a wildcard can stand for, each with the lowest
/// index any of its instances was registered at.
fn wildcard_candidates(s: &State) -> Vec<(String, u64)> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for n in s.catalog.nodes() {
        for svc in s.catalog.node_services(&n.node) {
            if !svc.kind.is_empty() {
                continue;
            }
            let e = out.entry(svc.service.clone()).or_insert(svc.create_index);
            *e = (*e).min(svc.create_index);
        }
    }
    out.into_iter().collect()
}

/// The index of a read over gateway mappings: the config entries' index,
/// and when a wildcard is involved the services' (a service going away
/// removes a mapping without any entry changing).
fn mapping_index(s: &State, wildcard: bool) -> u64 {
    let mut index = s.config_entries.index;
    if wildcard {
        index = index.max(s.catalog.index.services);
    }
    index
}

fn gateway_entry<'a>(s: &'a State, name: &str) -> Option<&'a ConfigEntry> {
    s.config_entries
        .get(ce::INGRESS_GATEWAY, name)
        .or_else(|| s.config_entries.get(ce::TERMINATING_GATEWAY, name))
}

impl Server {
    fn whole_catalog(&self) -> impl Fn() -> Interest + '_ {
        let hub = self.consensus.store.catalog_hub().clone();
        move || Interest(hub.watch_prefix(""))
    }

    pub async fn gateway_services(
        &self,
        gateway: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<GatewayService>), RpcError> {
        self.blocking(opts, self.whole_catalog(), |s| match gateway_entry(s, gateway) {
            None => (mapping_index(s, false), Vec::new()),
            Some(e) => {
                let wildcard = gateways::has_wildcard(e);
                let catalog = if wildcard { wildcard_candidates(s) } else { Vec::new() };
                (mapping_index(s, wildcard), gateways::mappings(e, &catalog))
            }
        })
        .await
    }

    /// The instances (with health) of every ingress gateway that routes
    /// to `service`.
    pub async fn health_ingress(
        &self,
        service: &str,
        filter: &ServiceFilter,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<ServiceHealth>), RpcError> {
        self.blocking(opts, self.whole_catalog(), |s| {
            let entries: Vec<&ConfigEntry> = s.config_entries.of_kind(ce::INGRESS_GATEWAY).collect();
            let wildcard = entries.iter().any(|e| gateways::has_wildcard(e));
            let catalog = if wildcard { wildcard_candidates(s) } else { Vec::new() };
            let mut names: Vec<String> = Vec::new();
            for e in entries {
                if gateways::mappings(e, &catalog).iter().any(|g| g.service.eq_ignore_ascii_case(service)) {
                    names.push(e.name.clone());
                }
            }
            let mut index = mapping_index(s, wildcard);
            let mut out = Vec::new();
            for name in &names {
                index = index.max(s.catalog.service_index(name));
                for (n, svc) in s.catalog.service_instances(name) {
                    if svc.kind != crate::catalog::mesh::KIND_INGRESS_GATEWAY {
                        continue;
                    }
                    if !filter.node_meta.iter().all(|(k, v)| n.meta.get(k) == Some(v)) {
                        continue;
                    }
                    let checks: Vec<HealthCheck> =
                        s.catalog.instance_checks(&n.node, &svc.id).into_iter().cloned().collect();
                    if filter.passing_only && aggregate(checks.iter().map(|c| c.status.as_str())) != PASSING {
                        continue;
                    }
                    out.push(ServiceHealth { node: n.clone(), service: svc.clone(), checks });
                }
            }
            (index, out)
        })
        .await
    }
}
