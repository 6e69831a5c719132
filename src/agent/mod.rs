//! The agent: this node's identity, the services and checks it owns
//! (`local`, `persist`, `ae`), and the one handle the front ends (HTTP,
//! DNS) use. Requests that need the replicated state go to its delegate:
//! the local `server::Server` in server mode (a remote server over RPC for
//! client agents, with the servers work).
//!
//! Must not know HTTP or DNS types.

pub mod acl;
pub mod ae;
pub mod client;
pub mod coordinate;
pub mod dc;
pub mod dns_backend;
pub mod events;
pub mod exec;
pub mod local;
pub mod persist;
pub mod reaper;
pub mod reload;
pub mod runner;
pub mod tokens;

use crate::catalog::types::{Node, CRITICAL, NODE_MAINT, SERVICE_MAINT_PREFIX};
use crate::config::RuntimeConfig;
use crate::definition::{self, CheckDef, ServiceDef, Source};
use crate::rpc::{method, RequestContext, RpcError};
/// For the HTTP layer: parks blocking queries served by this agent's
/// server as small tickets (issue 22).
pub use crate::server::blocking::serve_parking;
use crate::server::Server;
use local::LocalState;
use persist::{CheckState, Persist};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use tokio_util::sync::CancellationToken;

/// The RPC methods an agent can call (`Agent::call`): every method of
/// `rpc::method` that a server has a handler for.
pub use crate::server::endpoints::Serve;

/// Where requests that need the replicated state go.
#[derive(Clone)]
pub enum Delegate {
    /// This agent is a server: requests are served in process.
    Server(Arc<Server>),
    /// This agent is a client: requests go to a known server over RPC.
    Client(Arc<client::ServerPool>),
}

struct Inner {
    config: RwLock<Arc<RuntimeConfig>>,
    node_id: uuid::Uuid,
    delegate: Delegate,
    shutdown: CancellationToken,
    local: LocalState,
    persist: Persist,
    /// Runs the checks; set once at start (`start_checks`).
    runner: OnceLock<crate::checks::Runner>,
    /// The gossip pools; set once at start (`attach_gossip`).
    gossip: OnceLock<crate::gossip::Pools>,
    /// How the configuration was loaded, for `reload`.
    load_options: OnceLock<crate::config::LoadOptions>,
    /// The running `watches` (replaced on reload).
    watches: OnceLock<crate::watch::AgentWatches>,
    /// The agent's certificates (reloaded with the configuration).
    tls: OnceLock<crate::tls::Tls>,
    /// The user events this agent accepted (`/v1/event/list`); filled by
    /// `events`' receive loop, fired through `Agent::fire_user_event` (`events`).
    events: crate::event::EventRing,
    /// The agent's ACL tokens.
    tokens: tokens::TokenStore,
    /// A client agent's resolved tokens (`acl`).
    acl_cache: acl::AclCache,
}

/// A cheap, cloneable handle to the running agent.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

/// Why an agent-level operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Consul answers these with 500 (e.g. script checks disabled).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// Why the services and checks of the configuration could not be loaded
/// at start (the agent then stops with this text).
#[derive(Debug, thiserror::Error)]
pub enum LoadLocalError {
    /// A service definition that does not convert (`definition` says why).
    #[error("Failed to register service: {0}")]
    ServiceDefinition(String),
    #[error("Failed to register service {name:?}: {source}")]
    Service { name: String, source: AgentError },
    /// A check definition that does not convert (`definition` says why).
    #[error("Failed to register check: {0}")]
    CheckDefinition(String),
    #[error("Failed to register check {id:?}: {source}")]
    Check { id: String, source: AgentError },
}

pub const SCRIPTS_DISABLED: &str =
    "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

