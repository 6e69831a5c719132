//! The leader's reconcile loop (Consul's `leader.go`): every member of the
//! cluster is registered in the catalog with a `serfHealth` check that
//! follows its gossip state, servers with the `consul` service; members
//! that left are deregistered. Runs only while this server is leader.
//!
//! Until the gossip layer feeds real members, the member list is this
//! server alone.

use super::Server;
use crate::catalog::types::{
    Deregistration, HealthCheck, NodeService, Registration, CRITICAL, PASSING, SERF_HEALTH,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A cluster member as the leader reconciles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub name: String,
    pub id: String,
    pub address: String,
    pub status: MemberState,
    /// `Some(port)` for servers: their server RPC port.
    pub server_port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Alive,
    Failed,
    Left,
}

/// How often the leader reconciles even without member events.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(60);
/// How soon a pass that failed to reconcile a member is retried. (Raft's
/// status watch no longer wakes this loop on every heartbeat and write,
/// which used to retry a failure within a heartbeat, and spam its warning.)
const RECONCILE_RETRY: Duration = Duration::from_secs(1);

/// Runs the loop until `shutdown`; `members` lists the current members.
pub async fn run(
    server: Arc<Server>,
    members: Arc<dyn Fn() -> Vec<MemberInfo> + Send + Sync>,
    kick: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let mut raft_status = server.consensus.watch_status();
    let mut was_leader = false;
    let mut last_reap: Option<std::time::Instant> = None;
    loop {
        let is_leader = server.consensus.is_leader();
        if is_leader && !was_leader {
            tracing::info!(target: "agent.server", "cluster leadership acquired");
        } else if !is_leader && was_leader {
            tracing::info!(target: "agent.server", "cluster leadership lost");
        }
        if is_leader && !was_leader {
            // The first reap waits a full interval: right after a restart
            // gossip has not yet heard from every member, and reaping then
            // would deregister live servers (seen by the fault harness).
            last_reap = Some(std::time::Instant::now());
            server.bootstrap_config_entries().await;
        }
        was_leader = is_leader;
        let mut failed = false;
        if is_leader {
            let list = members();
            for m in &list {
                if let Err(e) = reconcile_member(&server, m).await {
                    tracing::warn!(target: "agent.server", member = %m.name, error = %e, "failed to reconcile member");
                    failed = true;
                }
            }
            // Member events reconcile one member each; nodes gossip does not
            // know at all are reaped once per reconcile interval, as Consul
            // does (so a node registered by hand with a serfHealth check
            // lives until the next full pass).
            if !list.is_empty() && last_reap.is_none_or(|t| t.elapsed() >= RECONCILE_INTERVAL) {
                last_reap = Some(std::time::Instant::now());
                if let Err(e) = reap_unknown(&server, &list).await {
                    tracing::warn!(target: "agent.server", error = %e, "failed to reap members");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = kick.notified() => {}
            r = raft_status.changed() => { if r.is_err() { return; } }
            _ = tokio::time::sleep(if failed { RECONCILE_RETRY } else { RECONCILE_INTERVAL }) => {}
        }
    }
}

/// Nodes the catalog holds with a `serfHealth` check that gossip no longer
/// knows (reaped, or pruned by force-leave) are deregistered, as Consul's
/// leader does. Nodes registered without `serfHealth` (external services
/// registered through the catalog API) are not ours to remove.
async fn reap_unknown(server: &Server, members: &[MemberInfo]) -> Result<(), crate::rpc::RpcError> {
    if members.is_empty() {
        return Ok(());
    }
    let stale: Vec<String> = server.consensus.store.read(|s| {
        s.catalog
            .nodes()
            .filter(|n| s.catalog.check(&n.node, SERF_HEALTH).is_some())
            .filter(|n| !members.iter().any(|m| m.name == n.node))
            .map(|n| n.node.clone())
            .collect()
    });
    for node in stale {
        tracing::info!(target: "agent.server", member = %node, "member reaped, deregistering");
        server.catalog_deregister(Deregistration { node, ..Default::default() }).await?;
    }
    Ok(())
}

async fn reconcile_member(server: &Server, m: &MemberInfo) -> Result<(), crate::rpc::RpcError> {
    let (existing_node, existing_check, existing_consul) = server.consensus.store.read(|s| {
        (
            s.catalog.node(&m.name).cloned(),
            s.catalog.check(&m.name, SERF_HEALTH).cloned(),
            s.catalog.service(&m.name, "consul").cloned(),
        )
    });
    if m.status == MemberState::Left {
        if existing_node.is_some() {
            tracing::info!(target: "agent.server", member = %m.name, "member left, deregistering");
            server.catalog_deregister(Deregistration { node: m.name.clone(), ..Default::default() }).await?;
        }
        return Ok(());
    }
    let (status, output) = match m.status {
        MemberState::Alive => (PASSING, "Agent alive and reachable"),
        _ => (CRITICAL, "Agent not live or unreachable"),
    };
    let node_ok =
        existing_node.as_ref().is_some_and(|n| n.address == m.address && (m.id.is_empty() || n.id == m.id));
    let check_ok = existing_check.as_ref().is_some_and(|c| c.status == status && c.output == output);
    let service = m.server_port.map(|port| NodeService {
        id: "consul".into(),
        service: "consul".into(),
        port,
        meta: consul_meta(),
        ..Default::default()
    });
    let service_ok = match (&service, &existing_consul) {
        (None, _) => true,
        (Some(want), Some(have)) => want.port == have.port,
        (Some(_), None) => false,
    };
    if node_ok && check_ok && service_ok {
        return Ok(());
    }
    let node = match (&existing_node, node_ok) {
        (Some(n), true) => n.clone(),
        (existing, _) => {
            let mut n = existing.clone().unwrap_or_default();
            n.node = m.name.clone();
            n.id = m.id.clone();
            n.address = m.address.clone();
            n.datacenter = server.settings.datacenter.clone();
            n
        }
    };
    let check = HealthCheck {
        node: m.name.clone(),
        check_id: SERF_HEALTH.into(),
        name: "Serf Health Status".into(),
        status: status.into(),
        output: output.into(),
        ..Default::default()
    };
    let reg = Registration {
        node,
        service: if service_ok { None } else { service },
        checks: if check_ok { Vec::new() } else { vec![check] },
        skip_node_update: node_ok,
        preserve_node_extras: true,
    };
    server.catalog_register(reg).await?;
    if m.status == MemberState::Failed && !check_ok {
        tracing::info!(target: "agent.server", member = %m.name, "member failed, marking health critical");
    }
    Ok(())
}

/// The `consul` service's meta, as Consul's servers publish it.
pub fn consul_meta() -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("raft_version".to_string(), "3".to_string());
    meta.insert("serf_protocol_current".to_string(), "2".to_string());
    meta.insert("serf_protocol_max".to_string(), "5".to_string());
    meta.insert("serf_protocol_min".to_string(), "1".to_string());
    meta.insert("version".to_string(), crate::version::CONSUL_VERSION.to_string());
    meta
}
