//! Anti-entropy: keeps the catalog's view of this node equal to what the
//! agent owns. On any local change it pushes what is out of sync (a partial
//! sync); periodically it reads the catalog's entries for this node and
//! repairs drift both ways (a full sync): its own services and checks that
//! went missing are registered again, strays on this node are removed.

use super::Agent;
use crate::catalog::types::{Deregistration, Registration};
use crate::rpc::{method, QueryOptions, RequestContext, RpcError};
use rand::Rng;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Runs anti-entropy until `shutdown`.
pub async fn run(agent: Agent, interval: Duration, shutdown: CancellationToken) {
    let local = agent.local().clone();
    let trigger = local.trigger();
    let mut next_full = Instant::now();
    let mut backoff = Duration::from_millis(250);
    // Whether the catalog's record of this node matches ours; until it does,
    // every push carries the node's full record (Consul's nodeInfoInSync).
    let mut node_in_sync = false;
    // ACL refusals already reported: a retry that is refused the same way
    // again stays at debug (one line per distinct denied action).
    let mut denied_seen = std::collections::HashSet::new();
    loop {
        let full = Instant::now() >= next_full;
        let result = if full {
            full_sync(&agent, &mut node_in_sync).await
        } else {
            push_changes(&agent, &mut node_in_sync).await
        };
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(250);
                if full {
                    // Stagger full syncs so agents don't sync in lock-step.
                    let jitter = rand::rng().random_range(0..=interval.as_millis().max(1) as u64 / 4);
                    next_full = Instant::now() + interval + Duration::from_millis(jitter);
                    tracing::debug!(target: "agent", "synced node info");
                }
            }
            Err(e) => {
                // Keep quiet about the expected case of no leader yet.
                if let RpcError::PermissionDenied(why) = &e {
                    if denied_seen.len() < 64 && denied_seen.insert(why.clone()) {
                        tracing::warn!(
                            target: "agent",
                            error = %why,
                            fix = "give this agent a token with node:write on its node and service:write on its services: consul acl set-agent-token agent <secret> (or acl.tokens.agent)",
                            "anti-entropy sync refused by ACLs"
                        );
                    } else {
                        tracing::debug!(target: "agent", error = %why, "anti-entropy sync refused by ACLs");
                    }
                } else if matches!(e, RpcError::NoLeader) {
                    tracing::debug!(target: "agent", error = %e, "failed to sync remote state");
                } else {
                    tracing::warn!(target: "agent", error = %e, "failed to sync remote state");
                }
                next_full = Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        }
        let deferred = local.next_deferred();
        let wake_at = deferred.map_or(next_full, |d| d.min(next_full));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = trigger.notified() => {}
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
}

/// Reads the catalog's view of this node, marks differences, pushes them.
async fn full_sync(agent: &Agent, node_in_sync: &mut bool) -> Result<(), RpcError> {
    let node = agent.node_name();
    let opts = QueryOptions::default();
    let (_, remote) = agent
        .call(
            RequestContext { query: opts, ..agent.own_context() },
            method::CatalogNode { name: node.clone() },
        )
        .await?;
    let (_, remote_checks) = agent
        .call(RequestContext { query: opts, ..agent.own_context() }, method::HealthNode { name: node })
        .await?;
    let want_node = agent.node_record();
    *node_in_sync = remote.as_ref().is_some_and(|(n, _)| n.same_content(&want_node));
    let remote_services = remote.map(|(_, s)| s).unwrap_or_default();
    agent.local().compare(&remote_services, &remote_checks, Instant::now());
    push_changes(agent, node_in_sync).await
}

/// The token a service's sync goes with, as Consul picks it: the token
/// given with its registration (the definition's `token`, else the
/// registering request's), else for services from config files
/// `config_file_service_registration`, else the agent's token.
fn service_context(agent: &Agent, service_id: &str) -> crate::rpc::RequestContext {
    let token = match agent.local().service(service_id) {
        Some(s) if !s.def.token.is_empty() => Some(s.def.token.clone()),
        Some(s) if s.source == crate::definition::Source::Local => {
            agent.tokens().config_file_registration_token()
        }
        _ => agent.tokens().agent_token(),
    };
    crate::rpc::RequestContext { token, ..Default::default() }
}

/// A check goes with its service's token, a node check with the agent's.
fn check_context(agent: &Agent, check: &crate::catalog::types::HealthCheck) -> crate::rpc::RequestContext {
    if check.service_id.is_empty() {
        agent.own_context()
    } else {
        service_context(agent, &check.service_id)
    }
}

/// Pushes deletions and out-of-sync entries.
async fn push_changes(agent: &Agent, node_in_sync: &mut bool) -> Result<(), RpcError> {
    let local = agent.local();
    let node = agent.node_name();
    if !*node_in_sync {
        let registration = Registration { node: agent.node_record(), ..Default::default() };
        agent.call(agent.own_context(), method::CatalogRegister { registration }).await?;
        *node_in_sync = true;
        tracing::info!(target: "agent", "Synced node info");
    }
    let pending = local.pending(Instant::now());
    for id in pending.deleted_services {
        let ctx = match local.deleted_service_token(&id) {
            Some(token) => RequestContext { token: Some(token), ..Default::default() },
            None => agent.own_context(),
        };
        agent
            .call(
                ctx,
                method::CatalogDeregister {
                    deregistration: Deregistration {
                        node: node.clone(),
                        service_id: Some(id.clone()),
                        check_id: None,
                    },
                },
            )
            .await?;
        local.service_deleted(&id);
        tracing::info!(target: "agent", service = %id, "Deregistered service");
    }
    for id in pending.deleted_checks {
        agent
            .call(
                agent.own_context(),
                method::CatalogDeregister {
                    deregistration: Deregistration {
                        node: node.clone(),
                        service_id: None,
                        check_id: Some(id.clone()),
                    },
                },
            )
            .await?;
        local.check_deleted(&id);
        tracing::info!(target: "agent", check = %id, "Deregistered check");
    }
    let node_record = agent.node_record();
    for svc in &pending.services {
        // A service goes with all of its checks, as Consul syncs it.
        let checks: Vec<_> = local.service_checks(&svc.id).into_iter().map(|c| c.check).collect();
        let reg = Registration {
            node: node_record.clone(),
            service: Some(svc.clone()),
            checks: checks.clone(),
            skip_node_update: true,
            preserve_node_extras: false,
        };
        let ctx = service_context(agent, &svc.id);
        agent.call(ctx, method::CatalogRegister { registration: reg }).await?;
        local.service_synced(&svc.id, svc);
        for c in &checks {
            local.check_synced(&c.check_id, c);
        }
        tracing::info!(target: "agent", service = %svc.id, "Synced service");
    }
    for c in pending.checks {
        if local.check(&c.check_id).is_some_and(|lc| lc.in_sync) {
            continue; // synced with its service above
        }
        if !c.service_id.is_empty() && local.service(&c.service_id).is_none() {
            continue; // its service is gone; the check went with it
        }
        let reg = Registration {
            node: node_record.clone(),
            service: None,
            checks: vec![c.clone()],
            skip_node_update: true,
            preserve_node_extras: false,
        };
        let ctx = check_context(agent, &c);
        agent.call(ctx, method::CatalogRegister { registration: reg }).await?;
        local.check_synced(&c.check_id, &c);
        tracing::info!(target: "agent", check = %c.check_id, "Synced check");
    }
    Ok(())
}
