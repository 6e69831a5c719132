//! The HTTP query behind each watch type and the shape of its result: the
//! JSON a handler receives is what Consul's Go client decodes and encodes
//! again, so KV entries are re-ordered into Go's field order, a missing key
//! is `null`, and an event watch only passes on events it has not seen.

use super::spec::{ChecksTarget, WatchKind, WatchSpec};
use super::WatchError;
use crate::api::{encode, Client};
use hyper::{Method, StatusCode};
use serde_json::{Map, Value};
use std::time::Duration;

/// A guard against a connection that never answers: longer than any
/// blocking query a server should hold (10 minutes plus jitter).
const REQUEST_GUARD: Duration = Duration::from_secs(20 * 60);

/// One answer of a watch query.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// `X-Consul-Index` (0 when the agent sent none).
    pub index: u64,
    pub data: Value,
}

/// The path and query string of one blocking request.
pub fn request_path(spec: &WatchSpec, wait_index: u64) -> String {
    let mut params: Vec<(String, String)> = Vec::new();
    let path = match &spec.kind {
        WatchKind::Key { key } => format!("/v1/kv/{}", encode(key)),
        WatchKind::KeyPrefix { prefix } => {
            params.push(("recurse".into(), String::new()));
            format!("/v1/kv/{}", encode(prefix))
        }
        WatchKind::Services => "/v1/catalog/services".into(),
        WatchKind::Nodes => "/v1/catalog/nodes".into(),
        WatchKind::Service { service, tags, passing_only } => {
            for t in tags {
                params.push(("tag".into(), t.clone()));
            }
            if *passing_only {
                params.push(("passing".into(), "1".into()));
            }
            format!("/v1/health/service/{}", encode(service))
        }
        WatchKind::Checks { target: ChecksTarget::Service(s), .. } => {
            format!("/v1/health/checks/{}", encode(s))
        }
        WatchKind::Checks { target: ChecksTarget::State(s), .. } => format!("/v1/health/state/{}", encode(s)),
        WatchKind::Event { name } => {
            if let Some(n) = name {
                params.push(("name".into(), n.clone()));
            }
            "/v1/event/list".into()
        }
    };
    if spec.stale {
        params.push(("stale".into(), String::new()));
    }
    if wait_index > 0 {
        params.push(("index".into(), wait_index.to_string()));
    }
    if params.is_empty() {
        return path;
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={}", encode(v)) })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Runs one (blocking) query. `prev_index` is the index the previous
/// answer carried; event watches use it to drop events already delivered.
pub async fn fetch(
    client: &Client,
    spec: &WatchSpec,
    wait_index: u64,
    prev_index: Option<u64>,
) -> Result<Fetched, WatchError> {
    let path = request_path(spec, wait_index);
    let resp = match tokio::time::timeout(REQUEST_GUARD, client.request(Method::GET, &path, None)).await {
        Ok(r) => r.map_err(|e| WatchError::Client(e.into()))?,
        Err(_) => return Err(WatchError::NoAnswer { path, after: REQUEST_GUARD }),
    };
    let index = resp.index().unwrap_or(0);
    let is_kv = matches!(spec.kind, WatchKind::Key { .. } | WatchKind::KeyPrefix { .. });
    if resp.status == StatusCode::NOT_FOUND && is_kv {
        return Ok(Fetched { index, data: Value::Null });
    }
    if !resp.status.is_success() {
        return Err(WatchError::Status {
            code: resp.status.as_u16(),
            body: resp.text().trim_end().to_string(),
        });
    }
    let body: Value = serde_json::from_slice(&resp.body)
        .map_err(|source| WatchError::Decode { path: path.clone(), source })?;
    let data = shape(&spec.kind, body, prev_index);
    Ok(Fetched { index, data })
}

/// Turns the HTTP answer into what the handler sees.
pub fn shape(kind: &WatchKind, body: Value, prev_index: Option<u64>) -> Value {
    match kind {
        WatchKind::Key { .. } => match body {
            Value::Array(mut items) if !items.is_empty() => go_kv_pair(items.swap_remove(0)),
            _ => Value::Null,
        },
        WatchKind::KeyPrefix { .. } => match body {
            Value::Array(items) => Value::Array(items.into_iter().map(go_kv_pair).collect()),
            _ => Value::Null,
        },
        // Go decodes this into a map and writes it back with sorted keys.
        WatchKind::Services => match body {
            Value::Object(m) => {
                let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            other => other,
        },
        WatchKind::Checks { tags, .. } if !tags.is_empty() => match body {
            Value::Array(items) => {
                Value::Array(items.into_iter().filter(|c| has_all_tags(c, tags)).collect())
            }
            other => other,
        },
        WatchKind::Event { .. } => match body {
            Value::Array(items) => Value::Array(events_after(items, prev_index)),
            other => other,
        },
        _ => body,
    }
}

/// A KV entry in the field order of Go's `api.KVPair`.
fn go_kv_pair(entry: Value) -> Value {
    let Value::Object(mut m) = entry else { return entry };
    let mut out = Map::new();
    let mut take = |name: &str, default: Value| {
        let v = m.remove(name).unwrap_or(default);
        out.insert(name.to_string(), v);
    };
    take("Key", Value::String(String::new()));
    take("CreateIndex", Value::from(0u64));
    take("ModifyIndex", Value::from(0u64));
    take("LockIndex", Value::from(0u64));
    take("Flags", Value::from(0u64));
    take("Value", Value::Null);
    take("Session", Value::String(String::new()));
    for name in ["Namespace", "Partition"] {
        if let Some(v) = m.remove(name).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
            out.insert(name.to_string(), v);
        }
    }
    Value::Object(out)
}

fn has_all_tags(check: &Value, tags: &[String]) -> bool {
    let have: Vec<&str> = check
        .get("ServiceTags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    tags.iter().all(|t| have.contains(&t.as_str()))
}

/// Drops every event up to and including the one the previous answer's
/// index was derived from (Consul's event index is computed from the
/// newest event's ID).
fn events_after(events: Vec<Value>, prev_index: Option<u64>) -> Vec<Value> {
    let Some(prev) = prev_index else { return events };
    let seen = events
        .iter()
        .position(|e| e.get("ID").and_then(Value::as_str).and_then(event_id_to_index) == Some(prev));
    match seen {
        Some(i) => events.into_iter().skip(i + 1).collect(),
        None => events,
    }
}

/// Consul's mapping of an event UUID to a blocking index: the first 16 hex
/// digits XOR the last 16.
pub fn event_id_to_index(id: &str) -> Option<u64> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || id.len() != 36 {
        return None;
    }
    let low = u64::from_str_radix(hex.get(0..16)?, 16).ok()?;
    let high = u64::from_str_radix(hex.get(16..32)?, 16).ok()?;
    Some(low ^ high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: WatchKind) -> WatchSpec {
        WatchSpec {
            kind,
            datacenter: None,
            token: None,
            stale: false,
            handler_type: None,
            http_handler: None,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(request_path(&spec(WatchKind::Key { key: "a b/c".into() }), 0), "/v1/kv/a%20b/c");
        assert_eq!(
            request_path(&spec(WatchKind::KeyPrefix { prefix: "p/".into() }), 7),
            "/v1/kv/p/?recurse&index=7"
        );
        let s = spec(WatchKind::Service {
            service: "web".into(),
            tags: vec!["a".into(), "b".into()],
            passing_only: true,
        });
        assert_eq!(request_path(&s, 3), "/v1/health/service/web?tag=a&tag=b&passing=1&index=3");
        let mut s = spec(WatchKind::Nodes);
        s.stale = true;
        assert_eq!(request_path(&s, 0), "/v1/catalog/nodes?stale");
        assert_eq!(
            request_path(&spec(WatchKind::Event { name: Some("x".into()) }), 0),
            "/v1/event/list?name=x"
        );
        assert_eq!(
            request_path(
                &spec(WatchKind::Checks { target: ChecksTarget::State("critical".into()), tags: vec![] }),
                0
            ),
            "/v1/health/state/critical"
        );
    }

    #[test]
    fn kv_entries_take_go_field_order() {
        let body = json!([{"LockIndex": 1, "Key": "k", "Flags": 2, "Value": "dg==", "Session": "s", "CreateIndex": 3, "ModifyIndex": 4}]);
        let v = shape(&WatchKind::Key { key: "k".into() }, body, None);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value", "Session"]);
        let v = shape(&WatchKind::Key { key: "k".into() }, json!([{"Key": "k"}]), None);
        assert_eq!(v["Session"], "");
        assert_eq!(v["Value"], Value::Null);
        assert_eq!(shape(&WatchKind::Key { key: "k".into() }, json!([]), None), Value::Null);
    }

    #[test]
    fn event_ids_and_pruning() {
        let a = "00000000-0000-0001-0000-000000000003";
        assert_eq!(event_id_to_index(a), Some(1 ^ 3));
        assert_eq!(event_id_to_index("nope"), None);
        assert_eq!(event_id_to_index("zzzzzzzz-0000-0001-0000-000000000003"), None);
        let b = "00000000-0000-0000-0000-000000000009";
        let events = json!([{"ID": a}, {"ID": b}]);
        let kind = WatchKind::Event { name: None };
        assert_eq!(shape(&kind, events.clone(), None).as_array().unwrap().len(), 2);
        assert_eq!(shape(&kind, events.clone(), Some(2)), json!([{"ID": b}]));
        assert_eq!(shape(&kind, events.clone(), Some(9)), json!([]));
        assert_eq!(shape(&kind, events, Some(12345)).as_array().unwrap().len(), 2);
    }

    #[test]
    fn checks_tag_filter() {
        let kind = WatchKind::Checks { target: ChecksTarget::State("any".into()), tags: vec!["v1".into()] };
        let body = json!([{"CheckID": "a", "ServiceTags": ["v1", "x"]}, {"CheckID": "b", "ServiceTags": []}, {"CheckID": "c"}]);
        assert_eq!(shape(&kind, body, None), json!([{"CheckID": "a", "ServiceTags": ["v1", "x"]}]));
    }
}
