//! The one authorisation hook every RPC method passes before its handler,
//! and the filter every reply passes after it.
//!
//! `Server::serve` calls `authorize` for each call, in process or from the
//! wire, and a handler (`endpoints::Serve::serve`) cannot be called without
//! the `Authorized` proof it returns: the type has no public constructor, so
//! a path that skips the hook does not compile. What each method needs is
//! its `Guard` impl below: every method must have one (`Serve: Guard`), so
//! a new method cannot be added without deciding. `check` refuses a call
//! the token may not make (403 with Consul's text); `filter` removes from
//! a collection what the token may not read, with the caller's identity as
//! it is when the reply is sent (so a blocking query that waited across a
//! policy change answers under the new policy).

use super::acl::Identity;
use super::Server;
use crate::catalog::queries::PreparedQuery;
use crate::catalog::txn::{KvVerb, TxnError, TxnOp, TxnOutcome};
use crate::catalog::{Command, State};
use crate::rpc::method::{self, Method};
use crate::rpc::{QueryMeta, RequestContext, RpcError};

/// Proof that a call passed `Server::authorize`. Deliberately neither
/// `Clone` nor constructible outside this module: one proof per call.
pub struct Authorized(());

/// What the hook decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Decide by the caller's token (everything is allowed when ACLs are
    /// disabled, as in Consul).
    #[default]
    Acl,
    /// Every call is refused: lets a test prove that no method reaches its
    /// handler around the hook.
    #[cfg(test)]
    DenyAll,
}

/// What a guard decides with: who asks, and the state they ask about.
pub struct Check<'a> {
    pub id: &'a Identity,
    pub state: &'a State,
    /// The request carried a token (only then does a filtered reply say so).
    pub token_given: bool,
    /// `acl.enable_key_list_policy`: listing keys needs `list` on the prefix.
    pub key_list_policy: bool,
}

impl Check<'_> {
    fn require(&self, allowed: bool, permission: &str, on: Option<&str>) -> Result<(), RpcError> {
        if allowed {
            Ok(())
        } else {
            Err(RpcError::PermissionDenied(self.id.denied_text(permission, on)))
        }
    }

    /// Sets the results-filtered flag when something was removed.
    fn mark(&self, meta: &mut QueryMeta, removed: bool) {
        meta.filtered_by_acls |= removed && self.token_given;
    }
}

/// What one method needs from its caller's token.
pub trait Guard: Method {
    /// Only servers may call it: the caller's token must be the servers'
    /// shared secret (`AclTable::server_secret`), not a user token.
    const SERVERS_ONLY: bool = false;
    /// The hook resolves the caller's token before the handler and again
    /// for the reply filter. A method that reads the caller's own token
    /// (`AclTokenSelf`) opts out: Consul looks the secret up instead of
    /// resolving it, so an unknown secret is its 404, not "ACL not found".
    const RESOLVES_CALLER: bool = true;
    /// Whether the reply passes `filter` (with the caller resolved again
    /// when it is sent). Off for a method whose success removes the
    /// caller's own token (logout): resolving it again would turn the
    /// success into `ACL not found`.
    const FILTERS_REPLY: bool = true;
    /// Refuses a call the token may not make.
    fn check(&self, _c: &Check<'_>) -> Result<(), RpcError> {
        Ok(())
    }
    /// Removes from the reply what the token may not read.
    fn filter(_reply: &mut Self::Reply, _c: &Check<'_>) {}
    /// A refusal that is an answer rather than an error, given instead of
    /// running the handler (a transaction reports each refused operation
    /// in its reply, as Consul does).
    fn refusal(&self, _c: &Check<'_>) -> Option<Self::Reply> {
        None
    }
}

/// What the hook decided about a call it did not refuse outright.
pub enum Verdict<R> {
    /// Run the handler.
    Allowed(Authorized),
    /// Answer with this instead (`Guard::refusal`).
    Answered(R),
}

/// Keeps the items `keep` allows; whether any went.
fn retain<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> bool {
    let before = items.len();
    items.retain(|x| keep(x));
    items.len() != before
}

impl Server {
    /// Decides whether the caller of `ctx` may make this call of `M`. A
    /// secret this server does not know may be a token created a moment
    /// ago that it has not applied yet: before refusing, a follower
    /// catches up with the leader (a linearizable read) and looks again.
    pub(crate) async fn authorize<M: Guard>(
        &self,
        ctx: &RequestContext,
        args: &M,
    ) -> Result<Verdict<M::Reply>, RpcError> {
        let not_found = super::acl::acl_not_found();
        let first = match self.authorize_now(ctx, args, None) {
            Err(e) if e == not_found && !self.consensus.is_leader() => {
                self.check_consistency(&crate::rpc::QueryOptions::default()).await?;
                self.authorize_now(ctx, args, None)
            }
            other => other,
        };
        match first {
            // A secondary datacenter asks the primary about a token it does
            // not hold (or applies the down policy when it cannot).
            Err(e) if e == not_found && self.resolves_through_primary() => {
                let id = self.resolve_remote(ctx.token.as_deref()).await?;
                self.authorize_now(ctx, args, Some(id))
            }
            other => other,
        }
    }

