//! ACLs on a server: resolving a token's secret to what it may do (from
//! the replicated ACL tables, cached per secret until any token, policy or
//! role changes), the ACL endpoints (`crud`), and the leader's duties
//! (`leader`: the built-in policy, the anonymous and initial management
//! tokens, reaping expired tokens).

pub mod auth;
pub mod crud;
pub mod leader;
pub mod remote;
pub mod replication;

use super::Server;
use crate::acl::authorizer::{Authorizer, DefaultPolicy};
pub use crate::acl::caller::Identity;
use crate::acl::model::{self, Grants, Token};
use crate::acl::rules::{self, Rules};
use crate::catalog::State;
use crate::rpc::acl::ResolvedToken;
use crate::rpc::RpcError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The ACL settings a server acts on.
#[derive(Clone, Debug, Default)]
pub struct AclServerSettings {
    pub enabled: bool,
    pub default_policy: crate::config::acl::DefaultPolicy,
    pub enable_key_list_policy: bool,
    /// `acl.tokens.initial_management`: created by the leader.
    pub initial_management: Option<String>,
    /// Where `acl-bootstrap-reset` is looked for.
    pub data_dir: Option<PathBuf>,
    /// `primary_datacenter`: where tokens, policies and roles are written
    /// (empty or this server's own datacenter: this is the primary).
    pub primary_datacenter: String,
    /// `acl.down_policy`: what a token resolves to while the primary
    /// cannot be asked (secondary datacenters only).
    pub down_policy: crate::config::acl::DownPolicy,
    /// `acl.token_ttl`: how long an identity resolved through the primary
    /// is used before it is asked again.
    pub token_ttl: std::time::Duration,
    /// `acl.enable_token_replication`: a secondary's leader also copies
    /// global tokens, and local tokens may be created there.
    pub enable_token_replication: bool,
}

/// The error for a secret that names no (live) token.
pub fn acl_not_found() -> RpcError {
    RpcError::PermissionDenied("ACL not found".into())
}

/// Resolved identities by secret, valid while the ACL tables' index is
/// the one they were built at.
#[derive(Default)]
pub struct IdentityCache {
    entries: Mutex<(u64, HashMap<String, Arc<Identity>>)>,
}

/// Entries kept at most; a flood of distinct secrets clears the cache
/// rather than growing it.
const CACHE_MAX: usize = 16_384;

/// The wall clock in Unix nanoseconds (token create times).
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The wall clock in Unix milliseconds (token expiry).
pub(crate) fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

impl Server {
    pub(crate) fn acl_enabled(&self) -> bool {
        self.settings.acl.enabled
    }

    fn default_policy(&self) -> DefaultPolicy {
        self.settings.acl.default_policy
    }

    /// The caller's identity from `secret` (`None`/"": the anonymous
    /// token), read from `state`. An unknown or expired secret is
    /// refused with `ACL not found`.
    pub(crate) fn identity(&self, state: &State, secret: Option<&str>) -> Result<Arc<Identity>, RpcError> {
        if !self.acl_enabled() {
            return Ok(Arc::new(Identity::unrestricted()));
        }
        let secret = secret.filter(|s| !s.is_empty()).unwrap_or(model::ANONYMOUS_SECRET);
        let index = state.acl.max_index();
        let now = now_ms();
        {
            let mut cache = self.acl_cache.entries.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 != index {
                *cache = (index, HashMap::new());
            }
            if let Some(id) = cache.1.get(secret) {
                if id.valid_at(now) {
                    return Ok(id.clone());
                }
            }
        }
        let id = match self.build_identity(state, secret, now) {
            Ok(id) => Arc::new(id),
            // A secondary datacenter's server remembers what the primary
            // (or its down policy) said about tokens it does not hold.
            Err(e) => return self.remote_identity_cached(state, secret).ok_or(e),
        };
        let mut cache = self.acl_cache.entries.lock().unwrap_or_else(|e| e.into_inner());
        if cache.0 == index {
            if cache.1.len() >= CACHE_MAX {
                cache.1.clear();
            }
            cache.1.insert(secret.to_string(), id.clone());
        }
        Ok(id)
    }

