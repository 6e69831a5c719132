//! The one way a check task hands a result to the agent. Owns the
//! "is this instance still the live one" gate, so that once
//! `Runner::stop` or a replacing `Runner::start` returns, the retired
//! instance cannot send anything more.

use super::spec::{CheckResult, Status};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub(crate) struct Reporter {
    id: String,
    results: mpsc::Sender<CheckResult>,
    cancel: CancellationToken,
    live: Arc<Mutex<bool>>,
}

impl Reporter {
    pub(crate) fn new(id: String, results: mpsc::Sender<CheckResult>, cancel: CancellationToken) -> Reporter {
        Reporter { id, results, cancel, live: Arc::new(Mutex::new(true)) }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Stops this instance: after this returns, `report` sends nothing.
    pub(crate) fn retire(&self) {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.cancel.cancel();
    }

    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Sleeps unless cancelled first; false when cancelled.
    pub(crate) async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Sends one result; false when the check was retired or the agent
    /// dropped its receiver (the task should end then).
    pub(crate) async fn report(&self, status: Status, output: String) -> bool {
        let permit = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return false,
            permit = self.results.reserve() => match permit {
                Ok(p) => p,
                Err(_) => return false,
            },
        };
        // Checked and sent under the lock `retire` takes: no send can
        // slip in after a retire returned.
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !*live {
            return false;
        }
        permit.send(CheckResult { id: self.id.clone(), status, output });
        true
    }
}