    /// `resolved`: the caller's identity when it came from the primary
    /// datacenter rather than this server's tables.
    fn authorize_now<M: Guard>(
        &self,
        ctx: &RequestContext,
        args: &M,
        resolved: Option<std::sync::Arc<Identity>>,
    ) -> Result<Verdict<M::Reply>, RpcError> {
        #[cfg(test)]
        if self.authz == Policy::DenyAll {
            return Err(RpcError::PermissionDenied(format!("Permission denied: {}", M::NAME)));
        }
        if !self.acl_enabled() || !M::RESOLVES_CALLER {
            return Ok(Verdict::Allowed(Authorized(())));
        }
        let answer = self.consensus.store.read(|state| {
            if M::SERVERS_ONLY {
                let secret = &state.acl.server_secret;
                return match ctx.token.as_deref() {
                    Some(t) if !secret.is_empty() && t == secret => Ok(None),
                    _ => Err(RpcError::PermissionDenied(format!(
                        "Permission denied: {} is for servers only",
                        M::NAME
                    ))),
                };
            }
            let id = match &resolved {
                Some(id) => id.clone(),
                None => self.identity(state, ctx.token.as_deref())?,
            };
            let c = self.check_ctx(&id, state, ctx);
            args.check(&c)?;
            Ok(args.refusal(&c))
        })?;
        Ok(match answer {
            Some(reply) => Verdict::Answered(reply),
            None => Verdict::Allowed(Authorized(())),
        })
    }

    fn check_ctx<'a>(&self, id: &'a Identity, state: &'a State, ctx: &RequestContext) -> Check<'a> {
        Check {
            id,
            state,
            token_given: ctx.token.as_deref().is_some_and(|t| !t.is_empty()),
            key_list_policy: self.settings.acl.enable_key_list_policy,
        }
    }

    /// Filters a reply for the caller of `ctx`.
    pub(crate) async fn filter_reply<M: Guard>(
        &self,
        ctx: &RequestContext,
        reply: &mut M::Reply,
    ) -> Result<(), RpcError> {
        // Server-only methods carry the servers' secret, not a user token.
        if !self.acl_enabled() || M::SERVERS_ONLY || !M::RESOLVES_CALLER || !M::FILTERS_REPLY {
            return Ok(());
        }
        match self.filter_reply_as::<M>(ctx, reply, None) {
            // A token resolved through the primary whose answer aged out
            // while the handler ran (a long blocking query): ask again.
            Err(e) if e == super::acl::acl_not_found() && self.resolves_through_primary() => {
                let id = self.resolve_remote(ctx.token.as_deref()).await?;
                self.filter_reply_as::<M>(ctx, reply, Some(id))
            }
            other => other,
        }
    }

