//! The services and checks registered on this agent (Consul's local
//! state). The agent owns them: anti-entropy pushes them to the catalog and
//! repairs drift. Each entry remembers whether the catalog already has it.

use crate::catalog::types::{HealthCheck, NodeService, CRITICAL};
use crate::definition::{CheckDef, ServiceDef, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

#[derive(Clone, Debug)]
pub struct LocalService {
    pub def: ServiceDef,
    pub source: Source,
    pub in_sync: bool,
}

impl LocalService {
    pub fn node_service(&self) -> NodeService {
        self.def.to_node_service()
    }
}

#[derive(Clone, Debug)]
pub struct LocalCheck {
    pub def: CheckDef,
    pub source: Source,
    /// The current record: status and output change as the check runs.
    pub check: HealthCheck,
    pub in_sync: bool,
    /// An output-only change waits until then before it is synced
    /// (`check_update_interval`); status changes sync at once.
    pub deferred_until: Option<Instant>,
    /// Since when the check has been critical without a break (for
    /// `deregister_critical_service_after`); `None` while it is not critical.
    pub critical_since: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    services: BTreeMap<String, LocalService>,
    checks: BTreeMap<String, LocalCheck>,
    /// Removed locally but maybe still in the catalog.
    deleted_services: BTreeSet<String>,
    deleted_checks: BTreeSet<String>,
    /// The registration tokens of removed services, until their removal is
    /// synced (the deregistration goes with the same token).
    deleted_tokens: BTreeMap<String, String>,
}

/// This agent's services and checks. Cheap to clone.
#[derive(Clone)]
pub struct LocalState {
    inner: Arc<Mutex<Inner>>,
    node: String,
    /// Wakes anti-entropy for a partial sync.
    trigger: Arc<Notify>,
    /// Bumped on every local change (hash-blocking agent endpoints wait on it).
    version: Arc<watch::Sender<u64>>,
}

impl LocalState {
    pub fn new(node: &str) -> LocalState {
        LocalState {
            inner: Arc::default(),
            node: node.to_string(),
            trigger: Arc::new(Notify::new()),
            version: Arc::new(watch::Sender::new(0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
        self.trigger.notify_one();
    }

    pub fn trigger(&self) -> Arc<Notify> {
        self.trigger.clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Adds or replaces a service and its checks. With
    /// `replace_existing_checks`, checks of the service not in `def` go away.
    pub fn add_service(&self, def: ServiceDef, source: Source, replace_existing_checks: bool) {
        let mut inner = self.lock();
        let id = def.id.clone();
        if replace_existing_checks {
            let stale: Vec<String> = inner
                .checks
                .values()
                .filter(|c| c.def.service_id == id && !def.checks.iter().any(|d| d.id == c.def.id))
                .map(|c| c.def.id.clone())
                .collect();
            for c in stale {
                inner.checks.remove(&c);
                inner.deleted_checks.insert(c);
            }
        }
        for c in &def.checks {
            let check = LocalCheck::new(c.clone(), source, &self.node, inner.checks.get(&c.id));
            inner.deleted_checks.remove(&c.id);
            inner.checks.insert(c.id.clone(), check);
        }
        inner.deleted_services.remove(&id);
        inner.services.insert(id, LocalService { def, source, in_sync: false });
        drop(inner);
        self.changed();
    }

    /// Removes a service and its checks; returns the removed check IDs, or
    /// `None` if there was no such service.
    pub fn remove_service(&self, id: &str) -> Option<Vec<String>> {
        let mut inner = self.lock();
        let removed = inner.services.remove(id)?;
        inner.deleted_services.insert(id.to_string());
        if !removed.def.token.is_empty() {
            inner.deleted_tokens.insert(id.to_string(), removed.def.token);
        }
        let checks: Vec<String> =
            inner.checks.values().filter(|c| c.def.service_id == id).map(|c| c.def.id.clone()).collect();
        for c in &checks {
            inner.checks.remove(c);
            // The catalog drops a service's checks with it.
        }
        drop(inner);
        self.changed();
        Some(checks)
    }

    pub fn add_check(&self, def: CheckDef, source: Source) {
        let mut inner = self.lock();
        let check = LocalCheck::new(def.clone(), source, &self.node, inner.checks.get(&def.id));
        inner.deleted_checks.remove(&def.id);
        inner.checks.insert(def.id.clone(), check);
        drop(inner);
        self.changed();
    }

    pub fn remove_check(&self, id: &str) -> bool {
        let mut inner = self.lock();
        if inner.checks.remove(id).is_none() {
            return false;
        }
        inner.deleted_checks.insert(id.to_string());
        drop(inner);
        self.changed();
        true
    }

    /// Records a check result. A status change marks it for sync at once;
    /// an output-only change waits until `defer_output` has passed.
    pub fn update_check(&self, id: &str, status: &str, output: &str, defer_output: Option<Instant>) -> bool {
        let mut inner = self.lock();
        let Some(c) = inner.checks.get_mut(id) else { return false };
        if c.check.status == status && c.check.output == output {
            return true;
        }
        let status_changed = c.check.status != status;
        if status_changed {
            c.critical_since = (status == CRITICAL).then(Instant::now);
        }
        c.check.status = status.to_string();
        c.check.output = output.to_string();
        if status_changed || defer_output.is_none() {
            c.in_sync = false;
            c.deferred_until = None;
        } else if c.in_sync {
            c.in_sync = false;
            c.deferred_until = defer_output;
        }
        drop(inner);
        self.changed();
        true
    }

    pub fn service(&self, id: &str) -> Option<LocalService> {
        self.lock().services.get(id).cloned()
    }

    pub fn services(&self) -> Vec<LocalService> {
        self.lock().services.values().cloned().collect()
    }

    pub fn check(&self, id: &str) -> Option<LocalCheck> {
        self.lock().checks.get(id).cloned()
    }

    pub fn checks(&self) -> Vec<LocalCheck> {
        self.lock().checks.values().cloned().collect()
    }

    /// The checks of one service.
    pub fn service_checks(&self, id: &str) -> Vec<LocalCheck> {
        self.lock().checks.values().filter(|c| c.def.service_id == id).cloned().collect()
    }

    /// Services to deregister because one of their checks with
    /// `deregister_critical_service_after` has been critical for longer
    /// than that (raised to at least `min`): `(service ID, check ID)`, one
    /// entry per service.
    pub fn critical_too_long(&self, now: Instant, min: Duration) -> Vec<(String, String)> {
        let inner = self.lock();
        let mut out: Vec<(String, String)> = Vec::new();
        for c in inner.checks.values() {
            let (Some(after), Some(since)) = (c.def.deregister_critical_service_after, c.critical_since)
            else {
                continue;
            };
            if after.is_zero()
                || c.def.service_id.is_empty()
                || !inner.services.contains_key(&c.def.service_id)
            {
                continue;
            }
            if now.saturating_duration_since(since) > after.max(min)
                && !out.iter().any(|(s, _)| *s == c.def.service_id)
            {
                out.push((c.def.service_id.clone(), c.def.id.clone()));
            }
        }
        out
    }

    // ----- anti-entropy bookkeeping -----------------------------------

    /// Compares with what the catalog holds for this node and marks
    /// differences; returns the catalog entries that must be removed.
    pub fn compare(
        &self,
        remote_services: &[NodeService],
        remote_checks: &[HealthCheck],
        now: Instant,
    ) -> (Vec<String>, Vec<String>) {
        let mut inner = self.lock();
        let remote_svc: BTreeMap<&str, &NodeService> =
            remote_services.iter().map(|s| (s.id.as_str(), s)).collect();
        let remote_chk: BTreeMap<&str, &HealthCheck> =
            remote_checks.iter().map(|c| (c.check_id.as_str(), c)).collect();
        for s in inner.services.values_mut() {
            let want = s.node_service();
            s.in_sync = match remote_svc.get(s.def.id.as_str()) {
                Some(have) => {
                    if s.def.enable_tag_override {
                        let mut w = want.clone();
                        w.tags = have.tags.clone();
                        w.same_content(have)
                    } else {
                        want.same_content(have)
                    }
                }
                None => false,
            };
        }
        let services: BTreeMap<String, NodeService> =
            inner.services.values().map(|s| (s.def.id.clone(), s.node_service())).collect();
        for c in inner.checks.values_mut() {
            let mut want = c.check.clone();
            if let Some(s) = services.get(&want.service_id) {
                want.service_name = s.service.clone();
                want.service_tags = s.tags.clone();
            }
            c.in_sync = match remote_chk.get(c.def.id.as_str()) {
                Some(have) => {
                    if want.same_content(have) {
                        true
                    } else {
                        // Only the output differs and its sync is deferred.
                        let mut w = want.clone();
                        w.output = have.output.clone();
                        w.same_content(have) && c.deferred_until.is_some_and(|t| t > now)
                    }
                }
                None => false,
            };
        }
        let stray_services: Vec<String> = remote_services
            .iter()
            .filter(|s| !inner.services.contains_key(&s.id) && s.id != "consul")
            .map(|s| s.id.clone())
            .collect();
        let stray_checks: Vec<String> = remote_checks
            .iter()
            .filter(|c| {
                !inner.checks.contains_key(&c.check_id) && c.check_id != crate::catalog::types::SERF_HEALTH
            })
            .filter(|c| !stray_services.contains(&c.service_id))
            .map(|c| c.check_id.clone())
            .collect();
        inner.deleted_services.extend(stray_services.iter().cloned());
        inner.deleted_checks.extend(stray_checks.iter().cloned());
        (stray_services, stray_checks)
    }

    /// What a sync must do now: deletions, and out-of-sync services and
    /// checks (a deferred output-only change is skipped until its time).
    pub fn pending(&self, now: Instant) -> Pending {
        let inner = self.lock();
        let services = inner.services.values().filter(|s| !s.in_sync).map(|s| s.node_service()).collect();
        let checks = inner
            .checks
            .values()
            .filter(|c| !c.in_sync && c.deferred_until.is_none_or(|t| t <= now))
            .map(|c| c.check.clone())
            .collect();
        Pending {
            deleted_services: inner.deleted_services.iter().cloned().collect(),
            deleted_checks: inner.deleted_checks.iter().cloned().collect(),
            services,
            checks,
        }
    }

    /// The earliest time a deferred output change becomes due.
    pub fn next_deferred(&self) -> Option<Instant> {
        self.lock().checks.values().filter(|c| !c.in_sync).filter_map(|c| c.deferred_until).min()
    }

    pub fn service_synced(&self, id: &str, synced: &NodeService) {
        let mut inner = self.lock();
        if let Some(s) = inner.services.get_mut(id) {
            // Only if it did not change again meanwhile.
            if s.node_service().same_content(synced) {
                s.in_sync = true;
            }
        }
    }

    pub fn check_synced(&self, id: &str, synced: &HealthCheck) {
        let mut inner = self.lock();
        if let Some(c) = inner.checks.get_mut(id) {
            if c.check.status == synced.status
                && c.check.output == synced.output
                && c.check.notes == synced.notes
            {
                c.in_sync = true;
                c.deferred_until = None;
            }
        }
    }

    pub fn service_deleted(&self, id: &str) {
        let mut inner = self.lock();
        inner.deleted_services.remove(id);
        inner.deleted_tokens.remove(id);
    }

    /// The token a removed service was registered with, until its removal is synced.
    pub fn deleted_service_token(&self, id: &str) -> Option<String> {
        self.lock().deleted_tokens.get(id).cloned()
    }

    pub fn check_deleted(&self, id: &str) {
        self.lock().deleted_checks.remove(id);
    }
}

/// One sync's work list.
#[derive(Debug, Default)]
pub struct Pending {
    pub deleted_services: Vec<String>,
    pub deleted_checks: Vec<String>,
    pub services: Vec<NodeService>,
    pub checks: Vec<HealthCheck>,
}

impl LocalCheck {
    fn new(def: CheckDef, source: Source, node: &str, previous: Option<&LocalCheck>) -> LocalCheck {
        let mut check = def.to_health_check(node);
        // Re-registering a check keeps its current status unless a status
        // is given (Consul keeps TTL state across re-registration).
        if def.status.is_empty() {
            if let Some(p) = previous {
                check.status = p.check.status.clone();
                check.output = p.check.output.clone();
            }
        }
        // A check that stays critical across a re-registration keeps its
        // clock: re-registering must not postpone the reaper.
        let critical_since = (check.status == CRITICAL).then(|| {
            previous
                .filter(|p| p.check.status == CRITICAL)
                .and_then(|p| p.critical_since)
                .unwrap_or_else(Instant::now)
        });
        LocalCheck { def, source, check, in_sync: false, deferred_until: None, critical_since }
    }
}
