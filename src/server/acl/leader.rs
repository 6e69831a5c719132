//! The leader's ACL duties: the built-in `global-management` policy, the
//! anonymous token and the configured initial management token exist
//! (created once, when a server first leads with ACLs on); expired tokens
//! are deleted.

use super::super::Server;
use crate::acl::model::{self, Grants, Link, Policy, Token};
use crate::catalog::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the leader looks for expired tokens. Expired tokens are
/// refused from the moment they expire; the reap only frees their space.
const REAP_INTERVAL: Duration = Duration::from_secs(10);
/// Pause before retrying a failed setup (e.g. the new leader lost its
/// quorum at once).
const RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown` (only on servers with ACLs enabled).
pub async fn run(server: Arc<Server>, shutdown: CancellationToken) {
    if !server.acl_enabled() {
        return;
    }
    let mut status = server.consensus.watch_status();
    let mut established = false;
    let mut pause_logged: Option<bool> = None;
    loop {
        let leader = server.consensus.is_leader();
        if !leader {
            established = false;
        } else {
            // Checked on every pass, not once: a snapshot restore can take
            // the built-ins away.
            match establish(&server, !established).await {
                Ok(()) => {
                    if !established {
                        tracing::info!(target: "agent.server.acl", "ACL system ready");
                    }
                    established = true;
                }
                Err(e) => {
                    if established || pause_logged.replace(true).is_none() {
                        tracing::warn!(target: "agent.server.acl", error = %e, "failed to set up ACLs as leader; retrying");
                    }
                    established = false;
                }
            }
            if established {
                if let Err(e) = reap_expired(&server).await {
                    tracing::debug!(target: "agent.server.acl", error = %e, "expired-token reap failed");
                }
            }
        }
        let pause = if leader && !established { RETRY } else { REAP_INTERVAL };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = status.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// What `establish` must write, from the current state.
/// `with_initial`: also the configured initial management token (only when
/// leadership is new, as Consul: deleting it later is not undone at once).
fn missing_builtins(server: &Server, with_initial: bool) -> Vec<Command> {
    let initial = server.settings.acl.initial_management.clone().filter(|_| with_initial);
    server.consensus.store.read(|s| {
        let mut out = Vec::new();
        if s.acl.server_secret.is_empty() {
            out.push(Command::AclServerSecret { secret: uuid::Uuid::new_v4().to_string() });
        }
        if s.acl.policy(model::GLOBAL_MANAGEMENT_ID).is_none() {
            out.push(Command::AclPolicySet(Box::new(Policy {
                id: model::GLOBAL_MANAGEMENT_ID.into(),
                name: model::GLOBAL_MANAGEMENT_NAME.into(),
                description: "Builtin Policy that grants unlimited access".into(),
                rules: String::new(),
                ..Default::default()
            })));
        }
        if s.acl.token(model::ANONYMOUS_ACCESSOR).is_none() {
            out.push(Command::AclTokenSet(Box::new(super::crud::with_token_hash(Token {
                accessor_id: model::ANONYMOUS_ACCESSOR.into(),
                secret_id: model::ANONYMOUS_SECRET.into(),
                description: "Anonymous Token".into(),
                create_time_ns: now_ns(),
                ..Default::default()
            }))));
        }
        if let Some(secret) = initial {
            if s.acl.token_by_secret(&secret).is_none() {
                let accessor = uuid::Uuid::new_v4().to_string();
                let token = Box::new(super::crud::with_token_hash(Token {
                    accessor_id: accessor,
                    secret_id: secret,
                    description: "Initial Management Token".into(),
                    grants: Grants {
                        policies: vec![Link { id: model::GLOBAL_MANAGEMENT_ID.into(), name: String::new() }],
                        ..Default::default()
                    },
                    create_time_ns: now_ns(),
                    ..Default::default()
                }));
                // As in Consul, creating it is the cluster's bootstrap (a
                // later /v1/acl/bootstrap is refused) unless one happened.
                out.push(if s.acl.bootstrap_index == 0 {
                    Command::AclBootstrap { token, reset_index: 0 }
                } else {
                    Command::AclTokenSet(token)
                });
            }
        }
        out
    })
}

async fn establish(server: &Server, with_initial: bool) -> Result<(), crate::rpc::RpcError> {
    for cmd in missing_builtins(server, with_initial) {
        match server.apply(cmd).await? {
            crate::catalog::CommandResult::Error(e) => {
                return Err(crate::rpc::RpcError::Internal(e));
            }
            _ => {}
        }
    }
    tracing::debug!(target: "agent.server.acl", "ACL built-ins in place");
    Ok(())
}

async fn reap_expired(server: &Server) -> Result<(), crate::rpc::RpcError> {
    let now = super::now_ms();
    let expired: Vec<String> = server
        .consensus
        .store
        .read(|s| s.acl.tokens().filter(|t| t.expired_at(now)).map(|t| t.accessor_id.clone()).collect());
    for accessor in expired {
        server.apply(Command::AclTokenDelete { accessor }).await?;
    }
    Ok(())
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
