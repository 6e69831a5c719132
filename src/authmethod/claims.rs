//! From a verified token's claims to what binding rules see: `value.<x>`
//! (one string per `ClaimMappings` entry) and `list.<x>` (strings per
//! `ListClaimMappings` entry), with Consul's conversions and error texts.

use super::config::JwtConfig;
use super::AuthError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a login proved about its caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Every mapped attribute, "" when the claim was absent.
    pub values: BTreeMap<String, String>,
    /// Every list-mapped attribute, empty when the claim was absent.
    pub lists: BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// An identity with every field the method maps, blank: the shape
    /// selectors and bind names are checked against when a rule is written.
    pub fn blank(config: &JwtConfig) -> Identity {
        Identity {
            values: config.claim_mappings.values().map(|t| (t.clone(), String::new())).collect(),
            lists: config.list_claim_mappings.values().map(|t| (t.clone(), Vec::new())).collect(),
        }
    }

    /// The variables a `BindName` may interpolate: `value.<x>`.
    pub fn projected_vars(&self) -> BTreeMap<String, String> {
        self.values.iter().map(|(k, v)| (format!("value.{k}"), v.clone())).collect()
    }
}

/// A claim by name, or by JSON pointer when it starts with `/`.
fn claim<'a>(all: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let v = if name.starts_with('/') {
        let mut cur: &Value = all.get(name.split('/').nth(1)?)?;
        for part in name.split('/').skip(2) {
            let part = part.replace("~1", "/").replace("~0", "~");
            cur = match cur {
                Value::Object(m) => m.get(&part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        cur
    } else {
        all.get(name)?
    };
    (!v.is_null()).then_some(v)
}

fn stringify(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        // Numbers are truncated to integers, as Consul does.
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => i.to_string(),
            None => (n.as_f64().unwrap_or(0.0) as i64).to_string(),
        }),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map[string]interface {}",
        Value::Array(_) => "[]interface {}",
        _ => "unknown",
    }
}

pub fn extract(all: &Map<String, Value>, config: &JwtConfig) -> Result<Identity, AuthError> {
    let mut id = Identity::blank(config);
    for (source, target) in &config.claim_mappings {
        let Some(raw) = claim(all, source) else { continue };
        let s = stringify(raw).ok_or_else(|| {
            AuthError(format!(
                "error converting claim '{source}' to string from unknown type {}",
                type_name(raw)
            ))
        })?;
        id.values.insert(target.clone(), s);
    }
    for (source, target) in &config.list_claim_mappings {
        let Some(raw) = claim(all, source) else { continue };
        let items: Vec<&Value> = match raw {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => {
                return Err(AuthError(format!("{source:?} list claim could not be converted to string list")))
            }
            single => vec![single],
        };
        let mut list = Vec::new();
        for item in items {
            let s = stringify(item).ok_or_else(|| {
                AuthError(format!("value {item} in {source:?} list claim could not be parsed as string"))
            })?;
            if !s.is_empty() {
                list.push(s);
            }
        }
        id.lists.insert(target.clone(), list);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mappings_pointers_and_conversions() {
        let config = JwtConfig {
            claim_mappings: [("sub", "name"), ("/nomad/job", "job"), ("n", "num"), ("missing", "gone")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            list_claim_mappings: [("groups", "groups"), ("one", "one")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        };
        let all =
            json!({"sub": "web", "nomad": {"job": "api"}, "n": 3.7, "groups": ["a", "", 2], "one": "x"});
        let id = extract(all.as_object().unwrap(), &config).unwrap();
        assert_eq!(id.values["name"], "web");
        assert_eq!(id.values["job"], "api");
        assert_eq!(id.values["num"], "3");
        assert_eq!(id.values["gone"], "");
        assert_eq!(id.lists["groups"], vec!["a", "2"]);
        assert_eq!(id.lists["one"], vec!["x"]);
        assert_eq!(id.projected_vars()["value.name"], "web");
        let bad = json!({"sub": {"a": 1}});
        assert!(extract(bad.as_object().unwrap(), &config)
            .unwrap_err()
            .0
            .contains("error converting claim 'sub'"));
    }
}
