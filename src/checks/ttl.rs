//! TTL checks: the status is pushed from outside (`/v1/agent/check/pass`,
//! `warn`, `fail`, `update`) and must be renewed within the TTL. Each
//! update is reported and restarts the timer; when the timer runs out the
//! check turns critical once, with `TTL expired` (plus the last output, as
//! Consul 1.x words it). The counters do not apply (as in Consul).

use super::output::truncate_head;
use super::reporter::Reporter;
use super::spec::Status;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The latest update pushed to one TTL check.
pub(crate) type Update = Option<(Status, String)>;

/// The runner's side of a TTL check.
pub(crate) struct TtlHandle {
    updates: watch::Sender<Update>,
    max_output: usize,
}

impl TtlHandle {
    pub(crate) fn new(max_output: usize) -> (TtlHandle, watch::Receiver<Update>) {
        let (tx, rx) = watch::channel(None);
        (TtlHandle { updates: tx, max_output }, rx)
    }

    /// Records an update (never blocks); returns the output as stored.
    pub(crate) fn update(&self, status: Status, output: String) -> String {
        let output = truncate_head(output, self.max_output);
        // Even an identical value marks the channel changed, so a repeated
        // `pass` still renews the TTL.
        self.updates.send_replace(Some((status, output.clone())));
        output
    }
}

fn expired_output(last: &str) -> String {
    if last.is_empty() {
        "TTL expired".to_string()
    } else {
        format!("TTL expired (last output before timeout follows): {last}")
    }
}

pub(crate) async fn run(reporter: Reporter, ttl: Duration, mut updates: watch::Receiver<Update>) {
    let mut deadline = Instant::now() + ttl;
    let mut armed = true;
    let mut last_output = String::new();
    loop {
        tokio::select! {
            biased;
            _ = reporter.cancelled() => return,
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some((status, output)) = updates.borrow_and_update().clone() else { continue };
                deadline = Instant::now() + ttl;
                armed = true;
                last_output = output.clone();
                tracing::debug!(target: "agent", check = %reporter.id(), status = %status, "check status updated");
                if !reporter.report(status, output).await {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline), if armed => {
                armed = false;
                tracing::warn!(target: "agent", check = %reporter.id(), "check missed TTL, is now critical");
                if !reporter.report(Status::Critical, expired_output(&last_output)).await {
                    return;
                }
            }
        }
    }
}
