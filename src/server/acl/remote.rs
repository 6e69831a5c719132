//! ACLs in a secondary datacenter: the primary (`primary_datacenter`)
//! owns tokens, policies and roles. A secondary's server asks the primary
//! about a token it does not hold (a global token when tokens are not
//! replicated, or one not replicated yet) and remembers the answer for
//! `acl.token_ttl`; while the primary cannot be asked, `acl.down_policy`
//! decides. ACL writes made in a secondary (and token reads while tokens
//! are not replicated) are served by the primary, as Consul routes them.
//!
//! Owns: the cache of identities resolved through the primary, the down
//! policy on servers, and the routing of ACL calls to the primary. The
//! copying itself is `replication`.

use super::super::Server;
use super::Identity;
use crate::acl::authorizer::{Authorizer, DefaultPolicy};
use crate::config::acl::DownPolicy;
use crate::rpc::acl::{RemoteToken, ResolvedToken};
use crate::rpc::method::{self, Method, WireCall};
use crate::rpc::{RequestContext, RpcError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a secondary waits for the primary to answer a resolution
/// before it applies the down policy (the relay's own timeout is sized
/// for blocking queries, far too long for a request waiting on its token).
const REMOTE_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a routed ACL call (a write, a token read) may take.
const ROUTED_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a down-policy verdict stands before the primary is asked
/// again.
const DOWN_VERDICT_LIFE: Duration = Duration::from_secs(1);
/// Entries kept at most; a flood of distinct secrets clears the cache.
const CACHE_MAX: usize = 16_384;

/// What a secondary's server remembers about a token it asked the primary
/// about.
struct Entry {
    fetched: Instant,
    /// When the resolver last answered with this entry.
    decided: Instant,
    /// `None`: the down policy's answer (the primary could not be asked),
    /// kept only so the reply filter of the same call decides alike; it is
    /// never served as fresh.
    token: Option<RemoteToken>,
    id: Arc<Identity>,
}

/// Identities resolved through the primary, by secret.
#[derive(Default)]
pub struct RemoteIdentities {
    entries: Mutex<HashMap<String, Entry>>,
    /// Secrets whose background refresh (`async-cache`) is under way, so a
    /// burst of requests starts one.
    refreshing: Mutex<std::collections::HashSet<String>>,
}

impl RemoteIdentities {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, secret: &str, entry: Entry) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(secret.to_string(), entry);
    }
}

/// The error a secondary reports when it could not ask the primary.
fn remote_error(e: &RpcError) -> RpcError {
    RpcError::Internal(format!("Error communicating with the ACL Datacenter: {e}"))
}

impl Server {
    /// The primary datacenter, when this server is in a secondary one with
    /// ACLs on.
    pub(crate) fn acl_primary(&self) -> Option<&str> {
        let primary = self.settings.acl.primary_datacenter.as_str();
        (self.acl_enabled()
            && !primary.is_empty()
            && !primary.eq_ignore_ascii_case(&self.settings.datacenter))
        .then_some(primary)
    }

    /// Whether tokens may be created here: in the primary, and in a
    /// secondary that replicates tokens (Consul's rule: a secondary
    /// without token replication could not resolve its own local tokens'
    /// policies consistently).
    pub(crate) fn local_tokens_enabled(&self) -> bool {
        self.acl_primary().is_none() || self.settings.acl.enable_token_replication
    }

    /// Whether a token this server does not hold is asked of the primary.
    /// As in Consul: in a secondary, unless tokens are replicated here
    /// (then a token missing from a replicated table does not exist, and
    /// the primary is not asked; before the first copy it still is).
    pub(crate) fn resolves_through_primary(&self) -> bool {
        self.acl_primary().is_some() && self.consensus.store.read(|s| self.asks_primary_with(s))
    }

    /// `resolves_through_primary` for a caller that holds the state.
    fn asks_primary_with(&self, state: &crate::catalog::State) -> bool {
        self.acl_primary().is_some()
            && (!self.settings.acl.enable_token_replication || state.acl.index.tokens == 0)
    }

