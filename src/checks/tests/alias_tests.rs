//! Alias checks following a fake `AliasSource` that behaves like a
//! blocking query (waits for its index to move, or for `wait`).

use super::{harness, spec};
use crate::checks::alias::ALIAS_WAIT;
use crate::checks::{AliasHealth, AliasSource, BoxFut, CheckKind, CheckResult, Status};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// (node, service, min_index) of one call.
type Call = (Option<String>, Option<String>, u64);

struct FakeSource {
    state: watch::Sender<AliasHealth>,
    fail_next: AtomicU32,
    calls: Mutex<Vec<Call>>,
}

impl FakeSource {
    fn new() -> Arc<FakeSource> {
        let (state, _) =
            watch::channel(AliasHealth { index: 0, status: Status::Critical, output: String::new() });
        Arc::new(FakeSource { state, fail_next: AtomicU32::new(0), calls: Mutex::new(Vec::new()) })
    }

    fn set(&self, index: u64, status: Status, output: &str) {
        self.state.send_replace(AliasHealth { index, status, output: output.into() });
    }
}

impl AliasSource for FakeSource {
    fn status<'a>(
        &'a self,
        node: Option<&'a str>,
        service_id: Option<&'a str>,
        min_index: u64,
        wait: Duration,
    ) -> BoxFut<'a, Result<AliasHealth, String>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                node.map(str::to_string),
                service_id.map(str::to_string),
                min_index,
            ));
            if self.fail_next.load(Ordering::SeqCst) > 0 {
                self.fail_next.fetch_sub(1, Ordering::SeqCst);
                return Err("no cluster leader".to_string());
            }
            let mut rx = self.state.subscribe();
            let _ = tokio::time::timeout(wait, rx.wait_for(|h| h.index > min_index)).await;
            let current = rx.borrow().clone();
            Ok(current)
        })
    }
}

fn result(status: Status, output: &str) -> CheckResult {
    CheckResult { id: "alias".into(), status, output: output.into() }
}

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn alias_follows_the_target_and_tolerates_one_error() {
    let source = FakeSource::new();
    source.set(5, Status::Passing, "All checks passing.");
    let mut h = harness(Some(source.clone()));
    h.runner.start(spec(
        "alias",
        CheckKind::Alias { node: Some("n2".into()), service_id: Some("web".into()) },
        Duration::ZERO,
    ));
    assert_eq!(h.next(S).await, result(Status::Passing, "All checks passing."));

    source.set(6, Status::Critical, "Aliased check \"http\" failing: down");
    assert_eq!(h.next(S).await, result(Status::Critical, "Aliased check \"http\" failing: down"));

    source.set(7, Status::Warning, "Aliased check \"http\" failing: slow");
    assert_eq!(h.next(S).await, result(Status::Warning, "Aliased check \"http\" failing: slow"));

    // The blocking call in flight answers normally; the next two fail.
    source.fail_next.store(2, Ordering::SeqCst);
    source.set(8, Status::Passing, "All checks passing.");
    assert_eq!(h.next(S).await, result(Status::Passing, "All checks passing."));
    // First failure tolerated, second reported.
    assert_eq!(
        h.next(S).await,
        result(Status::Critical, "Failure checking aliased node or service: no cluster leader")
    );
    // Recovery: the next call blocks past index 8 like a blocking query,
    // so the unchanged health comes back when its wait runs out.
    assert_eq!(h.next(ALIAS_WAIT + 2 * S).await, result(Status::Passing, "All checks passing."));

    let calls = source.calls.lock().unwrap().clone();
    assert!(calls
        .iter()
        .all(|(node, svc, _)| node.as_deref() == Some("n2") && svc.as_deref() == Some("web")));
    assert_eq!(calls[0].2, 0);
    assert_eq!(calls[1].2, 5, "the next call blocks past the index it saw");
}

#[tokio::test(start_paused = true)]
async fn unchanged_answers_are_not_resent_and_do_not_spin() {
    let source = FakeSource::new();
    source.set(3, Status::Passing, "All checks passing.");
    let mut h = harness(Some(source.clone()));
    h.runner.start(spec(
        "alias",
        CheckKind::Alias { node: None, service_id: Some("web".into()) },
        Duration::ZERO,
    ));
    assert_eq!(h.next(S).await.status, Status::Passing);
    // Blocking calls time out after a minute with the same answer.
    assert!(h.quiet_for(10 * 60 * S).await);
    let calls = source.calls.lock().unwrap().len();
    assert!((5..=15).contains(&calls), "about one call per minute, got {calls}");
}

#[tokio::test(start_paused = true)]
async fn repeated_errors_back_off() {
    let source = FakeSource::new();
    source.fail_next.store(u32::MAX, Ordering::SeqCst);
    let mut h = harness(Some(source.clone()));
    h.runner.start(spec(
        "alias",
        CheckKind::Alias { node: None, service_id: Some("web".into()) },
        Duration::ZERO,
    ));
    assert_eq!(h.next(S).await.status, Status::Critical);
    assert!(h.quiet_for(10 * 60 * S).await, "the same error is reported once");
    let calls = source.calls.lock().unwrap().len();
    // 3 quick tries, then waits of 2, 4, 8, 16, 32 and 60 s: about 14 calls in 10 minutes.
    assert!((10..=22).contains(&calls), "backed off to about one call a minute, got {calls}");
}

#[tokio::test(start_paused = true)]
async fn alias_without_a_source_is_critical() {
    let mut h = harness(None);
    h.runner.start(spec(
        "alias",
        CheckKind::Alias { node: None, service_id: Some("web".into()) },
        Duration::ZERO,
    ));
    let r = h.next(S).await;
    assert_eq!(r.status, Status::Critical);
    assert!(r.output.contains("no alias source"), "{}", r.output);
}
