//! ACLs on an agent's own endpoints (`/v1/agent/*`): who a caller is.
//! A server agent asks its own server; a client asks a server
//! (`AclResolve`) and caches the answer for `acl.token_ttl`. While no
//! server answers, `acl.down_policy` decides; the `agent_recovery` token
//! always works on this agent, servers or not.

use super::{Agent, Delegate};
use crate::acl::authorizer::{Authorizer, DefaultPolicy};
use crate::acl::rules::{self, Rules};
use crate::acl::Identity;
use crate::config::acl::DownPolicy;
use crate::rpc::method;
use crate::rpc::{RequestContext, RpcError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The accessor shown for the agent recovery token (it has no stored token).
const RECOVERY_ACCESSOR: &str = "agent-recovery-token";
/// Entries kept at most per client agent.
const CACHE_MAX: usize = 4096;

/// A client agent's resolved tokens, by secret.
#[derive(Default)]
pub struct AclCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Identity>)>>,
    refreshing: Mutex<std::collections::HashSet<String>>,
}

/// Compares secrets without leaking, through timing, how much matched.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Agent {
    /// The identity of a caller of this agent's endpoints. `token`: what
    /// the request carried; none means the agent's default token.
    pub async fn identity(&self, token: Option<&str>) -> Result<Arc<Identity>, RpcError> {
        let cfg = self.config();
        if !cfg.acl.enabled {
            return Ok(Arc::new(Identity::unrestricted()));
        }
        let given =
            token.filter(|t| !t.is_empty()).map(str::to_string).or_else(|| self.tokens().user_token());
        if let (Some(t), Some(recovery)) = (&given, self.tokens().agent_recovery_token()) {
            if same_secret(t, &recovery) {
                return Ok(Arc::new(Identity::new(RECOVERY_ACCESSOR.into(), Authorizer::management(), None)));
            }
        }
        match &self.inner.delegate {
            Delegate::Server(s) => s.resolve_identity(given.as_deref()).await,
            Delegate::Client(_) => self.client_identity(given).await,
        }
    }

    async fn client_identity(&self, secret: Option<String>) -> Result<Arc<Identity>, RpcError> {
        let cfg = self.config();
        let key = secret.clone().unwrap_or_default();
        let ttl = cfg.acl.token_ttl.min(cfg.acl.policy_ttl);
        let cached =
            self.inner.acl_cache.entries.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        if let Some((at, id)) = &cached {
            if at.elapsed() < ttl {
                return Ok(id.clone());
            }
            if cfg.acl.down_policy == DownPolicy::AsyncCache {
                self.refresh_in_background(key.clone(), secret.clone());
                return Ok(id.clone());
            }
        }
        match self.fetch_identity(secret).await {
            Ok(id) => Ok(id),
            Err(e @ RpcError::PermissionDenied(_)) => {
                self.inner.acl_cache.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                Err(e)
            }
            Err(e) => {
                // No server answered: the down policy decides.
                tracing::debug!(target: "agent.acl", error = %e, "token resolution failed; applying down_policy");
                let fallback = |authz| Ok(Arc::new(Identity::new(String::new(), authz, None)));
                match cfg.acl.down_policy {
                    DownPolicy::Allow => fallback(Authorizer::default_only(DefaultPolicy::Allow)),
                    DownPolicy::Deny => fallback(Authorizer::default_only(DefaultPolicy::Deny)),
                    DownPolicy::ExtendCache | DownPolicy::AsyncCache => match cached {
                        Some((_, id)) => Ok(id),
                        None => fallback(Authorizer::default_only(DefaultPolicy::Deny)),
                    },
                }
            }
        }
    }

    fn refresh_in_background(&self, key: String, secret: Option<String>) {
        if !self.inner.acl_cache.refreshing.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return;
        }
        let agent = self.clone();
        tokio::spawn(async move {
            let _ = agent.fetch_identity(secret).await;
            agent.inner.acl_cache.refreshing.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        });
    }

    /// Asks a server what `secret` may do and caches the answer.
    async fn fetch_identity(&self, secret: Option<String>) -> Result<Arc<Identity>, RpcError> {
        let cfg = self.config();
        let Delegate::Client(c) = &self.inner.delegate else {
            return Err(RpcError::Internal("not a client agent".into()));
        };
        let ctx = RequestContext { token: secret.clone(), ..Default::default() };
        let resolved = c.call(ctx, &method::AclResolve {}).await?;
        let authz = if resolved.management {
            Authorizer::management()
        } else {
            let parsed: Vec<Arc<Rules>> =
                resolved.rules.iter().filter_map(|r| rules::parse(r).ok().map(Arc::new)).collect();
            Authorizer::new(&parsed, cfg.acl.default_policy, cfg.acl.enable_key_list_policy)
        };
        let id = Arc::new(Identity::new(resolved.accessor_id, authz, None));
        let mut entries = self.inner.acl_cache.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(secret.unwrap_or_default(), (Instant::now(), id.clone()));
        Ok(id)
    }

    /// The context of a call the agent makes for itself (anti-entropy,
    /// remote exec, ...): its agent token.
    pub fn own_context(&self) -> RequestContext {
        RequestContext { token: self.tokens().agent_token(), ..Default::default() }
    }
}
