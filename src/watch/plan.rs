//! The watch loop: blocking queries one after another, deciding after each
//! answer whether the data really changed, and calling the handler once
//! at start and once per change.
//!
//! Change rules (Consul's plan, made stricter): an answer carrying the
//! index we waited on is a blocking-query timeout and is ignored; an index
//! that went backwards (new Raft state, restored snapshot) makes the next
//! query non-blocking; the handler only runs when the data differs from
//! what it last received, so neither timeouts nor index bumps from
//! unrelated writes fire it. Errors back off `5s × failures²`, at most
//! 180s, and never fire the handler.

use super::query::{fetch, Fetched};
use super::spec::{WatchKind, WatchSpec};
use super::WatchError;
use crate::api::{Client, ClientConfig};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Consul's base retry interval after a failed query.
pub const RETRY_BASE: Duration = Duration::from_secs(5);
/// Consul's cap on the retry interval.
pub const RETRY_MAX: Duration = Duration::from_secs(180);
/// How long to pause between queries when the agent gives no index, so a
/// query that cannot block does not spin.
const NO_INDEX_PAUSE: Duration = Duration::from_secs(1);

/// What a handler wants the loop to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Decides, answer by answer, what to wait on next and whether to fire.
#[derive(Debug, Default)]
pub struct ChangeDetector {
    /// The index the next query blocks on (`None`: do not block).
    wait: Option<u64>,
    /// The index of the previous answer (event watches prune with it).
    prev: Option<u64>,
    /// What the handler last received.
    last: Option<Value>,
    /// Event indexes are hashes of IDs, not counters: never "backwards".
    monotonic: bool,
}

impl ChangeDetector {
    pub fn new(monotonic: bool) -> ChangeDetector {
        ChangeDetector { monotonic, ..Default::default() }
    }

    pub fn for_kind(kind: &WatchKind) -> ChangeDetector {
        ChangeDetector::new(!matches!(kind, WatchKind::Event { .. }))
    }

    pub fn wait_index(&self) -> u64 {
        self.wait.unwrap_or(0)
    }

    pub fn prev_index(&self) -> Option<u64> {
        self.prev
    }

    /// After a failed query: the next one reads without blocking. What the
    /// handler last saw is kept, so recovering alone does not fire it.
    pub fn reset(&mut self) {
        self.wait = None;
    }

    /// Takes one answer; returns the index and data to hand to the handler
    /// when it is the first answer or the data changed.
    pub fn observe(&mut self, answer: Fetched) -> Option<(u64, Value)> {
        if self.last.is_some() && self.wait == Some(answer.index) {
            return None;
        }
        let backwards = self.monotonic && matches!(self.wait, Some(old) if answer.index < old);
        self.prev = Some(answer.index);
        self.wait = if backwards { None } else { Some(answer.index) };
        if self.last.as_ref() == Some(&answer.data) {
            return None;
        }
        self.last = Some(answer.data.clone());
        Some((answer.index, answer.data))
    }
}

/// Where watch errors go: the agent's log, or stderr for the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorReport {
    Log,
    Stderr,
}

/// A watch ready to run against one agent.
pub struct Plan {
    pub spec: WatchSpec,
    client: Client,
    /// Base of the quadratic back-off (Consul: 5s).
    pub retry_base: Duration,
    pub report: ErrorReport,
}

impl Plan {
    /// `agent` says how to reach the agent (its address and TLS); the
    /// watch's own `datacenter` and `token` apply to its queries.
    pub fn new(spec: WatchSpec, agent: &ClientConfig) -> Result<Plan, WatchError> {
        let client = Client::new(ClientConfig {
            token: spec.token.clone(),
            datacenter: spec.datacenter.clone(),
            ..agent.clone()
        })
        .map_err(|e| WatchError::Client(e.into()))?;
        Ok(Plan { spec, client, retry_base: RETRY_BASE, report: ErrorReport::Log })
    }

