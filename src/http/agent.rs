//! `/v1/agent/*`: this agent's own view: self, members, and the services and
//! checks it owns (registration, TTL updates, maintenance).

use super::authz::{self, Caller};
use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::input::{AgentServiceIn, CheckIn, CheckUpdateIn};
use super::query::{filter, keep, Params};
use super::response::{empty_ok, json, json_status};
use super::views::{agent_service, health_check};
use super::Ctx;
use crate::agent::{Agent, AgentError};
use crate::catalog::types::{aggregate, HealthCheck, CRITICAL, PASSING, WARNING};
use crate::definition::Source;
use crate::filter::schemas;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Extension;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const MAX_BODY: u64 = 1024 * 1024;

impl From<AgentError> for HttpError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::BadRequest(m) => HttpError::bad_request(m),
            AgentError::NotFound(m) => HttpError::not_found(m),
            AgentError::Refused(m) => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
            AgentError::Rpc(e) => e.into(),
        }
    }
}

/// A gossip member in Consul's `/v1/agent/members` shape.
pub fn member_json(m: &crate::gossip::Member) -> Value {
    json!({
        "Name": m.name,
        "Addr": m.addr.to_string(),
        "Port": m.port,
        "Tags": m.tags,
        "Status": m.status.code(),
        "ProtocolMin": m.protocol_min,
        "ProtocolMax": m.protocol_max,
        "ProtocolCur": m.protocol_cur,
        "DelegateMin": m.delegate_min,
        "DelegateMax": m.delegate_max,
        "DelegateCur": m.delegate_cur,
    })
}

