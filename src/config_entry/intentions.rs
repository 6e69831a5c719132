//! Intentions as Consul 1.9+ keeps them: the `Sources` of a
//! `service-intentions` entry named after the destination. This file
//! normalizes and validates those sources, flattens entries into the
//! legacy one-intention-per-pair view `/v1/connect/intentions` shows, and
//! decides allow/deny for a source → destination pair.

use super::ConfigEntry;
use serde_json::{json, Map, Value};

pub const ALLOW: &str = "allow";
pub const DENY: &str = "deny";
pub const WILDCARD: &str = "*";

/// Consul CE's precedence: exact beats wildcard, destination first.
pub fn precedence(source: &str, destination: &str) -> i64 {
    match (destination == WILDCARD, source == WILDCARD) {
        (false, false) => 9,
        (false, true) => 8,
        (true, false) => 6,
        (true, true) => 5,
    }
}

pub(super) fn normalize_and_validate(name: &str, f: &mut Map<String, Value>) -> Result<(), String> {
    let Some(Value::Array(sources)) = f.get_mut("Sources") else { return Ok(()) };
    let mut seen: Vec<String> = Vec::new();
    for (i, src) in sources.iter_mut().enumerate() {
        let Some(src) = src.as_object_mut() else { continue };
        let src_name = src.get("Name").and_then(Value::as_str).unwrap_or("").to_string();
        if src_name.is_empty() {
            return Err(format!("Sources[{i}].Name is required"));
        }
        if seen.contains(&src_name) {
            return Err(format!("Sources[{i}] defines {src_name:?} more than once"));
        }
        seen.push(src_name.clone());
        for k in ["Peer", "SamenessGroup"] {
            if src.get(k).and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
                return Err(format!(
                    "Sources[{i}].{k} needs cluster peering, which this agent does not support"
                ));
            }
        }
        if src.get("LegacyID").and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
            return Err(format!("Sources[{i}].LegacyID must be omitted"));
        }
        let action = src.get("Action").and_then(Value::as_str).unwrap_or("").to_lowercase();
        let permissions = src.get("Permissions").and_then(Value::as_array).map_or(0, Vec::len);
        if permissions > 0 {
            if !action.is_empty() {
                return Err(format!("Sources[{i}].Action must be omitted if Permissions are specified"));
            }
        } else if action != ALLOW && action != DENY {
            return Err(format!("Sources[{i}].Action must be set to 'allow' or 'deny'"));
        }
        if let Some(Value::Array(perms)) = src.get_mut("Permissions") {
            for (j, p) in perms.iter_mut().filter_map(Value::as_object_mut).enumerate() {
                let a = p.get("Action").and_then(Value::as_str).unwrap_or("").to_lowercase();
                if a != ALLOW && a != DENY {
                    return Err(format!(
                        "Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'"
                    ));
                }
                p.insert("Action".into(), Value::String(a));
                if p.get("HTTP").is_none() {
                    return Err(format!("Sources[{i}].Permissions[{j}].HTTP is required"));
                }
            }
        }
        if !action.is_empty() {
            src.insert("Action".into(), Value::String(action));
        }
        src.insert("Precedence".into(), Value::from(precedence(&src_name, name)));
        src.insert("Type".into(), Value::String("consul".into()));
    }
    Ok(())
}

/// One intention (a source of a destination's entry).
#[derive(Clone, Debug, PartialEq)]
pub struct Intention {
    pub source: String,
    pub destination: String,
    /// `allow`, `deny`, or "" when L7 permissions decide.
    pub action: String,
    pub permissions: Value,
    pub precedence: i64,
    pub description: String,
    pub meta: Value,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Intention {
    /// The legacy API shape (`/v1/connect/intentions`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ID": "",
            "Description": self.description,
            "SourceNS": "default",
            "SourceName": self.source,
            "DestinationNS": "default",
            "DestinationName": self.destination,
            "SourcePartition": "default",
            "DestinationPartition": "default",
            "SourceType": "consul",
            "Action": self.action,
            "Precedence": self.precedence,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        });
        if let Some(m) = v.as_object_mut() {
            if !self.permissions.is_null() {
                m.insert("Permissions".into(), self.permissions.clone());
            }
            if !self.meta.is_null() {
                m.insert("Meta".into(), self.meta.clone());
            }
        }
        v
    }
}

