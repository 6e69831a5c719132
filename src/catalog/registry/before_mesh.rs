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
        Registry {
            nodes: r.nodes,
            services: r.services.into_iter().map(|(k, s)| (k, s.into())).collect(),
            by_name: r.by_name,
            checks: r.checks,
            index: r.index,
            journal: None,
        }
    }
}