    /// What the resolver last decided about `secret` (the primary's answer
    /// or the down policy's), for `acl.token_ttl` after that decision: a
    /// call's reply filter sees what its check saw, and repeated calls do
    /// not ask the primary each time.
    pub(crate) fn remote_identity_cached(
        &self,
        state: &crate::catalog::State,
        secret: &str,
    ) -> Option<Arc<Identity>> {
        if !self.asks_primary_with(state) {
            return None;
        }
        let entries = self.acl_remote.lock();
        let e = entries.get(secret)?;
        let ttl = self.settings.acl.token_ttl;
        // A down-policy verdict is not an answer: kept just long enough for
        // the call that made it (and a burst like it), so the primary is
        // asked again as soon as it may be back.
        let life = if e.token.is_some() { ttl } else { ttl.min(DOWN_VERDICT_LIFE) };
        (e.decided.elapsed() < life && e.id.valid_at(super::now_ms())).then(|| e.id.clone())
    }

    /// `AclResolve` from a client agent of this (secondary) datacenter for
    /// a token this server does not hold: what the primary said. When the
    /// primary could not be asked, an error, so the client agent applies
    /// its own down policy and cache.
    pub(crate) fn remote_resolved_for_agent(&self, secret: &str) -> Result<ResolvedToken, RpcError> {
        if self.acl_primary().is_none() {
            return Err(super::acl_not_found());
        }
        let entries = self.acl_remote.lock();
        match entries.get(secret) {
            Some(Entry { token: Some(t), id, .. }) if id.valid_at(super::now_ms()) => Ok(t.resolved.clone()),
            Some(Entry { token: None, .. }) => {
                Err(RpcError::Internal("Error communicating with the ACL Datacenter".into()))
            }
            _ => Err(super::acl_not_found()),
        }
    }

    /// The caller's identity, for a server agent's own endpoints: from
    /// this server's tables, else (in a secondary) through the primary.
    pub async fn resolve_identity(&self, secret: Option<&str>) -> Result<Arc<Identity>, RpcError> {
        let local = self.consensus.store.read(|st| self.identity(st, secret));
        match local {
            Err(e) if e == super::acl_not_found() && self.resolves_through_primary() => {
                self.resolve_remote(secret).await
            }
            other => other,
        }
    }

    /// Resolves `secret` through the primary: a fresh cached answer, else
    /// the primary's, else the down policy.
    pub(crate) async fn resolve_remote(&self, secret: Option<&str>) -> Result<Arc<Identity>, RpcError> {
        let secret = secret.filter(|s| !s.is_empty()).unwrap_or(crate::acl::model::ANONYMOUS_SECRET);
        let settings = &self.settings.acl;
        let now = super::now_ms();
        let cached = {
            let entries = self.acl_remote.lock();
            entries
                .get(secret)
                .filter(|e| e.token.is_some() && e.id.valid_at(now))
                .map(|e| (e.fetched, e.id.clone()))
        };
        if let Some((fetched, id)) = &cached {
            if fetched.elapsed() < settings.token_ttl {
                return Ok(id.clone());
            }
            // Consul's async-cache: a stale answer now, a fresh one asked
            // for in the background (the next request sees it).
            if settings.down_policy == DownPolicy::AsyncCache {
                if let Some(server) = self.shared() {
                    if let Some(e) = self.acl_remote.lock().get_mut(secret) {
                        e.decided = Instant::now();
                    }
                    server.refresh_remote_in_background(secret);
                    return Ok(id.clone());
                }
            }
        }
        match self.fetch_remote(secret).await {
            Ok(token) => {
                let id = Arc::new(
                    Identity::new(
                        token.resolved.accessor_id.clone(),
                        self.authorizer_for(&token.resolved),
                        token.expiration_time_ms,
                    )
                    .with_fingerprint(super::fingerprint(&token.resolved, token.expiration_time_ms)),
                );
                self.acl_remote.insert(
                    secret,
                    Entry {
                        fetched: Instant::now(),
                        decided: Instant::now(),
                        token: Some(token),
                        id: id.clone(),
                    },
                );
                Ok(id)
            }
            Err(e @ RpcError::PermissionDenied(_)) => {
                self.acl_remote.lock().remove(secret);
                Err(e)
            }
            Err(e) => {
                tracing::warn!(target: "agent.server.acl", error = %remote_error(&e), down_policy = settings.down_policy.as_str(), "cannot resolve a token through the primary datacenter; applying the down policy");
                let fallback = match settings.down_policy {
                    DownPolicy::Allow => Authorizer::default_only(DefaultPolicy::Allow),
                    DownPolicy::Deny => Authorizer::default_only(DefaultPolicy::Deny),
                    // Consul's servers: a cached answer past its TTL, else
                    // the default policy alone (async-cache comes here
                    // only for a server not made with `into_shared`).
                    DownPolicy::ExtendCache | DownPolicy::AsyncCache => match cached {
                        Some((_, id)) => {
                            if let Some(e) = self.acl_remote.lock().get_mut(secret) {
                                e.decided = Instant::now();
                            }
                            return Ok(id);
                        }
                        None => Authorizer::default_only(self.default_policy()),
                    },
                };
                // Consul names the caller this way in refusals meanwhile.
                let id = Arc::new(Identity::new("primary-dc-down".into(), fallback, None));
                // With no known server of the primary (before the WAN join,
                // or all of them gone from gossip) asking again costs nothing
                // and the path may appear any moment: the verdict holds for
                // this call only, not for DOWN_VERDICT_LIFE.
                let decided = match e {
                    RpcError::NoPathToDatacenter => {
                        Instant::now().checked_sub(DOWN_VERDICT_LIFE).unwrap_or_else(Instant::now)
                    }
                    _ => Instant::now(),
                };
                self.acl_remote
                    .insert(secret, Entry { fetched: Instant::now(), decided, token: None, id: id.clone() });
                Ok(id)
            }
        }
    }

