//! The critical-service reaper: a service whose check carries
//! `deregister_critical_service_after` is deregistered from this agent
//! (with all its checks) once that check has stayed critical for longer
//! than the timeout. Anti-entropy then removes it from the catalog.
//!
//! As Consul, timeouts below one minute are raised to one minute. Consul
//! looks every 30s; this reaper looks every `REAP_INTERVAL` (2s), so a
//! service goes within ~2s of its deadline rather than within ~30s.
//!
//! Owns only the periodic scan; the local state keeps the critical clocks.

use super::Agent;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the reaper looks for services to remove.
pub const REAP_INTERVAL: Duration = Duration::from_secs(2);

/// The shortest `deregister_critical_service_after` honoured.
pub const MIN_DEREGISTER_AFTER: Duration = Duration::from_secs(60);

/// Scans every `REAP_INTERVAL` until shutdown.
pub async fn run(agent: Agent, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        agent.reap_critical_services(Instant::now());
    }
}

/// Warns when a check asks for less than the minimum (it gets the minimum).
pub fn warn_if_below_minimum(check_id: &str, after: Option<Duration>) {
    if let Some(d) = after.filter(|d| !d.is_zero() && *d < MIN_DEREGISTER_AFTER) {
        tracing::warn!(
            target: "agent",
            check = %check_id,
            requested = %crate::duration::format(d),
            minimum = %crate::duration::format(MIN_DEREGISTER_AFTER),
            "check has deregister_critical_service_after below the minimum; using the minimum"
        );
    }
}

impl Agent {
    /// Deregisters every service whose check has been critical too long;
    /// returns the removed service IDs.
    pub fn reap_critical_services(&self, now: Instant) -> Vec<String> {
        let mut removed = Vec::new();
        for (service_id, check_id) in self.local().critical_too_long(now, MIN_DEREGISTER_AFTER) {
            match self.deregister_service(&service_id) {
                Ok(()) => {
                    tracing::info!(
                        target: "agent",
                        service = %service_id,
                        check = %check_id,
                        "check has been critical for too long; deregistered service"
                    );
                    removed.push(service_id);
                }
                Err(e) => {
                    tracing::warn!(target: "agent", service = %service_id, error = %e, "failed to deregister critical service")
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::local::LocalState;
    use crate::definition::{CheckDef, ServiceDef, Source};

    fn service(id: &str, after: Option<Duration>, status: &str) -> ServiceDef {
        let check = CheckDef {
            id: format!("service:{id}"),
            name: "c".into(),
            service_id: id.into(),
            status: status.into(),
            ttl: Some(Duration::from_secs(30)),
            deregister_critical_service_after: after,
            ..Default::default()
        };
        ServiceDef { id: id.into(), name: id.into(), checks: vec![check], ..Default::default() }
    }

    #[test]
    fn only_services_critical_past_their_timeout_are_reaped() {
        let local = LocalState::new("n1");
        let t0 = Instant::now();
        local.add_service(service("web", Some(Duration::from_secs(90)), "critical"), Source::Remote, false);
        local.add_service(service("short", Some(Duration::from_secs(5)), "critical"), Source::Remote, false);
        local.add_service(service("never", None, "critical"), Source::Remote, false);
        local.add_service(service("ok", Some(Duration::from_secs(90)), "passing"), Source::Remote, false);
        let reap = |at: Duration| -> Vec<String> {
            local.critical_too_long(t0 + at, MIN_DEREGISTER_AFTER).into_iter().map(|(s, _)| s).collect()
        };
        assert!(reap(Duration::from_secs(30)).is_empty(), "a 5s timeout is raised to the 1m minimum");
        assert_eq!(reap(Duration::from_secs(61)), vec!["short"]);
        assert_eq!(reap(Duration::from_secs(91)), vec!["short", "web"]);

        // Passing stops the clock; going critical again starts a new one.
        local.update_check("service:web", "passing", "", None);
        assert_eq!(local.check("service:web").and_then(|c| c.critical_since), None);
        assert_eq!(reap(Duration::from_secs(91)), vec!["short"]);
        local.update_check("service:web", "critical", "", None);
        let since = local.check("service:web").and_then(|c| c.critical_since);
        assert!(since.is_some_and(|s| s >= t0));
        assert!(reap(Duration::from_secs(91)).contains(&"short".to_string()));
    }

    #[test]
    fn re_registering_a_critical_check_keeps_its_clock() {
        let local = LocalState::new("n1");
        local.add_service(service("web", Some(Duration::from_secs(60)), "critical"), Source::Remote, false);
        let first = local.check("service:web").and_then(|c| c.critical_since);
        local.add_service(service("web", Some(Duration::from_secs(60)), ""), Source::Remote, false);
        assert_eq!(local.check("service:web").and_then(|c| c.critical_since), first);
    }
}