impl Agent {
    pub fn new(
        config: Arc<RuntimeConfig>,
        node_id: uuid::Uuid,
        delegate: Delegate,
        shutdown: CancellationToken,
        data_dir: Option<&Path>,
    ) -> Agent {
        let local = LocalState::new(&config.node_name);
        let tokens = tokens::TokenStore::new(&config.acl, data_dir);
        Agent {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                node_id,
                delegate,
                shutdown,
                local,
                persist: Persist::new(data_dir),
                runner: OnceLock::new(),
                gossip: OnceLock::new(),
                load_options: OnceLock::new(),
                watches: OnceLock::new(),
                tls: OnceLock::new(),
                events: crate::event::EventRing::default(),
                tokens,
                acl_cache: Default::default(),
            }),
        }
    }

    /// The configuration in effect (replaced wholesale on reload).
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.inner.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, cfg: Arc<RuntimeConfig>) {
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    pub fn node_id(&self) -> uuid::Uuid {
        self.inner.node_id
    }

    pub fn node_name(&self) -> String {
        self.config().node_name.clone()
    }

    pub fn delegate(&self) -> &Delegate {
        &self.inner.delegate
    }

    pub fn local(&self) -> &LocalState {
        &self.inner.local
    }

    /// The agent's ACL tokens (`acl.tokens`, `/v1/agent/token/:type`).
    pub fn tokens(&self) -> &tokens::TokenStore {
        &self.inner.tokens
    }

    /// The ring of recent user events.
    pub fn events(&self) -> &crate::event::EventRing {
        &self.inner.events
    }

    /// Asks the agent to stop (as `consul leave` or a signal does).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// The serf tags this agent gossips (Consul's set).
    pub fn member_tags(&self) -> BTreeMap<String, String> {
        let cfg = self.config();
        let mut t = BTreeMap::new();
        t.insert(
            "build".into(),
            format!("{}:{}", crate::version::CONSUL_VERSION, crate::version::revision()),
        );
        t.insert("dc".into(), cfg.datacenter.clone());
        t.insert("id".into(), self.node_id().to_string());
        t.insert("role".into(), if cfg.server { "consul".into() } else { "node".into() });
        t.insert("segment".into(), String::new());
        t.insert("vsn".into(), crate::version::PROTOCOL.to_string());
        t.insert("vsn_min".into(), crate::version::PROTOCOL_MIN.to_string());
        t.insert("vsn_max".into(), crate::version::PROTOCOL_MAX.to_string());
        if cfg.server {
            t.insert("port".into(), cfg.ports.server.to_string());
            t.insert("raft_vsn".into(), "3".into());
            if cfg.bootstrap {
                t.insert("bootstrap".into(), "1".into());
            }
            if cfg.bootstrap_expect > 0 {
                t.insert("expect".into(), cfg.bootstrap_expect.to_string());
            }
            if cfg.ports.serf_wan > 0 {
                t.insert("wan_join_port".into(), cfg.ports.serf_wan.to_string());
            }
        }
        t
    }

    /// This node as the catalog should hold it.
    pub fn node_record(&self) -> Node {
        let cfg = self.config();
        let lan = cfg.advertise_addr.to_string();
        let wan = cfg.advertise_addr_wan.to_string();
        let mut tagged = BTreeMap::new();
        tagged.insert("lan".to_string(), lan.clone());
        tagged.insert("wan".to_string(), wan.clone());
        if cfg.advertise_addr.is_ipv4() {
            tagged.insert("lan_ipv4".to_string(), lan.clone());
        } else {
            tagged.insert("lan_ipv6".to_string(), lan.clone());
        }
        if cfg.advertise_addr_wan.is_ipv4() {
            tagged.insert("wan_ipv4".to_string(), wan);
        } else {
            tagged.insert("wan_ipv6".to_string(), wan);
        }
        for (k, v) in &cfg.tagged_addresses {
            tagged.insert(k.clone(), v.clone());
        }
        Node {
            id: self.inner.node_id.to_string(),
            node: cfg.node_name.clone(),
            address: lan,
            datacenter: cfg.datacenter.clone(),
            tagged_addresses: tagged,
            meta: cfg.node_meta.clone(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Checks a datacenter named by a request: this one, or the foreign one
    /// the request is being routed to (see `dc`). A foreign datacenter named
    /// only in a body (not in `?dc=`) has no route.
    pub fn check_dc(&self, dc: Option<&str>) -> Result<(), RpcError> {
        match dc {
            None | Some("") => Ok(()),
            Some(dc) if dc.eq_ignore_ascii_case(&self.config().datacenter) => Ok(()),
            Some(dc) if dc::target_dc().is_some_and(|t| t == dc) => Ok(()),
            Some(_) => Err(RpcError::NoPathToDatacenter),
        }
    }

    /// Every datacenter known over the WAN, this one first (a client asks a
    /// server).
    pub async fn datacenters(&self) -> Result<Vec<String>, RpcError> {
        self.call_local(RequestContext::default(), method::Datacenters {}).await
    }

    // ----- membership (gossip) ------------------------------------------

    pub fn attach_gossip(&self, pools: crate::gossip::Pools) {
        let _ = self.inner.gossip.set(pools);
    }

    pub fn gossip(&self) -> Option<&crate::gossip::Pools> {
        self.inner.gossip.get()
    }

    /// The members of the LAN pool, or of the WAN pool (servers only).
    pub fn members(&self, wan: bool) -> Result<Vec<crate::gossip::Member>, AgentError> {
        let pools = self.gossip().ok_or_else(|| AgentError::Refused("gossip is not running".into()))?;
        if wan {
            let wan = pools
                .wan
                .as_ref()
                .ok_or_else(|| AgentError::Refused("WAN members are only available on servers".into()))?;
            return Ok(wan.members());
        }
        Ok(pools.lan.members())
    }

    /// `consul join`: returns how many nodes were contacted.
    pub async fn join(&self, addrs: &[String], wan: bool) -> Result<usize, AgentError> {
        let pools = self.gossip().ok_or_else(|| AgentError::Refused("gossip is not running".into()))?;
        let g = if wan {
            pools.wan.as_ref().ok_or_else(|| AgentError::Refused("Must be a server to join WAN".into()))?
        } else {
            &pools.lan
        };
        let (n, errors) = g.join(addrs).await;
        if n == 0 {
            let why = errors.iter().map(|(a, e)| format!("{a}: {e}")).collect::<Vec<_>>().join("; ");
            return Err(AgentError::Refused(why));
        }
        Ok(n)
    }

    pub async fn force_leave(&self, node: &str, prune: bool, wan: bool) -> Result<(), AgentError> {
        let pools = self.gossip().ok_or_else(|| AgentError::Refused("gossip is not running".into()))?;
        let g = if wan {
            pools
                .wan
                .as_ref()
                .ok_or_else(|| AgentError::Refused("Must be a server to force-leave WAN members".into()))?
        } else {
            &pools.lan
        };
        g.force_leave(node, prune).await.map_err(|e| AgentError::Refused(e.to_string()))
    }

    /// Leaves the cluster gracefully: the agent leaves the gossip pools,
    /// then a server takes itself out of the Raft configuration (so the
    /// remaining servers keep a working quorum without it).
    ///
    /// A server announces its leave in gossip first: until the others see
    /// it leaving, the leader's autopilot counts it as a live server and
    /// would add it back as soon as it is removed (as Consul's servers do,
    /// and its leader then removes a server that left).
    pub async fn leave(&self) -> Result<(), AgentError> {
        let server = match &self.inner.delegate {
            Delegate::Server(server) => {
                tracing::info!(target: "agent.server", "server starting leave");
                server.start_leaving();
                Some(server)
            }
            _ => None,
        };
        let mut gossip_result = Ok(());
        if let Some(pools) = self.gossip() {
            if let Some(wan) = &pools.wan {
                if let Err(e) = wan.leave(std::time::Duration::from_secs(5)).await {
                    tracing::warn!(target: "agent", error = %e, "WAN leave failed");
                }
            }
            gossip_result = pools
                .lan
                .leave(std::time::Duration::from_secs(5))
                .await
                .map_err(|e| AgentError::Refused(e.to_string()));
        }
        if let Some(server) = server {
            match server.leave_raft(std::time::Duration::from_secs(5)).await {
                Ok(crate::server::leave::Left::Alone) => {}
                Ok(_) => tracing::info!(target: "agent.server", "left the raft configuration"),
                Err(e) => {
                    tracing::warn!(target: "agent.server", error = %e, "failed to leave the raft configuration cleanly")
                }
            }
        }
        gossip_result?;
        tracing::info!(target: "agent", "graceful leave complete");
        Ok(())
    }

    // ----- local services and checks -----------------------------------

    /// Starts the check runners; their results flow into the local state.
    /// Checks registered before this call are started now.
    pub fn start_checks(&self, tasks: &tokio_util::task::TaskTracker) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::checks::CheckResult>(1024);
        let alias = Arc::new(runner::AgentAlias { agent: Arc::downgrade(&self.inner) });
        let mut r = crate::checks::Runner::new(tx, Some(alias), tasks.clone(), self.inner.shutdown.clone());
        // enable_agent_tls_for_checks: the agent's certificate and CA.
        if let Some(id) = self.inner.tls.get().and_then(|t| t.check_identity()) {
            if let Err(e) = r.use_agent_tls(&id.ca, id.chain, id.key) {
                tracing::error!(target: "agent", error = %e, "checks will not present the agent's certificate");
            }
        }
        if self.inner.runner.set(r).is_err() {
            return;
        }
        for c in self.inner.local.checks() {
            self.run_check(&c.def, &c.check.status);
        }
        let agent = self.clone();
        let shutdown = self.inner.shutdown.clone();
        tasks.spawn(async move {
            loop {
                let r = tokio::select! {
                    r = rx.recv() => r,
                    _ = shutdown.cancelled() => return,
                };
                let Some(r) = r else { return };
                // Results for checks removed meanwhile are ignored by the local state.
                agent.check_result(&r.id, r.status.as_str(), &r.output);
            }
        });
        tasks.spawn(reaper::run(self.clone(), self.inner.shutdown.clone()));
    }

    fn run_check(&self, def: &CheckDef, status: &str) {
        let Some(runner) = self.inner.runner.get() else { return };
        if let Some(spec) = runner::spec_for(def, &self.config(), status) {
            runner.start(spec);
        }
    }

    fn stop_check(&self, id: &str) {
        if let Some(runner) = self.inner.runner.get() {
            runner.stop(id);
        }
    }

    fn scripts_allowed(&self, source: Source) -> bool {
        let cfg = self.config();
        cfg.enable_script_checks || (source == Source::Local && cfg.enable_local_script_checks)
    }

    /// Registers a service (and its checks) on this agent, and the sidecar
    /// its `connect.sidecar_service` asks for.
    pub fn register_service(
        &self,
        mut def: ServiceDef,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        def.normalize();
        def.validate().map_err(|e| AgentError::BadRequest(e.to_string()))?;
        if def.checks.iter().any(CheckDef::is_script) && !self.scripts_allowed(source) {
            return Err(AgentError::Refused(SCRIPTS_DISABLED.into()));
        }
        let sidecar = self.sidecar_of(&def)?;
        // The sugar is spent: the parent is stored without it.
        def.sidecar_service = None;
        self.add_service(def, source, replace_existing_checks)?;
        if let Some(sidecar) = sidecar {
            if sidecar.checks.iter().any(CheckDef::is_script) && !self.scripts_allowed(source) {
                return Err(AgentError::Refused(SCRIPTS_DISABLED.into()));
            }
            self.add_service(sidecar, source, replace_existing_checks)?;
        }
        Ok(())
    }

    /// The sidecar registration `def.sidecar_service` expands to, with its
    /// port from `ports.sidecar_min_port`..`sidecar_max_port` (keeping the
    /// port of an earlier registration of the same sidecar).
    fn sidecar_of(&self, def: &ServiceDef) -> Result<Option<ServiceDef>, AgentError> {
        if def.sidecar_service.is_none() {
            return Ok(None);
        }
        let cfg = self.config();
        let id = definition::mesh::sidecar_id(&def.id);
        let local = self.inner.local.services();
        let ports = definition::mesh::SidecarPorts {
            min: u16::try_from(cfg.ports.sidecar_min).unwrap_or(0),
            max: u16::try_from(cfg.ports.sidecar_max).unwrap_or(0),
            previous: local.iter().find(|s| s.def.id == id).map(|s| s.def.port),
            taken: local.iter().filter(|s| s.def.id != id).map(|s| s.def.port).collect(),
        };
        let sidecar = definition::mesh::sidecar_for(def, &ports)
            .map_err(|e| AgentError::BadRequest(format!("Invalid SidecarService: {e}")))?;
        if let Some(s) = &sidecar {
            let errs = definition::mesh::validate(s);
            if !errs.is_empty() {
                return Err(AgentError::BadRequest(format!(
                    "Failed Validation: {}",
                    definition::mesh::multierror(&errs)
                )));
            }
            s.validate().map_err(|e| AgentError::BadRequest(format!("Failed Validation: {e}")))?;
        }
        Ok(sidecar)
    }

    /// Stores a validated service and starts its checks.
    fn add_service(
        &self,
        def: ServiceDef,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        let persist = source == Source::Remote;
        if persist {
            self.inner
                .persist
                .save_service(&def)
                .map_err(|e| AgentError::Refused(format!("failed to persist service: {e}")))?;
        }
        let before: Vec<String> =
            self.inner.local.service_checks(&def.id).into_iter().map(|c| c.def.id).collect();
        self.inner.local.add_service(def.clone(), source, replace_existing_checks);
        for c in &def.checks {
            reaper::warn_if_below_minimum(&c.id, c.deregister_critical_service_after);
            self.apply_saved_state(c);
            let status = self.inner.local.check(&c.id).map(|lc| lc.check.status).unwrap_or_default();
            self.run_check(c, &status);
        }
        if replace_existing_checks {
            for id in before.iter().filter(|id| !def.checks.iter().any(|c| &c.id == *id)) {
                self.stop_check(id);
            }
        }
        tracing::info!(target: "agent", service = %def.id, "added service");
        Ok(())
    }

    pub fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        let Some(checks) = self.inner.local.remove_service(id) else {
            return Err(AgentError::NotFound(format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            )));
        };
        let _ = self.inner.persist.remove_service(id);
        for c in checks {
            self.stop_check(&c);
            let _ = self.inner.persist.remove_check(&c);
        }
        tracing::info!(target: "agent", service = %id, "removed service");
        // A sidecar the agent registered for this service goes with it.
        let sidecar = definition::mesh::sidecar_id(id);
        if self.inner.local.service(&sidecar).is_some_and(|s| s.def.locally_registered_as_sidecar) {
            self.deregister_service(&sidecar)?;
        }
        Ok(())
    }

    /// Registers a check on this agent.
    pub fn register_check(&self, def: CheckDef, source: Source) -> Result<(), AgentError> {
        def.validate().map_err(|e| {
            if e.starts_with("Status for checks") {
                AgentError::BadRequest(e)
            } else {
                AgentError::BadRequest(format!("Invalid check: {e}"))
            }
        })?;
        if !def.service_id.is_empty() && self.inner.local.service(&def.service_id).is_none() {
            return Err(AgentError::BadRequest(format!("ServiceID {:?} does not exist", def.service_id)));
        }
        if def.is_script() && !self.scripts_allowed(source) {
            return Err(AgentError::Refused(SCRIPTS_DISABLED.into()));
        }
        let persist = source == Source::Remote;
        if persist {
            self.inner
                .persist
                .save_check(&def)
                .map_err(|e| AgentError::Refused(format!("failed to persist check: {e}")))?;
        }
        self.inner.local.add_check(def.clone(), source);
        reaper::warn_if_below_minimum(&def.id, def.deregister_critical_service_after);
        self.apply_saved_state(&def);
        let status = self.inner.local.check(&def.id).map(|lc| lc.check.status).unwrap_or_default();
        self.run_check(&def, &status);
        tracing::info!(target: "agent", check = %def.id, "added check");
        Ok(())
    }

    pub fn deregister_check(&self, id: &str) -> Result<(), AgentError> {
        if !self.inner.local.remove_check(id) {
            return Err(AgentError::NotFound(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            )));
        }
        self.stop_check(id);
        let _ = self.inner.persist.remove_check(id);
        tracing::info!(target: "agent", check = %id, "removed check");
        Ok(())
    }

    /// `/v1/agent/check/pass|warn|fail|update`: sets a TTL check's state.
    pub fn update_ttl_check(&self, id: &str, status: &str, output: &str) -> Result<(), AgentError> {
        let Some(check) = self.inner.local.check(id) else {
            return Err(AgentError::NotFound(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            )));
        };
        if !check.def.is_ttl() {
            return Err(AgentError::Refused(format!("CheckID {id:?} does not have associated TTL")));
        }
        let max = self.config().check_output_max_size.max(1);
        let mut output = truncate_output(output, max);
        if let (Some(runner), Some(st)) = (self.inner.runner.get(), crate::checks::Status::parse(status)) {
            // The runner resets the TTL timer; it may cut the output to the check's own limit.
            if let Ok(stored) = runner.ttl_update(id, st, output.clone()) {
                output = stored;
            }
        }
        self.inner.local.update_check(id, status, &output, None);
        let ttl_ms = check.def.ttl.map(|t| t.as_millis() as u64).unwrap_or(0);
        let state = CheckState { status: status.to_string(), output, expires_unix_ms: unix_ms() + ttl_ms };
        let _ = self.inner.persist.save_check_state(id, &state);
        Ok(())
    }

    /// A check result from a check runner (status changes sync at once;
    /// output-only changes wait for `check_update_interval`).
    pub fn check_result(&self, id: &str, status: &str, output: &str) {
        let cfg = self.config();
        let output = if cfg.discard_check_output {
            String::new()
        } else {
            truncate_output(output, cfg.check_output_max_size.max(1))
        };
        let defer = Some(std::time::Instant::now() + cfg.check_update_interval);
        self.inner.local.update_check(id, status, &output, defer);
    }

    /// Restores a persisted TTL state (or maintenance state) after a restart.
    fn apply_saved_state(&self, def: &CheckDef) {
        let Some(state) = self.inner.persist.load_check_state(&def.id) else { return };
        if def.is_ttl() && state.expires_unix_ms > 0 && state.expires_unix_ms <= unix_ms() {
            let output = format!("TTL expired (last output before timeout follows): {}", state.output);
            self.inner.local.update_check(&def.id, CRITICAL, &output, None);
            return;
        }
        self.inner.local.update_check(&def.id, &state.status, &state.output, None);
    }

    /// Node maintenance: a critical `_node_maintenance` check.
    pub fn set_node_maintenance(&self, enable: bool, reason: &str) -> Result<(), AgentError> {
        if enable {
            if self.inner.local.check(NODE_MAINT).is_some() {
                return Ok(());
            }
            let notes = if reason.is_empty() {
                "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.".to_string()
            } else {
                reason.to_string()
            };
            let def = maintenance_check(NODE_MAINT, "Node Maintenance Mode", &notes, "");
            self.inner.persist.save_check(&def).map_err(|e| AgentError::Refused(e.to_string()))?;
            self.inner.local.add_check(def, Source::Local);
            tracing::info!(target: "agent", "Node entered maintenance mode");
        } else if self.inner.local.remove_check(NODE_MAINT) {
            let _ = self.inner.persist.remove_check(NODE_MAINT);
            tracing::info!(target: "agent", "Node left maintenance mode");
        }
        Ok(())
    }

    /// Service maintenance: a critical `_service_maintenance:<id>` check.
    pub fn set_service_maintenance(
        &self,
        service_id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<(), AgentError> {
        if self.inner.local.service(service_id).is_none() {
            // Consul vets the update first, with the same text as deregister.
            return Err(AgentError::NotFound(format!(
                "Unknown service ID {service_id:?}. Ensure that the service ID is passed, not the service name."
            )));
        }
        let id = format!("{SERVICE_MAINT_PREFIX}{service_id}");
        if enable {
            if self.inner.local.check(&id).is_some() {
                return Ok(());
            }
            let notes = if reason.is_empty() {
                "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.".to_string()
            } else {
                reason.to_string()
            };
            let def = maintenance_check(&id, "Service Maintenance Mode", &notes, service_id);
            self.inner.persist.save_check(&def).map_err(|e| AgentError::Refused(e.to_string()))?;
            self.inner.local.add_check(def, Source::Local);
            tracing::info!(target: "agent", service = %service_id, "Service entered maintenance mode");
        } else if self.inner.local.remove_check(&id) {
            let _ = self.inner.persist.remove_check(&id);
            tracing::info!(target: "agent", service = %service_id, "Service left maintenance mode");
        }
        Ok(())
    }

    /// Loads the services and checks from the config and from the data dir
    /// (API registrations and maintenance flags survive restarts). A script
    /// check in the config that is not allowed stops the agent.
    pub fn load_local(&self) -> Result<Vec<String>, LoadLocalError> {
        let cfg = self.config();
        let mut warnings = Vec::new();
        // A server's own `consul` service is registered in the catalog by
        // the leader's reconcile, not kept as a local service: Consul's
        // `/v1/agent/services` on a fresh server is `{}`.
        for s in &cfg.services {
            let def = definition::service_from_config(s).map_err(LoadLocalError::ServiceDefinition)?;
            let name = def.name.clone();
            self.register_service(def, Source::Local, false)
                .map_err(|source| LoadLocalError::Service { name, source })?;
        }
        for c in &cfg.checks {
            let mut def = definition::check_from_config(c).map_err(LoadLocalError::CheckDefinition)?;
            if def.id.is_empty() {
                def.id = def.name.clone();
            }
            let id = def.id.clone();
            self.register_check(def, Source::Local).map_err(|source| LoadLocalError::Check { id, source })?;
        }
        let (services, errors) = self.inner.persist.load_services();
        warnings.extend(errors.into_iter().map(|e| format!("skipping unreadable persisted service {e}")));
        for def in services {
            if self.inner.local.service(&def.id).is_some() {
                warnings.push(format!(
                    "service {:?} exists in the configuration; ignoring the persisted copy",
                    def.id
                ));
                continue;
            }
            if let Err(e) = self.register_service(def.clone(), Source::Remote, false) {
                warnings.push(format!("failed to restore persisted service {:?}: {e}", def.id));
            }
        }
        let (checks, errors) = self.inner.persist.load_checks();
        warnings.extend(errors.into_iter().map(|e| format!("skipping unreadable persisted check {e}")));
        for def in checks {
            if self.inner.local.check(&def.id).is_some() {
                continue;
            }
            let source = if def.id == NODE_MAINT || def.id.starts_with(SERVICE_MAINT_PREFIX) {
                Source::Local
            } else {
                Source::Remote
            };
            if def.id.starts_with(SERVICE_MAINT_PREFIX) && self.inner.local.service(&def.service_id).is_none()
            {
                let _ = self.inner.persist.remove_check(&def.id);
                continue;
            }
            if def.id == NODE_MAINT || def.id.starts_with(SERVICE_MAINT_PREFIX) {
                self.inner.local.add_check(def.clone(), source);
                self.apply_saved_state(&def);
            } else if let Err(e) = self.register_check(def.clone(), source) {
                warnings.push(format!("failed to restore persisted check {:?}: {e}", def.id));
            }
        }
        Ok(warnings)
    }

    // ----- replicated state (through the delegate) ---------------------

    /// Calls an RPC method through the delegate: the local server in
    /// process (no encoding), or a server over RPC for a client agent. Both
    /// end in the same handler (`server::endpoints`). A call made while
    /// serving a `?dc=` request goes to that datacenter (`dc`).
    /// A call without a token carries the agent's default token.
    pub async fn call<M: Serve>(&self, mut ctx: RequestContext, args: M) -> Result<M::Reply, RpcError> {
        if ctx.token.as_deref().is_none_or(str::is_empty) {
            ctx.token = self.tokens().user_token();
        }
        self.call_local(ctx.routed_to(dc::target_dc()), args).await
    }

    /// A call to this datacenter's servers, whatever `?dc=` says (unless
    /// the context itself names a datacenter).
    async fn call_local<M: Serve>(&self, ctx: RequestContext, args: M) -> Result<M::Reply, RpcError> {
        match &self.inner.delegate {
            Delegate::Server(s) => s.serve(ctx, args).await,
            // Boxed: on a server the RPC client's future would otherwise
            // size every in-process call, parked blocking queries included.
            Delegate::Client(c) => Box::pin(c.call(ctx, &args)).await,
        }
    }
}