    fn filter_reply_as<M: Guard>(
        &self,
        ctx: &RequestContext,
        reply: &mut M::Reply,
        resolved: Option<std::sync::Arc<Identity>>,
    ) -> Result<(), RpcError> {
        self.consensus.store.read(|state| {
            let id = match &resolved {
                Some(id) => id.clone(),
                None => self.identity(state, ctx.token.as_deref())?,
            };
            M::filter(reply, &self.check_ctx(&id, state, ctx));
            Ok(())
        })
    }
}

// --- Server-to-server and status: no token needed ---------------------------

impl Guard for method::Ping {}
/// Raft traffic is not token-checked (a server joining has no ACL state
/// yet); protecting the RPC port from non-servers is TLS's job
/// (`verify_incoming`), as in Consul.
impl Guard for method::Raft {}
impl Guard for method::ReadIndex {}
impl Guard for method::ReadIndexConsistent {}
impl Guard for method::StatusLeader {}
impl Guard for method::StatusPeers {}
impl Guard for method::Datacenters {}

// --- Coordinates ---------------------------------------------------------------

/// Updating a node's coordinate is writing to the node (Consul's rule).
impl Guard for method::CoordinateUpdate {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.node_write(&self.entry.node), "node:write", Some(&self.entry.node))
    }
}

impl Guard for method::CoordinateNodes {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |e| c.id.authz.node_read(&e.node));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::CoordinateNode {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.node_read(&self.node), "node:read", Some(&self.node))
    }
}

/// Servers' WAN coordinates, like the datacenter list, need no permission.
impl Guard for method::CoordinateDatacenters {}

// --- Prepared queries ------------------------------------------------------------

/// The name `query` rules apply to: a query's name, a template's prefix
/// (even ""); an unnamed query has none and only a management token
/// sees it (Consul's rule).
fn query_prefix(q: &PreparedQuery) -> Option<&str> {
    (!q.name.is_empty() || q.is_template()).then_some(q.name.as_str())
}

fn query_readable(c: &Check<'_>, q: &PreparedQuery) -> bool {
    match query_prefix(q) {
        Some(name) => c.id.authz.query_read(name),
        None => c.id.authz.is_management(),
    }
}

fn query_writable(c: &Check<'_>, q: &PreparedQuery) -> Result<(), RpcError> {
    match query_prefix(q) {
        Some(name) => c.require(c.id.authz.query_write(name), "query:write", Some(name)),
        None => Ok(()),
    }
}

/// The stored token shows only to callers who may read ACLs.
fn redact(c: &Check<'_>, q: &mut PreparedQuery) {
    if !q.token.is_empty() && !c.id.authz.acl_read() {
        q.token = crate::server::prepared_query::REDACTED.to_string();
    }
}

impl Guard for method::QuerySet {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        query_writable(c, &self.query)?;
        match c.state.queries.get(&self.query.id) {
            Some(existing) if !self.create => query_writable(c, existing),
            _ => Ok(()),
        }
    }
}

impl Guard for method::QueryDelete {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        match c.state.queries.get(&self.id) {
            Some(existing) => query_writable(c, existing),
            None => Ok(()),
        }
    }
}

impl Guard for method::QueryGet {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        match c.state.queries.get(&self.id) {
            Some(q) if !query_readable(c, q) => c.require(false, "query:read", query_prefix(q)),
            _ => Ok(()),
        }
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        reply.1.iter_mut().for_each(|q| redact(c, q));
    }
}

impl Guard for method::QueryList {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |q| query_readable(c, q));
        reply.1.iter_mut().for_each(|q| redact(c, q));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::QueryExplain {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        match c.state.queries.lookup(&self.key) {
            Some(q) if !query_readable(c, q) => c.require(false, "query:read", query_prefix(q)),
            _ => Ok(()),
        }
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        redact(c, &mut reply.1);
    }
}

