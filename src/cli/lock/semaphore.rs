//! A semaphore of `limit` slots under a prefix, Consul's recipe and key
//! layout: each contender acquires `PREFIX/<session>` with its own session
//! (so its death deletes the key), and `PREFIX/.lock` holds
//! `{"Limit": N, "Holders": {"<session>": true, …}}`, changed only by
//! check-and-set. Holders whose contender key is gone are pruned before
//! counting; a slot is lost when our session drops out of the holders.

use super::contend::{Budget, CleanupError, Held, Retries, Settings};
use super::kv::{self, Pair, Read};
use super::session::ManagedSession;
use super::LockError;
use crate::api::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use tokio_util::sync::CancellationToken;

/// Consul's flag value marking keys used by a semaphore.
pub const SEMAPHORE_FLAG: u64 = 0xe0f6_9a2b_aa41_4de0;
/// The coordination key inside the prefix.
pub const LOCK_KEY: &str = ".lock";

/// The JSON under `PREFIX/.lock`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SemaphoreLock {
    #[serde(rename = "Limit", alias = "limit")]
    pub limit: i64,
    #[serde(rename = "Holders", alias = "holders", default, deserialize_with = "null_as_empty")]
    pub holders: BTreeMap<String, bool>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::<BTreeMap<String, bool>>::deserialize(d)?.unwrap_or_default())
}

impl SemaphoreLock {
    /// Drops holders with no live contender key (any key of the prefix
    /// held by their session counts as alive).
    pub fn prune_dead(&mut self, pairs: &[Pair]) {
        let alive: HashSet<&str> =
            pairs.iter().filter(|p| !p.session.is_empty()).map(|p| p.session.as_str()).collect();
        self.holders.retain(|h, _| alive.contains(h.as_str()));
    }
}

pub struct Semaphore {
    client: Client,
    prefix: String,
    limit: i64,
    settings: Settings,
    session: Option<ManagedSession>,
    held: Option<Held>,
}

impl Semaphore {
    pub fn new(
        client: Client,
        prefix: String,
        limit: i64,
        settings: Settings,
    ) -> Result<Semaphore, LockError> {
        if prefix.is_empty() {
            return Err(LockError::MissingPrefix);
        }
        if limit <= 0 {
            return Err(LockError::LimitNotPositive);
        }
        Ok(Semaphore { client, prefix, limit, settings, session: None, held: None })
    }

    fn lock_key(&self) -> String {
        kv::join(&self.prefix, LOCK_KEY)
    }

    fn contender_key(&self, session: &str) -> String {
        kv::join(&self.prefix, session)
    }

    /// The coordination entry among `pairs`, or a fresh one.
    fn find_lock(&self, pairs: &[Pair]) -> Pair {
        let key = self.lock_key();
        pairs
            .iter()
            .find(|p| p.key == key)
            .cloned()
            .unwrap_or(Pair { flags: SEMAPHORE_FLAG, ..Pair::default() })
    }

    fn decode(&self, pair: &Pair) -> Result<SemaphoreLock, LockError> {
        match &pair.value {
            None => Ok(SemaphoreLock { limit: self.limit, holders: BTreeMap::new() }),
            Some(v) => serde_json::from_slice(v).map_err(LockError::Decode),
        }
    }

    /// Takes a slot. `Ok(None)`: stopped or out of time.
    pub async fn acquire(
        &mut self,
        stop: &CancellationToken,
    ) -> Result<Option<CancellationToken>, LockError> {
        if self.held.is_some() {
            return Err(LockError::SemaphoreHeld);
        }
        let session = ManagedSession::create(&self.client, &self.settings.session_name, Some("delete"))
            .await
            .map_err(LockError::CreateSession)?;
        match self.contend(&session.id, stop).await {
            Ok(true) => {
                let lost = CancellationToken::new();
                let monitor = tokio::spawn(monitor(
                    self.watch_target(),
                    session.id.clone(),
                    self.settings.clone(),
                    lost.clone(),
                ));
                self.session = Some(session);
                self.held = Some(Held { monitor });
                Ok(Some(lost))
            }
            other => {
                // The contender key goes with the session (behavior delete).
                session.close().await;
                other.map(|_| None)
            }
        }
    }

