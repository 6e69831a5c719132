//! Alias checks: mirror the aggregate health of another service instance
//! (or node) through blocking calls to an `AliasSource` the agent
//! implements over its local state or the catalog. Owns the watch loop and
//! Consul's aggregation rule (`alias_health`), which the agent can reuse
//! to answer those calls. Must not read agent or catalog state itself.

use super::reporter::Reporter;
use super::spec::Status;
use super::BoxFut;
use std::sync::Arc;
use std::time::Duration;

/// How long one blocking call may wait (Consul's alias `MaxQueryTime`).
pub const ALIAS_WAIT: Duration = Duration::from_secs(60);
/// Failed calls in a row before backing off (then 2s, 4s, ... up to 1m).
const BACKOFF_AFTER: u32 = 3;
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Pause after a call that returned without the index moving: a source
/// that answers at once must not turn the loop into a busy spin.
const UNCHANGED_PAUSE: Duration = Duration::from_secs(1);

/// The aggregate health of an alias target at some index.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasHealth {
    /// Raft (or local-state) index of the answer; the next call blocks
    /// until it moves past it.
    pub index: u64,
    pub status: Status,
    /// Output for the alias check; `alias_health` builds Consul's wording.
    pub output: String,
}

/// Source of an alias check's target health; the agent implements it over
/// its local state (`node: None`) or the catalog (a named node).
pub trait AliasSource: Send + Sync + 'static {
    /// Blocks (like a Consul blocking query) until the health of
    /// `node`/`service_id` has an index above `min_index`, or `wait`
    /// passes; `service_id: None` means the node's own health.
    fn status<'a>(
        &'a self,
        node: Option<&'a str>,
        service_id: Option<&'a str>,
        min_index: u64,
        wait: Duration,
    ) -> BoxFut<'a, Result<AliasHealth, String>>;
}

/// One health check of the aliased node, as `alias_health` needs it.
#[derive(Clone, Copy, Debug)]
pub struct AliasedCheck<'a> {
    pub node: &'a str,
    /// Empty for node-level checks.
    pub service_id: &'a str,
    pub name: &'a str,
    pub status: Status,
    pub output: &'a str,
}

/// Consul's aggregation for alias checks over the checks of the target's
/// node: any critical → critical (`Aliased check "<name>" failing:
/// <output>`), else any warning → warning, else passing (`All checks
/// passing.`, or `No checks found.`). Node-level checks count too. When
/// none of the checks belongs to the service and `service_exists` says it
/// is not registered, the result is critical `Service <id> could not be
/// found on node <node>`.
pub fn alias_health<'a>(
    node: Option<&str>,
    service_id: Option<&str>,
    checks: impl IntoIterator<Item = AliasedCheck<'a>>,
    service_exists: impl FnOnce() -> bool,
) -> (Status, String) {
    let wanted_service = service_id.unwrap_or("");
    let mut health = Status::Passing;
    let mut output = "No checks found.".to_string();
    let mut service_found = false;
    for check in checks {
        if let Some(node) = node {
            if !node.eq_ignore_ascii_case(check.node) {
                continue;
            }
        }
        let service_match = check.service_id == wanted_service;
        if !check.service_id.is_empty() && !service_match {
            continue;
        }
        service_found |= service_match;
        match check.status {
            Status::Critical | Status::Warning => {
                health = check.status;
                output = format!("Aliased check {:?} failing: {}", check.name, check.output);
                if check.status == Status::Critical {
                    break;
                }
            }
            Status::Passing => {
                if health == Status::Passing {
                    output = "All checks passing.".to_string();
                }
            }
        }
    }
    if !service_found && !service_exists() {
        return (
            Status::Critical,
            format!("Service {} could not be found on node {}", wanted_service, node.unwrap_or("")),
        );
    }
    (health, output)
}

fn backoff(attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(BACKOFF_AFTER).min(31);
    Duration::from_secs(1u64 << shift).min(BACKOFF_MAX)
}

