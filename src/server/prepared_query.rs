//! Prepared queries on a server: validation and storage through Raft,
//! reads, and execution (filters, `near` sorting or shuffling, the limit,
//! then failover to other datacenters: the `NearestN` nearest by median
//! WAN RTT, then the listed `Datacenters`, each at most once).

use super::Server;
use crate::catalog::queries::{render, PreparedQuery, TEMPLATE_NAME_PREFIX_MATCH, TOPIC_QUERIES};
use crate::catalog::types::{HealthCheck, CRITICAL, PASSING, WARNING};
use crate::catalog::{Command, CommandResult, State};
use crate::rpc::message::{QueryExecution, ServiceHealth};
use crate::rpc::method::{self, WireCall};
use crate::rpc::{QueryMeta, QueryOptions, RequestContext, RpcError};
use rand::seq::SliceRandom;

/// The text Consul answers (with a 404) for an unknown query.
pub const QUERY_NOT_FOUND: &str = "Query not found";
/// How a stored token is shown to a caller who may not read ACLs.
pub const REDACTED: &str = "<hidden>";

fn not_found() -> RpcError {
    RpcError::NotFound(QUERY_NOT_FOUND.into())
}

/// Consul's checks on a query definition, before anything is stored.
pub fn validate(q: &PreparedQuery) -> Result<(), String> {
    if q.name.is_empty() && !q.is_template() && q.session.is_empty() {
        return Err("Must be bound to a session".into());
    }
    if q.token == REDACTED {
        return Err(format!(
            "Bad Token '{REDACTED}', it looks like a query definition with a redacted token was submitted"
        ));
    }
    match q.template.kind.as_str() {
        "" | TEMPLATE_NAME_PREFIX_MATCH => {}
        other => return Err(format!("Bad Template.Type '{other}'")),
    }
    if q.is_template() && !q.template.regexp.is_empty() {
        regex_lite::Regex::new(&q.template.regexp).map_err(|e| format!("Bad Regexp: {e}"))?;
    }
    if q.service.service.is_empty() {
        return Err("Must provide a Service name to query".into());
    }
    if q.service.failover.nearest_n < 0 {
        return Err(format!("Bad NearestN '{}', must be >= 0", q.service.failover.nearest_n));
    }
    if !q.dns_ttl.is_empty() {
        crate::duration::parse(&q.dns_ttl).map_err(|e| format!("Bad DNS TTL '{}': {e}", q.dns_ttl))?;
    }
    if q.is_template() {
        // A template that cannot render its own name would fail every lookup.
        render(q, &q.name).map_err(|e| format!("Failed compiling template: {e}"))?;
    }
    Ok(())
}

/// Whether a check status passes the query's health rule.
fn healthy(checks: &[HealthCheck], ignore: &[String], only_passing: bool) -> bool {
    checks.iter().filter(|c| !ignore.contains(&c.check_id)).all(|c| match c.status.as_str() {
        CRITICAL => false,
        WARNING => !only_passing,
        PASSING => true,
        _ => false,
    })
}

fn tags_ok(tags: &[String], want: &[String]) -> bool {
    want.iter().all(|w| match w.strip_prefix('!') {
        Some(neg) => !tags.iter().any(|t| t.eq_ignore_ascii_case(neg)),
        None => tags.iter().any(|t| t.eq_ignore_ascii_case(w)),
    })
}

impl Server {
    async fn propose_query(&self, cmd: Command) -> Result<(), RpcError> {
        match self.apply(cmd).await? {
            CommandResult::Unit | CommandResult::Bool(_) => Ok(()),
            CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    /// Creates (new ID) or updates a query; returns its ID.
    pub async fn query_set(&self, mut q: PreparedQuery, create: bool) -> Result<String, RpcError> {
        if create {
            q.id = uuid::Uuid::new_v4().to_string();
        } else if self.consensus.store.read(|s| s.queries.get(&q.id).is_none()) {
            return Err(RpcError::BadRequest(format!(
                "Cannot modify non-existent prepared query: '{}'",
                q.id
            )));
        }
        validate(&q).map_err(RpcError::BadRequest)?;
        let id = q.id.clone();
        self.propose_query(Command::QuerySet(Box::new(q))).await?;
        Ok(id)
    }

    pub async fn query_delete(&self, id: &str) -> Result<(), RpcError> {
        if self.consensus.store.read(|s| s.queries.get(id).is_none()) {
            return Err(RpcError::BadRequest(format!("Cannot delete non-existent prepared query: '{id}'")));
        }
        self.propose_query(Command::QueryDelete { id: id.to_string() }).await
    }

    fn queries_topic(&self) -> impl Fn() -> super::blocking::Interest + '_ {
        let hub = self.consensus.store.catalog_hub().clone();
        move || super::blocking::Interest(hub.watch_key(TOPIC_QUERIES))
    }

    pub async fn query_get(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<PreparedQuery>), RpcError> {
        let (meta, found) = self
            .blocking(opts, self.queries_topic(), |s| (s.queries.index, s.queries.get(id).cloned()))
            .await?;
        match found {
            Some(q) => Ok((meta, vec![q])),
            None => Err(not_found()),
        }
    }

    pub async fn query_list(&self, opts: &QueryOptions) -> Result<(QueryMeta, Vec<PreparedQuery>), RpcError> {
        self.blocking(opts, self.queries_topic(), |s| (s.queries.index, s.queries.list().cloned().collect()))
            .await
    }

    /// The query `key` resolves to, rendered for that name.
    fn resolve_query(state: &State, key: &str) -> Result<PreparedQuery, RpcError> {
        let q = state.queries.lookup(key).ok_or_else(not_found)?;
        render(q, key).map_err(|e| RpcError::BadRequest(format!("Failed to render template: {e}")))
    }

    pub async fn query_explain(
        &self,
        key: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, PreparedQuery), RpcError> {
        self.check_consistency(opts).await?;
        self.consensus.store.read(|s| {
            let q = Self::resolve_query(s, key)?;
            Ok((QueryMeta { index: s.queries.index.max(1), ..Default::default() }, q))
        })
    }

    /// Runs a query here, then fails over if nothing healthy answered.
    pub async fn query_execute(
        &self,
        ctx: &RequestContext,
        args: method::QueryExecute,
    ) -> Result<(QueryMeta, QueryExecution), RpcError> {
        self.check_consistency(&ctx.query).await?;
        let (query, index) =
            self.consensus.store.read(|s| Self::resolve_query(s, &args.key).map(|q| (q, s.queries.index)))?;
        let near = if args.near.is_empty() { query.service.near.clone() } else { args.near.clone() };
        let source = match near.as_str() {
            "" => None,
            "_agent" => Some(args.agent_node.clone()),
            "_ip" => self.consensus.store.read(|s| {
                s.catalog
                    .nodes()
                    .find(|n| !args.source_ip.is_empty() && n.address == args.source_ip)
                    .map(|n| n.node.clone())
            }),
            node => Some(node.to_string()),
        };
        let meta = QueryMeta { index: index.max(1), ..Default::default() };
        let mut out = self.execute_here(ctx, &query, source.as_deref(), args.limit)?;
        if !out.nodes.is_empty() {
            return Ok((meta, out));
        }
        for dc in self.failover_order(&query) {
            out.failovers += 1;
            let call = method::QueryExecuteRemote { query: query.clone(), limit: args.limit };
            let rctx = RequestContext { datacenter: Some(dc.clone()), ..ctx.clone() };
            let reply = match WireCall::new(rctx, &call) {
                Ok(wire) => {
                    method::decode_reply::<method::QueryExecuteRemote>(self.relay_to_dc(&dc, wire).await)
                }
                Err(e) => Err(e),
            };
            match reply {
                Ok(remote) if !remote.nodes.is_empty() => {
                    let failovers = out.failovers;
                    return Ok((meta, QueryExecution { failovers, ..remote }));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "agent.server.prepared_query", datacenter = %dc, error = %e, "failed querying remote datacenter")
                }
            }
        }
        Ok((meta, out))
    }