/// Executing needs no permission of its own: the results are what the
/// query's stored token (else the caller's) may read, decided in the handler.
impl Guard for method::QueryExecute {}

/// Sent by a server of another datacenter during failover; the rendered
/// query carries the token that filters its results.
impl Guard for method::QueryExecuteRemote {}

/// A raw state-machine command from a follower: only servers may send
/// one, proven by the servers' shared secret in the ACL state.
impl Guard for method::Propose {
    const SERVERS_ONLY: bool = true;
}
/// A server's own graceful leave: only servers (a user removes a peer with
/// `RaftRemovePeer`, under `operator:write`).
impl Guard for method::RaftLeave {
    const SERVERS_ONLY: bool = true;
}

// --- KV ------------------------------------------------------------------------

impl Guard for method::KvGet {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.key_read(&self.key), "key:read", Some(&self.key))
    }
}

impl Guard for method::KvList {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        if c.key_list_policy {
            c.require(c.id.authz.key_list(&self.prefix), "key:list", Some(&self.prefix))?;
        }
        Ok(())
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |e| c.id.authz.key_read(&e.key));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::KvKeys {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        if c.key_list_policy {
            c.require(c.id.authz.key_list(&self.prefix), "key:list", Some(&self.prefix))?;
        }
        Ok(())
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |k| c.id.authz.key_read(k));
        c.mark(&mut reply.0, removed);
    }
}

/// The permission a KV write needs, as `(allowed, permission, segment)`.
fn kv_write_allowed<'a>(id: &Identity, cmd: &'a Command) -> (bool, &'static str, Option<&'a str>) {
    match cmd {
        Command::KvSet { key, .. }
        | Command::KvCas { key, .. }
        | Command::KvDelete { key }
        | Command::KvDeleteCas { key, .. }
        | Command::KvLock { key, .. }
        | Command::KvUnlock { key, .. } => (id.authz.key_write(key), "key:write", Some(key)),
        // A recursive delete needs write on everything under the prefix.
        Command::KvDeleteTree { prefix } => (id.authz.key_write_prefix(prefix), "key:write", Some(prefix)),
        // Only KV commands travel as KvApply.
        _ => (false, "operator:write", None),
    }
}

impl Guard for method::KvApply {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let (ok, perm, on) = kv_write_allowed(c.id, &self.command);
        c.require(ok, perm, on)
    }
}

/// Why one transaction operation is refused, if it is, as Consul's
/// pre-check decides: KV and catalog reads are not refused but filtered
/// from the results; `check-index` and `check-session` need read (their
/// outcome reveals the key); every other KV verb, `check-not-exists`
/// included, needs write (a delete-tree on the whole prefix).
fn txn_op_refused(c: &Check<'_>, op: &TxnOp) -> Option<String> {
    let a = &c.id.authz;
    let need = |ok: bool, perm: &str, on: &str| (!ok).then(|| c.id.denied_text(perm, Some(on)));
    match op {
        TxnOp::Kv(kv) => match kv.verb {
            KvVerb::Get | KvVerb::GetTree | KvVerb::GetOrEmpty => None,
            KvVerb::CheckIndex | KvVerb::CheckSession => need(a.key_read(&kv.key), "key:read", &kv.key),
            KvVerb::DeleteTree => need(a.key_write_prefix(&kv.key), "key:write", &kv.key),
            _ => need(a.key_write(&kv.key), "key:write", &kv.key),
        },
        _ if op.is_read() => None,
        TxnOp::Node(n) => need(a.node_write(&n.node.node), "node:write", &n.node.node),
        TxnOp::Service(s) => need(a.service_write(&s.service.service), "service:write", &s.service.service),
        TxnOp::Check(ch) if ch.check.service_id.is_empty() => {
            need(a.node_write(&ch.check.node), "node:write", &ch.check.node)
        }
        TxnOp::Check(ch) => {
            need(a.service_write(&ch.check.service_name), "service:write", &ch.check.service_name)
        }
    }
}

