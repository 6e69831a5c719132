//! Reloading the configuration (SIGHUP, `consul reload`): the log level,
//! the services and checks defined in config files, the `watches` and the
//! TLS certificate, key and CA files change without a restart, as in
//! Consul. Registrations made over the HTTP API, the `consul` service and
//! maintenance flags are left alone. A configuration that fails to load or
//! validate changes nothing.

use super::Agent;
use crate::catalog::types::{NODE_MAINT, SERVICE_MAINT_PREFIX};
use crate::config::{self, LoadOptions, RuntimeConfig};
use crate::definition::{self, CheckDef, ServiceDef, Source};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a reload changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub services: usize,
    pub checks: usize,
    pub removed_services: Vec<String>,
    pub removed_checks: Vec<String>,
}

impl Agent {
    /// Hands the agent its running watches, so a reload can replace them.
    pub fn attach_watches(&self, watches: crate::watch::AgentWatches) {
        let _ = self.inner.watches.set(watches);
    }

    /// Hands the agent its TLS handle, so a reload re-reads the certificates.
    pub(crate) fn attach_tls(&self, tls: crate::tls::Tls) {
        let _ = self.inner.tls.set(tls);
    }

    /// Remembers how the configuration was loaded, so `reload` can read it again.
    pub fn set_load_options(&self, opts: LoadOptions) {
        let _ = self.inner.load_options.set(opts);
    }

    /// Re-reads the configuration the agent started with and applies the
    /// reloadable part.
    pub fn reload(&self) -> Result<ReloadSummary, String> {
        let opts = self
            .inner
            .load_options
            .get()
            .ok_or("this agent was not started from a configuration that can be reloaded")?;
        let loaded = config::load(opts).map_err(|e| e.to_string())?;
        for w in &loaded.warnings {
            tracing::warn!(target: "agent", "{w}");
        }
        self.apply_reload(Arc::new(loaded.config))
    }

    /// Applies a new configuration: validates every service and check
    /// first, then swaps the config-file registrations.
    pub fn apply_reload(&self, new: Arc<RuntimeConfig>) -> Result<ReloadSummary, String> {
        let scripts_ok = new.enable_script_checks || new.enable_local_script_checks;
        let mut services: Vec<ServiceDef> = Vec::new();
        for s in &new.services {
            let mut def =
                definition::service_from_config(s).map_err(|e| format!("Failed to register service: {e}"))?;
            def.normalize();
            def.validate().map_err(|e| format!("Failed to register service {:?}: {e}", def.name))?;
            if def.checks.iter().any(CheckDef::is_script) && !scripts_ok {
                return Err(format!(
                    "Failed to register service {:?}: {}",
                    def.name,
                    super::SCRIPTS_DISABLED
                ));
            }
            services.push(def);
        }
        let mut checks: Vec<CheckDef> = Vec::new();
        for c in &new.checks {
            let mut def =
                definition::check_from_config(c).map_err(|e| format!("Failed to register check: {e}"))?;
            if def.id.is_empty() {
                def.id = def.name.clone();
            }
            def.validate().map_err(|e| format!("Failed to register check {:?}: {e}", def.id))?;
            if def.is_script() && !scripts_ok {
                return Err(format!("Failed to register check {:?}: {}", def.id, super::SCRIPTS_DISABLED));
            }
            checks.push(def);
        }

        let (watches, watch_warnings) =
            crate::watch::parse_agent_watches(&new.watches).map_err(|e| e.to_string())?;
        for w in watch_warnings {
            tracing::warn!(target: "agent", "{w}");
        }

        // Renewed certificates: new connections use them, open ones keep
        // theirs. A file that does not load fails the reload before
        // anything changed, and the running certificates stay.
        if let Some(tls) = self.inner.tls.get() {
            tls.reload(&new.tls).map_err(|e| format!("Failed reloading tls configuration: {e}"))?;
        }

        crate::logging::set_level(new.log_level);
        self.set_config(new);

        // What the old configuration registered.
        let local = &self.inner.local;
        let old_services: Vec<String> =
            local.services().into_iter().filter(|s| s.source == Source::Local).map(|s| s.def.id).collect();
        let embedded: BTreeSet<String> =
            local.services().iter().flat_map(|s| s.def.checks.iter().map(|c| c.id.clone())).collect();
        let old_checks: Vec<String> = local
            .checks()
            .into_iter()
            .filter(|c| c.source == Source::Local)
            .map(|c| c.def.id)
            .filter(|id| id != NODE_MAINT && !id.starts_with(SERVICE_MAINT_PREFIX) && !embedded.contains(id))
            .collect();

        let mut summary =
            ReloadSummary { services: services.len(), checks: checks.len(), ..Default::default() };
        // A sidecar stays when its parent does (re-registering the parent
        // keeps the sidecar's port).
        let sidecar_ids: Vec<String> = services
            .iter()
            .filter(|s| s.sidecar_service.is_some())
            .map(|s| definition::mesh::sidecar_id(&s.id))
            .collect();
        let new_service_ids: BTreeSet<&str> =
            services.iter().map(|s| s.id.as_str()).chain(sidecar_ids.iter().map(String::as_str)).collect();
        for id in old_services.iter().filter(|id| !new_service_ids.contains(id.as_str())) {
            if self.deregister_service(id).is_ok() {
                summary.removed_services.push(id.clone());
            }
        }
        let new_check_ids: BTreeSet<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        for id in old_checks.iter().filter(|id| !new_check_ids.contains(id.as_str())) {
            if self.deregister_check(id).is_ok() {
                summary.removed_checks.push(id.clone());
            }
        }
        for def in services {
            let id = def.id.clone();
            self.register_service(def, Source::Local, true)
                .map_err(|e| format!("Failed to register service {id:?}: {e}"))?;
        }
        for def in checks {
            let id = def.id.clone();
            self.register_check(def, Source::Local)
                .map_err(|e| format!("Failed to register check {id:?}: {e}"))?;
        }
        self.inner.local.trigger().notify_one();
        if let Some(running) = self.inner.watches.get() {
            running.replace(watches).map_err(|e| e.to_string())?;
        }
        Ok(summary)
    }
}
