//! ACL replication: the leader of a secondary datacenter copies the
//! primary's policies and roles (and, with `acl.enable_token_replication`,
//! its global tokens) into its own Raft state, so its servers resolve them
//! locally and keep doing so while the primary is unreachable.
//!
//! One loop per leadership: a blocking fetch from the primary
//! (`AclReplicationFetch`, waking on any ACL change there, with the
//! agent's `replication` token), a diff against the local tables, and one
//! `AclReplicate` Raft entry with what differs. Failures back off
//! exponentially and are reported by `/v1/acl/replication`; the loop never
//! gives up, so a secondary catches up by itself when the primary returns.
//! The primary's side is `replication_fetch`.
//!
//! Auth methods and binding rules are not copied: as in Consul they belong
//! to the datacenter they were written in (see `auth`), and the tokens
//! their logins make are local ones unless the primary made them global.

use super::super::blocking::Interest;
use super::super::Server;
use crate::acl::model::{Policy, Role, Token};
use crate::catalog::acl::{AclIndexes, AclReplicationDiff, TOPIC_ACL};
use crate::catalog::{Command, CommandResult, State};
use crate::rpc::acl::{AclReplicationData, AclReplicationStatus};
use crate::rpc::message::Consistency;
use crate::rpc::method::{self, WireCall};
use crate::rpc::{QueryMeta, QueryOptions, RequestContext, RpcError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one fetch blocks at the primary when nothing changes. Short
/// enough that `LastSuccess` moves every minute on a quiet cluster.
const BLOCK_WAIT: Duration = Duration::from_secs(60);
/// Retry pauses after a failed round: doubled per failure up to the cap,
/// so a secondary notices the primary's return within a few seconds.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// Where the loop reads the agent's replication token (it may change at
/// run time through `/v1/agent/token/replication`).
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// What `/v1/acl/replication` reports; kept by the loop in memory, as in
/// Consul (each leader reports its own).
#[derive(Default)]
pub struct ReplicationStatus {
    inner: Mutex<AclReplicationStatus>,
}

impl ReplicationStatus {
    fn update(&self, f: impl FnOnce(&mut AclReplicationStatus)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn get(&self) -> AclReplicationStatus {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs until `shutdown`; does nothing outside a secondary datacenter.
pub async fn run(server: Arc<Server>, replication_token: TokenSource, shutdown: CancellationToken) {
    let Some(primary) = server.acl_primary().map(str::to_string) else { return };
    let with_tokens = server.settings.acl.enable_token_replication;
    server.acl_replication.update(|s| {
        s.enabled = true;
        s.source_datacenter = primary.clone();
        s.replication_type = if with_tokens { "tokens" } else { "policies" }.into();
    });
    let mut status = server.consensus.watch_status();
    loop {
        while !server.consensus.is_leader() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = status.changed() => if r.is_err() { return },
            }
        }
        server.acl_replication.update(|s| s.running = true);
        tracing::info!(target: "agent.server.replication.acl", source = %primary, tokens = with_tokens, "started ACL replication");
        // A new leader starts from nothing: the first round compares
        // everything, so whatever the previous leader left half done is
        // completed.
        let mut have = AclIndexes::default();
        let mut backoff = BACKOFF_MIN;
        while server.consensus.is_leader() {
            let token = replication_token();
            let round = replicate_once(&server, &primary, token, &mut have, with_tokens);
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = until_not_leader(&server) => break,
                r = round => r,
            };
            match result {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    let now = super::now_ms();
                    let have = have.clone();
                    server.acl_replication.update(|s| {
                        s.last_success_ms = Some(now);
                        s.replicated_index = have.policies;
                        s.replicated_role_index = have.roles;
                        if with_tokens {
                            s.replicated_token_index = have.tokens;
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(target: "agent.server.replication.acl", source = %primary, error = %e, "ACL replication round failed; retrying");
                    let now = super::now_ms();
                    server.acl_replication.update(|s| {
                        s.last_error_ms = Some(now);
                        s.last_error_message = e.to_string();
                    });
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        server.acl_replication.update(|s| s.running = false);
        tracing::info!(target: "agent.server.replication.acl", "stopped ACL replication (no longer leader)");
    }
}

/// Resolves once this server no longer leads.
async fn until_not_leader(server: &Server) {
    let mut status = server.consensus.watch_status();
    while server.consensus.is_leader() {
        if status.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One round: fetch what changed at the primary since `have`, write the
/// difference, remember the primary's indexes.
async fn replicate_once(
    server: &Server,
    primary: &str,
    token: Option<String>,
    have: &mut AclIndexes,
    with_tokens: bool,
) -> Result<(), RpcError> {
    let err = match fetch(server, primary, token.clone(), have, with_tokens, true).await {
        Ok(data) => return apply_round(server, data, have).await,
        Err(e) => fetch_error(&e, with_tokens),
    };
    if with_tokens && err.to_string() == TOKENS_REDACTED {
        // As in Consul, where policies and roles replicate apart from
        // tokens: a token that may read ACLs still copies those (now, not
        // blocking), and the round reports the tokens' failure.
        let data =
            fetch(server, primary, token, have, false, false).await.map_err(|e| fetch_error(&e, false))?;
        let tokens_index = have.tokens;
        apply_round(server, data, have).await?;
        have.tokens = tokens_index;
        let (now, have) = (super::now_ms(), have.clone());
        server.acl_replication.update(|s| {
            s.last_success_ms = Some(now);
            s.replicated_index = have.policies;
            s.replicated_role_index = have.roles;
        });
    }
    Err(err)
}

/// Asks the primary for the tables that moved past `have`; `block`: wait
/// (up to `BLOCK_WAIT`) until something does.
async fn fetch(
    server: &Server,
    primary: &str,
    token: Option<String>,
    have: &AclIndexes,
    tokens: bool,
    block: bool,
) -> Result<AclReplicationData, RpcError> {
    let min_index = if block { have.policies.max(have.roles).max(have.tokens) } else { 0 };
    let ctx = RequestContext {
        token,
        datacenter: Some(primary.to_string()),
        query: QueryOptions { min_index, max_wait: Some(BLOCK_WAIT), consistency: Consistency::Stale },
        ..Default::default()
    };
    let call = WireCall::new(ctx, &method::AclReplicationFetch { have: have.clone(), tokens })?;
    let (_, data) =
        method::decode_reply::<method::AclReplicationFetch>(server.relay_to_dc(primary, call).await)?;
    Ok(data)
}

/// Writes what differs from `data` in one Raft entry and remembers the
/// primary's indexes.
async fn apply_round(
    server: &Server,
    data: AclReplicationData,
    have: &mut AclIndexes,
) -> Result<(), RpcError> {
    let diff = server.consensus.store.read(|st| diff_against(st, &data));
    if !diff.is_empty() {
        let (p, r, t) = (
            diff.set_policies.len() + diff.delete_policies.len(),
            diff.set_roles.len() + diff.delete_roles.len(),
            diff.set_tokens.len() + diff.delete_tokens.len(),
        );
        match server.apply(Command::AclReplicate(Box::new(diff))).await? {
            CommandResult::Error(e) => {
                return Err(RpcError::Internal(format!("failed to apply ACL updates: {e}")))
            }
            _ => {
                tracing::debug!(target: "agent.server.replication.acl", policies = p, roles = r, tokens = t, "ACL replication applied changes")
            }
        }
    }
    *have = data.indexes;
    Ok(())
}

/// Consul's report of a replication token that may read ACLs but not
/// write them, with token replication on.
const TOKENS_REDACTED: &str =
    "failed to retrieve unredacted tokens - replication token in use does not grant acl:write";

/// Why a fetch failed, in Consul's words: a replication token that may
/// read ACLs but not write them gets tokens without their secrets there,
/// which Consul refuses to copy; anything else fails the first table
/// Consul fetches, the policies.
fn fetch_error(e: &RpcError, with_tokens: bool) -> RpcError {
    match e {
        RpcError::PermissionDenied(m) if with_tokens && m.contains("'acl:write'") => {
            RpcError::Internal(TOKENS_REDACTED.into())
        }
        e => RpcError::Internal(format!("failed to retrieve remote ACL policies: {e}")),
    }
}

/// What differs between the primary's tables (those it sent) and ours.
fn diff_against(st: &State, data: &AclReplicationData) -> AclReplicationDiff {
    let mut diff = AclReplicationDiff::default();
    if let Some(remote) = &data.policies {
        let (set, delete) = diff_table(remote, st.acl.policies(), |p| &p.id, same_policy);
        (diff.set_policies, diff.delete_policies) = (set, delete);
    }
    if let Some(remote) = &data.roles {
        let (set, delete) = diff_table(remote, st.acl.roles(), |r| &r.id, same_role);
        (diff.set_roles, diff.delete_roles) = (set, delete);
    }
    if let Some(remote) = &data.tokens {
        // Only global tokens are compared: local ones are this datacenter's.
        let local_globals = st.acl.tokens().filter(|t| !t.local);
        let remote: Vec<Token> = remote.iter().filter(|t| !t.local).cloned().collect();
        let (set, delete) = diff_table(&remote, local_globals, |t| &t.accessor_id, same_token);
        (diff.set_tokens, diff.delete_tokens) = (set, delete);
    }
    diff
}

/// Objects of `remote` missing or different here, and IDs here that the
/// primary no longer has.
fn diff_table<'a, T: Clone + 'a>(
    remote: &[T],
    local: impl Iterator<Item = &'a T>,
    id: impl Fn(&T) -> &String,
    same: impl Fn(&T, &T) -> bool,
) -> (Vec<T>, Vec<String>) {
    let by_id: HashMap<&String, &T> = remote.iter().map(|x| (id(x), x)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut delete = Vec::new();
    let mut set = Vec::new();
    for l in local {
        match by_id.get(id(l)) {
            None => delete.push(id(l).clone()),
            Some(r) => {
                seen.insert(id(l).clone());
                if !same(r, l) {
                    set.push((*r).clone());
                }
            }
        }
    }
    set.extend(remote.iter().filter(|r| !seen.contains(id(r))).cloned());
    (set, delete)
}

// Raft indexes differ between datacenters; everything else must match.
fn same_policy(a: &Policy, b: &Policy) -> bool {
    Policy { create_index: 0, modify_index: 0, ..a.clone() }
        == Policy { create_index: 0, modify_index: 0, ..b.clone() }
}

fn same_role(a: &Role, b: &Role) -> bool {
    Role { create_index: 0, modify_index: 0, ..a.clone() }
        == Role { create_index: 0, modify_index: 0, ..b.clone() }
}

fn same_token(a: &Token, b: &Token) -> bool {
    Token { create_index: 0, modify_index: 0, ..a.clone() }
        == Token { create_index: 0, modify_index: 0, ..b.clone() }
}

impl Server {
    /// Serves `AclReplicationFetch` in the primary: blocks until the ACL
    /// tables move past the caller's index, then answers the tables whose
    /// index differs from what the caller has.
    pub(crate) async fn replication_fetch(
        &self,
        have: &AclIndexes,
        tokens: bool,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, AclReplicationData), RpcError> {
        if !self.acl_enabled() {
            return Err(RpcError::AclDisabled);
        }
        if self.acl_primary().is_some() {
            return Err(RpcError::BadRequest(
                "ACL replication is served by the primary datacenter only".into(),
            ));
        }
        let hub = self.consensus.store.catalog_hub().clone();
        self.blocking(
            opts,
            || Interest(hub.watch_key(TOPIC_ACL)),
            |s| {
                let index = &s.acl.index;
                let data = AclReplicationData {
                    indexes: index.clone(),
                    policies: (index.policies != have.policies).then(|| s.acl.policies().cloned().collect()),
                    roles: (index.roles != have.roles).then(|| s.acl.roles().cloned().collect()),
                    tokens: (tokens && index.tokens != have.tokens)
                        .then(|| s.acl.tokens().filter(|t| !t.local).cloned().collect()),
                };
                (s.acl.max_index(), data)
            },
        )
        .await
    }

    /// `/v1/acl/replication`: the leader's status (a follower asks it).
    pub(crate) async fn replication_status(
        &self,
        ctx: &RequestContext,
        args: &method::AclReplicationStatusGet,
    ) -> Result<AclReplicationStatus, RpcError> {
        if !self.acl_enabled() {
            return Err(RpcError::AclDisabled);
        }
        if !ctx.leader_only {
            if let Some(reply) = self.forward_to_leader(ctx, args).await? {
                return Ok(reply);
            }
        }
        Ok(self.acl_replication.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, rules: &str) -> Policy {
        Policy { id: id.into(), name: id.into(), rules: rules.into(), ..Default::default() }
    }

    #[test]
    fn diff_ignores_indexes_and_finds_changes_and_deletions() {
        let mut local = vec![policy("a", "x"), policy("b", "y"), policy("gone", "")];
        local[0].modify_index = 7;
        let remote = vec![policy("a", "x"), policy("b", "changed"), policy("new", "")];
        let (set, delete) = diff_table(&remote, local.iter(), |p| &p.id, same_policy);
        let ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["b", "new"]);
        assert_eq!(delete, ["gone"]);
    }
}
