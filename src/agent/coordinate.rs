//! Network coordinates on the agent side: sending our LAN coordinate to the
//! servers at Consul's rate-scaled interval, and `?near=` sorting of
//! catalog and health answers by the coordinates the servers store.

use super::Agent;
use crate::catalog::coordinates::CoordinateEntry;
use crate::config::runtime::CoordinateSync;
use crate::coordinate::Coordinate;
use crate::rpc::{method, QueryOptions, RequestContext, RpcError};
use rand::Rng;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Sends our LAN coordinate every max(interval_min, members / rate_target)
/// plus a random stagger of up to the same again (Consul's spread), so a
/// large cluster's servers see about `rate_target` updates per second.
pub async fn run_sync(agent: Agent, sync: CoordinateSync, shutdown: CancellationToken) {
    let mut denied_reported = false;
    loop {
        let members = agent.gossip().map_or(1, |p| p.lan.members().len());
        let base = sync.interval(members);
        let stagger = Duration::from_millis(rand::rng().random_range(0..=base.as_millis().max(1) as u64));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(base + stagger) => {}
        }
        let Some(coord) = agent.gossip().and_then(|p| p.lan.coordinate()) else { continue };
        if !coord.is_valid() {
            continue;
        }
        let entry = CoordinateEntry { node: agent.node_name(), segment: String::new(), coord };
        match agent.call(agent.own_context(), method::CoordinateUpdate { entry }).await {
            Ok(_) => {}
            Err(RpcError::PermissionDenied(why)) => {
                if !denied_reported {
                    denied_reported = true;
                    tracing::warn!(target: "agent", error = %why, "coordinate update blocked by ACLs: the agent token needs node:write on this node");
                }
            }
            Err(e @ (RpcError::NoLeader | RpcError::CoordinatesDisabled)) => {
                tracing::debug!(target: "agent", error = %e, "coordinate update not sent")
            }
            Err(e) => tracing::warn!(target: "agent", error = %e, "coordinate update failed"),
        }
    }
}

impl Agent {
    /// The stored coordinates of this request's datacenter, by node, as the
    /// caller may read them (a read without blocking). Empty when the
    /// servers have coordinates disabled.
    pub async fn node_coordinates(
        &self,
        rc: &RequestContext,
    ) -> Result<HashMap<String, Coordinate>, RpcError> {
        let read =
            RequestContext { query: QueryOptions { min_index: 0, max_wait: None, ..rc.query }, ..rc.clone() };
        match self.call(read, method::CoordinateNodes { segment: None }).await {
            Ok((_, list)) => {
                let mut out = HashMap::new();
                for e in list {
                    // The default segment wins over others for the same node.
                    if e.segment.is_empty() || !out.contains_key(&e.node) {
                        out.insert(e.node, e.coord);
                    }
                }
                Ok(out)
            }
            Err(RpcError::CoordinatesDisabled) => Ok(HashMap::new()),
            Err(e) => Err(e),
        }
    }

    /// `?near=`: sorts `items` by estimated RTT from the node `near` names
    /// (`_agent`: this agent), nearest first, stable; items whose node has
    /// no coordinate go last. An unknown source node leaves them unsorted.
    pub async fn sort_near<T>(
        &self,
        rc: &RequestContext,
        near: Option<&str>,
        items: &mut Vec<T>,
        node_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<(), RpcError> {
        let Some(near) = near.filter(|n| !n.is_empty()) else { return Ok(()) };
        let source = if near == "_agent" { self.node_name() } else { near.to_string() };
        let coords = self.node_coordinates(rc).await?;
        sort_by_distance(&coords, &source, items, node_of);
        Ok(())
    }
}

/// The sort behind `sort_near`, on coordinates already read.
pub fn sort_by_distance<T>(
    coords: &HashMap<String, Coordinate>,
    source: &str,
    items: &mut Vec<T>,
    node_of: impl Fn(&T) -> Option<&str>,
) {
    let Some(from) = coords.get(source) else { return };
    let distance = |t: &T| -> f64 {
        node_of(t)
            .and_then(|n| coords.get(n))
            .and_then(|c| from.distance_secs(c))
            .filter(|d| d.is_finite())
            .unwrap_or(f64::INFINITY)
    };
    let mut keyed: Vec<(f64, usize, T)> =
        items.drain(..).enumerate().map(|(i, t)| (distance(&t), i, t)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    items.extend(keyed.into_iter().map(|(_, _, t)| t));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinate::VivaldiConfig;

    fn at(x: f64) -> Coordinate {
        let mut c = Coordinate::origin(&VivaldiConfig::default());
        c.vec[0] = x;
        c
    }

    #[test]
    fn sorts_nearest_first_and_unknown_last() {
        let coords: HashMap<String, Coordinate> = [("me", 0.0), ("a", 0.3), ("b", 0.1), ("c", 0.2)]
            .into_iter()
            .map(|(n, x)| (n.to_string(), at(x)))
            .collect();
        let mut items = vec!["a", "ghost", "c", "b", "me"];
        sort_by_distance(&coords, "me", &mut items, |s| Some(*s));
        assert_eq!(items, vec!["me", "b", "c", "a", "ghost"]);
        // An unknown source leaves the order alone.
        let mut items = vec!["a", "b"];
        sort_by_distance(&coords, "nobody", &mut items, |s| Some(*s));
        assert_eq!(items, vec!["a", "b"]);
    }
}