    /// Runs until `stop` fires or the handler returns `Flow::Stop`.
    pub async fn run<F, Fut>(&self, stop: CancellationToken, mut handler: F)
    where
        F: FnMut(u64, Value) -> Fut,
        Fut: Future<Output = Flow>,
    {
        let mut detector = ChangeDetector::for_kind(&self.spec.kind);
        let mut failures: u32 = 0;
        loop {
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                a = fetch(&self.client, &self.spec, detector.wait_index(), detector.prev_index()) => a,
            };
            let pause = match answer {
                Err(e) => {
                    failures = failures.saturating_add(1);
                    detector.reset();
                    let retry = backoff(self.retry_base, failures);
                    self.report_error(&e, retry);
                    retry
                }
                Ok(a) => {
                    failures = 0;
                    let no_index = a.index == 0;
                    if let Some((index, data)) = detector.observe(a) {
                        if handler(index, data).await == Flow::Stop {
                            return;
                        }
                    }
                    if no_index {
                        NO_INDEX_PAUSE
                    } else {
                        Duration::ZERO
                    }
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    fn report_error(&self, error: &WatchError, retry: Duration) {
        let typ = self.spec.kind.type_name();
        let retry_text = crate::duration::format(retry);
        match self.report {
            ErrorReport::Log => {
                tracing::error!(target: "agent.watch", r#type = typ, error = %error, retry = %retry_text, "Watch errored");
            }
            ErrorReport::Stderr => {
                eprintln!(
                    "{} [ERROR] watch: Watch errored: type={typ} error=\"{error}\" retry={retry_text}",
                    crate::logging::timestamp()
                );
            }
        }
    }
}

/// `base × failures²`, capped at `RETRY_MAX`.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = failures.saturating_mul(failures);
    base.checked_mul(factor).map_or(RETRY_MAX, |d| d.min(RETRY_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(index: u64, data: Value) -> Fetched {
        Fetched { index, data }
    }

    #[test]
    fn fires_at_start_then_only_on_real_changes() {
        let mut d = ChangeDetector::new(true);
        assert_eq!(d.wait_index(), 0);
        assert_eq!(
            d.observe(answer(5, Value::Null)),
            Some((5, Value::Null)),
            "first answer fires, even when empty"
        );
        assert_eq!(d.wait_index(), 5);
        assert_eq!(d.observe(answer(5, Value::Null)), None, "timeout: same index");
        assert_eq!(d.observe(answer(9, Value::Null)), None, "index moved but data did not");
        assert_eq!(d.wait_index(), 9);
        assert_eq!(d.observe(answer(12, json!({"v": 1}))), Some((12, json!({"v": 1}))));
        assert_eq!(d.observe(answer(12, json!({"v": 1}))), None);
        assert_eq!(d.observe(answer(13, json!({"v": 2}))), Some((13, json!({"v": 2}))));
    }

    #[test]
    fn index_going_backwards_resets_blocking() {
        let mut d = ChangeDetector::new(true);
        d.observe(answer(100, json!(1)));
        assert_eq!(d.observe(answer(3, json!(1))), None, "same data, new history");
        assert_eq!(d.wait_index(), 0, "next query must not block on a stale index");
        assert_eq!(d.observe(answer(4, json!(2))), Some((4, json!(2))));
        assert_eq!(d.wait_index(), 4);
    }

    #[test]
    fn errors_do_not_refire_unchanged_data() {
        let mut d = ChangeDetector::new(true);
        d.observe(answer(7, json!("a")));
        d.reset();
        assert_eq!(d.wait_index(), 0);
        assert_eq!(d.observe(answer(7, json!("a"))), None);
        assert_eq!(d.wait_index(), 7);
    }

    #[test]
    fn event_indexes_are_not_ordered() {
        let mut d = ChangeDetector::new(false);
        d.observe(answer(900, json!([{"ID": "a"}])));
        assert_eq!(d.observe(answer(20, json!([{"ID": "b"}]))), Some((20, json!([{"ID": "b"}]))));
        assert_eq!(d.wait_index(), 20);
        assert_eq!(d.prev_index(), Some(20));
    }

    #[test]
    fn backoff_is_quadratic_and_capped() {
        assert_eq!(backoff(RETRY_BASE, 1), Duration::from_secs(5));
        assert_eq!(backoff(RETRY_BASE, 2), Duration::from_secs(20));
        assert_eq!(backoff(RETRY_BASE, 6), RETRY_MAX);
        assert_eq!(backoff(RETRY_BASE, u32::MAX), RETRY_MAX);
    }
}
