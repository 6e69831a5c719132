//! Taking typed values out of a watch's parameter map, with the checks and
//! messages of Consul's watch parser: every recognised key is removed, so
//! whatever is left at the end is reported as an invalid parameter.

use serde_json::{Map, Value};

/// A watch definition being consumed key by key.
pub struct Params {
    map: Map<String, Value>,
}

impl Params {
    pub fn new(map: Map<String, Value>) -> Params {
        Params { map }
    }

    /// A string parameter (absent → `None`).
    pub fn string(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("Expecting {name} to be a string")),
        }
    }

    /// A boolean parameter (absent → `false`).
    pub fn boolean(&mut self, name: &str) -> Result<bool, String> {
        match self.map.remove(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(format!("Expecting {name} to be a boolean")),
        }
    }

    /// A string or a list of strings (absent → empty).
    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>, String> {
        match self.map.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(format!("Index {i} of {name} expected to be string")),
                })
                .collect(),
            Some(_) => Err(format!("Expecting {name} to be a string or []string")),
        }
    }

    /// Removes a raw value for the caller to interpret.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// Fails with Consul's message when parameters are left unconsumed.
    pub fn finish(self) -> Result<(), String> {
        if self.map.is_empty() {
            return Ok(());
        }
        let mut bad: Vec<&str> = self.map.keys().map(String::as_str).collect();
        bad.sort_unstable();
        Err(format!("Invalid parameters: [{}]", bad.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        match v {
            Value::Object(m) => Params::new(m),
            _ => Params::new(Map::new()),
        }
    }

    #[test]
    fn typed_values_and_messages() {
        let mut p =
            params(json!({"key": "a", "stale": true, "tag": ["x", "y"], "name": 5, "passingonly": "yes"}));
        assert_eq!(p.string("key"), Ok(Some("a".into())));
        assert_eq!(p.string("missing"), Ok(None));
        assert_eq!(p.boolean("stale"), Ok(true));
        assert_eq!(p.string_list("tag"), Ok(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(p.string("name"), Err("Expecting name to be a string".into()));
        assert_eq!(p.boolean("passingonly"), Err("Expecting passingonly to be a boolean".into()));
        assert!(p.finish().is_ok());
        let mut p = params(json!({"tag": [1], "zz": 1, "aa": 2}));
        assert_eq!(p.string_list("tag"), Err("Index 0 of tag expected to be string".into()));
        assert_eq!(p.finish(), Err("Invalid parameters: [aa zz]".into()));
    }
}