    /// `async-cache`: asks the primary again about `secret` without making
    /// anyone wait; the answer replaces the cached one. When the primary
    /// cannot be asked the cached answer stays and counts as fresh for
    /// another `token_ttl` (as Consul keeps it), so an outage does not
    /// start a refresh per request.
    fn refresh_remote_in_background(self: Arc<Self>, secret: &str) {
        if !self.acl_remote.refreshing.lock().unwrap_or_else(|e| e.into_inner()).insert(secret.to_string()) {
            return;
        }
        let secret = secret.to_string();
        tokio::spawn(async move {
            let result = self.fetch_remote(&secret).await;
            match result {
                Ok(token) => {
                    let id = Arc::new(Identity::new(
                        token.resolved.accessor_id.clone(),
                        self.authorizer_for(&token.resolved),
                        token.expiration_time_ms,
                    ));
                    let now = Instant::now();
                    self.acl_remote
                        .insert(&secret, Entry { fetched: now, decided: now, token: Some(token), id });
                }
                Err(RpcError::PermissionDenied(_)) => {
                    self.acl_remote.lock().remove(&secret);
                }
                Err(e) => {
                    tracing::warn!(target: "agent.server.acl", error = %remote_error(&e), "cannot refresh a token through the primary datacenter; keeping the cached answer (async-cache)");
                    if let Some(entry) = self.acl_remote.lock().get_mut(&secret) {
                        entry.fetched = Instant::now();
                        entry.decided = Instant::now();
                    }
                }
            }
            self.acl_remote.refreshing.lock().unwrap_or_else(|e| e.into_inner()).remove(&secret);
        });
    }

