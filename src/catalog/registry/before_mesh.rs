//! `Registry` as encoded before services carried mesh fields: the same
//! tables with the old service layout, converted on decode (see
//! `catalog::before_mesh`). Read only by `State::decode` for old snapshots.

use super::{CatalogIndexes, Registry};
use crate::catalog::before_mesh::NodeService;
use crate::catalog::types::{HealthCheck, Node};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Deserialize)]
pub struct RegistryBeforeMesh {
    nodes: BTreeMap<String, Node>,
    services: BTreeMap<(String, String), NodeService>,
    by_name: BTreeMap<String, BTreeSet<(String, String)>>,
    checks: BTreeMap<(String, String), HealthCheck>,
    index: CatalogIndexes,
}

impl From<RegistryBeforeMesh> for Registry {
    fn from(r: RegistryBeforeMesh) -> Self {
        super::RegistryWire {
            nodes: r.nodes,
            services: r.services.into_iter().map(|(k, s)| (k, s.into())).collect(),
            by_name: r.by_name,
            checks: r.checks,
            index: r.index,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::before_mesh;
    use crate::catalog::types::{Registration, ServiceProxy};

    /// A registry written before the mesh fields (same tables, old service
    /// rows) decodes into today's registry with empty mesh fields.
    #[test]
    fn registry_from_before_mesh_decodes() {
        let mut r = Registry::default();
        let reg = Registration {
            node: Node { node: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
            service: Some(crate::catalog::types::NodeService {
                id: "web1".into(),
                service: "web".into(),
                port: 80,
                ..Default::default()
            }),
            ..Default::default()
        };
        r.register(5, &reg).unwrap();
        let old_services: BTreeMap<(String, String), before_mesh::NodeService> = r
            .services
            .iter()
            .map(|(k, s)| {
                let old = before_mesh::NodeService {
                    kind: s.kind.clone(),
                    id: s.id.clone(),
                    service: s.service.clone(),
                    port: s.port,
                    weights: s.weights,
                    create_index: s.create_index,
                    modify_index: s.modify_index,
                    ..Default::default()
                };
                (k.clone(), old)
            })
            .collect();
        // postcard encodes a struct as its fields in order: this is the
        // registry exactly as main wrote it.
        let old = postcard::to_allocvec(&(&r.nodes, &old_services, &r.by_name, &r.checks, &r.index)).unwrap();
        let back: Registry = postcard::from_bytes::<RegistryBeforeMesh>(&old).unwrap().into();
        let s = back.service("n1", "web1").unwrap();
        assert_eq!((s.service.as_str(), s.port, s.create_index), ("web", 80, 5));
        assert_eq!(s.proxy, ServiceProxy::default());
        assert_eq!(back.service_instances("web").len(), 1);
        assert_eq!(back.index, r.index);
    }
}
