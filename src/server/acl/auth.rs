//! Auth methods, binding rules, login and logout (Consul's
//! `ACL.AuthMethod*`, `ACL.BindingRule*`, `ACL.Login`, `ACL.Logout`). The
//! hook decided who may call; this module validates (the method's config,
//! reachable key URLs, selectors and bind names against the method's
//! claims), and on login checks the bearer token, applies the binding rules
//! and writes the token exactly as Consul builds it.
//!
//! Across datacenters (Consul's model): auth methods and binding rules
//! belong to the datacenter they are written in. They are never replicated
//! and their writes stay in that datacenter (its leader), so a secondary's
//! `consul login` keeps working while the primary is down. A secondary
//! serves them only when it replicates tokens (otherwise it could not hold
//! the tokens its logins create); a method there makes local tokens only
//! (`TokenLocality = "global"` belongs to the primary).

use super::super::blocking::Interest;
use super::super::Server;
use super::crud::{is_uuid, named_token, with_token_hash};
use crate::acl::model::{
    AuthMethod, BindingRule, Grants, Link, NodeIdentity, ServiceIdentity, TemplatedPolicy, Token,
};
use crate::authmethod::claims::Identity as ClaimsIdentity;
use crate::authmethod::{bind, selector, validator, AuthError};
use crate::catalog::acl::TOPIC_ACL;
use crate::catalog::{Command, CommandResult, State};
use crate::rpc::{QueryMeta, QueryOptions, RequestContext, RpcError};
use std::collections::BTreeMap;
use std::time::Duration;

/// Consul's bounds on `MaxTokenTTL` (those of a token's TTL).
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::BadRequest(msg.into())
}

fn auth_bad(e: AuthError) -> RpcError {
    RpcError::BadRequest(e.0)
}

fn applied(r: CommandResult) -> Result<(), RpcError> {
    match r {
        CommandResult::Bool(_) | CommandResult::Unit => Ok(()),
        CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
        other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
    }
}

/// The claims a method's logins can carry, blank: what selectors and bind
/// names are checked against when a rule is written.
fn blank_identity(method: &AuthMethod) -> Result<ClaimsIdentity, RpcError> {
    let config = validator::parse_config(&method.config).map_err(auth_bad)?;
    Ok(ClaimsIdentity::blank(&config))
}

/// What a login's binding rules grant.
#[derive(Default)]
struct Bindings {
    grants: Grants,
    roles: Vec<Link>,
}

impl Bindings {
    fn none(&self) -> bool {
        self.roles.is_empty()
            && self.grants.policies.is_empty()
            && self.grants.service_identities.is_empty()
            && self.grants.node_identities.is_empty()
            && self.grants.templated_policies.is_empty()
    }
}

/// Applies `method`'s binding rules to a login's identity, as Consul's
/// binder: every matching rule binds; a role or policy bind whose target
/// does not exist is skipped.
fn bind(state: &State, method: &str, id: &ClaimsIdentity, dc: &str) -> Result<Bindings, RpcError> {
    let vars = id.projected_vars();
    let mut b = Bindings::default();
    for rule in state.auth.rules().filter(|r| r.auth_method == method) {
        if !selector::selects(&rule.selector, id) {
            continue;
        }
        let (name, var) =
            bind::compute(&rule.bind_type, &rule.bind_name, rule.bind_vars_name.as_deref(), &vars).map_err(
                |e| bad(format!("cannot compute {:?} bind name for bind target: {e}", rule.bind_type)),
            )?;
        match rule.bind_type.as_str() {
            "service" => {
                b.grants.service_identities.push(ServiceIdentity { service_name: name, datacenters: vec![] })
            }
            "node" => {
                b.grants.node_identities.push(NodeIdentity { node_name: name, datacenter: dc.to_string() })
            }
            "role" => {
                if let Some(r) = state.acl.role_by_name(&name) {
                    if !b.roles.iter().any(|l| l.id == r.id) {
                        b.roles.push(Link { id: r.id.clone(), name: r.name.clone() });
                    }
                }
            }
            "policy" => {
                if let Some(p) = state.acl.policy_by_name(&name) {
                    if !b.grants.policies.iter().any(|l| l.id == p.id) {
                        b.grants.policies.push(Link { id: p.id.clone(), name: p.name.clone() });
                    }
                }
            }
            "templated-policy" => b.grants.templated_policies.push(TemplatedPolicy {
                template_name: name,
                name: var,
                datacenters: vec![],
            }),
            other => return Err(bad(format!("unknown binding rule bind type: {other}"))),
        }
    }
    Ok(b)
}

