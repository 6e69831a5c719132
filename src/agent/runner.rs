//! Ties the agent's check definitions to the check runners (`checks`):
//! turns a `CheckDef` into a `CheckSpec`, and answers alias checks from
//! the agent's local state (this node) or the catalog (another node).

use super::Agent;
use crate::checks::{self, AliasHealth, AliasSource, AliasedCheck, BoxFut, CheckKind, CheckSpec, Status};
use crate::config::RuntimeConfig;
use crate::definition::CheckDef;
use crate::rpc::{method, Consistency, QueryOptions, RequestContext};
use std::sync::Weak;
use std::time::Duration;

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The runner spec of a check definition; `None` for checks nothing runs
/// (maintenance flags).
pub fn spec_for(def: &CheckDef, cfg: &RuntimeConfig, initial: &str) -> Option<CheckSpec> {
    let kind = if !def.args.is_empty() {
        CheckKind::Script { args: def.args.clone() }
    } else if !def.script.is_empty() {
        CheckKind::Shell { command: def.script.clone(), shell: opt(&def.shell) }
    } else if !def.http.is_empty() {
        CheckKind::Http {
            url: def.http.clone(),
            method: def.method.clone(),
            headers: def.header.clone(),
            body: opt(&def.body),
            tls_skip_verify: def.tls_skip_verify,
            tls_server_name: opt(&def.tls_server_name),
            disable_redirects: def.disable_redirects,
        }
    } else if !def.tcp.is_empty() {
        CheckKind::Tcp {
            address: def.tcp.clone(),
            use_tls: def.tcp_use_tls,
            tls_skip_verify: def.tls_skip_verify,
            tls_server_name: opt(&def.tls_server_name),
        }
    } else if !def.udp.is_empty() {
        CheckKind::Udp { address: def.udp.clone() }
    } else if !def.grpc.is_empty() {
        CheckKind::Grpc {
            target: def.grpc.clone(),
            use_tls: def.grpc_use_tls,
            tls_skip_verify: def.tls_skip_verify,
            tls_server_name: opt(&def.tls_server_name),
        }
    } else if let Some(ttl) = def.ttl {
        CheckKind::Ttl { ttl }
    } else if !def.alias_service.is_empty() || !def.alias_node.is_empty() {
        CheckKind::Alias { node: opt(&def.alias_node), service_id: opt(&def.alias_service) }
    } else {
        return None;
    };
    let mut interval = def.interval.unwrap_or_default();
    if kind.is_periodic() && interval < checks::MIN_INTERVAL {
        tracing::warn!(target: "agent", check = %def.id, "check interval below the 1s minimum; using 1s");
        interval = checks::MIN_INTERVAL;
    }
    let mut max_out = cfg.check_output_max_size.max(1);
    if def.output_max_size > 0 {
        max_out = max_out.min(def.output_max_size);
    }
    let mut spec = CheckSpec::new(def.id.clone(), kind);
    spec.interval = interval;
    spec.timeout = def.timeout.unwrap_or_default();
    spec.initial = Status::parse(initial).unwrap_or(Status::Critical);
    spec.success_before_passing = def.success_before_passing;
    spec.failures_before_warning = def.failures_before_warning;
    spec.failures_before_critical = def.failures_before_critical;
    spec.output_max_size = max_out;
    Some(spec)
}

/// Alias checks' view of health, from the agent.
pub struct AgentAlias {
    pub(super) agent: Weak<super::Inner>,
}

impl AliasSource for AgentAlias {
    fn status<'a>(
        &'a self,
        node: Option<&'a str>,
        service_id: Option<&'a str>,
        min_index: u64,
        wait: Duration,
    ) -> BoxFut<'a, Result<AliasHealth, String>> {
        Box::pin(async move {
            let agent = Agent { inner: self.agent.upgrade().ok_or("agent is shutting down")? };
            match node {
                None => local_status(&agent, service_id, min_index, wait).await,
                Some(node) => remote_status(&agent, node, service_id, min_index, wait).await,
            }
        })
    }
}

async fn local_status(
    agent: &Agent,
    service_id: Option<&str>,
    min_index: u64,
    wait: Duration,
) -> Result<AliasHealth, String> {
    let mut version = agent.local().subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let index = *version.borrow_and_update();
        if index > min_index || tokio::time::Instant::now() >= deadline {
            let node = agent.node_name();
            let checks = agent.local().checks();
            let list = checks.iter().map(|c| AliasedCheck {
                node: &node,
                service_id: &c.check.service_id,
                name: &c.check.name,
                status: Status::parse(&c.check.status).unwrap_or(Status::Critical),
                output: &c.check.output,
            });
            let exists = || service_id.is_none_or(|id| agent.local().service(id).is_some());
            let (status, output) = checks::alias_health(None, service_id, list, exists);
            return Ok(AliasHealth { index: index.max(1), status, output });
        }
        let _ = tokio::time::timeout_at(deadline, version.changed()).await;
    }
}

async fn remote_status(
    agent: &Agent,
    node: &str,
    service_id: Option<&str>,
    min_index: u64,
    wait: Duration,
) -> Result<AliasHealth, String> {
    let opts = QueryOptions { min_index, max_wait: Some(wait), consistency: Consistency::Stale };
    let (meta, checks) = agent
        .call(RequestContext::query(opts), method::HealthNode { name: node.to_string() })
        .await
        .map_err(|e| e.to_string())?;
    let exists = if service_id.is_some() {
        let (_, found) = agent
            .call(
                RequestContext::query(QueryOptions { consistency: Consistency::Stale, ..Default::default() }),
                method::CatalogNode { name: node.to_string() },
            )
            .await
            .map_err(|e| e.to_string())?;
        found.is_some_and(|(_, services)| services.iter().any(|s| Some(s.id.as_str()) == service_id))
    } else {
        true
    };
    let list = checks.iter().map(|c| AliasedCheck {
        node: &c.node,
        service_id: &c.service_id,
        name: &c.name,
        status: Status::parse(&c.status).unwrap_or(Status::Critical),
        output: &c.output,
    });
    let (status, output) = checks::alias_health(Some(node), service_id, list, || exists);
    Ok(AliasHealth { index: meta.index, status, output })
}
