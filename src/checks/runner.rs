//! `Runner`: the set of running checks of one agent. Owns one task per
//! check (spawned on the agent's `TaskTracker`, children of its shutdown
//! token), starting, replacing and stopping them, and routing TTL updates.
//! Must not keep check state beyond that: statuses live in the agent.

use super::alias::{self, AliasSource};
use super::reporter::Reporter;
use super::schedule;
use super::spec::{CheckKind, CheckResult, CheckSpec, Status};
use super::tls::TlsRoots;
use super::ttl::{self, TtlHandle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a TTL update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// No running check has this ID (the API answers 404).
    #[error("unknown check ID {0:?}")]
    NotFound(String),
    /// The check exists but is not a TTL check (the API answers 500
    /// `CheckID "<id>" does not have associated TTL`).
    #[error("check ID {0:?} does not have associated TTL")]
    NotTtl(String),
}

struct Entry {
    reporter: Reporter,
    ttl: Option<TtlHandle>,
}

struct Shared {
    checks: Mutex<HashMap<String, Entry>>,
    results: mpsc::Sender<CheckResult>,
    alias: Option<Arc<dyn AliasSource>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    roots: Arc<TlsRoots>,
}

impl Shared {
    fn checks(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.checks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: nobody can stop these checks any more.
        for entry in self.checks.get_mut().unwrap_or_else(|e| e.into_inner()).values() {
            entry.reporter.retire();
        }
    }
}

/// Owns the running checks. Cheap to clone; all clones share the checks.
/// Results of every run go to the `results` channel: each probe result
/// that passes the counters, each TTL update and expiry, and each change
/// of an alias target. The agent decides what to store and sync.
#[derive(Clone)]
pub struct Runner {
    shared: Arc<Shared>,
}

impl Runner {
    pub fn new(
        results: mpsc::Sender<CheckResult>,
        alias: Option<Arc<dyn AliasSource>>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Runner {
        Runner {
            shared: Arc::new(Shared {
                checks: Mutex::new(HashMap::new()),
                results,
                alias,
                tasks,
                shutdown,
                roots: Arc::new(TlsRoots::default()),
            }),
        }
    }

    /// Also trusts the CA certificates of a PEM bundle for HTTPS, TCP+TLS
    /// and gRPC+TLS checks (besides the system roots), as Consul does with
    /// the agent's `ca_file` for checks. Call before the runner is cloned
    /// or started; returns how many certificates were added.
    // The agent itself uses `use_agent_tls` (Consul adds its CA to checks
    // only with `enable_agent_tls_for_checks`); checks/tests/runner_tests.rs
    // covers this one.
    #[allow(dead_code)]
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<usize, String> {
        let shared = Arc::get_mut(&mut self.shared)
            .ok_or_else(|| "failed to add CA certificates: the runner is already shared".to_string())?;
        let roots = Arc::get_mut(&mut shared.roots)
            .ok_or_else(|| "failed to add CA certificates: checks are already running".to_string())?;
        roots.add_pem(pem)
    }

    /// Has HTTPS, TCP+TLS and gRPC+TLS checks trust the agent's CA and
    /// present the agent's certificate (`enable_agent_tls_for_checks`).
    /// Call before the runner is cloned or started.
    pub fn use_agent_tls(
        &mut self,
        ca: &[rustls::pki_types::CertificateDer<'static>],
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: Arc<rustls::pki_types::PrivateKeyDer<'static>>,
    ) -> Result<(), String> {
        let shared = Arc::get_mut(&mut self.shared).ok_or_else(|| {
            "failed to set the agent's TLS for checks: the runner is already shared".to_string()
        })?;
        let roots = Arc::get_mut(&mut shared.roots).ok_or_else(|| {
            "failed to set the agent's TLS for checks: checks are already running".to_string()
        })?;
        roots.add_certs(ca);
        roots.set_client_cert(chain, key);
        Ok(())
    }

    /// Starts `spec`, replacing (stopping first) a running check with the
    /// same ID. Needs a Tokio runtime; without one, or after shutdown, the
    /// check is not started and an error is logged.
    pub fn start(&self, spec: CheckSpec) {
        let shared = &self.shared;
        if shared.shutdown.is_cancelled() {
            tracing::warn!(target: "agent", check = %spec.id, "not starting check: agent is shutting down");
            return;
        }
        let handle = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(target: "agent", check = %spec.id, error = %e, "failed to start check: no async runtime");
                return;
            }
        };
        let reporter = Reporter::new(spec.id.clone(), shared.results.clone(), shared.shutdown.child_token());
        let (ttl, ttl_updates) = match &spec.kind {
            CheckKind::Ttl { .. } => {
                let (handle, rx) = TtlHandle::new(spec.effective_output_max_size());
                (Some(handle), Some(rx))
            }
            _ => (None, None),
        };
        {
            let mut checks = shared.checks();
            if let Some(old) = checks.insert(spec.id.clone(), Entry { reporter: reporter.clone(), ttl }) {
                old.reporter.retire();
            }
        }
        tracing::debug!(target: "agent", check = %spec.id, kind = spec.kind.type_name(), "starting check");
        match (spec.kind.clone(), ttl_updates) {
            (CheckKind::Ttl { ttl }, Some(updates)) => {
                shared.tasks.spawn_on(ttl::run(reporter, ttl, updates), &handle);
            }
            (CheckKind::Alias { node, service_id }, _) => {
                shared.tasks.spawn_on(alias::run(reporter, shared.alias.clone(), node, service_id), &handle);
            }
            _ => {
                shared.tasks.spawn_on(schedule::run(reporter, spec, shared.roots.clone()), &handle);
            }
        }
    }

    /// Stops the check with this ID (a running script is killed with its
    /// process group). Once this returns the check sends no more results;
    /// ones it sent before may still be queued in the channel. Returns
    /// whether such a check was running.
    pub fn stop(&self, id: &str) -> bool {
        let removed = self.shared.checks().remove(id);
        match removed {
            Some(entry) => {
                entry.reporter.retire();
                tracing::debug!(target: "agent", check = %id, "stopped check");
                true
            }
            None => false,
        }
    }

    /// Sets a TTL check's status and output and restarts its TTL (the
    /// `pass`/`warn`/`fail`/`update` endpoints). The result is reported
    /// on the channel like any other. Returns the output as stored: cut to
    /// the check's output cap with Consul's note, for the agent to persist.
    pub fn ttl_update(&self, id: &str, status: Status, output: String) -> Result<String, TtlError> {
        let checks = self.shared.checks();
        let entry = checks.get(id).ok_or_else(|| TtlError::NotFound(id.to_string()))?;
        let ttl = entry.ttl.as_ref().ok_or_else(|| TtlError::NotTtl(id.to_string()))?;
        Ok(ttl.update(status, output))
    }

    /// IDs of the running checks, sorted (tests look).
    #[cfg(test)]
    pub fn running(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.checks().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops every check (as agent shutdown does through the token; tests
    /// call it directly).
    #[cfg(test)]
    pub fn stop_all(&self) {
        let drained: Vec<Entry> = self.shared.checks().drain().map(|(_, e)| e).collect();
        for entry in drained {
            entry.reporter.retire();
        }
    }
}
