//! A single-holder lock on one key (`PREFIX/.lock`), Consul's leader
//! election recipe: block on the key until it has no holder, acquire it
//! with our session, then watch it and report the moment another session
//! (or none) holds it. The key carries Consul's lock flag so a semaphore
//! at the same prefix is detected as a conflict.

use super::contend::{Budget, CleanupError, Held, Retries, Settings, RETRY_TIME};
use super::kv::{self, Read};
use super::session::ManagedSession;
use super::LockError;
use crate::api::Client;
use tokio_util::sync::CancellationToken;

/// Consul's flag value marking a key used as a lock.
pub const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;

pub struct Mutex {
    client: Client,
    key: String,
    settings: Settings,
    session: Option<ManagedSession>,
    held: Option<Held>,
}

impl Mutex {
    pub fn new(client: Client, key: String, settings: Settings) -> Mutex {
        Mutex { client, key, settings, session: None, held: None }
    }

    /// Acquires the lock. `Ok(None)`: stopped or out of time. On success
    /// returns the token that fires when the lock is lost.
    pub async fn acquire(
        &mut self,
        stop: &CancellationToken,
    ) -> Result<Option<CancellationToken>, LockError> {
        if self.held.is_some() {
            return Err(LockError::LockHeld);
        }
        let session = ManagedSession::create(&self.client, &self.settings.session_name, None)
            .await
            .map_err(LockError::CreateSession)?;
        let outcome = self.contend(&session.id, stop).await;
        match outcome {
            Ok(Some(())) => {
                let lost = CancellationToken::new();
                let monitor = tokio::spawn(monitor(
                    self.client.clone(),
                    self.key.clone(),
                    session.id.clone(),
                    self.settings.clone(),
                    lost.clone(),
                ));
                self.session = Some(session);
                self.held = Some(Held { monitor });
                Ok(Some(lost))
            }
            other => {
                session.close().await;
                other.map(|_| None)
            }
        }
    }

    async fn contend(&self, session: &str, stop: &CancellationToken) -> Result<Option<()>, LockError> {
        let mut budget = Budget::new(self.settings.timeout);
        let mut wait_index = 0;
        loop {
            if stop.is_cancelled() {
                return Ok(None);
            }
            let Some(wait) = budget.next_wait() else { return Ok(None) };
            let read = Read { wait_index, wait: Some(wait), consistent: false };
            let got = tokio::select! {
                _ = stop.cancelled() => return Ok(None),
                r = kv::get(&self.client, &self.key, read) => r,
            };
            let (pair, index) = got.map_err(LockError::ReadLock)?;
            if let Some(p) = &pair {
                if p.flags != LOCK_FLAG {
                    return Err(LockError::NotALock);
                }
                if p.session == session {
                    return Ok(Some(()));
                }
                if !p.session.is_empty() {
                    wait_index = index;
                    continue;
                }
            }
            let locked = kv::acquire(&self.client, &self.key, session, LOCK_FLAG, b"")
                .await
                .map_err(LockError::Acquire)?;
            if locked {
                return Ok(Some(()));
            }
            // Refused: either someone was quicker (wait for them), or the
            // key is in its lock-delay (poll slowly).
            let (pair, index) = kv::get(&self.client, &self.key, Read::default()).await?;
            if pair.is_some_and(|p| !p.session.is_empty()) {
                wait_index = index;
                continue;
            }
            wait_index = 0;
            tokio::select! {
                _ = stop.cancelled() => return Ok(None),
                _ = tokio::time::sleep(budget.pause(RETRY_TIME)) => {}
            }
        }
    }

    /// Releases the key and ends the session. After a loss there is
    /// nothing of ours to release (the key has another holder or none, and
    /// the session may be gone), so only the session is closed.
    pub async fn release(&mut self, lost: bool) -> Result<(), LockError> {
        let Some(held) = self.held.take() else { return Err(LockError::LockNotHeld) };
        drop(held);
        let Some(session) = self.session.take() else { return Err(LockError::LockNotHeld) };
        let result =
            if lost { Ok(false) } else { kv::release(&self.client, &self.key, &session.id, LOCK_FLAG).await };
        session.close().await;
        result.map(|_| ()).map_err(LockError::Release)
    }

    /// Deletes the lock key if nobody holds it.
    pub async fn cleanup(&mut self) -> Result<(), CleanupError> {
        if self.held.is_some() {
            return Err(CleanupError::Failed(LockError::LockHeld));
        }
        let (pair, _) = kv::get(&self.client, &self.key, Read::default())
            .await
            .map_err(|e| CleanupError::Failed(LockError::ReadLock(e)))?;
        let Some(pair) = pair else { return Ok(()) };
        if pair.flags != LOCK_FLAG {
            return Err(CleanupError::Failed(LockError::NotALock));
        }
        if !pair.session.is_empty() {
            return Err(CleanupError::InUse);
        }
        let removed = kv::delete_cas(&self.client, &self.key, pair.modify_index)
            .await
            .map_err(|e| CleanupError::Failed(LockError::RemoveLock(e)))?;
        if removed {
            Ok(())
        } else {
            Err(CleanupError::InUse)
        }
    }
}

/// Follows the key with consistent blocking reads; fires `lost` as soon as
/// it is not held by `session`, or reads keep failing.
async fn monitor(client: Client, key: String, session: String, settings: Settings, lost: CancellationToken) {
    let mut retries = Retries::new(settings.monitor_retries, settings.monitor_retry_time);
    let mut wait_index = 0;
    loop {
        match kv::get(&client, &key, Read { wait_index, wait: None, consistent: true }).await {
            Ok((Some(p), index)) if p.session == session => {
                retries.reset();
                wait_index = index;
            }
            Ok(_) => break,
            Err(e) => match retries.on_error(&e) {
                Some(pause) => {
                    wait_index = 0;
                    tokio::time::sleep(pause).await;
                }
                None => break,
            },
        }
    }
    lost.cancel();
}
