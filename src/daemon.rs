//! The composition root of `consul agent`: start order, signals, shutdown
//! order. Implements no domain behaviour of its own.
//!
//! Start: logging → data dir (lock, node id) → consensus (servers) → agent
//! handle → HTTP. Stop: HTTP stops accepting → Raft shuts down → data dir
//! lock released. SIGINT/SIGTERM follow `skip_leave_on_interrupt` and
//! `leave_on_terminate` (Consul's defaults by role); a second signal exits
//! at once.

use crate::agent::client::ServerPool;
use crate::agent::LoadLocalError;
use crate::agent::{Agent, Delegate};
use crate::cluster::{self, ClusterError};
use crate::config::{LoadOptions, Loaded, RuntimeConfig};
use crate::consensus::{typ, Consensus, ConsensusConfig};
use crate::datadir::{DataDir, DataDirError};
use crate::dns::DnsConfigError;
use crate::rpc::client::RpcClient;
use crate::server::endpoints::RpcEndpoints;
use crate::server::leader::{self, MemberInfo};
use crate::server::{Server, ServerSettings};
use crate::watch::WatchError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a graceful leave may take before the agent exits anyway.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(15);

/// An error from a module whose own error type is not settled (consensus,
/// RPC, HTTP, the DNS listeners): kept whole, shown as it shows itself.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the agent could not start. `run` prints it after
/// "==> Error starting agent: " and exits 1, so every text is the one
/// operators (and tests) know.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Watches(#[from] WatchError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// `node_id` in `-dev` (no data dir to check it against).
    #[error("node_id: {0}")]
    NodeId(#[source] uuid::Error),
    #[error("Could not write PID file {}: {source}", .path.display())]
    PidFile { path: PathBuf, source: std::io::Error },
    #[error("internal error: neither server nor client")]
    NoDelegate,
    #[error(transparent)]
    LoadLocal(#[from] LoadLocalError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    DnsConfig(#[from] DnsConfigError),
    /// Applying a recovery file (`raft/peers.json`) at start.
    #[error("{0}")]
    Recovery(#[source] Cause),
    #[error("{0}")]
    Consensus(#[source] Cause),
    /// The server RPC listener.
    #[error("{0}")]
    Rpc(#[source] Cause),
    #[error("{0}")]
    Http(#[source] Cause),
    /// Certificate, key or CA files that do not load.
    #[error("Failed to configure TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The DNS listeners.
    #[error("{0}")]
    Dns(#[source] Cause),
}

/// Runs the agent until it is told to stop; returns the process exit code.
pub fn run(loaded: Loaded, opts: LoadOptions) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("consul").build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("==> Error starting agent: failed to start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(run_async(loaded, opts))
}

async fn run_async(loaded: Loaded, opts: LoadOptions) -> i32 {
    let cfg = Arc::new(loaded.config);
    crate::logging::init(cfg.log_level, cfg.log_json);
    raise_open_file_limit();
    crate::http::metrics::set_prometheus_retention(cfg.prometheus_retention_time);
    for w in &loaded.warnings {
        tracing::warn!(target: "agent", "{w}");
    }
    match start(cfg.clone(), opts).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("==> Error starting agent: {e}");
            1
        }
    }
}

/// Raises the soft open-file limit to the hard one (every HTTP connection,
/// so every blocking query, holds a descriptor; Consul's docs ask operators
/// to raise it, and Go's runtime raises the soft limit the same way) and
/// logs both limits once.
fn raise_open_file_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(target: "agent", error = %std::io::Error::last_os_error(), "could not read the open-file limit");
        return;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        } else {
            let error = std::io::Error::last_os_error();
            tracing::warn!(target: "agent", %error, soft = before, hard = lim.rlim_max, "could not raise the open-file limit");
        }
    }
    let show =
        |v: libc::rlim_t| if v == libc::RLIM_INFINITY { "unlimited".to_string() } else { v.to_string() };
    tracing::info!(target: "agent", soft = %show(lim.rlim_cur), hard = %show(lim.rlim_max), was = %show(before), "open-file limit (each HTTP connection and blocking query uses one)");
}

async fn start(cfg: Arc<RuntimeConfig>, opts: LoadOptions) -> Result<i32, StartError> {
    // Signal handlers first: a SIGTERM that arrives while the agent starts
    // (or just after it reported readiness) is handled, not fatal.
    let signals = Signals::install()?;
    // Watches are checked before anything starts: a bad one stops the agent.
    let (watches, watch_warnings) = crate::watch::parse_agent_watches(&cfg.watches)?;
    for w in &watch_warnings {
        tracing::warn!(target: "agent", "{w}");
    }
    let data_dir = match &cfg.data_dir {
        Some(p) => Some(DataDir::open(p)?),
        None => None,
    };
    let node_uuid = match &data_dir {
        Some(d) => d.node_id(cfg.node_id.as_deref())?,
        None => match &cfg.node_id {
            Some(id) => uuid::Uuid::parse_str(id).map_err(StartError::NodeId)?,
            None => uuid::Uuid::new_v4(),
        },
    };
    if let Some(pid_file) = &cfg.pid_file {
        std::fs::write(pid_file, format!("{}", std::process::id()))
            .map_err(|source| StartError::PidFile { path: pid_file.clone(), source })?;
    }
    print_banner(&cfg, &node_uuid);

    let tls = crate::tls::Tls::load(&cfg.tls, &cfg.datacenter, &cfg.domain)?;
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let rpc = RpcClient::with_tls(tls.clone());
    let (server, consensus) = if cfg.server {
        let (s, c) = start_server(&cfg, &node_uuid, data_dir.as_ref(), &rpc, &tls, &shutdown, &tasks).await?;
        (Some(s), Some(c))
    } else {
        (None, None)
    };
    let pool = (!cfg.server).then(|| Arc::new(ServerPool::new(rpc.clone())));
    let delegate = match (&server, &pool) {
        (Some(s), _) => Delegate::Server(s.clone()),
        (None, Some(p)) => Delegate::Client(p.clone()),
        (None, None) => return Err(StartError::NoDelegate),
    };
    let agent =
        Agent::new(cfg.clone(), node_uuid, delegate, shutdown.clone(), data_dir.as_ref().map(DataDir::path));
    agent.set_load_options(opts);
    agent.attach_tls(tls.clone());
    for w in agent.load_local()? {
        tracing::warn!(target: "agent", "{w}");
    }
    agent.start_checks(&tasks);

    // Gossip: the LAN pool for every agent, the WAN pool for servers.
    let pools = cluster::start_pools(
        &cfg,
        agent.member_tags(),
        data_dir.as_ref().map(DataDir::path),
        &tasks,
        shutdown.clone(),
    )
    .await?;
    agent.attach_gossip(pools.clone());
    if let Some(server) = &server {
        server.attach_gossip(pools.clone());
    }
    crate::agent::events::start(agent.clone(), &pools.lan, &tasks, shutdown.clone());
    if !cfg.disable_coordinates {
        tasks.spawn(crate::agent::coordinate::run_sync(
            agent.clone(),
            cfg.coordinate_sync.clone(),
            shutdown.clone(),
        ));
    }
    let kick = Arc::new(tokio::sync::Notify::new());
    if let Some(server) = &server {
        let lan = pools.lan.clone();
        let dc = cfg.datacenter.clone();
        let members: Arc<dyn Fn() -> Vec<MemberInfo> + Send + Sync> =
            Arc::new(move || crate::server::members::member_infos(&lan.members(), &dc));
        tasks.spawn(leader::run(server.clone(), members, kick.clone(), shutdown.clone()));
        tasks.spawn(crate::server::session::run_ttl_timers(server.clone(), shutdown.clone()));
        tasks.spawn(crate::server::acl::leader::run(server.clone(), shutdown.clone()));
        let tokens_of = agent.clone();
        tasks.spawn(crate::server::acl::replication::run(
            server.clone(),
            Arc::new(move || tokens_of.tokens().replication_token()),
            shutdown.clone(),
        ));
        tasks.spawn(crate::server::coordinate::run_batches(server.clone(), shutdown.clone()));
    }
    tasks.spawn(cluster::run_membership(
        cfg.clone(),
        pools.lan.clone(),
        server.clone(),
        pool.clone(),
        kick,
        shutdown.clone(),
    ));
    tasks.spawn(crate::agent::ae::run(agent.clone(), cfg.ae_interval, shutdown.clone()));
    let lan_joins: Vec<String> = cfg.start_join.iter().chain(cfg.retry_join.iter()).cloned().collect();
    tasks.spawn(cluster::join_at_start(
        "LAN",
        pools.lan.clone(),
        lan_joins,
        cfg.retry_interval,
        cfg.retry_max,
        shutdown.clone(),
    ));
    if let Some(wan) = &pools.wan {
        let wan_joins: Vec<String> =
            cfg.start_join_wan.iter().chain(cfg.retry_join_wan.iter()).cloned().collect();
        tasks.spawn(cluster::join_at_start(
            "WAN",
            wan.clone(),
            wan_joins,
            cfg.retry_interval_wan,
            cfg.retry_max_wan,
            shutdown.clone(),
        ));
    }

    let http_shutdown = CancellationToken::new();
    let bound = crate::http::serve(
        agent.clone(),
        &cfg.http_socket_addrs(),
        &cfg.https_socket_addrs(),
        &tls,
        http_shutdown.clone(),
        &tasks,
    )
    .await
    .map_err(|e| StartError::Http(e.into()))?;
    // Watches query this agent over HTTP and stop when HTTP stops.
    agent.attach_watches(crate::watch::AgentWatches::start(
        watches,
        watch_endpoint(&cfg, &bound),
        http_shutdown.clone(),
        &tasks,
    )?);
    let dns_addrs = cfg.dns_socket_addrs();
    if !dns_addrs.is_empty() {
        let dns_cfg = crate::dns::DnsServerConfig::from_runtime(&cfg)?;
        let backend = Arc::new(crate::agent::dns_backend::AgentDns::new(agent.clone()));
        crate::dns::serve(backend, dns_cfg, &dns_addrs, http_shutdown.clone(), &tasks)
            .await
            .map_err(|e| StartError::Dns(e.into()))?;
    }
    println!("==> Consul agent running!");
    println!("==> Log data will now stream in as it occurs:\n");
    tracing::info!(target: "agent", node = %cfg.node_name, datacenter = %cfg.datacenter, "consul agent running");
    crate::sdnotify::ready();

    let code = wait_for_signals(signals, &agent, &cfg).await;
    crate::sdnotify::stopping();

    // Shutdown order: stop accepting HTTP, stop gossip and the rest, then Raft.
    http_shutdown.cancel();
    if let Some(pools) = agent.gossip() {
        pools.lan.shutdown().await;
        if let Some(wan) = &pools.wan {
            wan.shutdown().await;
        }
    }
    shutdown.cancel();
    if let Some(c) = &consensus {
        c.shutdown().await;
    }
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await.is_err() {
        tracing::warn!(target: "agent", "some tasks did not stop within 5s");
    }
    if let Some(pid_file) = &cfg.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    drop(data_dir);
    tracing::info!(target: "agent", "shutdown complete");
    Ok(code)
}

/// Starts the server parts: Raft with its stores, the server endpoints and
/// the RPC listener.
async fn start_server(
    cfg: &Arc<RuntimeConfig>,
    node_uuid: &uuid::Uuid,
    data_dir: Option<&DataDir>,
    rpc: &RpcClient,
    tls: &crate::tls::Tls,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<(Arc<Server>, Consensus), StartError> {
    let raft_node = typ::RaftNode {
        addr: cfg.server_rpc_addr().to_string(),
        name: cfg.node_name.clone(),
        node_id: node_uuid.to_string(),
    };
    if let Some(d) = data_dir {
        crate::consensus::recovery::recover_at_start(&d.raft_dir(), d.path(), &raft_node)
            .await
            .map_err(|e| StartError::Recovery(e.into()))?;
    }
    let consensus = Consensus::start(
        ConsensusConfig {
            raft_dir: data_dir.map(DataDir::raft_dir),
            node_id: typ::raft_id(node_uuid),
            node: raft_node,
            datacenter: cfg.datacenter.clone(),
            raft_multiplier: cfg.raft_multiplier,
            dev: cfg.dev,
            snapshot_threshold: cfg.raft_snapshot_threshold,
            trailing_logs: cfg.raft_trailing_logs,
            bootstrap: cfg.bootstrap || cfg.dev,
        },
        rpc.clone(),
        tasks,
    )
    .await
    .map_err(|e| StartError::Consensus(e.into()))?;
    let server = Server::new(
        consensus.clone(),
        ServerSettings {
            datacenter: cfg.datacenter.clone(),
            default_query_time: cfg.default_query_time,
            max_query_time: cfg.max_query_time,
            rpc_hold_timeout: cfg.rpc_hold_timeout,
            autopilot: cfg.autopilot.clone(),
            acl: crate::server::acl::AclServerSettings {
                enabled: cfg.acl.enabled,
                default_policy: cfg.acl.default_policy,
                enable_key_list_policy: cfg.acl.enable_key_list_policy,
                initial_management: cfg.acl.tokens.initial_management.clone(),
                data_dir: cfg.data_dir.clone(),
                primary_datacenter: cfg.primary_datacenter.clone(),
                down_policy: cfg.acl.down_policy,
                token_ttl: cfg.acl.token_ttl,
                enable_token_replication: cfg.acl.enable_token_replication,
            },
            coordinates: (!cfg.disable_coordinates).then(|| cfg.coordinate_sync.clone()),
            config_entry_bootstrap: cfg.config_entry_bootstrap.clone(),
        },
        rpc.clone(),
    )
    .into_shared();
    crate::rpc::server::serve_tls(
        cfg.server_bind_addr(),
        Arc::new(RpcEndpoints(server.clone())),
        cfg.limits.rpc_max_conns_per_client,
        tls.clone(),
        cfg.limits.rpc_handshake_timeout,
        shutdown.clone(),
        tasks,
    )
    .await
    .map_err(|e| StartError::Rpc(e.into()))?;
    if cfg.bootstrap_expect > 1 {
        println!("==> WARNING: Expect Mode enabled, expecting {} servers", cfg.bootstrap_expect);
    }
    Ok((server, consensus))
}

/// How the agent's watches reach its API: plain HTTP when it listens on
/// it, else HTTPS with the agent's own certificate (which its
/// `verify_incoming` accepts) and CA.
fn watch_endpoint(cfg: &RuntimeConfig, bound: &crate::http::Bound) -> Option<crate::api::ClientConfig> {
    use crate::watch::agent::local_http_address;
    if let Some(address) = local_http_address(&bound.http) {
        return Some(crate::api::ClientConfig { address, ..Default::default() });
    }
    let address = local_http_address(&bound.https)?;
    let https = &cfg.tls.https;
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    Some(crate::api::ClientConfig {
        address: format!("https://{address}"),
        tls: crate::api::TlsOptions {
            ca_file: path(&https.ca_file),
            ca_path: path(&https.ca_path),
            client_cert: path(&https.cert_file),
            client_key: path(&https.key_file),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Waits for a signal (or a leave request) and returns the exit code.
/// The signals the agent handles, installed once at start.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, StartError> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(StartError::Signals)?,
            term: signal(SignalKind::terminate()).map_err(StartError::Signals)?,
            hup: signal(SignalKind::hangup()).map_err(StartError::Signals)?,
        })
    }
}

async fn wait_for_signals(signals: Signals, agent: &Agent, cfg: &RuntimeConfig) -> i32 {
    let Signals { mut int, mut term, mut hup } = signals;
    // SIGPIPE is ignored by the Rust runtime already.
    let token = agent.shutdown_token();
    loop {
        let graceful = tokio::select! {
            _ = int.recv() => {
                println!("==> Caught signal: interrupt");
                !cfg.skip_leave_on_interrupt
            }
            _ = term.recv() => {
                println!("==> Caught signal: terminated");
                cfg.leave_on_terminate
            }
            _ = hup.recv() => {
                println!("==> Caught signal: hangup");
                reload(agent);
                continue;
            }
            _ = token.cancelled() => {
                // A leave request over the API: it already left gracefully.
                return 0;
            }
        };
        if !graceful {
            tracing::info!(target: "agent", "Graceful shutdown disabled. Exiting");
            return 1;
        }
        println!("==> Gracefully shutting down agent...");
        tracing::info!(target: "agent", "Gracefully shutting down agent...");
        // A second signal, or a leave that takes too long, exits at once.
        return tokio::select! {
            r = agent.leave() => match r {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(target: "agent", error = %e, "Error on leave");
                    1
                }
            },
            _ = int.recv() => 1,
            _ = term.recv() => 1,
            _ = tokio::time::sleep(GRACEFUL_TIMEOUT) => {
                tracing::error!(target: "agent", "leave timed out, exiting");
                1
            }
        };
    }
}

/// SIGHUP: re-reads the configuration; a bad one is logged and the
/// running configuration kept.
fn reload(agent: &Agent) {
    match agent.reload() {
        Ok(summary) => tracing::info!(
            target: "agent",
            services = summary.services,
            checks = summary.checks,
            removed_services = ?summary.removed_services,
            removed_checks = ?summary.removed_checks,
            "reloaded configuration"
        ),
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "failed to reload configuration; keeping the running one")
        }
    }
}