/// `token created via login` and, when the login carried meta, its JSON
/// (keys sorted, as Go encodes a map).
pub fn login_description(meta: &BTreeMap<String, String>) -> String {
    const PREFIX: &str = "token created via login";
    if meta.is_empty() {
        PREFIX.to_string()
    } else {
        format!("{PREFIX}: {}", serde_json::to_string(meta).unwrap_or_default())
    }
}

/// Consul's refusal of every auth-method, binding-rule, login and logout
/// call in a secondary datacenter that does not replicate tokens.
const NEEDS_TOKEN_REPLICATION: &str = "Token replication is required for auth methods to function";
/// Consul's refusal to write a global token outside the primary.
const GLOBAL_TOKEN_ELSEWHERE: &str = "Cannot upsert global tokens within this datacenter";

impl Server {
    /// Whether this datacenter may serve auth methods: the primary, or a
    /// secondary that replicates tokens (where local tokens may be made).
    fn auth_methods_here(&self) -> Result<(), RpcError> {
        if !self.acl_enabled() {
            return Err(RpcError::AclDisabled);
        }
        if !self.local_tokens_enabled() {
            return Err(RpcError::Internal(NEEDS_TOKEN_REPLICATION.into()));
        }
        Ok(())
    }

    async fn auth_read<T>(
        &self,
        opts: &QueryOptions,
        index: impl Fn(&State) -> u64,
        read: impl Fn(&State) -> T,
    ) -> Result<(QueryMeta, T), RpcError> {
        self.auth_methods_here()?;
        let hub = self.consensus.store.catalog_hub().clone();
        self.blocking(opts, || Interest(hub.watch_key(TOPIC_ACL)), |s| (index(s).max(1), read(s))).await
    }

    async fn auth_apply(&self, cmd: Command) -> Result<(), RpcError> {
        applied(self.apply(cmd).await?)
    }

    pub async fn acl_auth_method_set(
        &self,
        mut m: AuthMethod,
        _create: bool,
    ) -> Result<AuthMethod, RpcError> {
        self.auth_methods_here()?;
        if m.name.is_empty() {
            return Err(bad("Invalid Auth Method: no Name is set"));
        }
        if !crate::acl::identity::is_valid_auth_method_name(&m.name) {
            return Err(bad(
                "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
            ));
        }
        let existing = self.consensus.store.read(|s| s.auth.method(&m.name).cloned());
        match &existing {
            Some(old) if m.method_type.is_empty() => m.method_type = old.method_type.clone(),
            Some(old) if old.method_type != m.method_type => {
                return Err(bad("the Type field of an Auth Method is immutable"))
            }
            // As Consul: writing a method that does not exist creates it,
            // whichever endpoint carried it.
            _ => {}
        }
        if let Some(why) = crate::authmethod::unsupported_type(&m.method_type) {
            return Err(bad(why));
        }
        if m.max_token_ttl_ns != 0 {
            let ttl = Duration::from_nanos(m.max_token_ttl_ns);
            let fmt = crate::duration::format;
            if ttl > MAX_TTL {
                return Err(bad(format!("MaxTokenTTL {} cannot be more than {}", fmt(ttl), fmt(MAX_TTL))));
            }
            if ttl < MIN_TTL {
                return Err(bad(format!("MaxTokenTTL {} cannot be less than {}", fmt(ttl), fmt(MIN_TTL))));
            }
        }
        match m.token_locality.as_str() {
            "" | "local" => {}
            // A secondary may not write global tokens (they are the
            // primary's, and replication would remove them here).
            "global" if self.acl_primary().is_some() => {
                return Err(bad(
                    "Invalid Auth Method: TokenLocality 'global' can only be used in the primary datacenter",
                ))
            }
            "global" => {}
            _ => return Err(bad("Invalid Auth Method: TokenLocality should be one of 'local' or 'global'")),
        }
        let config = validator::parse_config(&m.config).map_err(auth_bad)?;
        validator::check_reachable(&config).await.map_err(auth_bad)?;
        let name = m.name.clone();
        self.auth_apply(Command::AclAuthMethodSet(Box::new(m))).await?;
        self.consensus
            .store
            .read(|s| s.auth.method(&name).cloned())
            .ok_or_else(|| RpcError::Internal("auth method vanished after it was written".into()))
    }

    pub async fn acl_auth_method_read(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<AuthMethod>), RpcError> {
        self.auth_read(opts, |s| s.auth.methods_index, |s| s.auth.method(name).cloned()).await
    }

    pub async fn acl_auth_method_list(
        &self,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<AuthMethod>), RpcError> {
        self.auth_read(opts, |s| s.auth.methods_index, |s| s.auth.methods().cloned().collect()).await
    }

