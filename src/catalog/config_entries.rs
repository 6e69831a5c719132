//! The config-entry table: entries by (kind, name), with Consul's
//! check-and-set rules. What an entry may contain is decided before it is
//! proposed (`config_entry` and the server); applying only stores.

use crate::config_entry::ConfigEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Watch topic of the whole table (Consul's blocking reads on config
/// entries also wake on any change to the table).
pub const TOPIC_CONFIG_ENTRIES: &str = "config-entries";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntryTable {
    by_key: BTreeMap<(String, String), ConfigEntry>,
    /// Raft index of the last change.
    pub index: u64,
}

impl ConfigEntryTable {
    pub fn get(&self, kind: &str, name: &str) -> Option<&ConfigEntry> {
        self.by_key.get(&(kind.to_string(), name.to_string()))
    }

    /// Every entry, by kind then name.
    pub fn list(&self) -> impl Iterator<Item = &ConfigEntry> {
        self.by_key.values()
    }

    /// The entries of one kind, by name.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a ConfigEntry> + 'a {
        self.by_key
            .range((kind.to_string(), String::new())..)
            .take_while(move |((k, _), _)| k == kind)
            .map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Creates or replaces an entry. With `cas`, only if the stored
    /// ModifyIndex equals it (0: only if there is none). Whether it was
    /// written.
    pub fn set(&mut self, index: u64, mut entry: ConfigEntry, cas: Option<u64>) -> bool {
        let key = (entry.kind.clone(), entry.name.clone());
        let existing = self.by_key.get(&key);
        if let Some(cas) = cas {
            let current = existing.map_or(0, |e| e.modify_index);
            if current != cas {
                return false;
            }
        }
        entry.create_index = existing.map_or(index, |e| e.create_index);
        entry.modify_index = index;
        self.by_key.insert(key, entry);
        self.index = index;
        true
    }

    /// Deletes an entry. With `cas`, only if it exists and its ModifyIndex
    /// equals it. Whether the request succeeded (a plain delete of a
    /// missing entry succeeds, as in Consul).
    pub fn delete(&mut self, index: u64, kind: &str, name: &str, cas: Option<u64>) -> bool {
        let key = (kind.to_string(), name.to_string());
        match (self.by_key.get(&key), cas) {
            (None, Some(_)) => return false,
            (Some(e), Some(cas)) if e.modify_index != cas => return false,
            (None, None) => return true,
            _ => {}
        }
        self.by_key.remove(&key);
        self.index = index;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, name: &str) -> ConfigEntry {
        ConfigEntry { kind: kind.into(), name: name.into(), body: "{}".into(), ..Default::default() }
    }

    #[test]
    fn cas_rules() {
        let mut t = ConfigEntryTable::default();
        assert!(!t.set(1, entry("service-defaults", "web"), Some(5)), "cas on a missing entry");
        assert!(t.set(2, entry("service-defaults", "web"), Some(0)));
        assert!(!t.set(3, entry("service-defaults", "web"), Some(0)), "exists now");
        assert!(t.set(4, entry("service-defaults", "web"), Some(2)));
        let e = t.get("service-defaults", "web").unwrap();
        assert_eq!((e.create_index, e.modify_index), (2, 4));
        assert!(t.set(5, entry("service-router", "web"), None));
        assert!(t.set(6, entry("service-defaults", "api"), None));
        let names: Vec<&str> = t.of_kind("service-defaults").map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["api", "web"]);
        assert!(!t.delete(7, "service-defaults", "web", Some(2)));
        assert!(!t.delete(7, "service-defaults", "nope", Some(0)));
        assert!(t.delete(7, "service-defaults", "nope", None));
        assert_eq!(t.index, 6, "a no-op delete changes nothing");
        assert!(t.delete(8, "service-defaults", "web", Some(4)));
        assert_eq!((t.len(), t.index), (2, 8));
    }
}