fn maintenance_check(id: &str, name: &str, notes: &str, service_id: &str) -> CheckDef {
    CheckDef {
        id: id.to_string(),
        name: name.to_string(),
        notes: notes.to_string(),
        service_id: service_id.to_string(),
        status: CRITICAL.to_string(),
        ..Default::default()
    }
}

/// Caps check output at `max` bytes (on a character boundary), noting the cut.
pub fn truncate_output(output: &str, max: usize) -> String {
    if output.len() <= max {
        return output.to_string();
    }
    let mut end = max;
    while end > 0 && !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ... (captured {} of {} bytes)", &output[..end], end, output.len())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `consul agent` prints after "Error starting agent: ".
    #[test]
    fn load_local_messages() {
        let e = LoadLocalError::Service {
            name: "web".into(),
            source: AgentError::Refused(SCRIPTS_DISABLED.into()),
        };
        assert_eq!(e.to_string(), format!("Failed to register service \"web\": {SCRIPTS_DISABLED}"));
        let e = LoadLocalError::Check {
            id: "c1".into(),
            source: AgentError::BadRequest("Invalid check: x".into()),
        };
        assert_eq!(e.to_string(), "Failed to register check \"c1\": Invalid check: x");
        assert_eq!(
            LoadLocalError::ServiceDefinition("x".into()).to_string(),
            "Failed to register service: x"
        );
        assert_eq!(LoadLocalError::CheckDefinition("y".into()).to_string(), "Failed to register check: y");
    }
}