    /// Another datacenter's server runs an already rendered query for us.
    pub fn query_execute_remote(
        &self,
        ctx: &RequestContext,
        query: &PreparedQuery,
        limit: u64,
    ) -> Result<QueryExecution, RpcError> {
        self.execute_here(ctx, query, None, limit)
    }

    /// `NearestN` other datacenters by RTT, then `Datacenters` in order;
    /// each known datacenter at most once, never this one.
    fn failover_order(&self, q: &PreparedQuery) -> Vec<String> {
        let local = self.settings.datacenter.clone();
        let known = self.datacenters(); // sorted by distance, ours first
        let mut order: Vec<String> = known
            .iter()
            .filter(|d| **d != local)
            .take(q.service.failover.nearest_n.max(0) as usize)
            .cloned()
            .collect();
        for dc in &q.service.failover.datacenters {
            if *dc != local && !order.contains(dc) && known.contains(dc) {
                order.push(dc.clone());
            }
        }
        order
    }

    /// Runs a rendered query against this datacenter's catalog.
    fn execute_here(
        &self,
        ctx: &RequestContext,
        q: &PreparedQuery,
        source: Option<&str>,
        limit: u64,
    ) -> Result<QueryExecution, RpcError> {
        let svc = &q.service;
        // The query's own token decides what it may see; without one, the caller's.
        let token = if q.token.is_empty() { ctx.token.clone() } else { Some(q.token.clone()) };
        let (mut nodes, coords) = self.consensus.store.read(|s| -> Result<_, RpcError> {
            let id = self.identity(s, token.as_deref())?;
            let mut out = Vec::new();
            for (n, inst) in s.catalog.service_instances(&svc.service) {
                if !tags_ok(&inst.tags, &svc.tags)
                    || !svc.node_meta.iter().all(|(k, v)| n.meta.get(k) == Some(v))
                    || !svc.service_meta.iter().all(|(k, v)| inst.meta.get(k) == Some(v))
                    || !id.authz.service_read(&inst.service)
                    || !id.authz.node_read(&n.node)
                {
                    continue;
                }
                let checks: Vec<HealthCheck> =
                    s.catalog.instance_checks(&n.node, &inst.id).into_iter().cloned().collect();
                if !healthy(&checks, &svc.ignore_check_ids, svc.only_passing) {
                    continue;
                }
                out.push(ServiceHealth { node: n.clone(), service: inst.clone(), checks });
            }
            let coords = source.map(|_| {
                s.coordinates
                    .list()
                    .into_iter()
                    .map(|e| (e.node, e.coord))
                    .collect::<std::collections::HashMap<_, _>>()
            });
            Ok((out, coords))
        })?;
        match (source, coords) {
            (Some(src), Some(coords)) if coords.contains_key(src) => {
                let from = &coords[src];
                let dist = |h: &ServiceHealth| {
                    coords.get(&h.node.node).and_then(|c| from.distance_secs(c)).unwrap_or(f64::INFINITY)
                };
                nodes.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
            }
            // No usable source: spread the load (Consul shuffles).
            _ => nodes.shuffle(&mut rand::rng()),
        }
        if limit > 0 {
            nodes.truncate(limit as usize);
        }
        Ok(QueryExecution {
            service: svc.service.clone(),
            nodes,
            dns_ttl: q.dns_ttl.clone(),
            datacenter: self.settings.datacenter.clone(),
            failovers: 0,
        })
    }
}
