//! The HTTP API: Consul's `/v1/...` paths, JSON shapes, headers and status
//! codes, served with axum.
//!
//! Owns: routing (`routes` below, one table like Consul's
//! `http_register.go`), request parsing (`query`, `decode`), response
//! shapes (`response`) and the error mapping (`error`). Holds no state of
//! its own: every handler calls the `agent::Agent` handle.

pub mod acl;
pub mod acl_auth;
pub mod acl_replication;
pub mod agent;
pub mod authz;
pub mod body;
pub mod catalog;
pub mod config;
pub mod config_filter;
pub mod coordinate;
pub mod datacenter;
pub mod decode;
pub mod error;
pub mod event;
pub mod health;
pub mod host;
pub mod input;
pub mod intentions;
pub mod internal_ui;
pub mod kv;
pub mod listener;
pub mod mesh;
pub mod mesh_params;
pub mod mesh_views;
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
pub mod views_ser;

use crate::agent::Agent;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
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
    // Consul lists OPTIONS first, then the endpoint's methods.
    let mut list: Vec<&str> = vec!["OPTIONS"];
    list.extend_from_slice(allowed);
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
    let routes = routes
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
        .route("/v1/acl/login", post(acl_auth::login))
        .route("/v1/acl/logout", post(acl_auth::logout))
        .route("/v1/acl/auth-method", put(acl_auth::auth_method_create))
        .route("/v1/acl/auth-method/{name}", any(acl_auth::auth_method_item))
        .route("/v1/acl/auth-methods", get(acl_auth::auth_method_list))
        .route("/v1/acl/binding-rule", put(acl_auth::binding_rule_create))
        .route("/v1/acl/binding-rule/{id}", any(acl_auth::binding_rule_item))
        .route("/v1/acl/binding-rules", get(acl_auth::binding_rule_list))
        .route("/v1/acl/templated-policies", get(acl::templated_policy_list))
        .route("/v1/acl/templated-policy/name/{*name}", get(acl::templated_policy_read))
        .route("/v1/acl/templated-policy/preview/{*name}", any(acl::templated_policy_preview))
        // ACLs across datacenters.
        .route("/v1/acl/replication", get(acl_replication::replication))
        .route("/v1/acl/{*rest}", any(acl::other))
        // Mesh-facing reads, usage, host and version (issue 19 items 2 and 3).
        .route("/v1/catalog/connect/{service}", get(mesh::catalog_connect))
        .route("/v1/catalog/gateway-services/{gateway}", get(mesh::gateway_services))
        .route("/v1/health/connect/{service}", get(mesh::health_connect))
        .route("/v1/health/ingress/{service}", get(mesh::health_ingress))
        .route("/v1/operator/usage", get(mesh::operator_usage))
        .route("/v1/agent/host", get(host::handle))
        .route("/v1/agent/version", get(mesh::agent_version))
        // Config entries, discovery chains and intentions.
        .route("/v1/config", any(config::apply))
        .route("/v1/config/{*rest}", any(config::item))
        .route("/v1/discovery-chain/{*service}", any(config::discovery_chain))
        .route("/v1/connect/intentions", any(intentions::list))
        .route("/v1/connect/intentions/exact", any(intentions::exact))
        .route("/v1/connect/intentions/match", get(intentions::matches))
        .route("/v1/connect/intentions/check", get(intentions::check))
        .route("/v1/connect/intentions/{id}", any(intentions::by_id))
        // The web UI's internal catalog reads (issue 19 item 1 leftovers).
        .route("/v1/internal/ui/nodes", get(internal_ui::nodes))
        .route("/v1/internal/ui/node/", get(internal_ui::node_missing))
        .route("/v1/internal/ui/node/{*name}", get(internal_ui::node))
        .route("/v1/internal/ui/services", get(internal_ui::services))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(ctx.clone(), authz::layer))
        .layer(middleware::from_fn_with_state(ctx.clone(), datacenter::route));
    // `finish` wraps the whole router, not each route: axum adds the
    // `Allow` header of its own 405s inside a route, after a route layer
    // has run, and `finish` rewrites that header.
    let extra = extra_headers(&ctx);
    Router::new()
        .fallback_service(routes.with_state(ctx.clone()))
        .layer(middleware::from_fn_with_state(Finish { ctx, extra }, finish))
}

/// What `finish` needs: the agent's settings and the configured headers.
#[derive(Clone)]
struct Finish {
    ctx: Ctx,
    extra: Arc<HeaderMap>,
}