    fn build_identity(&self, state: &State, secret: &str, now: u64) -> Result<Identity, RpcError> {
        let token = match state.acl.token_by_secret(secret) {
            Some(t) if !t.expired_at(now) => t,
            Some(_) => return Err(acl_not_found()),
            // Before the leader created the anonymous token, an anonymous
            // caller gets the default policy alone.
            // (A secondary datacenter asks the primary about its anonymous
            // token instead, as about any token it does not hold.)
            None if secret == model::ANONYMOUS_SECRET && self.acl_primary().is_none() => {
                let authz = Authorizer::default_only(self.default_policy())
                    .with_key_list_policy(self.settings.acl.enable_key_list_policy);
                return Ok(Identity::new(model::ANONYMOUS_ACCESSOR.into(), authz, None)
                    .with_fingerprint(fingerprint(&ResolvedToken::default(), None)));
            }
            None => return Err(acl_not_found()),
        };
        let resolved = resolve_token(state, token, &self.settings.datacenter);
        let authz = self.authorizer_for(&resolved);
        Ok(Identity::new(token.accessor_id.clone(), authz, token.expiration_time_ms)
            .with_fingerprint(fingerprint(&resolved, token.expiration_time_ms)))
    }

    /// The authorizer for a token's resolved rules.
    pub(crate) fn authorizer_for(&self, resolved: &ResolvedToken) -> Authorizer {
        if resolved.management {
            Authorizer::management()
        } else {
            let parsed: Vec<Arc<Rules>> = resolved
                .rules
                .iter()
                // Stored rules were validated when written; a rule text that
                // no longer parses (a newer writer) grants nothing.
                .filter_map(|r| rules::parse(r).ok().map(Arc::new))
                .collect();
            Authorizer::new(&parsed, self.default_policy(), self.settings.acl.enable_key_list_policy)
        }
    }

    /// What a client agent needs to decide for `secret` itself.
    pub(crate) fn resolve_for_agent(
        &self,
        state: &State,
        secret: Option<&str>,
    ) -> Result<ResolvedToken, RpcError> {
        if !self.acl_enabled() {
            return Err(RpcError::AclDisabled);
        }
        let secret = secret.filter(|s| !s.is_empty()).unwrap_or(model::ANONYMOUS_SECRET);
        match state.acl.token_by_secret(secret) {
            Some(t) if !t.expired_at(now_ms()) => Ok(resolve_token(state, t, &self.settings.datacenter)),
            None if secret == model::ANONYMOUS_SECRET && self.acl_primary().is_none() => {
                Ok(ResolvedToken { accessor_id: model::ANONYMOUS_ACCESSOR.into(), ..Default::default() })
            }
            Some(_) => Err(acl_not_found()),
            // A secondary answers from what the primary said (the hook
            // asked it just now); when it could not ask, the client agent
            // applies its own down policy.
            None => self.remote_resolved_for_agent(secret),
        }
    }
}

/// A digest of a resolved token: equal digests mean the same grants (a
/// blocking query's caller is unaffected by an ACL change that keeps it).
pub(crate) fn fingerprint(resolved: &ResolvedToken, expires_ms: Option<u64>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    resolved.accessor_id.hash(&mut h);
    resolved.management.hash(&mut h);
    resolved.rules.hash(&mut h);
    expires_ms.hash(&mut h);
    // 0 means "not tracked" (`Identity::fingerprint`).
    h.finish().max(1)
}