fn print_banner(cfg: &RuntimeConfig, node_id: &uuid::Uuid) {
    let ports = &cfg.ports;
    let client = cfg.client_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
    println!("==> Starting Consul agent...");
    println!("              Version: '{}'", crate::version::CONSUL_VERSION);
    println!("             Revision: '{}'", crate::version::revision());
    println!("              Node ID: '{node_id}'");
    println!("            Node name: '{}'", cfg.node_name);
    println!("           Datacenter: '{}' (Segment: '<all>')", cfg.datacenter);
    println!("               Server: {} (Bootstrap: {})", cfg.server, cfg.bootstrap);
    println!(
        "          Client Addr: [{client}] (HTTP: {}, HTTPS: {}, gRPC: -1, gRPC-TLS: -1, DNS: {})",
        ports.http, ports.https, ports.dns
    );
    println!(
        "         Cluster Addr: {} (LAN: {}, WAN: {})",
        cfg.advertise_addr, ports.serf_lan, ports.serf_wan
    );
    println!("    Gossip Encryption: {}", cfg.encrypt.is_some());
    println!("     Auto-Encrypt-TLS: false");
    println!("          ACL Enabled: false");
    println!("           Data Store: {}", if cfg.dev { "memory (-dev)" } else { "disk" });
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` prints these after "==> Error starting agent: ", word for word;
    /// wrapped errors show exactly their own text.
    #[test]
    fn messages() {
        let e = StartError::PidFile {
            path: PathBuf::from("/run/x/consul.pid"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.to_string(), "Could not write PID file /run/x/consul.pid: entity not found");
        let e = StartError::Signals(std::io::Error::other("no"));
        assert_eq!(e.to_string(), "failed to install signal handlers: no");
        let e = StartError::NodeId(uuid::Uuid::parse_str("x").unwrap_err());
        assert!(e.to_string().starts_with("node_id: invalid "), "{e}");
        assert_eq!(StartError::NoDelegate.to_string(), "internal error: neither server nor client");
        let e = StartError::from(WatchError::NoType);
        assert_eq!(e.to_string(), "Watch type must be specified");
        let e = StartError::Consensus("Failed to start Raft: disk full".into());
        assert_eq!(e.to_string(), "Failed to start Raft: disk full");
        let e = StartError::from(ClusterError::LanSerf("bind failed".into()));
        assert_eq!(e.to_string(), "Failed to start LAN Serf: bind failed");
    }
}
