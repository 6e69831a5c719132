//! `/v1/operator/...`: the Raft configuration and peer removal, autopilot's
//! configuration and health, and the gossip keyring.

use super::decode;
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{empty_ok, json, json_status};
use super::Ctx;
use crate::catalog::operator::AutopilotConfig;
use crate::gossip::KeyringResponse;
use crate::rpc::method as rpc;
use crate::rpc::operator::{AutopilotHealth, ServerHealth};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub async fn raft_configuration(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let cfg = ctx.agent.call(rc, rpc::RaftConfigurationGet {}).await?;
    let servers: Vec<Value> = cfg
        .servers
        .iter()
        .map(|s| {
            json!({
                "ID": s.id,
                "Node": s.node,
                "Address": s.address,
                "Leader": s.leader,
                "ProtocolVersion": "3",
                "Voter": s.voter,
                "LastIndex": s.last_index.unwrap_or(0),
            })
        })
        .collect();
    json(&params, &json!({"Servers": servers, "Index": cfg.index, "CommitIndex": cfg.commit_index}))
}

pub async fn raft_peer(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let id = params.get("id").filter(|s| !s.is_empty()).map(str::to_string);
    let address = params.get("address").filter(|s| !s.is_empty()).map(str::to_string);
    if id.is_some() && address.is_some() {
        return Err(HttpError::bad_request("Must specify only one of ?id or ?address"));
    }
    ctx.agent.call(caller(&params, &headers), rpc::RaftRemovePeer { id, address }).await?;
    Ok(empty_ok())
}

fn autopilot_json(c: &AutopilotConfig) -> Value {
    json!({
        "CleanupDeadServers": c.cleanup_dead_servers,
        "LastContactThreshold": crate::duration::format_nanos(c.last_contact_threshold_ns as i128),
        "MaxTrailingLogs": c.max_trailing_logs,
        "MinQuorum": c.min_quorum,
        "ServerStabilizationTime": crate::duration::format_nanos(c.server_stabilization_time_ns as i128),
        "RedundancyZoneTag": "",
        "DisableUpgradeMigration": false,
        "UpgradeVersionTag": "",
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// The body of a configuration update. Durations come as Go duration
/// strings ("200ms") or as nanosecond numbers, as Consul's decoder accepts.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct AutopilotInput {
    cleanup_dead_servers: Option<bool>,
    last_contact_threshold: Option<Value>,
    max_trailing_logs: Option<u64>,
    min_quorum: Option<u32>,
    server_stabilization_time: Option<Value>,
    redundancy_zone_tag: Option<String>,
    disable_upgrade_migration: Option<bool>,
    upgrade_version_tag: Option<String>,
    create_index: Option<u64>,
    modify_index: Option<u64>,
}

fn duration_field(name: &str, v: Option<Value>, current: u64) -> Result<u64, HttpError> {
    match v {
        None | Some(Value::Null) => Ok(current),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            HttpError::bad_request(format!(
                "Error parsing autopilot config: {name}: must be a non-negative duration"
            ))
        }),
        Some(Value::String(s)) => crate::duration::parse(&s)
            .map(|d| d.as_nanos() as u64)
            // Consul's decoder reports the duration's own error, unprefixed.
            .map_err(|e| HttpError::bad_request(format!("Error parsing autopilot config: {e}"))),
        Some(_) => Err(HttpError::bad_request(format!(
            "Error parsing autopilot config: {name}: expected a duration string"
        ))),
    }
}

pub async fn autopilot_configuration(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    match method {
        // Only a GET reads the current record: a PUT needs operator:write
        // alone, and must be refused for that, not for operator:read.
        Method::GET => {
            let current = ctx.agent.call(rc, rpc::AutopilotGetConfig {}).await?;
            json(&params, &autopilot_json(&current))
        }
        Method::PUT => {
            let input: AutopilotInput = if body.is_empty() {
                AutopilotInput::default()
            } else {
                decode::from_slice(&body)
                    .map_err(|e| HttpError::bad_request(format!("Error parsing autopilot config: {e}")))?
            };
            // Fields Consul accepts that only matter to its enterprise edition
            // or are echoed back from a GET: accepted and ignored.
            let _ = (&input.redundancy_zone_tag, input.disable_upgrade_migration, &input.upgrade_version_tag);
            let _ = (input.create_index, input.modify_index);
            // Consul replaces the whole record: absent fields take their
            // zero value, as its Go decoder leaves them.
            let config = AutopilotConfig {
                cleanup_dead_servers: input.cleanup_dead_servers.unwrap_or(false),
                last_contact_threshold_ns: duration_field(
                    "LastContactThreshold",
                    input.last_contact_threshold,
                    0,
                )?,
                max_trailing_logs: input.max_trailing_logs.unwrap_or(0),
                min_quorum: input.min_quorum.unwrap_or(0),
                server_stabilization_time_ns: duration_field(
                    "ServerStabilizationTime",
                    input.server_stabilization_time,
                    0,
                )?,
                create_index: 0,
                modify_index: 0,
            };
            let cas = params.u64("cas", "cas")?;
            let ok = ctx.agent.call(rc, rpc::AutopilotSetConfig { config, cas }).await?;
            // Consul answers the CAS outcome, and `true` for a plain write.
            json(&params, &(ok || cas.is_none()))
        }
        m => Err(super::method_not_allowed(&m, &["GET", "PUT"])),
    }
}

