//! Merging configuration sources the way Consul merges them: later scalars
//! win, lists append, free-form maps are replaced wholesale by a later
//! non-empty map, and nested blocks merge key by key.

use serde_json::{Map, Value};

/// Keys (as dotted paths) whose values are free-form maps: a later source
/// replaces the whole map instead of merging into it.
const MAP_KEYS: &[&str] =
    &["node_meta", "tagged_addresses", "dns_config.service_ttl", "http_config.response_headers"];

/// Folds the single-object shapes `service` and `check` into the list keys
/// `services` and `checks`, so later sources append to one list.
pub fn normalize(source: &mut Value) {
    let Some(obj) = source.as_object_mut() else { return };
    for (single, list) in [("service", "services"), ("check", "checks")] {
        let Some(value) = obj.remove(single) else { continue };
        let mut items = as_list(value);
        match obj.get_mut(list) {
            Some(existing) => {
                let mut merged = as_list(existing.take());
                merged.append(&mut items);
                *existing = Value::Array(merged);
            }
            None => {
                obj.insert(list.to_string(), Value::Array(items));
            }
        }
    }
    if let Some(list) = obj.get_mut("services") {
        if !list.is_array() && !list.is_null() {
            *list = Value::Array(as_list(list.take()));
        }
    }
    if let Some(list) = obj.get_mut("checks") {
        if !list.is_array() && !list.is_null() {
            *list = Value::Array(as_list(list.take()));
        }
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Merges `later` into `base` following Consul's rules.
pub fn merge(base: &mut Value, later: Value) {
    merge_at(base, later, "");
}

fn merge_at(base: &mut Value, later: Value, path: &str) {
    match (base, later) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(l)) if !MAP_KEYS.contains(&path) => merge_objects(b, l, path),
        (Value::Object(_), Value::Object(l)) if l.is_empty() => {}
        (Value::Array(b), Value::Array(mut l)) => b.append(&mut l),
        (b, l) => *b = l,
    }
}

fn merge_objects(base: &mut Map<String, Value>, later: Map<String, Value>, path: &str) {
    for (key, value) in later {
        let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match base.get_mut(&key) {
            Some(existing) => merge_at(existing, value, &child),
            None => {
                if !value.is_null() {
                    base.insert(key, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_win_lists_append_maps_replace() {
        let mut base = json!({
            "datacenter": "dc1",
            "retry_join": ["a"],
            "node_meta": {"x": "1", "y": "2"},
            "ports": {"http": 1, "dns": 2},
        });
        merge(
            &mut base,
            json!({
                "datacenter": "dc2",
                "retry_join": ["b"],
                "node_meta": {"z": "3"},
                "ports": {"http": 9},
            }),
        );
        assert_eq!(
            base,
            json!({
                "datacenter": "dc2",
                "retry_join": ["a", "b"],
                "node_meta": {"z": "3"},
                "ports": {"http": 9, "dns": 2},
            })
        );
    }

    #[test]
    fn single_service_folds_into_list() {
        let mut a = json!({"service": {"name": "web"}});
        normalize(&mut a);
        let mut b = json!({"services": [{"name": "db"}], "service": {"name": "api"}});
        normalize(&mut b);
        merge(&mut a, b);
        assert_eq!(a, json!({"services": [{"name": "web"}, {"name": "db"}, {"name": "api"}]}));
    }
}