fn self_member(agent: &Agent) -> Value {
    if let Some(pools) = agent.gossip() {
        return member_json(&pools.lan.local_member());
    }
    let cfg = agent.config();
    json!({
        "Name": cfg.node_name,
        "Addr": cfg.advertise_addr.to_string(),
        "Port": cfg.ports.serf_lan,
        "Tags": agent.member_tags(),
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

/// The Stats sections (`consul info` renders them).
pub async fn stats(agent: &Agent) -> BTreeMap<String, BTreeMap<String, String>> {
    let cfg = agent.config();
    let mut out = BTreeMap::new();
    let checks = agent.local().checks();
    let mut a = BTreeMap::new();
    a.insert("check_monitors".to_string(), checks.iter().filter(|c| c.def.is_script()).count().to_string());
    a.insert("check_ttls".to_string(), checks.iter().filter(|c| c.def.is_ttl()).count().to_string());
    a.insert("checks".to_string(), checks.len().to_string());
    a.insert("services".to_string(), agent.local().services().len().to_string());
    out.insert("agent".to_string(), a);
    let mut b = BTreeMap::new();
    b.insert("prerelease".to_string(), String::new());
    b.insert("revision".to_string(), crate::version::revision());
    b.insert("version".to_string(), crate::version::CONSUL_VERSION.to_string());
    b.insert("version_metadata".to_string(), String::new());
    out.insert("build".to_string(), b);
    match agent.delegate() {
        crate::agent::Delegate::Server(s) => {
            out.insert("consul".to_string(), s.consul_stats(cfg.bootstrap));
            out.insert("raft".to_string(), s.raft_stats());
        }
        crate::agent::Delegate::Client(pool) => {
            let mut c = BTreeMap::new();
            c.insert("acl".to_string(), "disabled".to_string());
            c.insert("known_servers".to_string(), pool.servers().len().to_string());
            c.insert("server".to_string(), "false".to_string());
            out.insert("consul".to_string(), c);
        }
    }
    let mut r = BTreeMap::new();
    r.insert(
        "arch".to_string(),
        std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
    );
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    r.insert("cpu_count".to_string(), cpus.to_string());
    r.insert(
        "goroutines".to_string(),
        tokio::runtime::Handle::try_current().map(|h| h.metrics().num_alive_tasks()).unwrap_or(0).to_string(),
    );
    r.insert("max_procs".to_string(), cpus.to_string());
    r.insert("os".to_string(), std::env::consts::OS.to_string());
    r.insert("version".to_string(), format!("rust-consul-rs-{}", crate::version::OWN_VERSION));
    out.insert("runtime".to_string(), r);
    if let Some(pools) = agent.gossip() {
        if let Ok(s) = pools.lan.stats().await {
            out.insert("serf_lan".to_string(), s);
        }
        if let Some(wan) = &pools.wan {
            if let Ok(s) = wan.stats().await {
                out.insert("serf_wan".to_string(), s);
            }
        }
    }
    out
}

pub async fn self_(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let agent = &ctx.agent;
    let cfg = agent.config();
    let body = json!({
        "Config": {
            "Datacenter": cfg.datacenter,
            "PrimaryDatacenter": cfg.primary_datacenter,
            "NodeName": cfg.node_name,
            "NodeID": agent.node_id().to_string(),
            "Revision": crate::version::revision(),
            "Server": cfg.server,
            "Version": crate::version::CONSUL_VERSION,
            // Consul formats its build time as RFC 3339; ours is not
            // recorded, which Go spells as the zero time.
            "BuildDate": "0001-01-01T00:00:00Z",
        },
        "DebugConfig": debug_config(agent),
        "Coord": own_coordinate(agent),
        "Member": self_member(agent),
        "Stats": stats(agent).await,
        "Meta": cfg.node_meta,
    });
    json(&params, &body)
}

/// The part of Consul's sanitised runtime config (`DebugConfig`) that has
/// a counterpart here, under Consul's field names.
fn debug_config(agent: &Agent) -> Value {
    let cfg = agent.config();
    let mut m = json!({
        "Datacenter": cfg.datacenter,
        "NodeName": cfg.node_name,
        "NodeID": agent.node_id().to_string(),
        "ServerMode": cfg.server,
        "Bootstrap": cfg.bootstrap,
        "BootstrapExpect": cfg.bootstrap_expect,
        "DataDir": cfg.data_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        "ClientAddrs": cfg.client_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "BindAddr": cfg.bind_addr.to_string(),
        "AdvertiseAddrLAN": cfg.advertise_addr.to_string(),
        "AdvertiseAddrWAN": cfg.advertise_addr_wan.to_string(),
        "DNSDomain": cfg.domain,
        "HTTPPort": cfg.ports.http,
        "HTTPSPort": cfg.ports.https,
        "DNSPort": cfg.ports.dns,
        "SerfPortLAN": cfg.ports.serf_lan,
        "SerfPortWAN": cfg.ports.serf_wan,
        "ServerPort": cfg.ports.server,
        "EnableRemoteScriptChecks": cfg.enable_script_checks,
        "EnableLocalScriptChecks": cfg.enable_local_script_checks,
        "DisableRemoteExec": cfg.disable_remote_exec,
        "LeaveOnTerm": cfg.leave_on_terminate,
        "SkipLeaveOnInt": cfg.skip_leave_on_interrupt,
        "RejoinAfterLeave": cfg.rejoin_after_leave,
        "RetryJoinLAN": cfg.retry_join,
        "LogLevel": cfg.log_level.as_str(),
        "DevMode": cfg.dev,
        "ACLsEnabled": cfg.acl.enabled,
        "ACLTokens": acl_tokens_view(agent),
    });
    let more = json!({
        "RetryJoinWAN": cfg.retry_join_wan,
        "PrimaryDatacenter": cfg.primary_datacenter,
        "Revision": crate::version::revision(),
        "Version": crate::version::CONSUL_VERSION,
        "VersionPrerelease": "",
        "VersionMetadata": "",
        "NodeMeta": cfg.node_meta,
        "DNSRecursors": cfg.recursors,
        "TranslateWANAddrs": cfg.translate_wan_addrs,
        "DisableCoordinates": cfg.disable_coordinates,
        // Never the key itself, as Consul's sanitised config.
        "EncryptKey": if cfg.encrypt.as_deref().is_some_and(|k| !k.is_empty()) { "hidden" } else { "" },
        // No gRPC or xDS server here (so no `xDS` block in /v1/agent/self).
        "GRPCPort": -1,
        "GRPCTLSPort": -1,
    });
    if let (Value::Object(m), Value::Object(more)) = (&mut m, more) {
        m.extend(more);
    }
    m
}

/// This agent's LAN coordinate (`null` with `disable_coordinates`, as
/// Consul), or a fresh one before gossip has measured anything.
fn own_coordinate(agent: &Agent) -> Value {
    if agent.config().disable_coordinates {
        return Value::Null;
    }
    let coord = agent.gossip().and_then(|p| p.lan.coordinate());
    match coord {
        Some(c) => serde_json::to_value(c).unwrap_or(Value::Null),
        None => {
            json!({"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05})
        }
    }
}

/// The agent's tokens as `/v1/agent/self` shows them: set or not, never
/// the secret (Consul prints "hidden").
fn acl_tokens_view(agent: &Agent) -> Value {
    let t = agent.tokens();
    let shown = |v: Option<String>| if v.is_some_and(|v| !v.is_empty()) { "hidden" } else { "" };
    let cfg = agent.config();
    json!({
        "ACLDefaultToken": shown(t.user_token()),
        "ACLAgentToken": shown(agent.tokens().agent_token_only()),
        "ACLAgentRecoveryToken": shown(t.agent_recovery_token()),
        "ACLReplicationToken": shown(cfg.acl.tokens.replication.clone()),
        "ACLConfigFileRegistrationToken": shown(agent.tokens().config_file_token_only()),
        "ACLDNSToken": shown(agent.tokens().dns_token_only()),
    })
}

pub async fn members(State(ctx): State<Ctx>, uri: Uri, id: Option<Extension<Caller>>) -> HttpResult {
    let params = Params::parse(uri.query());
    let id = authz::caller(id)?;
    let filter = filter(&params, schemas::member())?;
    let wan = wan_param(&params);
    if wan && !matches!(params.get("segment"), None | Some("") | Some("_all")) {
        return Err(HttpError::bad_request("Cannot provide a segment with wan=true"));
    }
    // A client agent has no WAN pool: Consul answers `null` there.
    if wan && !ctx.agent.config().server {
        return json(&params, &Value::Null);
    }
    let members = ctx.agent.members(wan)?;
    let mut out: Vec<Value> =
        members.iter().filter(|m| id.0.authz.node_read(&m.name)).map(member_json).collect();
    let removed = out.len() != members.len();
    out.retain(|v| keep(filter.as_ref(), v));
    let mut resp = json(&params, &out)?;
    id.mark_filtered(&mut resp, removed);
    Ok(resp)
}

/// `?wan=` as Consul reads it for members and join: any non-empty value
/// (even `0` or `false`) means the WAN pool; a bare `?wan` does not.
fn wan_param(params: &Params) -> bool {
    params.get("wan").is_some_and(|w| !w.is_empty())
}

pub async fn join(State(ctx): State<Ctx>, Path(addr): Path<String>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let wan = wan_param(&params);
    ctx.agent.join(&[addr], wan).await?;
    Ok(empty_ok())
}

pub async fn leave(State(ctx): State<Ctx>) -> HttpResult {
    ctx.agent.leave().await?;
    // The agent shuts down once the answer is on its way.
    let token = ctx.agent.shutdown_token();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        token.cancel();
    });
    Ok(empty_ok())
}

pub async fn force_leave(State(ctx): State<Ctx>, Path(node): Path<String>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    // Here Consul only asks whether the parameter is present.
    let wan = params.has("wan");
    ctx.agent.force_leave(&node, params.has("prune"), wan).await?;
    Ok(empty_ok())
}

pub async fn services(State(ctx): State<Ctx>, uri: Uri, id: Option<Extension<Caller>>) -> HttpResult {
    let params = Params::parse(uri.query());
    let id = authz::caller(id)?;
    let filter = filter(&params, schemas::agent_service())?;
    let dc = ctx.agent.config().datacenter.clone();
    let mut map = Map::new();
    let mut removed = false;
    for s in ctx.agent.local().services() {
        if !id.0.authz.service_read(&s.def.name) {
            removed = true;
            continue;
        }
        let v = agent_service(&s.node_service(), &dc);
        if keep(filter.as_ref(), &v) {
            map.insert(s.def.id.clone(), v);
        }
    }
    let mut resp = json(&params, &map)?;
    id.mark_filtered(&mut resp, removed);
    Ok(resp)
}

fn content_hash(v: &Value) -> String {
    // FNV-1a over the canonical JSON: stable across calls with equal content.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `/v1/agent/service/<id>`, with hash-based blocking (`?hash=&wait=`).
pub async fn service(State(ctx): State<Ctx>, Path(id): Path<String>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let cfg = ctx.agent.config();
    let wait = match params.get("wait") {
        None | Some("") => cfg.default_query_time,
        Some(w) => crate::duration::parse(w).map_err(|_| HttpError::bad_request("Invalid wait time"))?,
    }
    .min(cfg.max_query_time);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = ctx.agent.local().subscribe();
    loop {
        changes.borrow_and_update();
        let Some(s) = ctx.agent.local().service(&id) else {
            return Err(HttpError::not_found(format!("unknown service ID: {id}")));
        };
        let mut v = agent_service(&s.node_service(), &cfg.datacenter);
        let hash = content_hash(&v);
        if let Value::Object(m) = &mut v {
            m.insert("ContentHash".into(), json!(hash));
        }
        let blocked = params.get("hash").is_some_and(|h| h == hash) && tokio::time::Instant::now() < deadline;
        if !blocked {
            let mut resp = json(&params, &v)?;
            if let Ok(h) = HeaderValue::from_str(&hash) {
                resp.headers_mut().insert("X-Consul-ContentHash", h);
            }
            return Ok(resp);
        }
        tokio::select! {
            r = changes.changed() => { if r.is_err() { return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "agent is shutting down")); } }
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

pub async fn service_register(
    State(ctx): State<Ctx>,
    uri: Uri,
    headers: HeaderMap,
    id: Option<Extension<Caller>>,
    body: Body,
) -> HttpResult {
    let params = Params::parse(uri.query());
    let id = authz::caller(id)?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: AgentServiceIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let mut def =
        input.into_def().map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    // Anti-entropy syncs the service with the token it was registered with.
    if def.token.is_empty() {
        def.token = super::query::token(&params, &headers).unwrap_or_default();
    }
    id.require(id.0.authz.service_write(&def.name), "service:write", Some(&def.name))?;
    if let Some(sc) = &def.sidecar_service {
        // The sidecar is registered with the same token: it needs write on its own name.
        let name = if sc.name.is_empty() { format!("{}-sidecar-proxy", def.name) } else { sc.name.clone() };
        id.require(id.0.authz.service_write(&name), "service:write", Some(&name))?;
    }
    let replace = params.has("replace-existing-checks");
    ctx.agent.register_service(def, Source::Remote, replace)?;
    Ok(empty_ok())
}

pub async fn service_deregister(State(ctx): State<Ctx>, Path(id): Path<String>) -> HttpResult {
    ctx.agent.deregister_service(&id)?;
    Ok(empty_ok())
}

pub async fn checks(State(ctx): State<Ctx>, uri: Uri, id: Option<Extension<Caller>>) -> HttpResult {
    let params = Params::parse(uri.query());
    let id = authz::caller(id)?;
    let node = ctx.agent.node_name();
    let filter = filter(&params, schemas::health_check())?;
    let mut map = Map::new();
    let services: BTreeMap<String, (String, Vec<String>)> = ctx
        .agent
        .local()
        .services()
        .into_iter()
        .map(|s| (s.def.id.clone(), (s.def.name.clone(), s.def.tags.clone())))
        .collect();
    let mut removed = false;
    for c in ctx.agent.local().checks() {
        let mut check = c.check.clone();
        if let Some((name, tags)) = services.get(&check.service_id) {
            check.service_name = name.clone();
            check.service_tags = tags.clone();
        }
        let visible = if check.service_id.is_empty() {
            id.0.authz.node_read(&node)
        } else {
            id.0.authz.service_read(&check.service_name)
        };
        if !visible {
            removed = true;
            continue;
        }
        let mut v = health_check(&check);
        if let Value::Object(m) = &mut v {
            m.remove("CreateIndex");
            m.remove("ModifyIndex");
        }
        if keep(filter.as_ref(), &v) {
            map.insert(c.def.id.clone(), v);
        }
    }
    let mut resp = json(&params, &map)?;
    id.mark_filtered(&mut resp, removed);
    Ok(resp)
}

pub async fn check_register(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    id: Option<Extension<Caller>>,
    body: Body,
) -> HttpResult {
    let id = authz::caller(id)?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CheckIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let mut def = input.into_def();
    if def.name.is_empty() {
        return Err(HttpError::bad_request("Missing check name"));
    }
    // Consul refuses an unknown initial status before looking at the service.
    if !def.status.is_empty() && !crate::catalog::types::valid_status(&def.status) {
        return Err(HttpError::bad_request("Bad check status"));
    }
    if def.id.is_empty() {
        def.id = def.name.clone();
    }
    if def.service_id.is_empty() {
        let node = ctx.agent.node_name();
        id.require(id.0.authz.node_write(&node), "node:write", Some(&node))?;
    } else if let Some(svc) = ctx.agent.local().service(&def.service_id) {
        id.require(id.0.authz.service_write(&svc.def.name), "service:write", Some(&svc.def.name))?;
    } else {
        // Consul answers this before any ACL check, with a 404.
        return Err(HttpError::not_found(format!("ServiceID {:?} does not exist", def.service_id)));
    }
    ctx.agent.register_check(def, Source::Remote)?;
    Ok(empty_ok())
}

pub async fn check_deregister(State(ctx): State<Ctx>, Path(id): Path<String>) -> HttpResult {
    ctx.agent.deregister_check(&id)?;
    Ok(empty_ok())
}

async fn ttl(ctx: &Ctx, id: &str, status: &str, uri: &Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let note = params.get("note").unwrap_or("");
    ctx.agent.update_ttl_check(id, status, note)?;
    Ok(empty_ok())
}

pub async fn check_pass(State(ctx): State<Ctx>, Path(id): Path<String>, uri: Uri) -> HttpResult {
    ttl(&ctx, &id, PASSING, &uri).await
}

pub async fn check_warn(State(ctx): State<Ctx>, Path(id): Path<String>, uri: Uri) -> HttpResult {
    ttl(&ctx, &id, WARNING, &uri).await
}

pub async fn check_fail(State(ctx): State<Ctx>, Path(id): Path<String>, uri: Uri) -> HttpResult {
    ttl(&ctx, &id, CRITICAL, &uri).await
}

pub async fn check_update(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: CheckUpdateIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let status = input.status.unwrap_or_default();
    if !crate::catalog::types::valid_status(&status) {
        // Consul quotes the status with single quotes here.
        return Err(HttpError::bad_request(format!("Invalid check status: '{status}'")));
    }
    ctx.agent.update_ttl_check(&id, &status, &input.output.unwrap_or_default())?;
    Ok(empty_ok())
}

fn enable_param(params: &Params) -> Result<bool, HttpError> {
    match params.get("enable") {
        None | Some("") => Err(HttpError::bad_request("Missing value for enable")),
        Some(v) => match v {
            "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
            "false" | "0" | "False" | "FALSE" | "f" | "F" => Ok(false),
            other => Err(HttpError::bad_request(format!("Invalid value for enable: {other:?}"))),
        },
    }
}

pub async fn maintenance(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let enable = enable_param(&params)?;
    ctx.agent.set_node_maintenance(enable, params.get("reason").unwrap_or(""))?;
    Ok(empty_ok())
}

pub async fn service_maintenance(State(ctx): State<Ctx>, Path(id): Path<String>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    let enable = enable_param(&params)?;
    ctx.agent.set_service_maintenance(&id, enable, params.get("reason").unwrap_or(""))?;
    Ok(empty_ok())
}

/// `/v1/agent/health/service/id/<id>` and `/name/<name>`: the aggregate
/// status of local instances as an HTTP code (200, 429, 503), for load balancers.
fn local_health(ctx: &Ctx, service_id: &str) -> Option<(String, Value)> {
    let s = ctx.agent.local().service(service_id)?;
    let checks: Vec<_> = ctx
        .agent
        .local()
        .checks()
        .into_iter()
        .filter(|c| c.def.service_id == service_id || c.def.service_id.is_empty())
        .map(|c| {
            // Consul's local service checks carry their service's name and
            // tags (set when the check was added), as /v1/agent/checks shows.
            let mut check = c.check;
            if !check.service_id.is_empty() {
                check.service_name = s.def.name.clone();
                check.service_tags = s.def.tags.clone();
            }
            check
        })
        .collect();
    let status = aggregate(checks.iter().map(|c| c.status.as_str())).to_string();
    let dc = ctx.agent.config().datacenter.clone();
    let v = json!({
        "AggregatedStatus": status,
        "Service": agent_service(&s.node_service(), &dc),
        "Checks": checks.iter().map(local_health_check).collect::<Vec<_>>(),
    });
    Some((status, v))
}

/// A check as these endpoints list it: Consul copies the local check's
/// identity, status and service fields into the API client's
/// `HealthCheck` (which has no `Interval`/`Timeout`), leaving its type and
/// indexes at their zero values.
fn local_health_check(c: &HealthCheck) -> Value {
    let mut v = health_check(c);
    if let Value::Object(m) = &mut v {
        // `shift_remove` keeps Consul's field order (`remove` swaps the
        // last field into the gap).
        m.shift_remove("Interval");
        m.shift_remove("Timeout");
        m.insert("Type".into(), json!(""));
        m.insert("CreateIndex".into(), json!(0));
        m.insert("ModifyIndex".into(), json!(0));
    }
    v
}

fn status_code(status: &str) -> StatusCode {
    match status {
        PASSING => StatusCode::OK,
        WARNING => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// As Consul decides: an `Accept` header that starts with `text/plain`,
/// else `?format=text`.
fn wants_text(params: &Params, headers: &HeaderMap) -> bool {
    headers.get("Accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("text/plain"))
        || params.get("format") == Some("text")
}

pub async fn health_by_id(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    let text = wants_text(&params, &headers);
    let Some((status, v)) = local_health(&ctx, &id) else {
        let why = format!("ServiceId {id} not found");
        let empty = json!({"AggregatedStatus": CRITICAL, "Service": null, "Checks": null});
        return health_answer(&params, text, StatusCode::NOT_FOUND, &why, &empty);
    };
    health_answer(&params, text, status_code(&status), &status, &v)
}

/// An agent health answer as Consul's handlers give it: the code, the
/// reason (the status, or why nothing was found) in `X-Consul-Reason`, and
/// either the reason as plain text or the JSON body.
fn health_answer(params: &Params, text: bool, code: StatusCode, reason: &str, body: &Value) -> HttpResult {
    let mut resp = if text {
        let mut r = (code, reason.to_string()).into_response();
        r.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    } else {
        json_status(params, code, body)?
    };
    if let Ok(v) = HeaderValue::from_str(reason) {
        resp.headers_mut().insert("X-Consul-Reason", v);
    }
    Ok(resp)
}

pub async fn health_by_name(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let params = Params::parse(uri.query());
    let ids: Vec<String> = ctx
        .agent
        .local()
        .services()
        .into_iter()
        .filter(|s| s.def.name == name)
        .map(|s| s.def.id.clone())
        .collect();
    let text = wants_text(&params, &headers);
    if ids.is_empty() {
        let why = format!("ServiceName {name} Not Found");
        return health_answer(&params, text, StatusCode::NOT_FOUND, &why, &json!([]));
    }
    let results: Vec<(String, Value)> = ids.iter().filter_map(|id| local_health(&ctx, id)).collect();
    let worst = aggregate(results.iter().map(|(s, _)| s.as_str())).to_string();
    let list: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
    health_answer(&params, text, status_code(&worst), &worst, &json!(list))
}

/// `PUT /v1/agent/reload`: re-reads the config files (as SIGHUP does); a
/// bad configuration answers 500 and the running one stays.
pub async fn reload(State(ctx): State<Ctx>) -> HttpResult {
    let agent = ctx.agent.clone();
    // Loading reads files and may resolve addresses: off the async workers.
    let result = tokio::task::spawn_blocking(move || agent.reload())
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reload failed: {e}")))?;
    match result {
        Ok(_) => Ok(empty_ok()),
        Err(e) => {
            Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("Failed reloading config: {e}")))
        }
    }
}

/// `PUT /v1/agent/token/:type`: replaces one of the agent's tokens (saved
/// when `acl.enable_token_persistence` is on).
pub async fn set_token(
    State(ctx): State<Ctx>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    if !ctx.agent.config().acl.enabled {
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, "ACL support disabled"));
    }
    let Some(which) = crate::agent::tokens::TokenKind::parse(&kind) else {
        return Err(HttpError::not_found(format!("Token {kind:?} is unknown")));
    };
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct TokenIn {
        token: Option<String>,
    }
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: TokenIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    ctx.agent
        .tokens()
        .set(which, input.token.as_deref().unwrap_or(""))
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::info!(target: "agent", token_type = %kind, "updated agent ACL token");
    Ok(empty_ok())
}