impl Guard for method::Txn {
    /// Each refused operation is reported (409 with `Errors` over HTTP),
    /// as Consul does, not the whole call refused with a 403: clients of
    /// `/v1/txn` read per-operation errors.
    fn refusal(&self, c: &Check<'_>) -> Option<Self::Reply> {
        let errors: Vec<TxnError> = self
            .ops
            .iter()
            .enumerate()
            .filter_map(|(op_index, op)| txn_op_refused(c, op).map(|what| TxnError { op_index, what }))
            .collect();
        (!errors.is_empty()).then(|| (None, TxnOutcome { results: Vec::new(), errors }))
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        // Reads were not refused: drop what the token cannot read (a
        // get-tree may also reach below the rule that allowed its prefix).
        use crate::catalog::txn::TxnResultItem;
        let a = &c.id.authz;
        let removed = retain(&mut reply.1.results, |r| match r {
            TxnResultItem::Kv { entry, .. } => a.key_read(&entry.key),
            TxnResultItem::Node(n) => a.node_read(&n.node),
            TxnResultItem::Service(s) => a.service_read(&s.service),
            TxnResultItem::Check(ch) => check_visible(c, ch),
        });
        if let Some(meta) = reply.0.as_mut() {
            c.mark(meta, removed);
        }
    }
}

// --- Catalog and health -----------------------------------------------------------

impl Guard for method::CatalogRegister {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let reg = &self.registration;
        let a = &c.id.authz;
        let node = &reg.node.node;
        // The node itself needs node:write only when it changes (Consul's
        // rule: a service token may register onto an existing node).
        let existing = c.state.catalog.node(node);
        let node_changes = match existing {
            None => true,
            Some(n) => {
                !reg.skip_node_update
                    && (n.address != reg.node.address
                        || (!reg.preserve_node_extras
                            && (n.meta != reg.node.meta || n.tagged_addresses != reg.node.tagged_addresses)))
            }
        };
        if node_changes {
            c.require(a.node_write(node), "node:write", Some(node))?;
        }
        if let Some(svc) = &reg.service {
            c.require(a.service_write(&svc.service), "service:write", Some(&svc.service))?;
        }
        for check in &reg.checks {
            if check.service_id.is_empty() {
                c.require(a.node_write(node), "node:write", Some(node))?;
            } else {
                let name = reg
                    .service
                    .as_ref()
                    .filter(|s| s.id == check.service_id)
                    .map(|s| s.service.clone())
                    .or_else(|| c.state.catalog.service(node, &check.service_id).map(|s| s.service.clone()))
                    .unwrap_or_else(|| check.service_name.clone());
                c.require(a.service_write(&name), "service:write", Some(&name))?;
            }
        }
        Ok(())
    }
}

impl Guard for method::CatalogDeregister {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let d = &self.deregistration;
        let a = &c.id.authz;
        let service_name =
            |id: &str| c.state.catalog.service(&d.node, id).map(|s| s.service.clone()).unwrap_or_default();
        match (&d.service_id, &d.check_id) {
            (Some(sid), _) => {
                let name = service_name(sid);
                c.require(a.service_write(&name), "service:write", Some(&name))
            }
            (None, Some(cid)) => match c.state.catalog.check(&d.node, cid) {
                Some(ch) if !ch.service_id.is_empty() => {
                    let name = service_name(&ch.service_id);
                    c.require(a.service_write(&name), "service:write", Some(&name))
                }
                _ => c.require(a.node_write(&d.node), "node:write", Some(&d.node)),
            },
            (None, None) => c.require(a.node_write(&d.node), "node:write", Some(&d.node)),
        }
    }
}

