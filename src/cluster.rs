//! The glue between gossip membership and the rest of the agent: which
//! servers a client agent may call, which members the leader reconciles
//! into the catalog, when `bootstrap_expect` forms the cluster, and
//! autopilot's view of the servers. Also the joins done at start
//! (`start_join`, `retry_join`).
//!
//! Gossip never writes to Raft itself: this module reads members and calls
//! the server's methods.

use crate::agent::client::ServerPool;
use crate::config::RuntimeConfig;
use crate::gossip::{Gossip, GossipConfig, MemberEvent, Pool, Pools};
use crate::server::autopilot::AutopilotState;
use crate::server::bootstrap::Bootstrap;
use crate::server::members::server_members;
use crate::server::Server;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// An error from a module whose own error type is not settled (gossip):
/// kept whole, shown as it shows itself.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the gossip pools could not start (the agent then stops with this text).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("creating {}: {source}", .path.display())]
    SerfDir { path: PathBuf, source: std::io::Error },
    #[error("Failed to start LAN Serf: {0}")]
    LanSerf(#[source] Cause),
    #[error("Failed to start WAN Serf: {0}")]
    WanSerf(#[source] Cause),
}

fn gossip_config(
    cfg: &RuntimeConfig,
    pool: Pool,
    tags: BTreeMap<String, String>,
    data_dir: Option<&Path>,
) -> GossipConfig {
    let (name, bind, advertise, settings, files) = match pool {
        Pool::Lan => (
            cfg.node_name.clone(),
            SocketAddr::new(cfg.serf_bind_lan, cfg.ports.serf_lan as u16),
            SocketAddr::new(cfg.advertise_addr, cfg.ports.serf_lan as u16),
            cfg.gossip_lan.clone(),
            ("local.keyring", "local.snapshot"),
        ),
        Pool::Wan => (
            format!("{}.{}", cfg.node_name, cfg.datacenter),
            SocketAddr::new(cfg.serf_bind_wan, cfg.ports.serf_wan as u16),
            SocketAddr::new(cfg.advertise_addr_wan, cfg.ports.serf_wan as u16),
            cfg.gossip_wan.clone(),
            ("remote.keyring", "remote.snapshot"),
        ),
    };
    let mut g = GossipConfig::new(name, bind, pool);
    g.advertise = Some(advertise);
    g.tags = tags;
    g.settings = settings;
    g.server = cfg.server;
    g.keys = cfg.encrypt.iter().cloned().collect();
    g.verify_incoming = cfg.encrypt_verify_incoming;
    g.verify_outgoing = cfg.encrypt_verify_outgoing;
    g.rejoin_after_leave = cfg.rejoin_after_leave;
    g.disable_coordinates = cfg.disable_coordinates;
    g.reconnect_timeout = if pool == Pool::Lan { cfg.reconnect_timeout } else { cfg.reconnect_timeout_wan };
    if let Some(dir) = data_dir {
        let serf = dir.join("serf");
        if !cfg.disable_keyring_file {
            g.keyring_file = Some(serf.join(files.0));
        }
        g.snapshot_path = Some(serf.join(files.1));
    }
    g
}

/// Starts the LAN pool (and the WAN pool on servers).
pub async fn start_pools(
    cfg: &RuntimeConfig,
    lan_tags: BTreeMap<String, String>,
    data_dir: Option<&Path>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Pools, ClusterError> {
    if let Some(dir) = data_dir {
        let path = dir.join("serf");
        std::fs::create_dir_all(&path).map_err(|source| ClusterError::SerfDir { path, source })?;
    }
    let lan =
        Gossip::start(gossip_config(cfg, Pool::Lan, lan_tags.clone(), data_dir), tasks, shutdown.clone())
            .await
            .map_err(|e| ClusterError::LanSerf(e.into()))?;
    let wan = if cfg.server && cfg.ports.serf_wan > 0 {
        let mut tags = lan_tags;
        tags.remove("segment");
        let g = Gossip::start(gossip_config(cfg, Pool::Wan, tags, data_dir), tasks, shutdown)
            .await
            .map_err(|e| ClusterError::WanSerf(e.into()))?;
        Some(g)
    } else {
        None
    };
    Ok(Pools { lan, wan })
}

/// Follows LAN membership: keeps a client's server pool current, and on
/// servers kicks the leader's reconcile, runs `bootstrap_expect` until the
/// cluster exists, and runs autopilot rounds.
pub async fn run_membership(
    cfg: Arc<RuntimeConfig>,
    lan: Gossip,
    server: Option<Arc<Server>>,
    pool: Option<Arc<ServerPool>>,
    reconcile_kick: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut events = lan.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut autopilot = AutopilotState::default();
    let mut bootstrapped = cfg.bootstrap_expect <= 1;
    let mut last_wait_log = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ev = events.recv() => {
                match ev {
                    Ok(MemberEvent::Join(m)) => tracing::info!(target: "agent.server.serf.lan", member = %m.name, address = %m.addr, "member joined"),
                    Ok(MemberEvent::Leave(m)) => tracing::info!(target: "agent.server.serf.lan", member = %m.name, "member left"),
                    Ok(MemberEvent::Failed(m)) => tracing::info!(target: "agent.server.serf.lan", member = %m.name, "member failed"),
                    Ok(MemberEvent::Reap(m)) => {
                        tracing::info!(target: "agent.server.serf.lan", member = %m.name, "member reaped");
                        for s in server_members(std::slice::from_ref(&m), &cfg.datacenter) {
                            autopilot.note_reaped(&s);
                        }
                    }
                    Ok(MemberEvent::Update(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
            _ = tick.tick() => {}
        }
        let members = lan.members();
        let servers = server_members(&members, &cfg.datacenter);
        if let Some(pool) = &pool {
            pool.set_servers(servers.iter().filter(|s| s.alive).map(|s| s.rpc_addr).collect());
        }
        let Some(server) = &server else { continue };
        reconcile_kick.notify_one();
        if !bootstrapped {
            match server.maybe_bootstrap(cfg.bootstrap_expect, &servers).await {
                Ok(Bootstrap::Bootstrapped(names)) => {
                    tracing::info!(target: "agent.server", servers = %names.join(","), "found expected number of peers, bootstrapped the cluster");
                    bootstrapped = true;
                }
                Ok(Bootstrap::AlreadyInCluster) => bootstrapped = true,
                Ok(Bootstrap::ExistingCluster(msg)) => {
                    tracing::info!(target: "agent.server", "{msg}");
                    bootstrapped = true;
                }
                Ok(Bootstrap::Waiting { have, want }) => {
                    if last_wait_log != Some(have) {
                        tracing::warn!(target: "agent.server.raft", have, want, "no cluster leader yet: waiting for the expected number of servers before bootstrapping");
                        last_wait_log = Some(have);
                    }
                }
                Ok(Bootstrap::Conflict(msg)) => tracing::error!(target: "agent.server", "{msg}"),
                Err(e) => {
                    tracing::warn!(target: "agent.server", error = %e, "bootstrap attempt failed; will retry")
                }
            }
        }
        let settings = server.autopilot_settings();
        if let Err(e) = server.autopilot_round(&servers, &settings, &mut autopilot).await {
            tracing::warn!(target: "agent.server.autopilot", error = %e, "autopilot round failed");
        }
        server.track_autopilot_health(&servers, &settings);
    }
}

/// Joins the configured peers at start: `start_join` and `retry_join` are
/// retried every `retry_interval` until one attempt reaches someone (or
/// `retry_max` attempts fail, which stops the agent, as Consul).
pub async fn join_at_start(
    pool_name: &'static str,
    gossip: Gossip,
    addrs: Vec<String>,
    interval: Duration,
    max_attempts: u32,
    shutdown: CancellationToken,
) {
    if addrs.is_empty() {
        return;
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tracing::info!(target: "agent", cluster = pool_name, "({pool_name}) joining: {:?}", addrs);
        let (n, errors) = gossip.join(&addrs).await;
        if n > 0 {
            tracing::info!(target: "agent", cluster = pool_name, "Join completed. Synced with {n} initial agents");
            return;
        }
        let why = errors.iter().map(|(a, e)| format!("{a}: {e}")).collect::<Vec<_>>().join("; ");
        if max_attempts > 0 && attempt >= max_attempts {
            tracing::error!(target: "agent", cluster = pool_name, error = %why, "max join retry exhausted, exiting");
            shutdown.cancel();
            return;
        }
        tracing::warn!(target: "agent", cluster = pool_name, retry_interval = %crate::duration::format(interval), error = %why, "Join cluster failed, will retry");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `consul agent` prints after "Error starting agent: ".
    #[test]
    fn messages() {
        let e = ClusterError::LanSerf("bind: address already in use".into());
        assert_eq!(e.to_string(), "Failed to start LAN Serf: bind: address already in use");
        let e = ClusterError::WanSerf("x".into());
        assert_eq!(e.to_string(), "Failed to start WAN Serf: x");
        let e = ClusterError::SerfDir {
            path: PathBuf::from("/d/serf"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.to_string(), "creating /d/serf: permission denied");
    }
}