/// `http_config.response_headers`, checked when the config was loaded.
fn extra_headers(ctx: &Ctx) -> Arc<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in &ctx.agent.config().http.response_headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            map.append(n, v);
        }
    }
    Arc::new(map)
}

/// Consul endpoints this agent knowingly does not serve, each with why
/// (first matching prefix wins; docs/compatibility.md lists the same).
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "/v1/operator/raft/transfer-leader",
        "leadership transfer is not supported: the Raft library this agent uses (openraft 0.9) has no \
         leadership-transfer operation",
    ),
    (
        "/v1/agent/metrics/stream",
        "metrics streaming is not implemented: /v1/agent/metrics serves the same figures",
    ),
    (
        "/v1/agent/connect/",
        "Connect certificates and authorization are not served: this agent issues no certificates",
    ),
    ("/v1/connect/ca/", "the Connect CA is not served: this agent issues no certificates"),
    ("/v1/internal/ui/exported-services", "cluster peering is not supported by this agent"),
    ("/v1/internal/ui/", "this web UI view needs service-mesh or peering data this agent does not serve"),
    ("/v1/peering", "cluster peering is not supported by this agent"),
    ("/v1/exported-services", "cluster peering is not supported by this agent"),
    ("/v1/imported-services", "cluster peering is not supported by this agent"),
    ("/v1/namespace", "namespaces are a Consul Enterprise feature"),
    ("/v1/partition", "admin partitions are a Consul Enterprise feature"),
    ("/v1/operator/area", "network areas are a Consul Enterprise feature"),
    ("/v1/operator/segment", "network segments are a Consul Enterprise feature"),
];

async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(p, _)| path.starts_with(p)) {
        return HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{path}: not implemented by this agent: {why}"),
        )
        .into_response();
    }
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
/// answer carries the headers Consul always sets, and (API and UI alike) the
/// operator's `http_config.response_headers` unless the handler set that
/// header itself (Consul sets them before the handler runs, so the
/// handler's value wins there too).
async fn finish(State(Finish { ctx, extra }): State<Finish>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let cached = method == Method::GET && asks_cached(req.uri());
    let mut resp = next.run(req).await;
    // Consul's HTTP wrapper marks every answer when `translate_wan_addrs` is
    // on, so clients know addresses may be WAN ones.
    if ctx.agent.config().translate_wan_addrs {
        resp.headers_mut().insert("X-Consul-Translate-Addresses", header::HeaderValue::from_static("true"));
    }
    if cached && resp.status().is_success() {
        // Consul's agent cache answers `?cached` reads of these endpoints
        // with `X-Cache: HIT` (and `Age`) or `MISS`. This agent keeps no
        // such cache: every answer is a fresh read, which is a miss.
        resp.headers_mut().insert("X-Cache", header::HeaderValue::from_static("MISS"));
    }
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        // axum's own 405s list the route's methods with HEAD beside GET and
        // without OPTIONS; Consul's list OPTIONS first and never HEAD.
        let methods: Vec<String> = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty() && *m != "HEAD" && *m != "OPTIONS")
            .map(str::to_string)
            .collect();
        let allow = std::iter::once("OPTIONS".to_string()).chain(methods).collect::<Vec<_>>().join(",");
        if let Ok(v) = header::HeaderValue::from_str(&allow) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        if method == Method::OPTIONS {
            // Consul answers OPTIONS itself: 200, the Allow list, no body.
            let mut ok = Response::new(Body::empty());
            if let Some(v) = resp.headers().get(header::ALLOW) {
                ok.headers_mut().insert(header::ALLOW, v.clone());
            }
            resp = ok;
        } else if !resp.headers().contains_key(header::CONTENT_TYPE) {
            *resp.body_mut() = Body::from(format!("method {method} not allowed"));
            resp.headers_mut().remove(header::CONTENT_LENGTH);
        }
    }
    for name in extra.keys() {
        if !resp.headers().contains_key(name) {
            for value in extra.get_all(name) {
                resp.headers_mut().append(name.clone(), value.clone());
            }
        }
    }
    resp
}

/// A `?cached` read of an endpoint Consul serves from its agent cache.
fn asks_cached(uri: &axum::http::Uri) -> bool {
    let path = uri.path();
    let cacheable = path == "/v1/catalog/services"
        || path.starts_with("/v1/catalog/service/")
        || path.starts_with("/v1/health/service/")
        || (path.starts_with("/v1/query/") && path.ends_with("/execute"));
    cacheable && query::Params::parse(uri.query()).has("cached")
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
