//! TTL checks on Tokio's paused clock: updates, renewal, expiry.

use super::{harness, spec};
use crate::checks::runner::TtlError;
use crate::checks::{CheckKind, CheckResult, Status};
use std::time::Duration;

fn result(status: Status, output: &str) -> CheckResult {
    CheckResult { id: "ttl".into(), status, output: output.into() }
}

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn updates_renew_and_expiry_turns_critical_once() {
    let mut h = harness(None);
    h.runner.start(spec("ttl", CheckKind::Ttl { ttl: 10 * S }, Duration::ZERO));

    assert_eq!(h.runner.ttl_update("ttl", Status::Passing, "all good".into()), Ok("all good".to_string()));
    assert_eq!(h.next(S).await, result(Status::Passing, "all good"));
    assert!(h.quiet_for(9 * S).await);

    // Renewed before expiry: no expiry for another full TTL.
    h.runner.ttl_update("ttl", Status::Warning, "meh".into()).unwrap();
    assert_eq!(h.next(S).await, result(Status::Warning, "meh"));
    assert!(h.quiet_for(9 * S).await);
    assert_eq!(
        h.next(2 * S).await,
        result(Status::Critical, "TTL expired (last output before timeout follows): meh")
    );
    // Expiry is reported once, not on every TTL after that.
    assert!(h.quiet_for(100 * S).await);

    // A repeated identical update still counts.
    h.runner.ttl_update("ttl", Status::Passing, "back".into()).unwrap();
    assert_eq!(h.next(S).await, result(Status::Passing, "back"));
    h.runner.ttl_update("ttl", Status::Passing, "back".into()).unwrap();
    assert_eq!(h.next(S).await, result(Status::Passing, "back"));
    assert_eq!(h.next(11 * S).await.status, Status::Critical);
}

#[tokio::test(start_paused = true)]
async fn never_updated_expires_with_plain_message() {
    let mut h = harness(None);
    h.runner.start(spec("ttl", CheckKind::Ttl { ttl: 30 * S }, Duration::ZERO));
    assert!(h.quiet_for(29 * S).await);
    assert_eq!(h.next(2 * S).await, result(Status::Critical, "TTL expired"));
}

#[tokio::test(start_paused = true)]
async fn long_output_is_cut_with_consul_note() {
    let mut h = harness(None);
    let mut s = spec("ttl", CheckKind::Ttl { ttl: 10 * S }, Duration::ZERO);
    s.output_max_size = 10;
    h.runner.start(s);
    let stored = h.runner.ttl_update("ttl", Status::Passing, "0123456789abcdefghij".into()).unwrap();
    assert_eq!(stored, "0123456789 ... (captured 10 of 20 bytes)");
    assert_eq!(h.next(S).await.output, stored);
}

#[tokio::test(start_paused = true)]
async fn updates_to_unknown_or_non_ttl_checks_are_refused() {
    let h = harness(None);
    assert_eq!(
        h.runner.ttl_update("nope", Status::Passing, String::new()),
        Err(TtlError::NotFound("nope".into()))
    );
    h.runner.start(spec("udp", CheckKind::Udp { address: "127.0.0.1:9".into() }, Duration::ZERO));
    assert_eq!(
        h.runner.ttl_update("udp", Status::Passing, String::new()),
        Err(TtlError::NotTtl("udp".into()))
    );
    assert_eq!(TtlError::NotTtl("udp".into()).to_string(), "check ID \"udp\" does not have associated TTL");
    h.runner.start(spec("udp", CheckKind::Ttl { ttl: S }, Duration::ZERO));
    assert!(
        h.runner.ttl_update("udp", Status::Passing, String::new()).is_ok(),
        "replacing the check replaces its kind"
    );
    h.runner.stop("udp");
    assert_eq!(
        h.runner.ttl_update("udp", Status::Passing, String::new()),
        Err(TtlError::NotFound("udp".into()))
    );
}