impl Guard for method::CatalogNodes {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |n| c.id.authz.node_read(&n.node));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::CatalogServices {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        if reply.1.keys().all(|s| c.id.authz.service_read(s)) {
            return;
        }
        let kept =
            reply.1.iter().filter(|(s, _)| c.id.authz.service_read(s)).map(|(k, v)| (k.clone(), v.clone()));
        reply.1 = std::sync::Arc::new(kept.collect());
        c.mark(&mut reply.0, true);
    }
}

impl Guard for method::CatalogService {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let a = &c.id.authz;
        let removed = retain(&mut reply.1, |(n, s)| a.service_read(&s.service) && a.node_read(&n.node));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::CatalogNode {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let a = &c.id.authz;
        let mut removed = false;
        if reply.1.as_ref().is_some_and(|(n, _)| !a.node_read(&n.node)) {
            reply.1 = None;
            removed = true;
        }
        if let Some((_, services)) = reply.1.as_mut() {
            removed |= retain(services, |s| a.service_read(&s.service));
        }
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::CatalogReverse {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let visible = match reply {
            Some((true, node, _)) => c.id.authz.node_read(node),
            Some((false, service, _)) => c.id.authz.service_read(service),
            None => true,
        };
        if !visible {
            *reply = None;
        }
    }
}

/// Checks a token may see: node checks need node:read, service checks
/// service:read as well.
fn check_visible(c: &Check<'_>, ch: &crate::catalog::types::HealthCheck) -> bool {
    c.id.authz.node_read(&ch.node) && (ch.service_id.is_empty() || c.id.authz.service_read(&ch.service_name))
}

impl Guard for method::HealthService {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let a = &c.id.authz;
        let removed =
            retain(&mut reply.1, |h| a.service_read(&h.service.service) && a.node_read(&h.node.node));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::HealthNode {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |ch| check_visible(c, ch));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::HealthChecks {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |ch| check_visible(c, ch));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::HealthState {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |ch| check_visible(c, ch));
        c.mark(&mut reply.0, removed);
    }
}

/// The UI's node dump: nodes the token may read, and on them the services
/// and checks it may read (as Consul's `Internal.NodeDump` filters).
impl Guard for method::InternalNodeDump {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let a = &c.id.authz;
        let mut removed = retain(&mut reply.1, |d| a.node_read(&d.node.node));
        for d in reply.1.iter_mut() {
            removed |= retain(&mut d.services, |s| a.service_read(&s.service));
            removed |= retain(&mut d.checks, |ch| check_visible(c, ch));
        }
        c.mark(&mut reply.0, removed);
    }
}

// --- Sessions -------------------------------------------------------------------

fn session_node(state: &State, id: &str) -> Option<String> {
    state.sessions.get(id).map(|s| s.node.clone())
}

impl Guard for method::SessionCreate {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let node = &self.session.node;
        c.require(c.id.authz.session_write(node), "session:write", Some(node))
    }
}

impl Guard for method::SessionDestroy {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        match session_node(c.state, &self.id) {
            Some(node) => c.require(c.id.authz.session_write(&node), "session:write", Some(&node)),
            None => Ok(()),
        }
    }
}

impl Guard for method::SessionRenew {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        match session_node(c.state, &self.id) {
            Some(node) => c.require(c.id.authz.session_write(&node), "session:write", Some(&node)),
            None => Ok(()),
        }
    }
}

fn filter_sessions(reply: &mut (QueryMeta, Vec<crate::catalog::sessions::Session>), c: &Check<'_>) {
    let removed = retain(&mut reply.1, |s| c.id.authz.session_read(&s.node));
    c.mark(&mut reply.0, removed);
}

impl Guard for method::SessionInfo {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        filter_sessions(reply, c)
    }
}

impl Guard for method::SessionNode {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        filter_sessions(reply, c)
    }
}

impl Guard for method::SessionList {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        filter_sessions(reply, c)
    }
}

// --- Operator, events, snapshots ---------------------------------------------------

macro_rules! needs {
    ($($m:ident => $test:ident, $perm:literal;)*) => {
        $(
            impl Guard for method::$m {
                fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
                    c.require(c.id.authz.$test(), $perm, None)
                }
            }
        )*
    };
}