    pub async fn acl_auth_method_delete(&self, name: &str) -> Result<bool, RpcError> {
        self.auth_methods_here()?;
        if self.consensus.store.read(|s| s.auth.method(name).is_none()) {
            return Ok(true);
        }
        self.auth_apply(Command::AclAuthMethodDelete { name: name.to_string() }).await?;
        Ok(true)
    }

    /// `_create` is not consulted: as in Consul, no ID creates and an ID
    /// names an existing rule to update, whichever endpoint carried it.
    pub async fn acl_binding_rule_set(
        &self,
        mut r: BindingRule,
        _create: bool,
    ) -> Result<BindingRule, RpcError> {
        self.auth_methods_here()?;
        let prepared = self.consensus.store.read(|s| -> Result<BindingRule, RpcError> {
            if r.id.is_empty() {
                r.id = uuid::Uuid::new_v4().to_string();
                return Ok(r.clone());
            }
            if !is_uuid(&r.id) {
                return Err(bad("Binding Rule ID invalid UUID"));
            }
            match s.auth.rule(&r.id) {
                None => return Err(bad(format!("cannot find binding rule {}", r.id))),
                Some(old) if r.auth_method.is_empty() => r.auth_method = old.auth_method.clone(),
                Some(old) if old.auth_method != r.auth_method => {
                    return Err(bad("the AuthMethod field of an Binding Rule is immutable"))
                }
                Some(_) => {}
            }
            Ok(r.clone())
        })?;
        let mut r = prepared;
        if r.auth_method.is_empty() {
            return Err(bad("Invalid Binding Rule: no AuthMethod is set"));
        }
        let Some(method) = self.consensus.store.read(|s| s.auth.method(&r.auth_method).cloned()) else {
            return Err(bad(format!("cannot find auth method with name {:?}", r.auth_method)));
        };
        let blank = blank_identity(&method)?;
        if !r.selector.trim().is_empty() {
            selector::parse(&r.selector, &blank)
                .map_err(|e| bad(format!("invalid Binding Rule: Selector is invalid: {e}")))?;
        }
        if r.bind_type.is_empty() {
            return Err(bad("Invalid Binding Rule: no BindType is set"));
        }
        if r.bind_name.is_empty() {
            return Err(bad("Invalid Binding Rule: no BindName is set"));
        }
        if !bind::BIND_TYPES.contains(&r.bind_type.as_str()) {
            return Err(bad(format!("Invalid Binding Rule: unknown BindType {:?}", r.bind_type)));
        }
        if r.bind_type != "templated-policy" {
            r.bind_vars_name = None;
        }
        // As Consul: the name must come out valid with every variable the
        // method projects set to a placeholder.
        let fake: BTreeMap<String, String> =
            blank.projected_vars().into_keys().map(|k| (k, "fake".to_string())).collect();
        let name = bind::interpolate(&r.bind_name, &fake)
            .map_err(|e| bad(format!("Invalid Binding Rule: invalid BindName: {e}")))?;
        let var = match &r.bind_vars_name {
            Some(v) => Some(
                bind::interpolate(v, &fake)
                    .map_err(|e| bad(format!("Invalid Binding Rule: invalid BindVars: {e}")))?,
            ),
            None => None,
        };
        match bind::valid_for(&r.bind_type, &name, var.as_deref()) {
            Ok(true) => {}
            Ok(false) => return Err(bad("Invalid Binding Rule: invalid BindName")),
            Err(e) => return Err(bad(format!("Invalid Binding Rule: invalid BindName: {e}"))),
        }
        let id = r.id.clone();
        self.auth_apply(Command::AclBindingRuleSet(Box::new(r))).await?;
        self.consensus
            .store
            .read(|s| s.auth.rule(&id).cloned())
            .ok_or_else(|| RpcError::Internal("binding rule vanished after it was written".into()))
    }

    pub async fn acl_binding_rule_read(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<BindingRule>), RpcError> {
        if !is_uuid(id) {
            return Err(bad("failed acl binding rule lookup: index error: UUID must be 36 characters"));
        }
        self.auth_read(opts, |s| s.auth.rules_index, |s| s.auth.rule(id).cloned()).await
    }

    pub async fn acl_binding_rule_list(
        &self,
        method: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<BindingRule>), RpcError> {
        self.auth_read(
            opts,
            |s| s.auth.rules_index,
            |s| s.auth.rules().filter(|r| method.is_none_or(|m| r.auth_method == m)).cloned().collect(),
        )
        .await
    }

