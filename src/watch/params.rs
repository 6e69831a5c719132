//! Taking typed values out of a watch's parameter map, with the checks and
//! messages of Consul's watch parser: every recognised key is removed, so
//! whatever is left at the end is reported as an invalid parameter.

use super::WatchError;
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
    pub fn string(&mut self, name: &str) -> Result<Option<String>, WatchError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(WatchError::NotString { name: name.to_string() }),
        }
    }

    /// A boolean parameter (absent → `false`).
    pub fn boolean(&mut self, name: &str) -> Result<bool, WatchError> {
        match self.map.remove(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(WatchError::NotBool { name: name.to_string() }),
        }
    }

    /// A string or a list of strings (absent → empty).
    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>, WatchError> {
        match self.map.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(WatchError::ListItemNotString { name: name.to_string(), index: i }),
                })
                .collect(),
            Some(_) => Err(WatchError::NotStringOrList { name: name.to_string() }),
        }
    }

    /// Removes a raw value for the caller to interpret.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// Fails with Consul's message when parameters are left unconsumed.
    pub fn finish(self) -> Result<(), WatchError> {
        if self.map.is_empty() {
            return Ok(());
        }
        let mut bad: Vec<String> = self.map.into_iter().map(|(k, _)| k).collect();
        bad.sort_unstable();
        Err(WatchError::InvalidParameters(bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(e: WatchError) -> String {
        e.to_string()
    }

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
        assert_eq!(p.string("key").map_err(text), Ok(Some("a".into())));
        assert_eq!(p.string("missing").map_err(text), Ok(None));
        assert_eq!(p.boolean("stale").map_err(text), Ok(true));
        assert_eq!(p.string_list("tag").map_err(text), Ok(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(p.string("name").map_err(text), Err("Expecting name to be a string".into()));
        assert_eq!(
            p.boolean("passingonly").map_err(text),
            Err("Expecting passingonly to be a boolean".into())
        );
        assert!(p.finish().is_ok());
        let mut p = params(json!({"tag": [1], "zz": 1, "aa": 2}));
        assert_eq!(p.string_list("tag").map_err(text), Err("Index 0 of tag expected to be string".into()));
        assert_eq!(p.finish().map_err(text), Err("Invalid parameters: [aa zz]".into()));
    }
}
