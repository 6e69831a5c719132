//! The ACL endpoints (Consul's `ACL.*` RPCs): bootstrap, and tokens,
//! policies and roles. What a caller may do was decided by the hook
//! (`server::authz`); this module validates what is written, fills in what
//! the server owns (IDs, secrets, times, hashes, link names) and proposes.

use super::super::blocking::Interest;
use super::super::Server;
use crate::acl::model::{self, Grants, Link, Policy, Role, Token};
use crate::catalog::acl::TOPIC_ACL;
use crate::catalog::{Command, CommandResult, State};
use crate::rpc::acl::AclTokenFilter;
use crate::rpc::{QueryMeta, QueryOptions, RequestContext, RpcError};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Consul's bounds on a token's `ExpirationTTL`.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::BadRequest(msg.into())
}

pub(crate) fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// What Consul answers when an accessor handed to a token lookup is not a
/// UUID (its state store's index refuses it).
const TOKEN_LOOKUP_NOT_UUID: &str =
    "failed acl token lookup: failed acl token lookup: index error: UUID must be 36 characters";

/// IDs with this prefix are kept for built-ins (global-management,
/// anonymous and future ones); users may not choose them.
const RESERVED_ID_PREFIX: &str = "00000000-0000-0000-0000-0000000000";

/// Why a caller-chosen AccessorID or SecretID is refused, if it is.
fn invalid_token_id(id: &str) -> Option<String> {
    if id.starts_with(RESERVED_ID_PREFIX) {
        Some(format!("UUIDs with the prefix {RESERVED_ID_PREFIX:?} are reserved"))
    } else if !is_uuid(id) {
        Some("not a valid UUID".into())
    } else {
        None
    }
}

/// Consul keeps accessors and secrets apart from each other too: a new ID
/// may be neither an existing accessor nor an existing secret.
fn id_in_use(s: &State, id: &str) -> bool {
    s.acl.token(id).is_some() || s.acl.token_by_secret(id).is_some()
}