needs! {
    RaftRemovePeer => operator_write, "operator:write";
    RaftConfigurationGet => operator_read, "operator:read";
    AutopilotGetConfig => operator_read, "operator:read";
    AutopilotSetConfig => operator_write, "operator:write";
    AutopilotHealthGet => operator_read, "operator:read";
    OperatorUsage => operator_read, "operator:read";
    // A snapshot holds every secret: management only (`acl = "write"`).
    SnapshotSave => acl_write, "acl:write";
    SnapshotRestore => acl_write, "acl:write";
    AclPolicyRead => acl_read, "acl:read";
    AclPolicyList => acl_read, "acl:read";
    AclRoleRead => acl_read, "acl:read";
    AclRoleList => acl_read, "acl:read";
    AclTokenSet => acl_write, "acl:write";
    AclTokenDelete => acl_write, "acl:write";
    AclTokenClone => acl_write, "acl:write";
    AclPolicySet => acl_write, "acl:write";
    AclPolicyDelete => acl_write, "acl:write";
    AclRoleSet => acl_write, "acl:write";
    AclRoleDelete => acl_write, "acl:write";
    AclAuthMethodRead => acl_read, "acl:read";
    AclAuthMethodList => acl_read, "acl:read";
    AclBindingRuleRead => acl_read, "acl:read";
    AclBindingRuleList => acl_read, "acl:read";
    AclAuthMethodSet => acl_write, "acl:write";
    AclAuthMethodDelete => acl_write, "acl:write";
    AclBindingRuleSet => acl_write, "acl:write";
    AclBindingRuleDelete => acl_write, "acl:write";
}

impl Guard for method::EventFire {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let name = self.serf_name.strip_prefix("consul:event:").unwrap_or(&self.serf_name);
        c.require(c.id.authz.event_write(name), "event:write", Some(name))
    }
}

/// Anyone may try: it succeeds once (and after a reset).
impl Guard for method::AclBootstrap {}

// --- Config entries ----------------------------------------------------------------

/// May the caller write this entry? Consul's `CanWrite` per kind:
/// `mesh:write` (which `operator:write` grants) for the cluster-wide kinds
/// and gateways, `intentions:write` on the destination for intentions,
/// `service:write` on the name otherwise.
fn config_writable(c: &Check<'_>, kind: &str, name: &str) -> Result<(), RpcError> {
    use crate::config_entry as ce;
    match kind {
        ce::PROXY_DEFAULTS
        | ce::MESH
        | ce::EXPORTED_SERVICES
        | ce::INGRESS_GATEWAY
        | ce::TERMINATING_GATEWAY => c.require(c.id.authz.mesh_write(), "mesh:write", None),
        ce::SERVICE_INTENTIONS => c.require(c.id.authz.intention_write(name), "intentions:write", Some(name)),
        _ => c.require(c.id.authz.service_write(name), "service:write", Some(name)),
    }
}

/// May the caller read this entry? `proxy-defaults` and `mesh` are readable
/// by anyone (Consul), intentions need `intentions:read` on the destination,
/// `exported-services` `mesh:read`, the rest `service:read` on the name.
fn config_readable(c: &Check<'_>, kind: &str, name: &str) -> bool {
    use crate::config_entry as ce;
    match kind {
        ce::PROXY_DEFAULTS | ce::MESH => true,
        ce::EXPORTED_SERVICES => c.id.authz.mesh_read(),
        ce::SERVICE_INTENTIONS => c.id.authz.intention_read(name),
        _ => c.id.authz.service_read(name),
    }
}

fn config_read_permission(kind: &str) -> &'static str {
    match kind {
        crate::config_entry::SERVICE_INTENTIONS => "intentions:read",
        crate::config_entry::EXPORTED_SERVICES => "mesh:read",
        _ => "service:read",
    }
}

