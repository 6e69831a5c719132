//! The HTTP API: Consul's `/v1/...` paths, JSON shapes, headers and status
//! codes, served with axum.
//!
//! Owns: routing (`routes` below, one table like Consul's
//! `http_register.go`), request parsing (`query`, `decode`), response
//! shapes (`response`) and the error mapping (`error`). Holds no state of
//! its own: every handler calls the `agent::Agent` handle.

pub mod acl;
pub mod agent;
pub mod authz;
pub mod body;
pub mod catalog;
pub mod config;
pub mod coordinate;
pub mod datacenter;
pub mod decode;
pub mod error;
pub mod event;
pub mod health;
pub mod input;
pub mod intentions;
pub mod kv;
pub mod listener;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod prepared_query;
pub mod query;
pub mod response;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;
pub mod ui;
pub mod views;

use crate::agent::Agent;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};
use axum::Router;
use error::HttpError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every handler.
#[derive(Clone)]
pub struct Ctx {
    pub agent: Agent,
}

/// Consul's answer to a method an endpoint does not take.
pub fn method_not_allowed(method: &Method, allowed: &[&str]) -> HttpError {
    let mut list: Vec<&str> = allowed.to_vec();
    list.push("OPTIONS");
    let mut e = HttpError::new(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed"));
    e.allow = Some(list.join(","));
    e
}

/// Endpoint families Consul has that this agent does not serve yet: they
/// answer 501 with a clear message instead of a misleading 404.
const NOT_YET: &[&str] = &[
    "/v1/agent/",
    "/v1/catalog/",
    "/v1/operator/",
    "/v1/connect/",
    "/v1/internal/",
    "/v1/namespace",
    "/v1/partition",
    "/v1/peering",
    "/v1/exported-services",
    "/v1/imported-services",
];

/// The route table: every `/v1` path this agent serves, `/`, and the web
/// UI under its content path when it is on.
pub fn router(ctx: Ctx) -> Router {
    let settings = &ctx.agent.config().ui;
    let ui = settings.served().then(|| Arc::new(ui::UiServer::new(settings)));
    let mut routes = Router::new();
    if let Some(ui) = &ui {
        let content_path = ui.content_path().to_string();
        let serve = {
            let ui = ui.clone();
            move |req: Request| async move { ui.serve(req.uri().path(), req.headers()).await }
        };
        routes = routes
            .route(&content_path, get(serve.clone()))
            .route(&format!("{content_path}{{*rest}}"), get(serve));
        // As Go's ServeMux does for a subtree: `/ui` is redirected to `/ui/`.
        let bare = content_path.trim_end_matches('/').to_string();
        routes = routes.route(&bare, get(move || async move { ui::redirect(&content_path) }));
    }
    routes
        .route("/", get(move || async move { ui::root(ui.as_deref()) }))
        .route("/v1/kv", any(kv::handle))
        .route("/v1/kv/", any(kv::handle))
        .route("/v1/kv/{*key}", any(kv::handle))
        .route("/v1/txn", any(txn::handle))
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route("/v1/agent/metrics", get(metrics::handle))
        .route("/v1/agent/monitor", get(monitor::handle))
        .route("/v1/agent/self", get(agent::self_))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/join/{addr}", put(agent::join))
        .route("/v1/agent/leave", put(agent::leave))
        .route("/v1/agent/reload", put(agent::reload))
        .route("/v1/agent/token/{kind}", put(agent::set_token))
        .route("/v1/agent/force-leave/{node}", put(agent::force_leave))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/register", put(agent::service_register))
        .route("/v1/agent/service/deregister/{id}", put(agent::service_deregister))
        .route("/v1/agent/service/maintenance/{id}", put(agent::service_maintenance))
        .route("/v1/agent/service/{id}", get(agent::service))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/register", put(agent::check_register))
        .route("/v1/agent/check/deregister/{id}", put(agent::check_deregister))
        .route("/v1/agent/check/pass/{id}", put(agent::check_pass))
        .route("/v1/agent/check/warn/{id}", put(agent::check_warn))
        .route("/v1/agent/check/fail/{id}", put(agent::check_fail))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/v1/agent/maintenance", put(agent::maintenance))
        .route("/v1/agent/health/service/id/{id}", get(agent::health_by_id))
        .route("/v1/agent/health/service/name/{name}", get(agent::health_by_name))
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/coordinate/datacenters", get(coordinate::datacenters))
        .route("/v1/coordinate/nodes", get(coordinate::nodes))
        .route("/v1/coordinate/node/{node}", get(coordinate::node))
        .route("/v1/coordinate/update", put(coordinate::update))
        .route("/v1/query", any(prepared_query::general))
        .route("/v1/query/{*rest}", any(prepared_query::specific))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/node/{name}", get(catalog::node))
        .route("/v1/catalog/node-services/{name}", get(catalog::node_services))
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/destroy/", put(session::destroy_missing))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/node/{node}", get(session::node))
        .route("/v1/session/list", get(session::list))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/health/service/{name}", get(health::service))
        .route("/v1/health/node/{name}", get(health::node))
        .route("/v1/health/checks/{name}", get(health::checks))
        .route("/v1/health/state/{state}", get(health::state))
        .route("/v1/operator/raft/configuration", get(operator::raft_configuration))
        .route("/v1/operator/raft/peer", delete(operator::raft_peer))
        .route(
            "/v1/operator/autopilot/configuration",
            get(operator::autopilot_configuration).put(operator::autopilot_configuration),
        )
        .route("/v1/operator/autopilot/health", get(operator::autopilot_health))
        .route("/v1/operator/autopilot/state", get(operator::autopilot_state))
        .route("/v1/operator/keyring", any(operator::keyring))
        .route("/v1/snapshot", get(snapshot::save).put(snapshot::restore))
        .route("/v1/event/fire/", put(event::fire_missing_name))
        .route("/v1/event/fire/{*name}", put(event::fire))
        .route("/v1/event/list", get(event::list))
        .route("/v1/acl/bootstrap", put(acl::bootstrap))
        .route("/v1/acl/token", put(acl::token_create))
        .route("/v1/acl/token/self", get(acl::token_self))
        .route("/v1/acl/token/{*rest}", any(acl::token_item))
        .route("/v1/acl/tokens", get(acl::token_list))
        .route("/v1/acl/policy", put(acl::policy_create))
        .route("/v1/acl/policy/name/{name}", get(acl::policy_by_name))
        .route("/v1/acl/policy/{id}", any(acl::policy_item))
        .route("/v1/acl/policies", get(acl::policy_list))
        .route("/v1/acl/role", put(acl::role_create))
        .route("/v1/acl/role/name/{name}", get(acl::role_by_name))
        .route("/v1/acl/role/{id}", any(acl::role_item))
        .route("/v1/acl/roles", get(acl::role_list))
        .route("/v1/acl/login", post(acl::login))
        .route("/v1/acl/logout", post(acl::logout))
        .route("/v1/acl/templated-policies", get(acl::templated_policy_list))
        .route("/v1/acl/templated-policy/name/{*name}", get(acl::templated_policy_read))
        .route("/v1/acl/templated-policy/preview/{*name}", any(acl::templated_policy_preview))
        .route("/v1/acl/{*rest}", any(acl::other))
        // Config entries, discovery chains and intentions.
        .route("/v1/config", any(config::apply))
        .route("/v1/config/{*rest}", any(config::item))
        .route("/v1/discovery-chain/{*service}", any(config::discovery_chain))
        .route("/v1/connect/intentions", any(intentions::list))
        .route("/v1/connect/intentions/exact", any(intentions::exact))
        .route("/v1/connect/intentions/match", get(intentions::matches))
        .route("/v1/connect/intentions/check", get(intentions::check))
        .route("/v1/connect/intentions/{id}", any(intentions::by_id))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(ctx.clone(), authz::layer))
        .layer(middleware::from_fn_with_state(ctx.clone(), datacenter::route))
        .layer(middleware::from_fn(finish))
        .with_state(ctx)
}

