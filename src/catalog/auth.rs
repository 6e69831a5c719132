//! The auth-method tables of the replicated state: auth methods by name and
//! binding rules by ID (added after the prepared-query table; older
//! encodings decode through `State::decode`). Deleting a method takes its
//! rules and the tokens its logins created with it, as Consul does; the
//! token side is done by the caller (`State::apply`), which owns the token
//! table.

use crate::acl::model::{AuthMethod, BindingRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuthTable {
    methods: BTreeMap<String, AuthMethod>,
    rules: BTreeMap<String, BindingRule>,
    /// The raft index of the last change to methods.
    pub methods_index: u64,
    /// The raft index of the last change to binding rules.
    pub rules_index: u64,
}

impl AuthTable {
    pub fn method(&self, name: &str) -> Option<&AuthMethod> {
        self.methods.get(name)
    }

    pub fn methods(&self) -> impl Iterator<Item = &AuthMethod> {
        self.methods.values()
    }

    pub fn rule(&self, id: &str) -> Option<&BindingRule> {
        self.rules.get(id)
    }

    pub fn rules(&self) -> impl Iterator<Item = &BindingRule> {
        self.rules.values()
    }

    /// Creates or replaces a method (by name); its type never changes.
    pub fn set_method(&mut self, index: u64, method: &AuthMethod) -> Result<(), String> {
        if method.name.is_empty() {
            return Err("Invalid Auth Method: no Name is set".into());
        }
        let mut m = method.clone();
        match self.methods.get(&method.name) {
            Some(old) => {
                if old.method_type != m.method_type {
                    return Err("the Type field of an Auth Method is immutable".into());
                }
                m.create_index = old.create_index;
            }
            None => m.create_index = index,
        }
        m.modify_index = index;
        self.methods.insert(m.name.clone(), m);
        self.methods_index = index;
        Ok(())
    }

    /// Removes a method and its binding rules; whether it existed.
    pub fn delete_method(&mut self, index: u64, name: &str) -> bool {
        if self.methods.remove(name).is_none() {
            return false;
        }
        self.methods_index = index;
        let before = self.rules.len();
        self.rules.retain(|_, r| r.auth_method != name);
        if self.rules.len() != before {
            self.rules_index = index;
        }
        true
    }

    /// Creates or replaces a rule (by ID); its method must exist and never
    /// changes.
    pub fn set_rule(&mut self, index: u64, rule: &BindingRule) -> Result<(), String> {
        if rule.id.is_empty() {
            return Err("binding rule needs an ID".into());
        }
        if !self.methods.contains_key(&rule.auth_method) {
            return Err(format!("cannot find auth method with name {:?}", rule.auth_method));
        }
        let mut r = rule.clone();
        match self.rules.get(&rule.id) {
            Some(old) => {
                if old.auth_method != r.auth_method {
                    return Err("the AuthMethod field of an Binding Rule is immutable".into());
                }
                r.create_index = old.create_index;
            }
            None => r.create_index = index,
        }
        r.modify_index = index;
        self.rules.insert(r.id.clone(), r);
        self.rules_index = index;
        Ok(())
    }

    pub fn delete_rule(&mut self, index: u64, id: &str) {
        if self.rules.remove(id).is_some() {
            self.rules_index = index;
        }
    }

    pub fn raise_indexes(&mut self, index: u64) {
        self.methods_index = index;
        self.rules_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str, typ: &str) -> AuthMethod {
        AuthMethod { name: name.into(), method_type: typ.into(), ..Default::default() }
    }

    fn rule(id: &str, m: &str) -> BindingRule {
        BindingRule { id: id.into(), auth_method: m.into(), ..Default::default() }
    }

    #[test]
    fn type_and_method_are_immutable_and_delete_cascades() {
        let mut t = AuthTable::default();
        t.set_method(2, &method("m", "jwt")).unwrap();
        assert!(t.set_method(3, &method("m", "kubernetes")).unwrap_err().contains("immutable"));
        assert!(t.set_rule(4, &rule("r1", "nope")).unwrap_err().contains("cannot find auth method"));
        t.set_rule(5, &rule("r1", "m")).unwrap();
        t.set_method(6, &method("other", "jwt")).unwrap();
        assert!(t.set_rule(7, &rule("r1", "other")).unwrap_err().contains("immutable"));
        t.set_rule(8, &rule("r2", "other")).unwrap();
        assert!(t.delete_method(9, "m"));
        assert!(t.rule("r1").is_none());
        assert!(t.rule("r2").is_some());
        assert_eq!((t.methods_index, t.rules_index), (9, 9));
        assert!(!t.delete_method(10, "m"));
        assert_eq!(t.method("other").unwrap().create_index, 6);
    }
}