impl Guard for method::ConfigEntryApply {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        config_writable(c, &self.entry.kind, &self.entry.name)
    }
}

impl Guard for method::ConfigEntryDelete {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        config_writable(c, &self.kind, &self.name)
    }
}

impl Guard for method::ConfigEntryGet {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        let allowed = config_readable(c, &self.kind, &self.name);
        c.require(allowed, config_read_permission(&self.kind), Some(&self.name))
    }
}

impl Guard for method::ConfigEntryList {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |e| config_readable(c, &e.kind, &e.name));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::ConfigEntryListAll {
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |e| config_readable(c, &e.kind, &e.name));
        c.mark(&mut reply.0, removed);
    }
}

/// Consul: reading a chain needs `service:read` on its service.
impl Guard for method::DiscoveryChainGet {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.service_read(&self.service), "service:read", Some(&self.service))
    }
}

/// Consul: `service:read` on the gateway; mappings to services the token
/// cannot read are dropped.
impl Guard for method::GatewayServices {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.service_read(&self.gateway), "service:read", Some(&self.gateway))
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let removed = retain(&mut reply.1, |g| c.id.authz.service_read(&g.service));
        c.mark(&mut reply.0, removed);
    }
}

/// Consul: `service:read` on the service routed to; the gateway instances
/// are filtered like any health read.
impl Guard for method::HealthIngress {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.service_read(&self.service), "service:read", Some(&self.service))
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        let a = &c.id.authz;
        let removed =
            retain(&mut reply.1, |h| a.service_read(&h.service.service) && a.node_read(&h.node.node));
        c.mark(&mut reply.0, removed);
    }
}

impl Guard for method::ResolvedServiceConfig {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.service_read(&self.service), "service:read", Some(&self.service))
    }
}
/// Any valid token may read itself; resolution refuses an unknown secret.
impl Guard for method::AclTokenSelf {
    const RESOLVES_CALLER: bool = false;
}
impl Guard for method::AclResolve {}
/// Anyone may log in: the bearer token is the credential.
impl Guard for method::AclLogin {}
/// The caller's own token is what logout deletes; resolution already
/// refused an unknown secret, the handler refuses a token not from a login.
impl Guard for method::AclLogout {
    // The token is gone once the handler succeeds; nothing to filter.
    const FILTERS_REPLY: bool = false;
}

/// Only `acl:write` sees SecretIDs in token reads and listings.
fn hide_secret(t: &mut crate::acl::model::Token, c: &Check<'_>) {
    if !c.id.authz.acl_write() {
        t.secret_id = "<hidden>".into();
    }
}

impl Guard for method::AclTokenRead {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.acl_read(), "acl:read", None)
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        if let Some(t) = reply.1.as_mut() {
            hide_secret(t, c);
        }
    }
}

impl Guard for method::AclTokenList {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        c.require(c.id.authz.acl_read(), "acl:read", None)
    }
    fn filter(reply: &mut Self::Reply, c: &Check<'_>) {
        reply.1.iter_mut().for_each(|t| hide_secret(t, c));
    }
}

// --- ACLs across datacenters -------------------------------------------------

/// A secondary's server asks about the caller's own token: resolution
/// (before this guard) already refused a secret the primary does not know.
impl Guard for method::AclResolveRemote {}

/// Copying policies and roles needs `acl:read`; copying tokens (with their
/// secrets) needs `acl:write`, as Consul asks of a replication token.
impl Guard for method::AclReplicationFetch {
    fn check(&self, c: &Check<'_>) -> Result<(), RpcError> {
        // Reading policies and roles needs acl:read; copying tokens (with
        // their secrets) acl:write.
        c.require(c.id.authz.acl_read(), "acl:read", None)?;
        if self.tokens {
            c.require(c.id.authz.acl_write(), "acl:write", None)?;
        }
        Ok(())
    }
}

/// Consul's `/v1/acl/replication` needs no permission.
impl Guard for method::AclReplicationStatusGet {}
