//! Network coordinates on a server: agents' updates are queued here and
//! applied through Raft in batches every `update_period` (Consul's
//! coordinate endpoint), the table is read for `/v1/coordinate/nodes` and
//! `?near` sorting, and the WAN pool's coordinates of servers answer
//! `/v1/coordinate/datacenters` and order `/v1/catalog/datacenters`.

use super::Server;
use crate::catalog::coordinates::{CoordinateEntry, DatacenterCoordinates, TOPIC_COORDINATES};
use crate::catalog::Command;
use crate::coordinate::{median, Coordinate, VivaldiConfig};
use crate::rpc::message::{QueryMeta, QueryOptions, RpcError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Updates received since the last batch, newest per (node, segment).
#[derive(Default)]
pub(crate) struct PendingUpdates(std::sync::Mutex<HashMap<(String, String), Coordinate>>);

impl Server {
    fn coordinates_enabled(&self) -> Result<&crate::config::runtime::CoordinateSync, RpcError> {
        self.settings.coordinates.as_ref().ok_or(RpcError::CoordinatesDisabled)
    }

    /// Queues an agent's coordinate for the next batch. Refused with a
    /// clear error when it does not fit the coordinate space.
    pub async fn coordinate_update(&self, entry: CoordinateEntry) -> Result<bool, RpcError> {
        self.coordinates_enabled()?;
        entry.coord.check(&VivaldiConfig::default()).map_err(|e| RpcError::BadRequest(e.to_string()))?;
        if entry.node.is_empty() {
            return Err(RpcError::BadRequest("Must provide node".into()));
        }
        let mut q = self.coordinate_updates.0.lock().unwrap_or_else(|e| e.into_inner());
        q.insert((entry.node, entry.segment), entry.coord);
        Ok(true)
    }

    /// Takes the queued updates as batches, dropping what exceeds
    /// `max_batches` (the next round brings fresher values).
    fn take_batches(&self) -> Vec<Vec<CoordinateEntry>> {
        let Some(tuning) = self.settings.coordinates.as_ref() else { return Vec::new() };
        let pending: Vec<_> = {
            let mut q = self.coordinate_updates.0.lock().unwrap_or_else(|e| e.into_inner());
            q.drain().collect()
        };
        let limit = tuning.batch_size * tuning.max_batches;
        if pending.len() > limit {
            tracing::warn!(
                target: "agent.server.coordinate",
                discarded = pending.len() - limit,
                "discarded coordinate updates over the batch limit"
            );
        }
        let entries: Vec<CoordinateEntry> = pending
            .into_iter()
            .take(limit)
            .map(|((node, segment), coord)| CoordinateEntry { node, segment, coord })
            .collect();
        entries.chunks(tuning.batch_size.max(1)).map(<[CoordinateEntry]>::to_vec).collect()
    }

    pub async fn coordinate_nodes(
        &self,
        segment: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<CoordinateEntry>), RpcError> {
        self.coordinates_enabled()?;
        self.blocking(opts, self.coordinate_topic(), |s| {
            let mut list = s.coordinates.list();
            if let Some(seg) = segment {
                list.retain(|e| e.segment == seg);
            }
            (s.coordinates.index, list)
        })
        .await
    }

    pub async fn coordinate_node(
        &self,
        node: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<CoordinateEntry>), RpcError> {
        self.coordinates_enabled()?;
        self.blocking(opts, self.coordinate_topic(), |s| (s.coordinates.index, s.coordinates.node(node)))
            .await
    }

    fn coordinate_topic(&self) -> impl Fn() -> super::blocking::Interest + '_ {
        let hub = self.consensus.store.catalog_hub().clone();
        move || super::blocking::Interest(hub.watch_key(TOPIC_COORDINATES))
    }

    /// The WAN coordinates of every datacenter's servers, by datacenter
    /// (Consul's single built-in area, whose ID is `wan` on the wire even
    /// though its API docs show `WAN`), node names without the `.dc` suffix.
    pub fn coordinate_datacenters(&self) -> Result<Vec<DatacenterCoordinates>, RpcError> {
        self.coordinates_enabled()?;
        let Some(wan) = self.wan() else { return Ok(Vec::new()) };
        let coords = wan.coordinates();
        let mut by_dc: BTreeMap<String, Vec<CoordinateEntry>> = BTreeMap::new();
        for m in wan.members() {
            if m.status != crate::gossip::MemberStatus::Alive {
                continue;
            }
            let Some(dc) = m.tags.get("dc") else { continue };
            let list = by_dc.entry(dc.clone()).or_default();
            if let Some(c) = coords.get(&m.name) {
                let node = m.name.strip_suffix(&format!(".{dc}")).unwrap_or(&m.name).to_string();
                list.push(CoordinateEntry { node, segment: String::new(), coord: c.clone() });
            }
        }
        Ok(by_dc
            .into_iter()
            .map(|(datacenter, mut coordinates)| {
                coordinates.sort_by(|a, b| a.node.cmp(&b.node));
                DatacenterCoordinates { datacenter, area_id: "wan".into(), coordinates }
            })
            .collect())
    }

    /// Datacenters sorted by the median estimated RTT from this server to
    /// their servers (WAN coordinates), ours first; datacenters without
    /// coordinates come last, by name.
    pub fn datacenters_by_distance(&self, names: Vec<String>) -> Vec<String> {
        let local = self.settings.datacenter.clone();
        let Some(wan) = self.wan() else { return names };
        let Some(mine) = wan.coordinate() else { return names };
        let dcs = match self.coordinate_datacenters() {
            Ok(d) => d,
            Err(_) => return names,
        };
        let distance = |dc: &str| -> Option<f64> {
            let d = dcs.iter().find(|d| d.datacenter == dc)?;
            let mut rtts: Vec<f64> =
                d.coordinates.iter().filter_map(|c| mine.distance_secs(&c.coord)).collect();
            median(&mut rtts)
        };
        let mut keyed: Vec<(bool, Option<f64>, String)> =
            names.into_iter().map(|n| (n != local, distance(&n), n)).collect();
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| match (a.1, b.1) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.2.cmp(&b.2))
        });
        keyed.into_iter().map(|(_, _, n)| n).collect()
    }
}

/// Applies the queued updates every `update_period` until shutdown.
pub async fn run_batches(server: Arc<Server>, shutdown: CancellationToken) {
    let Some(period) = server.settings.coordinates.as_ref().map(|t| t.update_period) else { return };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        for batch in server.take_batches() {
            if let Err(e) = server.apply(Command::CoordinateBatchUpdate(batch)).await {
                tracing::warn!(target: "agent.server.coordinate", error = %e, "failed to apply coordinate updates");
            }
        }
    }
}