/// The rule texts that apply to `token` in datacenter `dc`: its policies'
/// and its roles' policies' (those valid in `dc`), and the expansions of
/// its and its roles' identities and templated policies.
pub fn resolve_token(state: &State, token: &Token, dc: &str) -> ResolvedToken {
    let mut out = ResolvedToken { accessor_id: token.accessor_id.clone(), ..Default::default() };
    let mut grants: Vec<&Grants> = vec![&token.grants];
    for link in &token.roles {
        if let Some(role) = state.acl.role(&link.id) {
            grants.push(&role.grants);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for g in grants {
        for link in &g.policies {
            if !seen.insert(link.id.clone()) {
                continue;
            }
            if link.id == model::GLOBAL_MANAGEMENT_ID {
                out.management = true;
                continue;
            }
            if let Some(p) = state.acl.policy(&link.id) {
                if p.datacenters.is_empty() || p.datacenters.iter().any(|d| d == dc) {
                    out.rules.push(p.rules.clone());
                }
            }
        }
        for si in &g.service_identities {
            if si.datacenters.is_empty() || si.datacenters.iter().any(|d| d == dc) {
                out.rules.push(crate::acl::identity::service_identity_rules(&si.service_name));
            }
        }
        for ni in &g.node_identities {
            if ni.datacenter == dc {
                out.rules.push(crate::acl::identity::node_identity_rules(&ni.node_name));
            }
        }
        for tp in &g.templated_policies {
            if !(tp.datacenters.is_empty() || tp.datacenters.iter().any(|d| d == dc)) {
                continue;
            }
            if let Some(t) = crate::acl::identity::template(&tp.template_name) {
                if let Ok(text) = crate::acl::identity::render(t, tp.name.as_deref()) {
                    out.rules.push(text);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Command;
    use crate::consensus::typ::{raft_id, RaftNode};
    use crate::consensus::{Consensus, ConsensusConfig};
    use crate::rpc::client::RpcClient;
    use std::time::Duration;

    async fn dev_server() -> Server {
        dev_server_with(|_| {}).await
    }

    /// A one-server datacenter `dc1` whose ACL settings `tune` may change
    /// (e.g. to make it a secondary of a `primary_datacenter` it cannot
    /// reach: it has no WAN).
    pub(super) async fn dev_server_with(tune: impl FnOnce(&mut AclServerSettings)) -> Server {
        let uuid = uuid::Uuid::new_v4();
        let node = RaftNode { addr: "127.0.0.1:1".into(), name: "s1".into(), node_id: uuid.to_string() };
        let rpc = RpcClient::new();
        let consensus = Consensus::start(
            ConsensusConfig::dev_single(raft_id(&uuid), node),
            rpc.clone(),
            &tokio_util::task::TaskTracker::new(),
        )
        .await
        .unwrap();
        let mut acl = AclServerSettings { enabled: true, ..Default::default() };
        tune(&mut acl);
        let settings = super::super::ServerSettings {
            datacenter: "dc1".into(),
            default_query_time: Duration::from_secs(300),
            max_query_time: Duration::from_secs(600),
            rpc_hold_timeout: Duration::from_secs(1),
            autopilot: Default::default(),
            acl,
            coordinates: None,
            config_entry_bootstrap: Vec::new(),
        };
        let server = Server::new(consensus, settings, rpc);
        assert!(server.consensus.wait_for_leader(Duration::from_secs(10)).await);
        server
    }

    async fn store(server: &Server, secret: &str, expires_ms: u64) {
        let token = Token {
            accessor_id: uuid::Uuid::new_v4().to_string(),
            secret_id: secret.into(),
            expiration_time_ms: Some(expires_ms),
            ..Default::default()
        };
        server.apply(Command::AclTokenSet(Box::new(token))).await.unwrap();
    }

    fn resolve(server: &Server, secret: &str) -> Result<Arc<Identity>, RpcError> {
        server.consensus.store.read(|st| server.identity(st, Some(secret)))
    }

    /// An expired token is refused as not found from the moment it
    /// expires: also when its identity was cached while it was valid (the
    /// leader's reap only frees the space, every 10 s).
    #[tokio::test]
    async fn expired_tokens_are_not_found_even_when_cached() {
        let server = dev_server().await;
        store(&server, "expired", now_ms() - 1).await;
        assert_eq!(resolve(&server, "expired").err(), Some(acl_not_found()));

        store(&server, "short", now_ms() + 300).await;
        assert!(resolve(&server, "short").is_ok(), "valid before its time");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while resolve(&server, "short").is_ok() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(resolve(&server, "short").err(), Some(acl_not_found()));

        // Nor does it read itself (an expired secret is one that does not
        // exist: Consul 1.15+'s 404) or show in listings.
        let ctx = crate::rpc::RequestContext { token: Some("short".into()), ..Default::default() };
        assert_eq!(
            server.acl_token_self(&ctx).await.err(),
            Some(crate::rpc::RpcError::NotFound("Supplied token does not exist".into()))
        );
        let (_, list) = server.acl_token_list(&Default::default(), &Default::default()).await.unwrap();
        assert!(list.iter().all(|t| t.secret_id != "short" && t.secret_id != "expired"), "{list:?}");
        server.consensus.shutdown().await;
    }
}
