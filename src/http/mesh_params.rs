//! The read parameters Consul's catalog and health endpoints take for the
//! mesh: `?peer=` (cluster peering; we have none) and
//! `?merge-central-config` (config entries merged into the services).

use super::query::Params;
use crate::catalog::types::NodeService;

/// Whether the read names a cluster peer (`?peer=<name>`). This agent has
/// no peerings, so such a read finds nothing: the endpoint answers its
/// empty shape with the index headers of the local read.
pub fn peer_requested(params: &Params) -> bool {
    params.get("peer").is_some_and(|p| !p.is_empty())
}

/// `?merge-central-config`: Consul merges the `proxy-defaults` and
/// `service-defaults` config entries into each returned service. The
/// parameter is accepted; the merge arrives with config entries (not stored
/// by this build yet), so today the service is returned as registered.
pub fn merge_central_config(service: NodeService) -> NodeService {
    service
}

/// Applies `?merge-central-config` when the request asks for it.
pub fn maybe_merge(params: &Params, service: &NodeService) -> NodeService {
    if params.has("merge-central-config") {
        merge_central_config(service.clone())
    } else {
        service.clone()
    }
}