async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if NOT_YET.iter().any(|p| path.starts_with(p)) {
        return HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{path}: this Consul endpoint is not implemented by this agent yet"),
        )
        .into_response();
    }
    // Consul's texts (with their newline), by whether the path looks like an
    // API call.
    if path.contains("/v1/") {
        HttpError::not_found("Invalid URL path: not a recognized HTTP API endpoint\n").into_response()
    } else {
        HttpError::not_found(
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n",
        )
        .into_response()
    }
}

/// Finishes every response: axum's own 405s get Consul's text, and every
/// answer carries the headers Consul always sets.
async fn finish(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && !resp.headers().contains_key(header::CONTENT_TYPE) {
        *resp.body_mut() = Body::from(format!("method {method} not allowed"));
        resp.headers_mut().remove(header::CONTENT_LENGTH);
    }
    resp
}

/// The addresses the API listens on.
#[derive(Clone, Debug, Default)]
pub struct Bound {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
}

/// Binds every HTTP and HTTPS address and serves until `shutdown` fires.
/// Both serve the same router with the same limits; HTTPS connections
/// complete a TLS handshake (with the agent's current certificate) first.
pub async fn serve(
    agent: Agent,
    addrs: &[SocketAddr],
    https_addrs: &[SocketAddr],
    tls: &crate::tls::Tls,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Bound, String> {
    let limits = listener::ConnLimits::from_config(&agent.config().limits);
    let handshake_timeout = agent.config().limits.https_handshake_timeout;
    let app = router(Ctx { agent });
    let mut bound = Bound::default();
    for (addr, https) in addrs.iter().map(|a| (a, false)).chain(https_addrs.iter().map(|a| (a, true))) {
        let (kind, scheme) = if https { ("HTTPS", "https") } else { ("HTTP", "http") };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("Error starting {kind} listener on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(target: "agent", address = %format!("{scheme}://{local}"), network = "tcp", "Started {kind} server");
        let tls = if https {
            bound.https.push(local);
            Some(tls.https_accept(handshake_timeout))
        } else {
            bound.http.push(local);
            None
        };
        listener::spawn(listener, app.clone(), limits, tls, shutdown.clone(), tasks);
    }
    Ok(bound)
}
