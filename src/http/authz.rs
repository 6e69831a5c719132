//! ACLs for what an agent serves from its own state (`/v1/agent/*`, user
//! events, the keyring): whatever reaches the servers is decided by the
//! server's hook, but these never do. One middleware resolves the caller
//! (through `Agent::identity`), refuses by path what needs only a fixed
//! permission, and leaves the caller's identity in the request for the
//! handlers that filter lists or check a body.

use super::error::HttpError;
use super::query::{token, Params};
use super::Ctx;
use crate::acl::Identity;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The caller of an agent-local endpoint, as the middleware resolved it,
/// and whether the request carried a token (only then may a filtered list
/// say so: an anonymous caller learns nothing from the header).
#[derive(Clone)]
pub struct Caller(pub Arc<Identity>, pub bool);

impl Caller {
    /// Sets `X-Consul-Results-Filtered-By-ACLs` when ACLs hid something
    /// from a caller who sent a token (Consul does this by hand for its
    /// agent-local lists too; server replies carry it in their meta).
    pub fn mark_filtered(&self, resp: &mut Response, removed: bool) {
        if removed && self.1 {
            resp.headers_mut().insert("X-Consul-Results-Filtered-By-ACLs", HeaderValue::from_static("true"));
        }
    }

    pub fn require(&self, allowed: bool, permission: &str, on: Option<&str>) -> Result<(), HttpError> {
        if allowed {
            Ok(())
        } else {
            Err(HttpError::new(StatusCode::FORBIDDEN, self.0.denied_text(permission, on)))
        }
    }
}

/// Paths answered from this agent's own state.
fn is_agent_local(path: &str) -> bool {
    path.starts_with("/v1/agent/")
        || path.starts_with("/v1/event/")
        || path == "/v1/operator/keyring"
        || path.starts_with("/v1/acl/templated-polic")
}

pub async fn layer(State(ctx): State<Ctx>, mut req: Request, next: Next) -> Response {
    let cfg = ctx.agent.config();
    let policy = if cfg.acl.enabled { cfg.acl.default_policy.as_str() } else { "allow" };
    let path = req.uri().path().to_string();
    if is_agent_local(&path) {
        let params = Params::parse(req.uri().query());
        let secret = token(&params, req.headers());
        // Boxed: it ends before `next` runs, and unboxed it would size
        // every request's future, parked blocking queries included.
        let id = match Box::pin(ctx.agent.identity(secret.as_deref())).await {
            Ok(id) => id,
            Err(e) => return with_policy(HttpError::from(e).into_response(), policy),
        };
        let caller = Caller(id, secret.as_deref().is_some_and(|t| !t.is_empty()));
        if let Err(e) = fixed_permission(&ctx, &caller, req.method(), &path) {
            return with_policy(e.into_response(), policy);
        }
        req.extensions_mut().insert(caller);
    }
    with_policy(next.run(req).await, policy)
}

fn with_policy(mut resp: Response, policy: &'static str) -> Response {
    resp.headers_mut().insert("X-Consul-Default-ACL-Policy", HeaderValue::from_static(policy));
    resp
}

/// The permission an agent-local path needs before its handler runs, where
/// the path alone (and this agent's state) says which.
fn fixed_permission(ctx: &Ctx, c: &Caller, method: &Method, path: &str) -> Result<(), HttpError> {
    let a = &c.0.authz;
    let node = ctx.agent.node_name();
    let local = ctx.agent.local();
    let service_name = |id: &str| local.service(id).map(|s| s.def.name.clone());
    let rest = |prefix: &str| path.strip_prefix(prefix).map(str::to_string);
    let write = *method != Method::GET && *method != Method::HEAD;

    if path == "/v1/operator/keyring" {
        return if write {
            c.require(a.keyring_write(), "keyring:write", None)
        } else {
            c.require(a.keyring_read(), "keyring:read", None)
        };
    }
    if path.starts_with("/v1/acl/templated-polic") {
        return c.require(a.acl_read(), "acl:read", None);
    }
    if let Some(name) = rest("/v1/event/fire/") {
        return c.require(a.event_write(&name), "event:write", Some(&name));
    }
    match path {
        "/v1/agent/self" | "/v1/agent/metrics" | "/v1/agent/monitor" => {
            return c.require(a.agent_read(&node), "agent:read", Some(&node))
        }
        // Consul's HostInfo endpoint is an operator view of the machine.
        "/v1/agent/host" => return c.require(a.operator_read(), "operator:read", None),
        "/v1/agent/leave" | "/v1/agent/reload" => {
            return c.require(a.agent_write(&node), "agent:write", Some(&node))
        }
        "/v1/agent/maintenance" => return c.require(a.node_write(&node), "node:write", Some(&node)),
        _ => {}
    }
    if path.starts_with("/v1/agent/join/") {
        return c.require(a.agent_write(&node), "agent:write", Some(&node));
    }
    if path.starts_with("/v1/agent/force-leave/") {
        return c.require(a.operator_write(), "operator:write", None);
    }
    if path.starts_with("/v1/agent/token/") {
        return c.require(a.acl_write(), "acl:write", None);
    }
    for prefix in ["/v1/agent/service/deregister/", "/v1/agent/service/maintenance/"] {
        if let Some(id) = rest(prefix) {
            return match service_name(&id) {
                Some(name) => c.require(a.service_write(&name), "service:write", Some(&name)),
                // Unknown: the handler answers 404, as without ACLs.
                None => Ok(()),
            };
        }
    }
    for prefix in [
        "/v1/agent/check/pass/",
        "/v1/agent/check/warn/",
        "/v1/agent/check/fail/",
        "/v1/agent/check/update/",
        "/v1/agent/check/deregister/",
    ] {
        if let Some(id) = rest(prefix) {
            let Some(check) = local.check(&id) else { return Ok(()) };
            return match service_name(&check.def.service_id) {
                Some(name) if !check.def.service_id.is_empty() => {
                    c.require(a.service_write(&name), "service:write", Some(&name))
                }
                _ => c.require(a.node_write(&node), "node:write", Some(&node)),
            };
        }
    }
    if let Some(name) = rest("/v1/agent/health/service/name/") {
        return c.require(a.service_read(&name), "service:read", Some(&name));
    }
    for prefix in ["/v1/agent/health/service/id/", "/v1/agent/service/"] {
        if let Some(id) = rest(prefix) {
            if id == "register" {
                break;
            }
            if let Some(name) = service_name(&id) {
                return c.require(a.service_read(&name), "service:read", Some(&name));
            }
            return Ok(());
        }
    }
    Ok(())
}

/// The caller the middleware left in the request (a missing one is a
/// routing bug: refuse rather than serve unchecked).
pub fn caller(ext: Option<axum::Extension<Caller>>) -> Result<Caller, HttpError> {
    ext.map(|e| e.0)
        .ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "request was not authorised"))
}
