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
    // When the next pass is due while leading. A pass on every wake of the
    // status watch would re-read the built-ins and scan every token on
    // each term or configuration change too, so a change only counts when
    // it makes this server leader (or not).
    let mut next_pass = tokio::time::Instant::now();
    loop {
        let leader = server.consensus.is_leader();
        if !leader {
            established = false;
        } else if !established || tokio::time::Instant::now() >= next_pass {
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
            next_pass = tokio::time::Instant::now() + if established { REAP_INTERVAL } else { RETRY };
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = status.changed() => if r.is_err() { return },
            _ = tokio::time::sleep_until(next_pass), if leader => {}
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
        // A secondary datacenter gets the built-ins (and its tokens) from
        // the primary: by replication, or by asking it.
        if server.acl_primary().is_some() {
            return out;
        }
        if s.acl.policy(model::GLOBAL_MANAGEMENT_ID).is_none() {
            out.push(Command::AclPolicySet(Box::new(global_management())));
        }
        if s.acl.token(model::ANONYMOUS_ACCESSOR).is_none() {
            out.push(Command::AclTokenSet(Box::new(super::crud::with_token_hash(Token {
                accessor_id: model::ANONYMOUS_ACCESSOR.into(),
                secret_id: model::ANONYMOUS_SECRET.into(),
                description: "Anonymous Token".into(),
                create_time_ns: super::now_ns(),
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
                    create_time_ns: super::now_ns(),
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
    let missing = missing_builtins(server, with_initial);
    if missing.is_empty() {
        return Ok(());
    }
    for cmd in missing {
        if let crate::catalog::CommandResult::Error(e) = server.apply(cmd).await? {
            return Err(crate::rpc::RpcError::Internal(e));
        }
    }
    tracing::debug!(target: "agent.server.acl", "ACL built-ins written");
    Ok(())
}

/// The built-in policy. Its rules are shown to readers (as Consul shows
/// them) but never evaluated: the resolver grants everything to a link to
/// this ID (`resolve_token`).
fn global_management() -> Policy {
    let mut p = Policy {
        id: model::GLOBAL_MANAGEMENT_ID.into(),
        name: model::GLOBAL_MANAGEMENT_NAME.into(),
        description: "Builtin Policy that grants unlimited access".into(),
        rules: GLOBAL_MANAGEMENT_RULES.into(),
        ..Default::default()
    };
    p.hash = super::crud::policy_hash(&p);
    p
}

/// Write on every resource, in the rule language.
const GLOBAL_MANAGEMENT_RULES: &str = r#"
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"#;

async fn reap_expired(server: &Server) -> Result<(), crate::rpc::RpcError> {
    let now = super::now_ms();
    let secondary = server.acl_primary().is_some();
    let expired: Vec<String> = server.consensus.store.read(|s| {
        s.acl
            .tokens()
            // A secondary reaps only its local tokens: global ones go
            // when replication copies their deletion from the primary.
            .filter(|t| t.expired_at(now) && (t.local || !secondary))
            .map(|t| t.accessor_id.clone())
            .collect()
    });
    for accessor in expired {
        server.apply(Command::AclTokenDelete { accessor }).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_management_rules_parse_and_have_a_hash() {
        let p = global_management();
        assert!(crate::acl::rules::parse(&p.rules).is_ok());
        assert_eq!(p.hash.len(), 32);
    }
}
