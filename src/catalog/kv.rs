//! The KV table: entries, tombstones, and Consul's CAS and delete rules.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One KV entry, as Consul's `DirEntry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Bytes,
    pub flags: u64,
    pub session: Option<String>,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The KV table and its tombstones. Tombstones remember the index at which
/// a key was deleted so that a recursive blocking query on a prefix sees
/// its index move when something under it is deleted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvTable {
    pub(crate) entries: BTreeMap<String, KvEntry>,
    pub(crate) tombstones: BTreeMap<String, u64>,
}

impl KvTable {
    pub fn get(&self, key: &str) -> Option<&KvEntry> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a KvEntry> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }

    /// The highest modify index under a prefix, counting tombstones.
    pub fn max_index_under(&self, prefix: &str) -> u64 {
        let live = self.list(prefix).map(|e| e.modify_index).max().unwrap_or(0);
        let dead = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        live.max(dead)
    }

    /// Writes a value, keeping lock state, as a plain Consul PUT does.
    pub fn set(&mut self, index: u64, key: &str, value: Bytes, flags: u64) {
        self.tombstones.remove(key);
        match self.entries.get_mut(key) {
            Some(e) => {
                e.value = value;
                e.flags = flags;
                e.modify_index = index;
            }
            None => {
                self.entries.insert(
                    key.to_string(),
                    KvEntry {
                        key: key.to_string(),
                        value,
                        flags,
                        session: None,
                        lock_index: 0,
                        create_index: index,
                        modify_index: index,
                    },
                );
            }
        }
    }

    /// Check-and-set: `cas_index == 0` creates only if absent; otherwise
    /// the entry's modify index must equal `cas_index`.
    pub fn cas(&mut self, index: u64, key: &str, value: Bytes, flags: u64, cas_index: u64) -> bool {
        let current = self.entries.get(key).map(|e| e.modify_index);
        let ok = match (cas_index, current) {
            (0, None) => true,
            (0, Some(_)) => false,
            (_, None) => false,
            (want, Some(have)) => want == have,
        };
        if ok {
            self.set(index, key, value, flags);
        }
        ok
    }

    /// Deletes one key; deleting a missing key is not an error.
    pub fn delete(&mut self, index: u64, key: &str) -> bool {
        if self.entries.remove(key).is_some() {
            self.tombstones.insert(key.to_string(), index);
            true
        } else {
            false
        }
    }

    /// Deletes a key only if its modify index equals `cas_index` (0 means
    /// "only if absent", which deletes nothing and succeeds when absent).
    pub fn delete_cas(&mut self, index: u64, key: &str, cas_index: u64) -> bool {
        match self.entries.get(key) {
            None => cas_index == 0,
            Some(e) if e.modify_index == cas_index => {
                self.delete(index, key);
                true
            }
            Some(_) => false,
        }
    }

    /// Deletes every key under a prefix; returns the deleted keys.
    pub fn delete_tree(&mut self, index: u64, prefix: &str) -> Vec<String> {
        let keys: Vec<String> = self.list(prefix).map(|e| e.key.clone()).collect();
        for k in &keys {
            self.delete(index, k);
        }
        keys
    }

    /// Takes (or refreshes) a lock for `session`. Fails if another session
    /// holds it. A new holder bumps `LockIndex`; the holder re-acquiring
    /// only updates the value.
    pub fn lock(&mut self, index: u64, key: &str, value: Bytes, flags: u64, session: &str) -> bool {
        let holder = self.entries.get(key).and_then(|e| e.session.clone());
        match holder.as_deref() {
            Some(h) if h != session => return false,
            _ => {}
        }
        let relock = holder.as_deref() == Some(session);
        self.set(index, key, value, flags);
        if let Some(e) = self.entries.get_mut(key) {
            if !relock {
                e.lock_index += 1;
            }
            e.session = Some(session.to_string());
        }
        true
    }

    /// Releases a lock held by `session`; fails if it doesn't hold it.
    pub fn unlock(&mut self, index: u64, key: &str, value: Bytes, flags: u64, session: &str) -> bool {
        if self.entries.get(key).and_then(|e| e.session.as_deref()) != Some(session) {
            return false;
        }
        self.set(index, key, value, flags);
        if let Some(e) = self.entries.get_mut(key) {
            e.session = None;
        }
        true
    }

    /// Keys held by a session.
    pub fn held_by(&self, session: &str) -> Vec<String> {
        self.entries
            .values()
            .filter(|e| e.session.as_deref() == Some(session))
            .map(|e| e.key.clone())
            .collect()
    }

    /// Releases a lock because its session died (value kept).
    pub fn release_invalidated(&mut self, index: u64, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.session = None;
            e.modify_index = index;
        }
    }

    /// Drops tombstones at or below `index` (they only serve blocking
    /// queries, which have long since moved past them).
    pub fn reap_tombstones(&mut self, index: u64) -> usize {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, i| *i > index);
        before - self.tombstones.len()
    }

    /// Lists keys under `prefix`, collapsing everything after the first
    /// `separator` following the prefix (Consul's `?keys&separator=`).
    pub fn keys(&self, prefix: &str, separator: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.list(prefix) {
            let key = match separator.filter(|s| !s.is_empty()) {
                Some(sep) => match e.key[prefix.len()..].find(sep) {
                    Some(pos) => e.key[..prefix.len() + pos + sep.len()].to_string(),
                    None => e.key.clone(),
                },
                None => e.key.clone(),
            };
            if out.last() != Some(&key) {
                out.push(key);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn set_cas_delete() {
        let mut t = KvTable::default();
        t.set(5, "a", b("1"), 0);
        assert_eq!(t.get("a").unwrap().create_index, 5);
        assert!(!t.cas(6, "a", b("2"), 0, 0), "cas=0 on existing key fails");
        assert!(t.cas(7, "a", b("2"), 0, 5));
        assert_eq!(t.get("a").unwrap().modify_index, 7);
        assert_eq!(t.get("a").unwrap().create_index, 5);
        assert!(t.cas(8, "b", b("x"), 0, 0), "cas=0 creates");
        assert!(!t.delete_cas(9, "a", 5));
        assert!(t.delete_cas(9, "a", 7));
        assert!(t.get("a").is_none());
        assert_eq!(t.max_index_under(""), 9, "tombstone counts");
    }

    #[test]
    fn keys_with_separator() {
        let mut t = KvTable::default();
        for (i, k) in ["web/a", "web/b/c", "web/b/d", "web2", "x"].iter().enumerate() {
            t.set(i as u64 + 1, k, b(""), 0);
        }
        assert_eq!(t.keys("web", Some("/")), vec!["web/", "web2"]);
        assert_eq!(t.keys("web/", Some("/")), vec!["web/a", "web/b/"]);
        assert_eq!(t.keys("", None).len(), 5);
        let deleted = t.delete_tree(10, "web/");
        assert_eq!(deleted.len(), 3);
        assert_eq!(t.max_index_under("web/"), 10);
    }
}