    pub async fn acl_binding_rule_delete(&self, id: &str) -> Result<bool, RpcError> {
        self.auth_methods_here()?;
        if !is_uuid(id) {
            return Err(bad("failed acl binding rule lookup: index error: UUID must be 36 characters"));
        }
        if self.consensus.store.read(|s| s.auth.rule(id).is_none()) {
            return Ok(true);
        }
        self.auth_apply(Command::AclBindingRuleDelete { id: id.to_string() }).await?;
        Ok(true)
    }

    /// `/v1/acl/login`: checks the bearer token with the method, binds,
    /// writes the token. Runs on the leader (it writes).
    pub async fn acl_login(
        &self,
        method_name: &str,
        bearer: &str,
        meta: &BTreeMap<String, String>,
    ) -> Result<Token, RpcError> {
        self.auth_methods_here()?;
        if bearer.len() > crate::authmethod::jwt::MAX_TOKEN_BYTES {
            return Err(bad(format!(
                "BearerToken is {} bytes, more than the {} accepted",
                bearer.len(),
                crate::authmethod::jwt::MAX_TOKEN_BYTES
            )));
        }
        let Some(method) = self.consensus.store.read(|s| s.auth.method(method_name).cloned()) else {
            // As `/v1/acl/login` answered before auth methods existed (and
            // the client libraries' suites expect): plain `ACL not found`.
            return Err(super::acl_not_found());
        };
        let v = self.auth_validators.get(&method).map_err(auth_bad)?;
        let now_s = (super::now_ms() / 1000) as i64;
        let identity = match v.validate(bearer, now_s).await {
            Ok(id) => id,
            Err(e) => {
                tracing::info!(target: "acl.auth", method = %method_name, error = %e, "login refused");
                return Err(auth_bad(e));
            }
        };
        let global = method.token_locality == "global";
        if global && self.acl_primary().is_some() {
            // Only reachable when a global method came here another way
            // (a snapshot of the primary restored into a secondary).
            return Err(RpcError::Internal(GLOBAL_TOKEN_ELSEWHERE.into()));
        }
        let now = super::now_ns();
        let token = self.consensus.store.read(|s| -> Result<Token, RpcError> {
            let b = bind(s, &method.name, &identity, &self.settings.datacenter)?;
            if b.none() {
                return Err(RpcError::PermissionDenied("Permission denied".into()));
            }
            Ok(with_token_hash(Token {
                accessor_id: uuid::Uuid::new_v4().to_string(),
                secret_id: uuid::Uuid::new_v4().to_string(),
                description: login_description(meta),
                grants: b.grants,
                roles: b.roles,
                local: !global,
                auth_method: method.name.clone(),
                expiration_time_ms: (method.max_token_ttl_ns > 0)
                    .then(|| (now + method.max_token_ttl_ns) / 1_000_000),
                create_time_ns: now,
                ..Default::default()
            }))
        })?;
        let accessor = token.accessor_id.clone();
        self.auth_apply(Command::AclTokenSet(Box::new(token))).await?;
        tracing::info!(target: "acl.auth", method = %method_name, accessor = %accessor, "login created a token");
        self.consensus
            .store
            .read(|s| s.acl.token(&accessor).map(|t| named_token(s, t)))
            .ok_or_else(|| RpcError::Internal("token vanished after it was written".into()))
    }

    /// Whether a logout is served by the primary: in a secondary, for a
    /// global token (a login in the primary made it; replication brought
    /// it here), as Consul sends global token writes there.
    pub(crate) fn logout_needs_primary(&self, ctx: &RequestContext) -> bool {
        let Some(secret) = ctx.token.as_deref().filter(|t| !t.is_empty()) else { return false };
        self.acl_primary().is_some()
            && self.local_tokens_enabled()
            && self.consensus.store.read(|s| s.acl.token_by_secret(secret).is_some_and(|t| !t.local))
    }

    /// `/v1/acl/logout`: deletes the caller's own token, if a login made it.
    pub async fn acl_logout(&self, ctx: &RequestContext) -> Result<bool, RpcError> {
        self.auth_methods_here()?;
        let secret = ctx.token.as_deref().filter(|t| !t.is_empty()).ok_or_else(super::acl_not_found)?;
        let Some(token) = self.consensus.store.read(|s| s.acl.token_by_secret(secret).cloned()) else {
            return Err(super::acl_not_found());
        };
        if token.auth_method.is_empty() {
            return Err(RpcError::PermissionDenied(
                "Permission denied: token wasn't created via login".into(),
            ));
        }
        self.auth_apply(Command::AclTokenDelete { accessor: token.accessor_id }).await?;
        Ok(true)
    }
}