    async fn contend(&self, session: &str, stop: &CancellationToken) -> Result<bool, LockError> {
        let made = kv::acquire(&self.client, &self.contender_key(session), session, SEMAPHORE_FLAG, b"")
            .await
            .map_err(LockError::ContenderEntry)?;
        if !made {
            return Err(LockError::ContenderHeld);
        }
        let mut budget = Budget::new(self.settings.timeout);
        let mut wait_index = 0;
        loop {
            if stop.is_cancelled() {
                return Ok(false);
            }
            let Some(wait) = budget.next_wait() else { return Ok(false) };
            let read = Read { wait_index, wait: Some(wait), consistent: false };
            let got = tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                r = kv::list(&self.client, &self.prefix, read) => r,
            };
            let (pairs, index) = got.map_err(LockError::ReadPrefix)?;
            let lock_pair = self.find_lock(&pairs);
            if lock_pair.flags != SEMAPHORE_FLAG {
                return Err(LockError::NotASemaphore);
            }
            let mut lock = self.decode(&lock_pair)?;
            if lock.limit != self.limit {
                return Err(LockError::LimitConflict { lock: lock.limit, local: self.limit });
            }
            lock.prune_dead(&pairs);
            if lock.holders.len() as i64 >= lock.limit {
                wait_index = index;
                continue;
            }
            lock.holders.insert(session.to_string(), true);
            let body = serde_json::to_vec(&lock).map_err(LockError::Encode)?;
            let set = kv::cas(&self.client, &self.lock_key(), SEMAPHORE_FLAG, &body, lock_pair.modify_index)
                .await
                .map_err(LockError::UpdateLock)?;
            if set {
                return Ok(true);
            }
            // Another contender changed the lock first: read it again.
        }
    }

    fn watch_target(&self) -> Target {
        Target {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            lock_key: self.lock_key(),
            limit: self.limit,
        }
    }

    /// Gives the slot back: removes us from the holders (retrying the CAS),
    /// deletes our contender key, ends the session.
    pub async fn release(&mut self) -> Result<(), LockError> {
        let Some(held) = self.held.take() else { return Err(LockError::SemaphoreNotHeld) };
        drop(held);
        let Some(session) = self.session.take() else { return Err(LockError::SemaphoreNotHeld) };
        let result = self.leave(&session.id).await;
        session.close().await;
        result
    }

    async fn leave(&self, session: &str) -> Result<(), LockError> {
        let key = self.lock_key();
        loop {
            let (pair, _) = kv::get(&self.client, &key, Read::default()).await?;
            let pair = pair.unwrap_or_default();
            let mut lock = self.decode(&pair)?;
            if lock.holders.remove(session).is_none() {
                break;
            }
            let body = serde_json::to_vec(&lock).map_err(LockError::Encode)?;
            let set = kv::cas(&self.client, &key, SEMAPHORE_FLAG, &body, pair.modify_index)
                .await
                .map_err(LockError::UpdateLock)?;
            if set {
                break;
            }
        }
        Ok(kv::delete(&self.client, &self.contender_key(session)).await?)
    }

    /// Deletes `.lock` when no live holder is left.
    pub async fn cleanup(&mut self) -> Result<(), CleanupError> {
        if self.held.is_some() {
            return Err(CleanupError::Failed(LockError::SemaphoreHeld));
        }
        let (pairs, _) = kv::list(&self.client, &self.prefix, Read::default())
            .await
            .map_err(|e| CleanupError::Failed(LockError::ReadPrefix(e)))?;
        let lock_pair = self.find_lock(&pairs);
        if lock_pair.modify_index == 0 {
            return Ok(());
        }
        if lock_pair.flags != SEMAPHORE_FLAG {
            return Err(CleanupError::Failed(LockError::NotASemaphore));
        }
        let mut lock = self.decode(&lock_pair).map_err(CleanupError::Failed)?;
        lock.prune_dead(&pairs);
        if !lock.holders.is_empty() {
            return Err(CleanupError::InUse);
        }
        let removed = kv::delete_cas(&self.client, &lock_pair.key, lock_pair.modify_index)
            .await
            .map_err(|e| CleanupError::Failed(LockError::RemoveSemaphore(e)))?;
        if removed {
            Ok(())
        } else {
            Err(CleanupError::InUse)
        }
    }
}

/// What the slot monitor reads.
struct Target {
    client: Client,
    prefix: String,
    lock_key: String,
    limit: i64,
}

/// Follows the prefix with consistent blocking reads; fires `lost` when
/// our session is no longer a live holder, or reads keep failing.
async fn monitor(t: Target, session: String, settings: Settings, lost: CancellationToken) {
    let mut retries = Retries::new(settings.monitor_retries, settings.monitor_retry_time);
    let mut wait_index = 0;
    loop {
        match kv::list(&t.client, &t.prefix, Read { wait_index, wait: None, consistent: true }).await {
            Ok((pairs, index)) => {
                let lock = pairs
                    .iter()
                    .find(|p| p.key == t.lock_key)
                    .and_then(|p| p.value.as_deref())
                    .map(serde_json::from_slice::<SemaphoreLock>);
                let mut lock = match lock {
                    None => SemaphoreLock { limit: t.limit, holders: BTreeMap::new() },
                    Some(Ok(l)) => l,
                    Some(Err(_)) => break,
                };
                lock.prune_dead(&pairs);
                if !lock.holders.contains_key(&session) {
                    break;
                }
                retries.reset();
                wait_index = index;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_json_matches_consul() {
        let mut l = SemaphoreLock { limit: 3, holders: BTreeMap::new() };
        l.holders.insert("b".into(), true);
        l.holders.insert("a".into(), true);
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"Limit":3,"Holders":{"a":true,"b":true}}"#);
        let back: SemaphoreLock = serde_json::from_str(r#"{"Limit":2,"Holders":null}"#).unwrap();
        assert_eq!(back, SemaphoreLock { limit: 2, holders: BTreeMap::new() });
    }

    #[test]
    fn dead_holders_are_pruned() {
        let mut l: SemaphoreLock =
            serde_json::from_str(r#"{"Limit":2,"Holders":{"alive":true,"dead":true}}"#).unwrap();
        let pairs = vec![
            Pair { key: "p/alive".into(), session: "alive".into(), ..Pair::default() },
            Pair { key: "p/.lock".into(), ..Pair::default() },
        ];
        l.prune_dead(&pairs);
        assert_eq!(l.holders.keys().collect::<Vec<_>>(), ["alive"]);
    }
}