fn server_health_json(s: &ServerHealth) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ID".into(), s.id.clone().into());
    m.insert("Name".into(), s.name.clone().into());
    m.insert("Address".into(), s.address.clone().into());
    m.insert("SerfStatus".into(), s.serf_status.clone().into());
    m.insert("Version".into(), s.version.clone().into());
    m.insert("Leader".into(), s.leader.into());
    let contact = if s.last_contact_ns == u64::MAX {
        "never".to_string()
    } else {
        crate::duration::format_nanos(s.last_contact_ns as i128)
    };
    m.insert("LastContact".into(), contact.into());
    m.insert("LastTerm".into(), s.last_term.into());
    m.insert("LastIndex".into(), s.last_index.into());
    m.insert("Healthy".into(), s.healthy.into());
    m.insert("Voter".into(), s.voter.into());
    m.insert("StableSince".into(), rfc3339(s.stable_since_ms).into());
    m
}

/// Go's zero time when unknown, as Consul prints it.
fn rfc3339(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => crate::logging::format_unix_millis(ms as i64),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

async fn fetch_health(ctx: &Ctx, params: &Params, headers: &HeaderMap) -> Result<AutopilotHealth, HttpError> {
    Ok(ctx.agent.call(caller(params, headers), rpc::AutopilotHealthGet {}).await?)
}

pub async fn autopilot_health(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let h = fetch_health(&ctx, &params, &headers).await?;
    let servers: Vec<Value> = h.servers.iter().map(|s| Value::Object(server_health_json(s))).collect();
    let status = if h.healthy { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
    json_status(
        &params,
        status,
        &json!({"Healthy": h.healthy, "FailureTolerance": h.failure_tolerance, "Servers": servers}),
    )
}

pub async fn autopilot_state(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let h = fetch_health(&ctx, &params, &headers).await?;
    let mut servers = Map::new();
    let mut voters = Vec::new();
    let mut leader = String::new();
    for s in &h.servers {
        let mut m = server_health_json(s);
        let status = if s.leader {
            "leader"
        } else if s.voter {
            "voter"
        } else {
            "non-voter"
        };
        m.remove("SerfStatus");
        m.remove("Leader");
        m.remove("Voter");
        m.insert("NodeStatus".into(), s.serf_status.clone().into());
        m.insert("ReadReplica".into(), false.into());
        m.insert("Status".into(), status.into());
        m.insert("Meta".into(), json!({"build": s.version}));
        m.insert("NodeType".into(), "voter".into());
        if s.leader {
            leader = s.id.clone();
        }
        if s.voter {
            voters.push(s.id.clone());
        }
        servers.insert(s.id.clone(), Value::Object(m));
    }
    json(
        &params,
        &json!({
            "Healthy": h.healthy,
            "FailureTolerance": h.failure_tolerance,
            "OptimisticFailureTolerance": h.failure_tolerance,
            "Servers": servers,
            "Leader": leader,
            "Voters": voters,
        }),
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct KeyInput {
    key: String,
}

fn keyring_json(pool_wan: bool, dc: &str, r: &KeyringResponse) -> Value {
    json!({
        "WAN": pool_wan,
        "Datacenter": dc,
        "Segment": "",
        "Keys": r.keys,
        "PrimaryKeys": r.primary_keys,
        "NumNodes": r.num_nodes,
        "Messages": r.messages,
    })
}

/// Consul's text for a pool whose members reported failures.
fn keyring_errors(pool: &str, r: &KeyringResponse) -> Option<String> {
    if r.all_ok() {
        return None;
    }
    let mut msg = format!(
        "{pool} error: {}/{} nodes reported failure",
        r.num_err.max(r.num_nodes - r.num_resp.min(r.num_nodes)),
        r.num_nodes
    );
    for (node, m) in &r.messages {
        msg.push_str(&format!("\n  {node}: {m}"));
    }
    Some(msg)
}

pub async fn keyring(State(ctx): State<Ctx>, method: Method, uri: Uri, body: Bytes) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let Some(pools) = ctx.agent.gossip() else {
        return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "gossip is not running on this agent"));
    };
    if let Some(rf) = params.u64("relay-factor", "relay-factor")? {
        if rf > 5 {
            return Err(HttpError::bad_request("Relay factor must be in range: [0, 5]"));
        }
    }
    let local_only = params.has("local-only");
    let dc = ctx.agent.config().datacenter.clone();
    let mut gossips = Vec::new();
    if let Some(wan) = &pools.wan {
        gossips.push((true, wan.clone()));
    }
    gossips.push((false, pools.lan.clone()));
    if method == Method::GET {
        let mut out = Vec::new();
        for (wan, g) in gossips {
            let r = if local_only {
                let keys = g.local_keys();
                let mut r = KeyringResponse { num_nodes: 1, num_resp: 1, ..Default::default() };
                if let Some(primary) = keys.first() {
                    r.primary_keys.insert(primary.clone(), 1);
                }
                for k in keys {
                    r.keys.insert(k, 1);
                }
                r
            } else {
                g.keyring_list()
                    .await
                    .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            };
            out.push(keyring_json(wan, &dc, &r));
        }
        return json(&params, &out);
    }
    if local_only {
        return Err(HttpError::bad_request("local-only can only be used with the list operation"));
    }
    let input: KeyInput = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    if input.key.is_empty() {
        return Err(HttpError::bad_request("Request decode failed: missing Key"));
    }
    let mut errors = Vec::new();
    for (wan, g) in gossips {
        let r = match method {
            Method::POST => g.keyring_install(&input.key).await,
            Method::PUT => g.keyring_use(&input.key).await,
            Method::DELETE => g.keyring_remove(&input.key).await,
            ref m => return Err(super::method_not_allowed(m, &["GET", "POST", "PUT", "DELETE"])),
        }
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let pool = if wan { "WAN".to_string() } else { format!("{dc} (LAN)") };
        errors.extend(keyring_errors(&pool, &r));
    }
    if errors.is_empty() {
        Ok(empty_ok())
    } else {
        Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, errors.join("\n")))
    }
}