/// The intentions of one `service-intentions` entry.
pub fn of_entry(e: &ConfigEntry) -> Vec<Intention> {
    let f = e.fields();
    let sources = f.get("Sources").and_then(Value::as_array).cloned().unwrap_or_default();
    sources
        .iter()
        .filter_map(Value::as_object)
        .map(|s| {
            let src = s.get("Name").and_then(Value::as_str).unwrap_or("").to_string();
            Intention {
                precedence: precedence(&src, &e.name),
                source: src,
                destination: e.name.clone(),
                action: s.get("Action").and_then(Value::as_str).unwrap_or("").to_string(),
                permissions: s.get("Permissions").cloned().unwrap_or(Value::Null),
                description: s.get("Description").and_then(Value::as_str).unwrap_or("").to_string(),
                meta: s.get("LegacyMeta").cloned().unwrap_or(Value::Null),
                create_index: e.create_index,
                modify_index: e.modify_index,
            }
        })
        .collect()
}

/// Highest precedence first, then by names (Consul's order).
pub fn sort(list: &mut [Intention]) {
    list.sort_by(|a, b| {
        b.precedence
            .cmp(&a.precedence)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.destination.cmp(&b.destination))
    });
}

/// Which side a match looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Source,
    Destination,
}

/// Intentions that apply to `name` on one side (exact or wildcard), in
/// precedence order.
pub fn matching(all: &[Intention], by: By, name: &str) -> Vec<Intention> {
    let mut out: Vec<Intention> = all
        .iter()
        .filter(|i| {
            let side = match by {
                By::Source => &i.source,
                By::Destination => &i.destination,
            };
            side == name || side == WILDCARD
        })
        .cloned()
        .collect();
    sort(&mut out);
    out
}

/// The decision for a connection from `source` to `destination`: the
/// highest-precedence intention that matches both, else `default_allow`.
/// An intention with L7 permissions does not allow a plain connection
/// check (Consul: it can only be decided per request).
pub fn decide(all: &[Intention], source: &str, destination: &str, default_allow: bool) -> bool {
    let found = matching(all, By::Destination, destination)
        .into_iter()
        .find(|i| i.source == source || i.source == WILDCARD);
    match found {
        Some(i) => i.action == ALLOW,
        None => default_allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dest: &str, sources: Value) -> ConfigEntry {
        let mut n = dest.to_string();
        let mut f = json!({ "Sources": sources }).as_object().unwrap().clone();
        super::super::normalize_and_validate(super::super::SERVICE_INTENTIONS, &mut n, &mut f).unwrap();
        ConfigEntry::new(super::super::SERVICE_INTENTIONS, dest, &f)
    }

    #[test]
    fn precedence_decides() {
        let mut all = of_entry(&entry(
            "db",
            json!([{"Name": "web", "Action": "deny"}, {"Name": "*", "Action": "allow"}]),
        ));
        all.extend(of_entry(&entry("*", json!([{"Name": "api", "Action": "deny"}]))));
        assert!(!decide(&all, "web", "db", true));
        assert!(decide(&all, "other", "db", false));
        assert!(!decide(&all, "api", "cache", true));
        assert!(decide(&all, "x", "cache", true));
        assert!(!decide(&all, "x", "cache", false));
        let m = matching(&all, By::Destination, "db");
        assert_eq!(m.iter().map(|i| i.precedence).collect::<Vec<_>>(), vec![9, 8, 6]);
    }

    #[test]
    fn sources_are_validated() {
        let mut n = "db".to_string();
        let mut f = json!({"Sources": [{"Name": "web", "Action": "maybe"}]}).as_object().unwrap().clone();
        assert_eq!(
            normalize_and_validate(&n.clone(), &mut f).unwrap_err(),
            "Sources[0].Action must be set to 'allow' or 'deny'"
        );
        let mut f = json!({"Sources": [{"Name": "web", "Action": "ALLOW"}]}).as_object().unwrap().clone();
        normalize_and_validate(&n, &mut f).unwrap();
        assert_eq!(f["Sources"][0]["Action"], "allow");
        assert_eq!(f["Sources"][0]["Precedence"], 9);
        n.clear();
    }
}
