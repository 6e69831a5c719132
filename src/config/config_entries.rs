//! `config_entries.bootstrap`: config entries a server's leader writes once
//! (when absent) after it gains leadership. Decoded, normalized and
//! validated here, at load time, so a bad entry stops the agent (and
//! `consul validate`) with Consul's `config_entries.bootstrap[<i>]: ...`.

use super::ConfigError;
use crate::config_entry::{self as ce, ConfigEntry};
use serde_json::Value;

/// The entries of the `config_entries` block, in the order written.
pub fn bootstrap(block: Option<&Value>) -> Result<Vec<ConfigEntry>, ConfigError> {
    let Some(block) = block else { return Ok(Vec::new()) };
    let obj =
        block.as_object().ok_or_else(|| ConfigError::Invalid("config_entries: expected a block".into()))?;
    if let Some(key) = obj.keys().find(|k| k.as_str() != "bootstrap") {
        return Err(ConfigError::Invalid(format!("invalid config key config_entries.{key}")));
    }
    let raw = match obj.get("bootstrap") {
        None | Some(Value::Null) => Vec::new(),
        // One HCL block decodes as an object, several as a list.
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "config_entries.bootstrap: expected a list of config entries, got {other}"
            )))
        }
    };
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let bad = |e: ce::EntryError| ConfigError::Invalid(format!("config_entries.bootstrap[{i}]: {e}"));
            let (kind, mut name, mut fields) = ce::decode(v).map_err(bad)?;
            ce::normalize_and_validate(&kind, &mut name, &mut fields).map_err(bad)?;
            Ok(ConfigEntry::new(&kind, &name, &fields))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_validates_and_names_the_bad_entry() {
        let block = json!({"bootstrap": [
            {"kind": "proxy-defaults", "name": "global", "config": {"protocol": "http"}},
            {"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"},
        ]});
        let entries = bootstrap(Some(&block)).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].kind.as_str(), entries[0].name.as_str()), ("proxy-defaults", "global"));
        assert_eq!(entries[0].fields()["Config"], json!({"protocol": "http"}));
        let one = json!({"bootstrap": {"kind": "service-defaults", "name": "api"}});
        assert_eq!(bootstrap(Some(&one)).unwrap()[0].name, "api");
        let bad = json!({"bootstrap": [{"kind": "service-defaults", "name": "web"}, {"kind": "nope", "name": "x"}]});
        assert_eq!(
            bootstrap(Some(&bad)).unwrap_err().to_string(),
            ConfigError::Invalid("config_entries.bootstrap[1]: invalid config entry kind: nope".into())
                .to_string()
        );
        let unknown = json!({"bootstrap": [{"kind": "service-defaults", "name": "web", "bogus": 1}]});
        assert!(bootstrap(Some(&unknown)).unwrap_err().to_string().contains("config_entries.bootstrap[0]"));
        assert!(bootstrap(Some(&json!({"other": 1}))).is_err());
    }
}