/// A policy or role ID the state store's index accepts, else Consul's
/// lookup error for it.
fn check_lookup_id(what: &str, id: &str) -> Result<(), RpcError> {
    if is_uuid(id) {
        Ok(())
    } else if id.len() != 36 {
        Err(bad(format!("failed acl {what} lookup: index error: UUID must be 36 characters")))
    } else {
        Err(bad(format!("failed acl {what} lookup: index error: invalid UUID")))
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn applied(r: CommandResult) -> Result<(), RpcError> {
    match r {
        CommandResult::Bool(_) | CommandResult::Unit => Ok(()),
        CommandResult::Error(e) if e.starts_with("ACL bootstrap no longer allowed") => {
            Err(RpcError::PermissionDenied(format!("Permission denied: {e}")))
        }
        CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
        other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
    }
}

fn hash_parts(parts: &[&str]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    // 32 bytes, the length of Consul's (blake2b-256) hashes.
    h.finalize().to_vec()
}

fn grants_text(g: &Grants) -> String {
    format!("{g:?}")
}

impl Server {
    /// ACL writes run on the leader (as Consul's do), so the answer reads
    /// back what was just written: `Some(reply)` when forwarded there.
    pub(crate) async fn on_leader<M: crate::rpc::Method>(
        &self,
        ctx: &RequestContext,
        args: &M,
    ) -> Result<Option<M::Reply>, RpcError> {
        self.acl_on()?;
        if ctx.leader_only {
            return Ok(None);
        }
        self.forward_to_leader(ctx, args).await
    }

    fn acl_on(&self) -> Result<(), RpcError> {
        if self.acl_enabled() {
            Ok(())
        } else {
            Err(RpcError::AclDisabled)
        }
    }

    async fn acl_read<T>(
        &self,
        opts: &QueryOptions,
        read: impl Fn(&State) -> T,
    ) -> Result<(QueryMeta, T), RpcError> {
        self.acl_on()?;
        let hub = self.consensus.store.catalog_hub().clone();
        self.blocking(opts, || Interest(hub.watch_key(TOPIC_ACL)), |s| (s.acl.max_index(), read(s))).await
    }

    async fn acl_apply(&self, cmd: Command) -> Result<(), RpcError> {
        applied(self.apply(cmd).await?)
    }

    /// `/v1/acl/bootstrap`, served by the leader (it reads its own
    /// `acl-bootstrap-reset`).
    pub async fn acl_bootstrap(
        &self,
        ctx: &RequestContext,
        secret: Option<String>,
    ) -> Result<Token, RpcError> {
        self.acl_on()?;
        let args = crate::rpc::method::AclBootstrap { secret: secret.clone() };
        if !ctx.leader_only {
            if let Some(reply) = self.forward_to_leader(ctx, &args).await? {
                return Ok(reply);
            }
        }
        let secret = match secret.filter(|s| !s.is_empty()) {
            Some(s) if !is_uuid(&s) => return Err(bad("Invalid bootstrap secret: not a valid UUID")),
            Some(s) => s,
            None => new_uuid(),
        };
        let reset_index = self.read_bootstrap_reset();
        let bootstrapped_at = self.consensus.store.read(|s| s.acl.bootstrap_index);
        if bootstrapped_at != 0 && reset_index != 0 {
            // As Consul: the file is used once, right or wrong, so a stale
            // one can never reopen bootstrap later (after a restore, say).
            self.remove_bootstrap_reset();
            if reset_index != bootstrapped_at {
                return Err(bad(format!(
                    "Invalid bootstrap reset index (specified {reset_index}, reset index: {bootstrapped_at})"
                )));
            }
        }
        let token = Token {
            accessor_id: new_uuid(),
            secret_id: secret,
            description: "Bootstrap Token (Global Management)".into(),
            grants: Grants {
                policies: vec![Link { id: model::GLOBAL_MANAGEMENT_ID.into(), name: String::new() }],
                ..Default::default()
            },
            create_time_ns: super::now_ns(),
            ..Default::default()
        };
        let token = with_token_hash(token);
        let accessor = token.accessor_id.clone();
        self.acl_apply(Command::AclBootstrap { token: Box::new(token), reset_index }).await?;
        self.stored_token(&accessor)
    }

    fn remove_bootstrap_reset(&self) {
        if let Some(dir) = &self.settings.acl.data_dir {
            let _ = std::fs::remove_file(dir.join("acl-bootstrap-reset"));
        }
    }

    /// The reset index an operator wrote to `data_dir/acl-bootstrap-reset`
    /// (0: none).
    fn read_bootstrap_reset(&self) -> u64 {
        let Some(dir) = &self.settings.acl.data_dir else { return 0 };
        std::fs::read_to_string(dir.join("acl-bootstrap-reset"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    fn stored_token(&self, accessor: &str) -> Result<Token, RpcError> {
        self.consensus
            .store
            .read(|s| s.acl.token(accessor).map(|t| named_token(s, t)))
            .ok_or_else(|| RpcError::Internal("token vanished after it was written".into()))
    }

    pub async fn acl_token_set(&self, mut token: Token, create: bool) -> Result<Token, RpcError> {
        self.acl_on()?;
        let now = super::now_ns();
        let prepared = self.consensus.store.read(|s| -> Result<Token, RpcError> {
            if create {
                if token.accessor_id.is_empty() {
                    token.accessor_id = new_uuid();
                } else if let Some(why) = invalid_token_id(&token.accessor_id) {
                    return Err(bad(format!("Invalid Token: AccessorID - {why}")));
                } else if id_in_use(s, &token.accessor_id) {
                    return Err(bad("Invalid Token: AccessorID is already in use"));
                }
                if token.secret_id.is_empty() {
                    token.secret_id = new_uuid();
                } else if let Some(why) = invalid_token_id(&token.secret_id) {
                    return Err(bad(format!("Invalid Token: SecretID - {why}")));
                } else if id_in_use(s, &token.secret_id) {
                    return Err(bad("Invalid Token: SecretID is already in use"));
                }
                // As Consul: a TTL becomes an expiration time, and the
                // bounds apply to that time, however it was given.
                if let Some(ttl) = token.expiration_ttl_ns.take() {
                    if token.expiration_time_ms.is_some() {
                        return Err(bad("Token Expiration TTL and Expiration Time cannot both be set"));
                    }
                    token.expiration_time_ms = Some((now + ttl) / 1_000_000);
                }
                if let Some(t) = token.expiration_time_ms {
                    let now_ms = now / 1_000_000;
                    if t < now_ms {
                        return Err(bad("ExpirationTime cannot be before CreateTime"));
                    }
                    let expires_in = Duration::from_millis(t - now_ms);
                    let fmt = crate::duration::format;
                    if expires_in > MAX_TTL {
                        return Err(bad(format!(
                            "ExpirationTime cannot be more than {} in the future (was {})",
                            fmt(MAX_TTL),
                            fmt(expires_in)
                        )));
                    }
                    if expires_in < MIN_TTL {
                        return Err(bad(format!(
                            "ExpirationTime cannot be less than {} in the future (was {})",
                            fmt(MIN_TTL),
                            fmt(expires_in)
                        )));
                    }
                }
                if !token.auth_method.is_empty() {
                    return Err(bad("AuthMethod field is disallowed outside of login"));
                }
                token.create_time_ns = now;
            } else {
                if !is_uuid(&token.accessor_id) {
                    return Err(bad("AccessorID is not a valid UUID"));
                }
                let Some(old) = s.acl.token(&token.accessor_id).filter(|t| !t.expired_at(now / 1_000_000))
                else {
                    return Err(bad(format!("Cannot find token {:?}", token.accessor_id)));
                };
                if !token.secret_id.is_empty() && token.secret_id != old.secret_id {
                    return Err(bad("Changing a token's SecretID is not permitted"));
                }
                if token.local != old.local {
                    return Err(bad(format!("Cannot toggle local mode of {}", token.accessor_id)));
                }
                if token.expiration_ttl_ns.is_some()
                    || token.expiration_time_ms.is_some_and(|t| Some(t) != old.expiration_time_ms)
                {
                    return Err(bad(format!("Cannot change expiration time of {}", token.accessor_id)));
                }
                token.secret_id = old.secret_id.clone();
                token.expiration_time_ms = old.expiration_time_ms;
                token.expiration_ttl_ns = old.expiration_ttl_ns;
                token.create_time_ns = old.create_time_ns;
                token.auth_method = old.auth_method.clone();
            }
            if token.local {
                if let Some(si) = token.grants.service_identities.iter().find(|si| !si.datacenters.is_empty())
                {
                    return Err(bad(format!(
                        "Service identity {:?} cannot specify a list of datacenters on a local token",
                        si.service_name
                    )));
                }
            }
            token.grants = resolve_grants(s, &token.grants, &self.settings.datacenter)?;
            token.roles = resolve_links(
                &token.roles,
                "role",
                |id| s.acl.role(id).map(|r| r.name.clone()),
                |n| s.acl.role_by_name(n).map(|r| r.id.clone()),
            )?;
            Ok(with_token_hash(token.clone()))
        })?;
        let accessor = prepared.accessor_id.clone();
        self.acl_apply(Command::AclTokenSet(Box::new(prepared))).await?;
        self.stored_token(&accessor)
    }

    pub async fn acl_token_read(
        &self,
        accessor: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<Token>), RpcError> {
        if !is_uuid(accessor) {
            return Err(bad(TOKEN_LOOKUP_NOT_UUID));
        }
        self.acl_read(opts, |s| s.acl.token(accessor).map(|t| named_token(s, t))).await
    }

    pub async fn acl_token_self(&self, ctx: &RequestContext) -> Result<Token, RpcError> {
        self.acl_on()?;
        let secret = ctx.token.as_deref().filter(|t| !t.is_empty()).unwrap_or(model::ANONYMOUS_SECRET);
        let lookup = || {
            self.consensus.store.read(|s| {
                s.acl
                    .token_by_secret(secret)
                    .filter(|t| !t.expired_at(super::now_ms()))
                    .map(|t| named_token(s, t))
            })
        };
        if let Some(t) = lookup() {
            return Ok(t);
        }
        // The hook does not resolve this caller (see `Guard::RESOLVES_CALLER`),
        // so the follower catch-up it does for unknown secrets happens here:
        // a token created a moment ago may not be applied on this server yet.
        if !self.consensus.is_leader() {
            self.check_consistency(&QueryOptions::default()).await?;
            if let Some(t) = lookup() {
                return Ok(t);
            }
        }
        // Consul 1.15+: a secret that names no token is a 404 with this text.
        Err(RpcError::NotFound("Supplied token does not exist".into()))
    }

    pub async fn acl_token_list(
        &self,
        filter: &AclTokenFilter,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<Token>), RpcError> {
        let now = super::now_ms();
        self.acl_read(opts, |s| {
            s.acl
                .tokens()
                .filter(|t| !t.expired_at(now))
                .filter(|t| {
                    filter.policy.as_ref().is_none_or(|p| t.grants.policies.iter().any(|l| &l.id == p))
                })
                .filter(|t| filter.role.as_ref().is_none_or(|r| t.roles.iter().any(|l| &l.id == r)))
                .filter(|t| {
                    filter
                        .service_name
                        .as_ref()
                        .is_none_or(|n| t.grants.service_identities.iter().any(|si| &si.service_name == n))
                })
                .filter(|t| filter.auth_method.as_ref().is_none_or(|m| &t.auth_method == m))
                .map(|t| named_token(s, t))
                .collect()
        })
        .await
    }

    pub async fn acl_token_delete(&self, ctx: &RequestContext, accessor: &str) -> Result<bool, RpcError> {
        self.acl_on()?;
        if !is_uuid(accessor) {
            return Err(bad("Accessor ID is missing or an invalid UUID"));
        }
        if accessor == model::ANONYMOUS_ACCESSOR {
            return Err(bad("Delete operation not permitted on the anonymous token"));
        }
        let own = self.consensus.store.read(|s| {
            ctx.token
                .as_deref()
                .and_then(|sec| s.acl.token_by_secret(sec))
                .is_some_and(|t| t.accessor_id == accessor)
        });
        if own {
            return Err(bad("Deletion of the request's authorization token is not permitted"));
        }
        self.acl_apply(Command::AclTokenDelete { accessor: accessor.to_string() }).await?;
        Ok(true)
    }

    pub async fn acl_token_clone(
        &self,
        accessor: &str,
        description: Option<String>,
    ) -> Result<Token, RpcError> {
        self.acl_on()?;
        if !is_uuid(accessor) {
            return Err(bad(TOKEN_LOOKUP_NOT_UUID));
        }
        let now = super::now_ms();
        let Some(old) =
            self.consensus.store.read(|s| s.acl.token(accessor).filter(|t| !t.expired_at(now)).cloned())
        else {
            return Err(super::acl_not_found());
        };
        if !old.auth_method.is_empty() {
            return Err(bad("Cannot clone a token created from an auth method"));
        }
        let clone = Token {
            description: description.unwrap_or(old.description),
            grants: old.grants,
            roles: old.roles,
            local: old.local,
            expiration_time_ms: old.expiration_time_ms,
            expiration_ttl_ns: old.expiration_ttl_ns,
            ..Default::default()
        };
        // The clone keeps the original's expiry as an absolute time.
        let mut clone = clone;
        clone.expiration_ttl_ns = None;
        self.acl_token_set(clone, true).await
    }

    pub async fn acl_policy_set(&self, mut policy: Policy, create: bool) -> Result<Policy, RpcError> {
        self.acl_on()?;
        if policy.name.is_empty() {
            return Err(bad("Invalid Policy: no Name is set"));
        }
        if !policy.id.is_empty() && !is_uuid(&policy.id) {
            return Err(bad("Policy ID invalid UUID"));
        }
        if !crate::acl::identity::is_valid_policy_name(&policy.name) {
            return Err(bad(crate::acl::identity::INVALID_POLICY_NAME));
        }
        crate::acl::rules::parse(&policy.rules)
            .map_err(|e| bad(format!("Invalid Policy: failed to parse rules: {e}")))?;
        let prepared = self.consensus.store.read(|s| -> Result<Policy, RpcError> {
            if create {
                if policy.id.is_empty() {
                    policy.id = new_uuid();
                } else if s.acl.policy(&policy.id).is_some() {
                    return Err(bad("Invalid Policy: ID is already in use"));
                }
            } else {
                let Some(old) = s.acl.policy(&policy.id) else {
                    return Err(RpcError::NotFound(format!("cannot find policy {}", policy.id)));
                };
                if old.id == model::GLOBAL_MANAGEMENT_ID {
                    if policy.datacenters != old.datacenters {
                        return Err(bad("Changing the Datacenters of the builtin global-management policy is not permitted"));
                    }
                    if policy.rules != old.rules {
                        return Err(bad("Changing the Rules for the builtin global-management policy is not permitted"));
                    }
                }
            }
            if let Some(other) = s.acl.policy_by_name(&policy.name) {
                if other.id != policy.id {
                    // Consul words the rename clash differently from the create one.
                    let text = if create { "A Policy with Name" } else { "A policy with name" };
                    return Err(bad(format!("Invalid Policy: {text} {:?} already exists", policy.name)));
                }
            }
            policy.hash = policy_hash(&policy);
            Ok(policy.clone())
        })?;
        let id = prepared.id.clone();
        self.acl_apply(Command::AclPolicySet(Box::new(prepared))).await?;
        self.consensus
            .store
            .read(|s| s.acl.policy(&id).cloned())
            .ok_or_else(|| RpcError::Internal("policy vanished after it was written".into()))
    }

    pub async fn acl_policy_read(
        &self,
        key: &str,
        by_name: bool,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<Policy>), RpcError> {
        if !by_name {
            self.acl_on()?;
            check_lookup_id("policy", key)?;
        }
        self.acl_read(opts, |s| if by_name { s.acl.policy_by_name(key) } else { s.acl.policy(key) }.cloned())
            .await
    }

    pub async fn acl_policy_list(&self, opts: &QueryOptions) -> Result<(QueryMeta, Vec<Policy>), RpcError> {
        self.acl_read(opts, |s| s.acl.policies().cloned().collect()).await
    }

    pub async fn acl_policy_delete(&self, id: &str) -> Result<bool, RpcError> {
        self.acl_on()?;
        check_lookup_id("policy", id)?;
        if id == model::GLOBAL_MANAGEMENT_ID {
            return Err(bad("Delete operation not permitted on the builtin global-management policy"));
        }
        self.acl_apply(Command::AclPolicyDelete { id: id.to_string() }).await?;
        Ok(true)
    }

    pub async fn acl_role_set(&self, mut role: Role, create: bool) -> Result<Role, RpcError> {
        self.acl_on()?;
        if role.name.is_empty() {
            return Err(bad("Invalid Role: no Name is set"));
        }
        if !role.id.is_empty() && !is_uuid(&role.id) {
            return Err(bad("Role ID invalid UUID"));
        }
        if !crate::acl::identity::is_valid_role_name(&role.name) {
            return Err(bad(
                "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
            ));
        }
        let prepared = self.consensus.store.read(|s| -> Result<Role, RpcError> {
            if create {
                if role.id.is_empty() {
                    role.id = new_uuid();
                } else if s.acl.role(&role.id).is_some() {
                    return Err(bad("Invalid Role: ID is already in use"));
                }
            } else if s.acl.role(&role.id).is_none() {
                return Err(RpcError::NotFound(format!("cannot find role {}", role.id)));
            }
            if let Some(other) = s.acl.role_by_name(&role.name) {
                if other.id != role.id {
                    let text = if create { "A Role with Name" } else { "A role with name" };
                    return Err(bad(format!("Invalid Role: {text} {:?} already exists", role.name)));
                }
            }
            role.grants = resolve_grants(s, &role.grants, &self.settings.datacenter)?;
            role.hash = hash_parts(&[&role.name, &role.description, &grants_text(&role.grants)]);
            Ok(role.clone())
        })?;
        let id = prepared.id.clone();
        self.acl_apply(Command::AclRoleSet(Box::new(prepared))).await?;
        self.consensus
            .store
            .read(|s| s.acl.role(&id).map(|r| named_role(s, r)))
            .ok_or_else(|| RpcError::Internal("role vanished after it was written".into()))
    }

    pub async fn acl_role_read(
        &self,
        key: &str,
        by_name: bool,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<Role>), RpcError> {
        if !by_name {
            self.acl_on()?;
            check_lookup_id("role", key)?;
        }
        self.acl_read(opts, |s| {
            if by_name { s.acl.role_by_name(key) } else { s.acl.role(key) }.map(|r| named_role(s, r))
        })
        .await
    }

    pub async fn acl_role_list(
        &self,
        policy: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<Role>), RpcError> {
        self.acl_read(opts, |s| {
            s.acl
                .roles()
                .filter(|r| policy.is_none_or(|p| r.grants.policies.iter().any(|l| l.id == p)))
                .map(|r| named_role(s, r))
                .collect()
        })
        .await
    }

    pub async fn acl_role_delete(&self, id: &str) -> Result<bool, RpcError> {
        self.acl_on()?;
        check_lookup_id("role", id)?;
        self.acl_apply(Command::AclRoleDelete { id: id.to_string() }).await?;
        Ok(true)
    }
}

/// A policy's hash over what it says (Consul returns one; clients compare it).
pub(crate) fn policy_hash(policy: &Policy) -> Vec<u8> {
    let mut dcs = policy.datacenters.clone();
    dcs.sort();
    hash_parts(&[&policy.name, &policy.description, &policy.rules, &dcs.join(",")])
}

/// A token's hash over what it grants (Consul returns one; clients compare it).
pub(crate) fn with_token_hash(mut t: Token) -> Token {
    t.hash = hash_parts(&[
        &t.description,
        &grants_text(&t.grants),
        &format!("{:?}", t.roles),
        &t.local.to_string(),
    ]);
    t
}

/// Links with the current names of their targets; links to deleted
/// policies or roles are dropped (Consul does the same when reading).
pub(crate) fn named_token(s: &State, t: &Token) -> Token {
    let mut t = t.clone();
    t.grants = named_grants(s, &t.grants);
    t.roles = t
        .roles
        .iter()
        .filter_map(|l| s.acl.role(&l.id).map(|r| Link { id: l.id.clone(), name: r.name.clone() }))
        .collect();
    t
}

pub(crate) fn named_role(s: &State, r: &Role) -> Role {
    let mut r = r.clone();
    r.grants = named_grants(s, &r.grants);
    r
}

fn named_grants(s: &State, g: &Grants) -> Grants {
    let mut g = g.clone();
    g.policies = g
        .policies
        .iter()
        .filter_map(|l| s.acl.policy(&l.id).map(|p| Link { id: l.id.clone(), name: p.name.clone() }))
        .collect();
    g
}

/// Links given by ID or name, checked and turned into ID links (deduplicated).
fn resolve_links(
    links: &[Link],
    what: &str,
    by_id: impl Fn(&str) -> Option<String>,
    by_name: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Link>, RpcError> {
    let mut out: Vec<Link> = Vec::new();
    for l in links {
        let link = if !l.id.is_empty() {
            let name = by_id(&l.id).ok_or_else(|| bad(format!("No such ACL {what} with ID {:?}", l.id)))?;
            Link { id: l.id.clone(), name }
        } else if !l.name.is_empty() {
            let id =
                by_name(&l.name).ok_or_else(|| bad(format!("No such ACL {what} with name {:?}", l.name)))?;
            Link { id, name: l.name.clone() }
        } else {
            return Err(bad(format!("{what} link is missing both an ID and a Name")));
        };
        if !out.iter().any(|x| x.id == link.id) {
            out.push(link);
        }
    }
    Ok(out)
}

/// Checks and normalises what a token or role grants.
fn resolve_grants(s: &State, g: &Grants, _dc: &str) -> Result<Grants, RpcError> {
    let mut out = g.clone();
    out.policies = resolve_links(
        &g.policies,
        "policy",
        |id| s.acl.policy(id).map(|p| p.name.clone()),
        |n| s.acl.policy_by_name(n).map(|p| p.id.clone()),
    )?;
    for si in &g.service_identities {
        if si.service_name.is_empty() {
            return Err(bad("Service identity is missing the service name field on this token"));
        }
        if !crate::acl::identity::is_valid_service_identity_name(&si.service_name) {
            return Err(bad(format!("Service identity {:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed", si.service_name)));
        }
    }
    for ni in &g.node_identities {
        if ni.node_name.is_empty() {
            return Err(bad("Node identity is missing the node name field on this token"));
        }
        if ni.datacenter.is_empty() {
            return Err(bad("Node identity is missing the datacenter field on this token"));
        }
        if !crate::acl::identity::is_valid_node_identity_name(&ni.node_name) {
            return Err(bad("Node identity has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"));
        }
    }
    for tp in &g.templated_policies {
        let Some(t) = crate::acl::identity::template(&tp.template_name) else {
            return Err(bad(format!("templated policy {:?} does not exist", tp.template_name)));
        };
        crate::acl::identity::render(t, tp.name.as_deref()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(out)
}
