//! Golden answers. `check` compares one JSON value with a file under
//! tests/golden/ (used by `catalog::endpoint_shapes_match_golden_files`);
//! the tests below walk every `/v1` endpoint of the router, group by group
//! (tests/golden/README.md is the table: endpoint → Consul's documented
//! sample → golden file → test), and compare status, the `X-Consul-*`
//! headers present, and the body of each call with tests/golden/api_<group>.json.
//! Values that differ per run (indexes, UUIDs, times, the agent's address)
//! become placeholders first. `UPDATE_GOLDEN=1` rewrites the files: review
//! the diff against Consul's documented samples, they pin Consul's shapes.

use crate::harness::Agent;
use consul::api::{Client, ClientConfig};
use hyper::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Keys whose numeric values are Raft indexes or other per-run counters.
const COUNTERS: &[&str] = &[
    "CreateIndex",
    "ModifyIndex",
    "LockIndex",
    "LastIndex",
    "LastTerm",
    "Index",
    "LTime",
    "CommitIndex",
    "AppliedIndex",
];

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// RFC 3339 times (`2026-12-06T19:20:00.123Z`, with or without fraction).
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[..4].iter().all(u8::is_ascii_digit)
}

fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // Maps keyed by node IDs (autopilot's `Servers`).
            if m.keys().any(|k| is_uuid(k)) {
                *m = std::mem::take(m)
                    .into_iter()
                    .map(|(k, v)| (if is_uuid(&k) { "<uuid>".to_string() } else { k }, v))
                    .collect();
            }
            for (k, val) in m.iter_mut() {
                match k.as_str() {
                    k if COUNTERS.contains(&k) && val.is_u64() => *val = Value::String("<index>".into()),
                    "ContentHash" | "Hash" | "Revision" => *val = Value::String("<hash>".into()),
                    // Coordinates and timings move on their own.
                    "Vec" | "Error" | "Adjustment" | "Height" if val.is_number() || val.is_array() => {
                        *val = Value::String("<float>".into())
                    }
                    "LastContact" | "StableSince" | "Timestamp" | "CreateTime" | "ExpirationTime" => {
                        *val = Value::String("<time>".into())
                    }
                    _ => normalize(val),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        Value::String(s) if is_uuid(s) => *s = "<uuid>".into(),
        Value::String(s) if is_time(s) => *s = "<time>".into(),
        Value::String(s) => *s = scrub_indexes(s),
        _ => {}
    }
}

/// Raft indexes quoted inside error texts move from run to run (how many
/// entries the leader committed before the case ran): the number after
/// each of these phrases becomes `<index>`.
fn scrub_indexes(s: &str) -> String {
    let mut out = s.to_string();
    for phrase in ["reset index: ", "current modify index "] {
        let mut from = 0;
        while let Some(at) = out[from..].find(phrase) {
            let start = from + at + phrase.len();
            let len = out[start..].bytes().take_while(u8::is_ascii_digit).count();
            if len > 0 {
                out.replace_range(start..start + len, "<index>");
            }
            from = start;
        }
    }
    out
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"))
}

/// Compares `actual` with tests/golden/<name>.json; the agent's own
/// (random) loopback address becomes `<agent-ip>`.
pub fn check(name: &str, actual: &Value, agent_ip: &str) {
    let text = actual.to_string().replace(agent_ip, "<agent-ip>");
    let mut actual: Value = serde_json::from_str(&text).unwrap();
    normalize(&mut actual);
    let path = golden_path(name);
    let rendered = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing golden file {}; run with UPDATE_GOLDEN=1 to create it", path.display())
    });
    assert_eq!(rendered, expected, "{name}: response shape differs from {}", path.display());
}

/// Response headers whose presence is part of an answer's shape.
const META_HEADERS: &[&str] = &[
    "x-consul-index",
    "x-consul-knownleader",
    "x-consul-lastcontact",
    "x-consul-effective-consistency",
    "x-consul-results-filtered-by-acls",
    "x-consul-translate-addresses",
    "x-consul-reason",
    "x-consul-contenthash",
    "x-cache",
    "allow",
];