    /// Asks the primary what `secret` may do in this datacenter.
    async fn fetch_remote(&self, secret: &str) -> Result<RemoteToken, RpcError> {
        let Some(primary) = self.acl_primary() else { return Err(super::acl_not_found()) };
        let ctx = RequestContext {
            token: Some(secret.to_string()),
            datacenter: Some(primary.to_string()),
            query: crate::rpc::QueryOptions {
                consistency: crate::rpc::message::Consistency::Stale,
                ..Default::default()
            },
            ..Default::default()
        };
        let call =
            WireCall::new(ctx, &method::AclResolveRemote { datacenter: self.settings.datacenter.clone() })?;
        match tokio::time::timeout(REMOTE_RESOLVE_TIMEOUT, self.relay_to_dc(primary, call)).await {
            Ok(reply) => method::decode_reply::<method::AclResolveRemote>(reply),
            Err(_) => Err(RpcError::Internal(format!(
                "no answer from datacenter {primary} within {}s",
                REMOTE_RESOLVE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Serves `AclResolveRemote` in the primary: the caller's token (the
    /// hook has checked it exists) resolved for `datacenter`.
    pub(crate) fn resolve_for_datacenter(
        &self,
        ctx: &RequestContext,
        datacenter: &str,
    ) -> Result<RemoteToken, RpcError> {
        if !self.acl_enabled() {
            return Err(RpcError::AclDisabled);
        }
        let secret =
            ctx.token.as_deref().filter(|s| !s.is_empty()).unwrap_or(crate::acl::model::ANONYMOUS_SECRET);
        let now = super::now_ms();
        self.consensus.store.read(|st| match st.acl.token_by_secret(secret) {
            Some(t) if t.expired_at(now) => Err(super::acl_not_found()),
            Some(t) if t.local && !datacenter.eq_ignore_ascii_case(&self.settings.datacenter) => {
                Err(RpcError::PermissionDenied(format!(
                    "Permission denied: This is a local token in datacenter {:?}",
                    self.settings.datacenter
                )))
            }
            Some(t) => Ok(RemoteToken {
                resolved: super::resolve_token(st, t, datacenter),
                expiration_time_ms: t.expiration_time_ms,
            }),
            None if secret == crate::acl::model::ANONYMOUS_SECRET => Ok(RemoteToken {
                resolved: ResolvedToken {
                    accessor_id: crate::acl::model::ANONYMOUS_ACCESSOR.into(),
                    ..Default::default()
                },
                expiration_time_ms: None,
            }),
            None => Err(super::acl_not_found()),
        })
    }

    /// Serves an ACL call in the primary datacenter when `needed` and this
    /// is a secondary: `Some(reply)` when it went there. The caller's token
    /// goes along; the primary authorises the call again.
    pub(crate) async fn via_primary<M: Method>(
        &self,
        ctx: &RequestContext,
        args: &M,
        needed: bool,
    ) -> Result<Option<M::Reply>, RpcError> {
        // A call forwarded to this datacenter's leader was routed already.
        if !needed || ctx.leader_only {
            return Ok(None);
        }
        let Some(primary) = self.acl_primary() else { return Ok(None) };
        // A fresh hop: the primary never routes ACL calls on, so this
        // cannot loop even when the call reached us relayed.
        let routed = RequestContext {
            datacenter: Some(primary.to_string()),
            relayed: false,
            leader_only: false,
            ..ctx.clone()
        };
        let call = WireCall::new(routed, args)?;
        let reply = tokio::time::timeout(ROUTED_TIMEOUT, self.relay_to_dc(primary, call))
            .await
            .map_err(|_| RpcError::Internal(format!("rpc error: no answer from datacenter {primary}")))?;
        method::decode_reply::<M>(reply).map(Some)
    }

    /// Where a token write or read is served: whether it goes to the primary.
    /// `accessor`: the token it names, when it names one (a local token of
    /// this datacenter stays here).
    pub(crate) fn token_call_needs_primary(&self, accessor: Option<&str>) -> bool {
        if self.acl_primary().is_none() {
            return false;
        }
        if !self.settings.acl.enable_token_replication {
            return true;
        }
        match accessor {
            Some(a) => !self.consensus.store.read(|s| s.acl.token(a).is_some_and(|t| t.local)),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::dev_server_with;
    use crate::config::acl::DownPolicy;
    use std::time::Duration;

    /// A secondary whose primary cannot be reached (it has no WAN at all)
    /// decides about a token it never saw by its down policy: `allow`
    /// allows everything, `deny` refuses everything, the cache policies
    /// apply the default policy alone (deny here). The caller is named as
    /// Consul names it meanwhile.
    #[tokio::test]
    async fn unknown_tokens_follow_the_down_policy_while_the_primary_is_unreachable() {
        for (policy, allowed) in [
            (DownPolicy::Allow, true),
            (DownPolicy::Deny, false),
            (DownPolicy::ExtendCache, false),
            (DownPolicy::AsyncCache, false),
        ] {
            let server = dev_server_with(|acl| {
                acl.primary_datacenter = "dc0".into();
                acl.down_policy = policy;
                acl.default_policy = crate::config::acl::DefaultPolicy::Deny;
                acl.token_ttl = Duration::from_secs(30);
            })
            .await;
            assert!(server.resolves_through_primary(), "{policy:?}");
            let id = server.resolve_identity(Some("never-issued")).await.expect("a verdict, not an error");
            assert_eq!(id.accessor_id, "primary-dc-down", "{policy:?}");
            assert_eq!(id.authz.key_write("any/key"), allowed, "{policy:?}");
            assert_eq!(id.authz.key_read("any/key"), allowed, "{policy:?}");
            // A client agent of this datacenter asking about it hears that
            // the primary could not be asked, so it applies its own policy.
            assert!(server.remote_resolved_for_agent("never-issued").is_err(), "{policy:?}");
            server.consensus.shutdown().await;
        }
    }
}