pub(crate) async fn run(
    reporter: Reporter,
    source: Option<Arc<dyn AliasSource>>,
    node: Option<String>,
    service_id: Option<String>,
) {
    let Some(source) = source else {
        reporter
            .report(
                Status::Critical,
                "alias checks are not available: the agent gave the runner no alias source".to_string(),
            )
            .await;
        return;
    };
    let mut last: Option<(Status, String)> = None;
    let mut min_index = 0u64;
    let mut failures = 0u32;
    loop {
        let mut pause = false;
        if failures > BACKOFF_AFTER && !reporter.sleep(backoff(failures)).await {
            return;
        }
        let answer = tokio::select! {
            biased;
            _ = reporter.cancelled() => return,
            answer = source.status(node.as_deref(), service_id.as_deref(), min_index, ALIAS_WAIT) => answer,
        };
        let next = match answer {
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::debug!(target: "agent", check = %reporter.id(), error = %e, "alias check failed to read target health");
                crate::metrics::incr("consul.checks.alias.errors", 1);
                // One failure is tolerated, as in Consul.
                if failures < 2 {
                    continue;
                }
                (Status::Critical, format!("Failure checking aliased node or service: {e}"))
            }
            Ok(health) => {
                failures = 0;
                pause = health.index <= min_index;
                // Never block on index 0; follow an index that went back.
                min_index = health.index.max(1);
                (health.status, health.output)
            }
        };
        // The agent only needs changes; an unchanged answer is not resent.
        if last.as_ref() != Some(&next) {
            last = Some(next.clone());
            if !reporter.report(next.0, next.1).await {
                return;
            }
        }
        if pause && !reporter.sleep(UNCHANGED_PAUSE).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chk<'a>(
        node: &'a str,
        service_id: &'a str,
        name: &'a str,
        status: Status,
        output: &'a str,
    ) -> AliasedCheck<'a> {
        AliasedCheck { node, service_id, name, status, output }
    }

    #[test]
    fn aggregation_follows_consul() {
        let checks = [
            chk("n1", "", "serf", Status::Passing, ""),
            chk("n1", "web", "http", Status::Passing, "ok"),
            chk("n1", "db", "db", Status::Critical, "down"),
        ];
        assert_eq!(
            alias_health(None, Some("web"), checks, || true),
            (Status::Passing, "All checks passing.".to_string())
        );

        let checks =
            [chk("n1", "web", "a", Status::Warning, "slow"), chk("n1", "web", "b", Status::Passing, "")];
        assert_eq!(
            alias_health(None, Some("web"), checks, || true),
            (Status::Warning, "Aliased check \"a\" failing: slow".to_string())
        );

        let checks = [
            chk("n1", "web", "a", Status::Warning, "slow"),
            chk("n1", "", "node", Status::Critical, "gone"),
            chk("n1", "web", "c", Status::Warning, "later"),
        ];
        assert_eq!(
            alias_health(None, Some("web"), checks, || true),
            (Status::Critical, "Aliased check \"node\" failing: gone".to_string())
        );
    }

    #[test]
    fn other_nodes_are_ignored_case_insensitively() {
        let checks =
            [chk("N1", "web", "a", Status::Passing, ""), chk("n2", "web", "b", Status::Critical, "x")];
        assert_eq!(alias_health(Some("n1"), Some("web"), checks, || true).0, Status::Passing);
    }

    #[test]
    fn missing_service_is_critical_unless_it_exists() {
        assert_eq!(
            alias_health(Some("n1"), Some("web"), [], || false),
            (Status::Critical, "Service web could not be found on node n1".to_string())
        );
        assert_eq!(
            alias_health(Some("n1"), Some("web"), [], || true),
            (Status::Passing, "No checks found.".to_string())
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(10), Duration::from_secs(60));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(60));
    }
}