/// One call of a golden walk.
struct Case {
    name: &'static str,
    method: Method,
    /// `{var}` is replaced by a value an earlier case captured.
    path: String,
    body: Option<String>,
    /// Store this top-level field of the (JSON) answer under this name.
    capture: Option<(&'static str, &'static str)>,
    /// Record only the body's keys (for answers full of per-run values).
    keys_only: bool,
    token: Option<&'static str>,
}

fn case(name: &'static str, method: Method, path: &str) -> Case {
    Case { name, method, path: path.to_string(), body: None, capture: None, keys_only: false, token: None }
}
fn get(name: &'static str, path: &str) -> Case {
    case(name, Method::GET, path)
}
fn put(name: &'static str, path: &str, body: &str) -> Case {
    Case { body: Some(body.to_string()), ..case(name, Method::PUT, path) }
}
impl Case {
    fn capture(mut self, var: &'static str, field: &'static str) -> Case {
        self.capture = Some((var, field));
        self
    }
    fn with_body(mut self, body: &str) -> Case {
        self.body = Some(body.to_string());
        self
    }
    fn keys(mut self) -> Case {
        self.keys_only = true;
        self
    }
    fn token(mut self, t: &'static str) -> Case {
        self.token = Some(t);
        self
    }
}

/// The shape of the keys of a value, one level down for objects of objects.
fn key_shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let inner = match v {
                        Value::Object(_) => key_shape(v),
                        Value::Array(_) => json!("<array>"),
                        other => json!(kind(other)),
                    };
                    (k.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(a) => json!(a.first().map(key_shape).into_iter().collect::<Vec<_>>()),
        other => json!(kind(other)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Runs `cases` in order against `agent` and compares what each answered
/// with tests/golden/api_<group>.json.
async fn walk(group: &str, agent: &Agent, cases: Vec<Case>) {
    let ip = agent.ip.to_string();
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut recorded = Map::new();
    for c in cases {
        let mut path = c.path.clone();
        for (k, v) in &vars {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        let client = Client::new(ClientConfig {
            address: agent.addr(),
            token: c.token.map(str::to_string),
            ..Default::default()
        })
        .unwrap();
        let r = client
            .request(c.method.clone(), &path, c.body.clone().map(Into::into))
            .await
            .unwrap_or_else(|e| panic!("{group}/{}: {e}", c.name));
        let mut headers: Vec<String> =
            META_HEADERS.iter().filter(|h| r.headers.contains_key(**h)).map(|h| h.to_string()).collect();
        if let Some(ct) = r.headers.get("content-type").and_then(|v| v.to_str().ok()) {
            headers.push(format!("content-type: {ct}"));
        }
        if let Some(allow) = r.headers.get("allow").and_then(|v| v.to_str().ok()) {
            headers.push(format!("allow: {allow}"));
        }
        let body = match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) => {
                if let Some((var, field)) = c.capture {
                    let got =
                        v[field].as_str().unwrap_or_else(|| panic!("{group}/{}: no {field} in {v}", c.name));
                    vars.insert(var, got.to_string());
                }
                if c.keys_only {
                    key_shape(&v)
                } else {
                    v
                }
            }
            Err(_) if r.body.is_empty() => json!("<empty>"),
            Err(_) => match std::str::from_utf8(&r.body) {
                Ok(t) => json!(format!("text: {t}")),
                Err(_) => json!(format!("<{} bytes of binary>", if r.body.is_empty() { 0 } else { 1 })),
            },
        };
        let mut shown = path.clone();
        for (k, v) in &vars {
            shown = shown.replace(v.as_str(), &format!("{{{k}}}"));
        }
        recorded.insert(
            c.name.to_string(),
            json!({
                "request": format!("{} {shown}", c.method),
                "status": r.status.as_u16(),
                "headers": headers,
                "body": body,
            }),
        );
    }
    check(&format!("api_{group}"), &Value::Object(recorded), &ip);
}

fn dev() -> Agent {
    Agent::dev(&[])
}

#[tokio::test]
async fn kv_txn_status() {
    let a = dev();
    a.wait_ready().await;
    walk(
        "kv",
        &a,
        vec![
            put("put", "/v1/kv/g/a", "x"),
            put("put_flags", "/v1/kv/g/b?flags=42", "y"),
            get("get", "/v1/kv/g/a"),
            get("get_missing", "/v1/kv/g/none"),
            get("get_raw", "/v1/kv/g/a?raw"),
            get("keys", "/v1/kv/g/?keys"),
            get("keys_separator", "/v1/kv/?keys&separator=/"),
            get("keys_none", "/v1/kv/none/?keys"),
            get("recurse", "/v1/kv/g?recurse"),
            put("cas_lost", "/v1/kv/g/a?cas=1", "z"),
            put("bad_flags", "/v1/kv/g/a?flags=x", "z"),
            put("no_key", "/v1/kv/", "z"),
            case("delete", Method::DELETE, "/v1/kv/g/a"),
            case("delete_recurse", Method::DELETE, "/v1/kv/g?recurse"),
            case("post", Method::POST, "/v1/kv/g/a"),
        ],
    )
    .await;
    walk(
        "txn",
        &a,
        vec![
            put(
                "kv_set_get",
                "/v1/txn",
                r#"[{"KV":{"Verb":"set","Key":"t/a","Value":"eA=="}},{"KV":{"Verb":"get","Key":"t/a"}}]"#,
            ),
            put("kv_check_fails", "/v1/txn", r#"[{"KV":{"Verb":"check-index","Key":"t/a","Index":999999}}]"#),
            put("bad_verb", "/v1/txn", r#"[{"KV":{"Verb":"nope","Key":"t/a"}}]"#),
            put("bad_json", "/v1/txn", "["),
            put("empty", "/v1/txn", "[]"),
            get("get", "/v1/txn"),
        ],
    )
    .await;
    walk("status", &a, vec![get("leader", "/v1/status/leader"), get("peers", "/v1/status/peers")]).await;
}

#[tokio::test]
async fn agent_endpoints() {
    let a = dev();
    a.wait_ready().await;
    walk(
        "agent",
        &a,
        vec![
            get("self", "/v1/agent/self").keys(),
            get("members", "/v1/agent/members"),
            get("members_wan", "/v1/agent/members?wan=1"),
            get("members_wan_segment", "/v1/agent/members?wan=1&segment=x"),
            get("services_none", "/v1/agent/services"),
            get("checks_none", "/v1/agent/checks"),
            put(
                "service_register",
                "/v1/agent/service/register",
                r#"{"ID":"web1","Name":"web","Tags":["a"],"Port":80,"TaggedAddresses":{"lan":{"address":"10.0.0.1","port":80}},"Check":{"TTL":"30s"}}"#,
            ),
            put("service_register_no_name", "/v1/agent/service/register", r#"{"Port":80}"#),
            put("service_register_bad_json", "/v1/agent/service/register", "{"),
            get("services", "/v1/agent/services"),
            get("service", "/v1/agent/service/web1"),
            get("service_unknown", "/v1/agent/service/nope"),
            get("checks", "/v1/agent/checks"),
            put("check_register", "/v1/agent/check/register", r#"{"Name":"mem","TTL":"30s"}"#),
            put(
                "check_register_unknown_service",
                "/v1/agent/check/register",
                r#"{"Name":"c","TTL":"10s","ServiceID":"ghost"}"#,
            ),
            put("check_register_no_name", "/v1/agent/check/register", r#"{"TTL":"10s"}"#),
            put(
                "check_register_bad_status",
                "/v1/agent/check/register",
                r#"{"Name":"x","TTL":"10s","Status":"sunny","ServiceID":"ghost"}"#,
            ),
            put("check_pass", "/v1/agent/check/pass/mem?note=ok", ""),
            put("check_warn", "/v1/agent/check/warn/mem", ""),
            put("check_fail", "/v1/agent/check/fail/mem", ""),
            put("check_update", "/v1/agent/check/update/mem", r#"{"Status":"passing","Output":"fine"}"#),
            put("check_update_bad_status", "/v1/agent/check/update/mem", r#"{"Status":"sunny"}"#),
            put("check_pass_unknown", "/v1/agent/check/pass/nope", ""),
            put("check_pass_service", "/v1/agent/check/pass/service:web1", ""),
            get("health_by_id", "/v1/agent/health/service/id/web1"),
            get("health_by_id_text", "/v1/agent/health/service/id/web1?format=text"),
            get("health_by_id_unknown", "/v1/agent/health/service/id/nope"),
            get("health_by_name", "/v1/agent/health/service/name/web"),
            get("health_by_name_unknown", "/v1/agent/health/service/name/nope"),
            put("service_maintenance", "/v1/agent/service/maintenance/web1?enable=true&reason=r", ""),
            put("service_maintenance_no_enable", "/v1/agent/service/maintenance/web1", ""),
            put("service_maintenance_unknown", "/v1/agent/service/maintenance/nope?enable=true", ""),
            put("maintenance_no_enable", "/v1/agent/maintenance", ""),
            put("maintenance_on", "/v1/agent/maintenance?enable=true", ""),
            put("maintenance_off", "/v1/agent/maintenance?enable=false", ""),
            put("check_deregister", "/v1/agent/check/deregister/mem", ""),
            put("check_deregister_unknown", "/v1/agent/check/deregister/nope", ""),
            put("service_deregister", "/v1/agent/service/deregister/web1", ""),
            put("service_deregister_unknown", "/v1/agent/service/deregister/nope", ""),
            get("metrics", "/v1/agent/metrics").keys(),
            get("metrics_prometheus_off", "/v1/agent/metrics?format=prometheus"),
            get("monitor_bad_level", "/v1/agent/monitor?loglevel=loud"),
            put("token_unknown_kind", "/v1/agent/token/nope", r#"{"Token":"x"}"#),
            put("token_acls_off", "/v1/agent/token/default", r#"{"Token":"x"}"#),
            put("join_unreachable", "/v1/agent/join/127.0.0.1:1", ""),
            put("force_leave_unknown", "/v1/agent/force-leave/nope", ""),
            put("reload", "/v1/agent/reload", ""),
            case("services_post", Method::POST, "/v1/agent/services"),
        ],
    )
    .await;
}

#[tokio::test]
async fn catalog_health_coordinate() {
    let a = dev();
    a.wait_ready().await;
    // The leader registers the node before the agent's first sync adds its
    // tagged addresses: record the listing after that sync, not racing it.
    let synced = crate::harness::wait_until(std::time::Duration::from_secs(15), || async {
        a.get("/v1/catalog/node/dev").await.text().contains("\"lan_ipv4\"")
    })
    .await;
    assert!(synced, "the agent never synced its node's tagged addresses");
    let reg = r#"{"Node":"ext","Address":"10.1.1.1","Service":{"ID":"db1","Service":"db","Port":5432,"TaggedAddresses":{"wan":{"Address":"1.2.3.4","Port":5432}}},"Check":{"CheckID":"db-ok","Name":"db ok","Status":"passing","ServiceID":"db1"}}"#;
    walk(
        "catalog",
        &a,
        vec![
            put("register", "/v1/catalog/register", reg),
            put("register_no_node", "/v1/catalog/register", r#"{"Address":"1.2.3.4"}"#),
            put("register_no_address", "/v1/catalog/register", r#"{"Node":"n"}"#),
            put("register_bad_json", "/v1/catalog/register", "{"),
            get("datacenters", "/v1/catalog/datacenters"),
            get("nodes", "/v1/catalog/nodes"),
            get("services", "/v1/catalog/services"),
            get("services_cached", "/v1/catalog/services?cached"),
            get("service", "/v1/catalog/service/db"),
            get("service_unknown", "/v1/catalog/service/nope"),
            get("node", "/v1/catalog/node/ext"),
            get("node_unknown", "/v1/catalog/node/nope"),
            get("node_services", "/v1/catalog/node-services/ext"),
            get("node_services_unknown", "/v1/catalog/node-services/nope"),
            get("not_yet", "/v1/catalog/connect/db"),
        ],
    )
    .await;
    walk(
        "health",
        &a,
        vec![
            get("service", "/v1/health/service/db"),
            get("service_passing", "/v1/health/service/db?passing"),
            get("service_unknown", "/v1/health/service/nope"),
            get("service_bad_passing", "/v1/health/service/db?passing=maybe"),
            get("node", "/v1/health/node/ext"),
            get("node_unknown", "/v1/health/node/nope"),
            get("checks", "/v1/health/checks/db"),
            get("checks_unknown", "/v1/health/checks/nope"),
            get("state_passing", "/v1/health/state/passing"),
            get("state_unknown", "/v1/health/state/sunny"),
        ],
    )
    .await;
    // The web UI's internal reads, with a sidecar proxy of `db` beside it
    // (the summary counts the proxy's checks for `db` too).
    let proxy = r#"{"Node":"ext","Address":"10.1.1.1","Service":{"ID":"db1-proxy","Service":"db-sidecar-proxy","Kind":"connect-proxy","Port":21000,"Tags":["p"],"Meta":{"external-source":"k8s"},"Proxy":{"DestinationServiceName":"db","DestinationServiceID":"db1","Mode":"transparent"}}}"#;
    walk(
        "internal_ui",
        &a,
        vec![
            put("register_proxy", "/v1/catalog/register", proxy),
            get("nodes", "/v1/internal/ui/nodes"),
            get("nodes_peer", "/v1/internal/ui/nodes?peer=other"),
            get("nodes_filter", "/v1/internal/ui/nodes?filter=Node%20%3D%3D%20ext"),
            get("node", "/v1/internal/ui/node/ext"),
            get("node_unknown", "/v1/internal/ui/node/nope"),
            get("node_missing", "/v1/internal/ui/node/"),
            get("services", "/v1/internal/ui/services"),
            get("exported_services", "/v1/internal/ui/exported-services?peer=p"),
            get("service_topology", "/v1/internal/ui/service-topology/db?kind="),
            put("deregister_proxy", "/v1/catalog/deregister", r#"{"Node":"ext","ServiceID":"db1-proxy"}"#),
        ],
    )
    .await;
    walk(
        "catalog_deregister",
        &a,
        vec![
            put("service", "/v1/catalog/deregister", r#"{"Node":"ext","ServiceID":"db1"}"#),
            put("no_node", "/v1/catalog/deregister", "{}"),
            put("node", "/v1/catalog/deregister", r#"{"Node":"ext"}"#),
        ],
    )
    .await;
    walk(
        "coordinate",
        &a,
        vec![
            get("datacenters", "/v1/coordinate/datacenters").keys(),
            get("nodes", "/v1/coordinate/nodes").keys(),
            get("node_unknown", "/v1/coordinate/node/nope"),
            put("update_bad", "/v1/coordinate/update", "{"),
            put(
                "update",
                "/v1/coordinate/update",
                r#"{"Node":"dev","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}"#,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn session_query_event() {
    let a = dev();
    a.wait_ready().await;
    walk(
        "session",
        &a,
        vec![
            get("list_none", "/v1/session/list"),
            put("create", "/v1/session/create", r#"{"Name":"s","TTL":"30s"}"#).capture("session", "ID"),
            put("create_bad_ttl", "/v1/session/create", r#"{"TTL":"1s"}"#),
            put("create_unknown_node", "/v1/session/create", r#"{"Node":"nope"}"#),
            get("info", "/v1/session/info/{session}"),
            get("info_unknown", "/v1/session/info/00000000-0000-0000-0000-000000000000"),
            get("node", "/v1/session/node/dev"),
            get("node_unknown", "/v1/session/node/nope"),
            get("list", "/v1/session/list"),
            put("renew", "/v1/session/renew/{session}", ""),
            put("renew_unknown", "/v1/session/renew/00000000-0000-0000-0000-000000000000", ""),
            put("destroy", "/v1/session/destroy/{session}", ""),
            put("destroy_no_id", "/v1/session/destroy/", ""),
        ],
    )
    .await;
    walk(
        "query",
        &a,
        vec![
            get("list_none", "/v1/query"),
            case("create", Method::POST, "/v1/query")
                .capture("query", "ID")
                .with_body(r#"{"Name":"q","Service":{"Service":"consul"}}"#),
            case("create_no_service", Method::POST, "/v1/query").with_body(r#"{"Name":"x"}"#),
            get("list", "/v1/query"),
            get("get", "/v1/query/{query}"),
            get("get_unknown", "/v1/query/00000000-0000-0000-0000-000000000000"),
            get("execute", "/v1/query/{query}/execute").keys(),
            get("execute_unknown", "/v1/query/nope/execute"),
            get("explain", "/v1/query/{query}/explain").keys(),
            case("delete", Method::DELETE, "/v1/query/{query}"),
        ],
    )
    .await;
    walk(
        "event",
        &a,
        vec![
            get("list_none", "/v1/event/list"),
            put("fire", "/v1/event/fire/deploy", "payload").keys(),
            put("fire_no_name", "/v1/event/fire/", ""),
            get("list", "/v1/event/list").keys(),
        ],
    )
    .await;
}

#[tokio::test]
async fn operator_snapshot_misc() {
    let a = dev();
    a.wait_ready().await;
    walk(
        "operator",
        &a,
        vec![
            get("raft_configuration", "/v1/operator/raft/configuration"),
            case("raft_peer_no_address", Method::DELETE, "/v1/operator/raft/peer"),
            case("raft_peer_unknown", Method::DELETE, "/v1/operator/raft/peer?address=10.9.9.9:8300"),
            get("autopilot_configuration", "/v1/operator/autopilot/configuration"),
            put("autopilot_set", "/v1/operator/autopilot/configuration", r#"{"CleanupDeadServers":true}"#),
            put(
                "autopilot_cas_lost",
                "/v1/operator/autopilot/configuration?cas=1",
                r#"{"CleanupDeadServers":true}"#,
            ),
            put(
                "autopilot_bad",
                "/v1/operator/autopilot/configuration",
                r#"{"LastContactThreshold":"soon"}"#,
            ),
            get("autopilot_health", "/v1/operator/autopilot/health"),
            get("autopilot_state", "/v1/operator/autopilot/state").keys(),
            get("keyring_not_encrypted", "/v1/operator/keyring"),
            get("usage_not_yet", "/v1/operator/usage"),
            case("transfer_leader", Method::POST, "/v1/operator/raft/transfer-leader"),
        ],
    )
    .await;
    // Issue 19 item 2 reads that had no golden case of their own.
    walk(
        "item2",
        &a,
        vec![
            get("agent_version", "/v1/agent/version").keys(),
            get("agent_host", "/v1/agent/host").keys(),
            get("catalog_connect_none", "/v1/catalog/connect/nope"),
            get("health_connect_none", "/v1/health/connect/nope"),
            get("health_ingress_none", "/v1/health/ingress/nope"),
            get("catalog_peer", "/v1/catalog/service/consul?peer=other"),
        ],
    )
    .await;
    walk(
        "snapshot",
        &a,
        vec![get("save", "/v1/snapshot"), put("restore_garbage", "/v1/snapshot", "not a snapshot")],
    )
    .await;
    walk(
        "misc",
        &a,
        vec![
            get("unknown_v1", "/v1/nope"),
            get("not_api", "/nope"),
            get("not_yet", "/v1/connect/intentions"),
            get("agent_connect", "/v1/agent/connect/ca/roots"),
            get("connect_ca", "/v1/connect/ca/roots"),
            get("peerings", "/v1/peerings"),
            get("namespaces", "/v1/namespaces"),
            get("partitions", "/v1/partitions"),
            get("areas", "/v1/operator/area"),
            get("segments", "/v1/operator/segment"),
            case("method_not_allowed", Method::DELETE, "/v1/status/leader"),
            get("dc_unknown", "/v1/catalog/nodes?dc=elsewhere"),
        ],
    )
    .await;
}

const ROOT: &str = "4d4e7a55-8f1c-4b8e-9a51-6f0b5c2d9e11";

#[tokio::test]
async fn acl_endpoints() {
    let hcl = format!(
        r#"primary_datacenter = "dc1"
           acl {{ enabled = true
                 default_policy = "deny"
                 tokens {{ initial_management = "{ROOT}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    a.wait_ready().await;
    let root =
        Client::new(ClientConfig { address: a.addr(), token: Some(ROOT.into()), ..Default::default() })
            .unwrap();
    let ready = crate::common::wait::wait_until(std::time::Duration::from_secs(30), || async {
        matches!(root.request(Method::GET, "/v1/acl/token/self", None).await, Ok(r) if r.status == 200)
    })
    .await;
    assert!(ready, "the initial management token never worked\n{}", a.output_text());
    walk(
        "acl",
        &a,
        vec![
            put("bootstrap_done", "/v1/acl/bootstrap", ""),
            get("token_self", "/v1/acl/token/self").token(ROOT),
            get("token_self_unknown", "/v1/acl/token/self").token("00000000-0000-0000-0000-0000000000aa"),
            get("token_self_anonymous", "/v1/acl/token/self"),
            get("kv_unknown_secret", "/v1/kv/x").token("00000000-0000-0000-0000-0000000000aa"),
            get("kv_denied", "/v1/kv/x"),
            put(
                "policy_create",
                "/v1/acl/policy",
                r#"{"Name":"kv-read","Rules":"key_prefix \"\" { policy = \"read\" }"}"#,
            )
            .token(ROOT)
            .capture("policy", "ID"),
            put("policy_create_bad_rules", "/v1/acl/policy", r#"{"Name":"bad","Rules":"key_prefix {"}"#)
                .token(ROOT),
            get("policy", "/v1/acl/policy/{policy}").token(ROOT),
            get("policy_by_name", "/v1/acl/policy/name/kv-read").token(ROOT),
            get("policy_unknown", "/v1/acl/policy/00000000-0000-0000-0000-0000000000bb").token(ROOT),
            get("policies", "/v1/acl/policies").token(ROOT),
            put("role_create", "/v1/acl/role", r#"{"Name":"reader","Policies":[{"Name":"kv-read"}]}"#)
                .token(ROOT)
                .capture("role", "ID"),
            get("role", "/v1/acl/role/{role}").token(ROOT),
            get("role_by_name", "/v1/acl/role/name/reader").token(ROOT),
            get("role_unknown", "/v1/acl/role/00000000-0000-0000-0000-0000000000cc").token(ROOT),
            get("roles", "/v1/acl/roles").token(ROOT),
            put("token_create", "/v1/acl/token", r#"{"Description":"t","Roles":[{"Name":"reader"}]}"#)
                .token(ROOT)
                .capture("token", "AccessorID"),
            put("token_create_bad_json", "/v1/acl/token", "{").token(ROOT),
            get("token", "/v1/acl/token/{token}").token(ROOT),
            get("token_unknown", "/v1/acl/token/00000000-0000-0000-0000-0000000000dd").token(ROOT),
            get("tokens", "/v1/acl/tokens").token(ROOT).keys(),
            put(
                "token_update",
                "/v1/acl/token/{token}",
                r#"{"Description":"t2","Roles":[{"Name":"reader"}]}"#,
            )
            .token(ROOT),
            put("token_clone", "/v1/acl/token/{token}/clone", r#"{"Description":"copy"}"#).token(ROOT),
            case("token_delete", Method::DELETE, "/v1/acl/token/{token}").token(ROOT),
            case("role_delete", Method::DELETE, "/v1/acl/role/{role}").token(ROOT),
            case("policy_delete", Method::DELETE, "/v1/acl/policy/{policy}").token(ROOT),
            get("templated_policies", "/v1/acl/templated-policies").token(ROOT).keys(),
            get("templated_policy", "/v1/acl/templated-policy/name/builtin/service").token(ROOT),
            get("templated_policy_unknown", "/v1/acl/templated-policy/name/builtin/nope").token(ROOT),
            case(
                "templated_policy_preview",
                Method::POST,
                "/v1/acl/templated-policy/preview/builtin/service",
            )
            .with_body(r#"{"Name":"api"}"#)
            .token(ROOT),
            case("login_unknown_method", Method::POST, "/v1/acl/login")
                .with_body(r#"{"AuthMethod":"m","BearerToken":"x"}"#),
            case("logout_anonymous", Method::POST, "/v1/acl/logout"),
            get("auth_methods_not_yet", "/v1/acl/auth-methods").token(ROOT),
        ],
    )
    .await;
}

/// Gateway mappings, ingress health, `?merge-central-config` and `?filter`
/// on config entries and intentions (issue 19, the mesh2 branch): Consul's
/// shapes from `catalog.mdx` § List Services for Gateway, `health.mdx` §
/// List Service Instances for Ingress Gateways, `config.mdx` and
/// `connect/intentions.mdx` § List Intentions.
#[tokio::test]
async fn mesh_gateways_and_central_config() {
    let a = dev();
    a.wait_ready().await;
    walk(
        "mesh",
        &a,
        vec![
            put(
                "proxy_defaults",
                "/v1/config",
                r#"{"Kind":"proxy-defaults","Name":"global","Config":{"local_connect_timeout_ms":1000},"MeshGateway":{"Mode":"local"}}"#,
            ),
            put("service_defaults", "/v1/config", r#"{"Kind":"service-defaults","Name":"web","Protocol":"http"}"#),
            put(
                "terminating",
                "/v1/config",
                r#"{"Kind":"terminating-gateway","Name":"term","Services":[{"Name":"billing","CAFile":"/ca.pem","CertFile":"/c.pem","KeyFile":"/k.pem","SNI":"billing.example"}]}"#,
            ),
            put(
                "ingress",
                "/v1/config",
                r#"{"Kind":"ingress-gateway","Name":"ing","Listeners":[{"Port":8080,"Protocol":"http","Services":[{"Name":"web","Hosts":["web.example"]},{"Name":"*"}]}]}"#,
            ),
            put(
                "register_api",
                "/v1/catalog/register",
                r#"{"Node":"n1","Address":"10.0.0.1","Service":{"ID":"api","Service":"api","Port":80}}"#,
            ),
            put(
                "register_gateway",
                "/v1/catalog/register",
                r#"{"Node":"n1","Address":"10.0.0.1","Service":{"Kind":"ingress-gateway","ID":"ing-1","Service":"ing","Port":8080}}"#,
            ),
            put(
                "register_proxy",
                "/v1/catalog/register",
                r#"{"Node":"n1","Address":"10.0.0.1","Service":{"Kind":"connect-proxy","ID":"web-proxy","Service":"web-sidecar-proxy","Port":21000,"Proxy":{"DestinationServiceName":"web","Config":{"protocol":"tcp"}}}}"#,
            ),
            get("gateway_services_terminating", "/v1/catalog/gateway-services/term"),
            get("gateway_services_ingress", "/v1/catalog/gateway-services/ing"),
            get("gateway_services_none", "/v1/catalog/gateway-services/nope"),
            get("health_ingress", "/v1/health/ingress/api"),
            get("health_ingress_none", "/v1/health/ingress/billing"),
            get("catalog_service_merged", "/v1/catalog/service/web-sidecar-proxy?merge-central-config"),
            get("health_service_merged", "/v1/health/service/web-sidecar-proxy?merge-central-config"),
            get("config_filter", "/v1/config/service-defaults?filter=Protocol%20%3D%3D%20http"),
            get("config_filter_bad", "/v1/config/service-defaults?filter=Bogus%20%3D%3D%201"),
            put(
                "intentions",
                "/v1/config",
                r#"{"Kind":"service-intentions","Name":"web","Sources":[{"Name":"api","Action":"allow"},{"Name":"db","Action":"deny"}]}"#,
            ),
            get("intentions_filter", "/v1/connect/intentions?filter=Action%20%3D%3D%20deny"),
            get("intentions_filter_bad", "/v1/connect/intentions?filter=Bogus%20%3D%3D%201"),
        ],
    )
    .await;
}
