//! The ACL tables of the replicated state: tokens (by AccessorID, with a
//! SecretID index), policies and roles (by ID, with a name index), and the
//! bootstrap marker. Applying checks only what must hold in log order
//! (unique names and secrets, the built-ins' invariants); what a caller may
//! do is decided before proposing.

use crate::acl::model::{self, Policy, Role, Token};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The watch topic of every ACL table: blocking ACL reads park on it, and
/// a change wakes the servers' token caches.
pub const TOPIC_ACL: &str = "acl";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclIndexes {
    pub tokens: u64,
    pub policies: u64,
    pub roles: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AclTable {
    tokens: BTreeMap<String, Token>,
    secrets: BTreeMap<String, String>,
    policies: BTreeMap<String, Policy>,
    policy_names: BTreeMap<String, String>,
    roles: BTreeMap<String, Role>,
    role_names: BTreeMap<String, String>,
    /// The raft index of the accepted `/v1/acl/bootstrap`, 0 before.
    pub bootstrap_index: u64,
    pub index: AclIndexes,
    /// A secret only servers know (it lives in the replicated state):
    /// a follower presents it when it forwards a raw command to the leader.
    pub server_secret: String,
}

/// What a secondary datacenter's leader copies from the primary in one
/// Raft entry: objects to create or replace (by ID) and IDs to delete.
/// Only global tokens travel; the secondary's local tokens are never
/// touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclReplicationDiff {
    pub set_policies: Vec<Policy>,
    pub delete_policies: Vec<String>,
    pub set_roles: Vec<Role>,
    pub delete_roles: Vec<String>,
    pub set_tokens: Vec<Token>,
    pub delete_tokens: Vec<String>,
}

impl AclReplicationDiff {
    pub fn is_empty(&self) -> bool {
        self.set_policies.is_empty()
            && self.delete_policies.is_empty()
            && self.set_roles.is_empty()
            && self.delete_roles.is_empty()
            && self.set_tokens.is_empty()
            && self.delete_tokens.is_empty()
    }

    /// A rough encoded size, for bounding batches.
    pub fn approx_size(&self) -> usize {
        let ids = self.delete_policies.len() + self.delete_roles.len() + self.delete_tokens.len();
        64 + 40 * ids
            + self.set_policies.iter().map(|p| 256 + p.rules.len() + p.description.len()).sum::<usize>()
            + self.set_roles.iter().map(|r| 512 + r.description.len()).sum::<usize>()
            + self.set_tokens.iter().map(|t| 512 + t.description.len()).sum::<usize>()
    }
}

/// The error an apply returns when bootstrap already happened; the server
/// turns it into Consul's 403.
pub fn bootstrap_refused(reset_index: u64) -> String {
    format!("ACL bootstrap no longer allowed (reset index: {reset_index})")
}

impl AclTable {
    /// The largest of the three table indexes: what changes whenever any
    /// token, policy or role does (token caches key on it).
    pub fn max_index(&self) -> u64 {
        self.index.tokens.max(self.index.policies).max(self.index.roles)
    }

    pub fn token(&self, accessor: &str) -> Option<&Token> {
        self.tokens.get(accessor)
    }

    pub fn token_by_secret(&self, secret: &str) -> Option<&Token> {
        self.secrets.get(secret).and_then(|a| self.tokens.get(a))
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.get(id)
    }

    pub fn policy_by_name(&self, name: &str) -> Option<&Policy> {
        self.policy_names.get(name).and_then(|id| self.policies.get(id))
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }

    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.role_names.get(name).and_then(|id| self.roles.get(id))
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// Accepts the bootstrap token unless a bootstrap already happened and
    /// the operator's reset index does not name it.
    pub fn bootstrap(&mut self, index: u64, token: &Token, reset_index: u64) -> Result<(), String> {
        if self.bootstrap_index != 0 && reset_index != self.bootstrap_index {
            return Err(bootstrap_refused(self.bootstrap_index));
        }
        self.set_token(index, token)?;
        self.bootstrap_index = index;
        Ok(())
    }

    /// Creates or replaces a token (by AccessorID). Its SecretID may not
    /// belong to another token, and a SecretID never changes.
    pub fn set_token(&mut self, index: u64, token: &Token) -> Result<(), String> {
        if token.accessor_id.is_empty() || token.secret_id.is_empty() {
            return Err("token needs an AccessorID and a SecretID".into());
        }
        if let Some(owner) = self.secrets.get(&token.secret_id) {
            if *owner != token.accessor_id {
                return Err("Invalid Token: SecretID is already in use".into());
            }
        }
        let mut t = token.clone();
        match self.tokens.get(&token.accessor_id) {
            Some(old) => {
                if old.secret_id != token.secret_id {
                    return Err("Cannot change a token's SecretID".into());
                }
                t.create_index = old.create_index;
            }
            None => t.create_index = index,
        }
        t.modify_index = index;
        self.secrets.insert(t.secret_id.clone(), t.accessor_id.clone());
        self.tokens.insert(t.accessor_id.clone(), t);
        self.index.tokens = index;
        Ok(())
    }

    /// Deletes a token; the anonymous token stays. Deleting a missing one
    /// is not an error (Consul answers `true`).
    pub fn delete_token(&mut self, index: u64, accessor: &str) -> Result<(), String> {
        if accessor == model::ANONYMOUS_ACCESSOR {
            return Err("Deletion of the request's authorization token is not permitted".into());
        }
        if let Some(t) = self.tokens.remove(accessor) {
            self.secrets.remove(&t.secret_id);
            self.index.tokens = index;
        }
        Ok(())
    }

    /// Creates or replaces a policy (by ID); names are unique.
    pub fn set_policy(&mut self, index: u64, policy: &Policy) -> Result<(), String> {
        if let Some(owner) = self.policy_names.get(&policy.name) {
            if *owner != policy.id {
                return Err(format!("Invalid Policy: A Policy with Name {:?} already exists", policy.name));
            }
        }
        let mut p = policy.clone();
        match self.policies.get(&policy.id) {
            Some(old) => {
                if old.id == model::GLOBAL_MANAGEMENT_ID
                    && (old.rules != p.rules || old.datacenters != p.datacenters)
                {
                    return Err(
                        "Changing the Rules for the builtin global-management policy is not permitted".into(),
                    );
                }
                self.policy_names.remove(&old.name);
                p.create_index = old.create_index;
            }
            None => p.create_index = index,
        }
        p.modify_index = index;
        self.policy_names.insert(p.name.clone(), p.id.clone());
        self.policies.insert(p.id.clone(), p);
        self.index.policies = index;
        Ok(())
    }

    pub fn delete_policy(&mut self, index: u64, id: &str) -> Result<(), String> {
        if id == model::GLOBAL_MANAGEMENT_ID {
            return Err("Delete operation not permitted on the builtin global-management policy".into());
        }
        if let Some(p) = self.policies.remove(id) {
            self.policy_names.remove(&p.name);
            self.index.policies = index;
        }
        Ok(())
    }

    pub fn set_role(&mut self, index: u64, role: &Role) -> Result<(), String> {
        if let Some(owner) = self.role_names.get(&role.name) {
            if *owner != role.id {
                return Err(format!("Invalid Role: A Role with Name {:?} already exists", role.name));
            }
        }
        let mut r = role.clone();
        match self.roles.get(&role.id) {
            Some(old) => {
                self.role_names.remove(&old.name);
                r.create_index = old.create_index;
            }
            None => r.create_index = index,
        }
        r.modify_index = index;
        self.role_names.insert(r.name.clone(), r.id.clone());
        self.roles.insert(r.id.clone(), r);
        self.index.roles = index;
        Ok(())
    }

    pub fn delete_role(&mut self, index: u64, id: &str) -> Result<(), String> {
        if let Some(r) = self.roles.remove(id) {
            self.role_names.remove(&r.name);
            self.index.roles = index;
        }
        Ok(())
    }

    /// Applies what a secondary's leader copied from the primary. Deletes
    /// and replaced objects are taken out first, so a rename chain (A's
    /// name moving to B within one round) does not trip the name index.
    /// An object that still conflicts with what is here (a name or
    /// secret held by another object; a local token) is skipped: the next
    /// round, after the primary's state settles, tries again.
    pub fn replicate(&mut self, index: u64, diff: &AclReplicationDiff) {
        let mut old_policies = BTreeMap::new();
        for id in diff.delete_policies.iter().chain(diff.set_policies.iter().map(|p| &p.id)) {
            if let Some(p) = self.policies.remove(id) {
                self.policy_names.remove(&p.name);
                old_policies.insert(p.id.clone(), p);
                self.index.policies = index;
            }
        }
        for p in &diff.set_policies {
            if self.policy_names.contains_key(&p.name) {
                continue;
            }
            let mut p = p.clone();
            p.create_index = old_policies.get(&p.id).map_or(index, |o| o.create_index);
            p.modify_index = index;
            self.policy_names.insert(p.name.clone(), p.id.clone());
            self.policies.insert(p.id.clone(), p);
            self.index.policies = index;
        }

        let mut old_roles = BTreeMap::new();
        for id in diff.delete_roles.iter().chain(diff.set_roles.iter().map(|r| &r.id)) {
            if let Some(r) = self.roles.remove(id) {
                self.role_names.remove(&r.name);
                old_roles.insert(r.id.clone(), r);
                self.index.roles = index;
            }
        }
        for r in &diff.set_roles {
            if self.role_names.contains_key(&r.name) {
                continue;
            }
            let mut r = r.clone();
            r.create_index = old_roles.get(&r.id).map_or(index, |o| o.create_index);
            r.modify_index = index;
            self.role_names.insert(r.name.clone(), r.id.clone());
            self.roles.insert(r.id.clone(), r);
            self.index.roles = index;
        }

        let mut old_tokens = BTreeMap::new();
        for accessor in diff.delete_tokens.iter().chain(diff.set_tokens.iter().map(|t| &t.accessor_id)) {
            // Local tokens belong to this datacenter alone.
            if self.tokens.get(accessor).is_some_and(|t| !t.local) {
                if let Some(t) = self.tokens.remove(accessor) {
                    self.secrets.remove(&t.secret_id);
                    old_tokens.insert(t.accessor_id.clone(), t);
                    self.index.tokens = index;
                }
            }
        }
        for t in &diff.set_tokens {
            if t.local
                || t.accessor_id.is_empty()
                || t.secret_id.is_empty()
                || self.tokens.contains_key(&t.accessor_id)
                || self.secrets.contains_key(&t.secret_id)
            {
                continue;
            }
            let mut t = t.clone();
            t.create_index = old_tokens.get(&t.accessor_id).map_or(index, |o| o.create_index);
            t.modify_index = index;
            self.secrets.insert(t.secret_id.clone(), t.accessor_id.clone());
            self.tokens.insert(t.accessor_id.clone(), t);
            self.index.tokens = index;
        }
    }

    /// Sets the servers' shared secret once; later attempts keep the first.
    pub fn set_server_secret(&mut self, secret: &str) {
        if self.server_secret.is_empty() {
            self.server_secret = secret.to_string();
        }
    }

    /// After a snapshot restore every table reports the restore's index.
    pub fn raise_indexes(&mut self, index: u64) {
        self.index = AclIndexes { tokens: index, policies: index, roles: index };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(a: &str, s: &str) -> Token {
        Token { accessor_id: a.into(), secret_id: s.into(), ..Default::default() }
    }

    #[test]
    fn secrets_are_unique_and_fixed() {
        let mut t = AclTable::default();
        t.set_token(5, &token("a1", "s1")).unwrap();
        assert!(t.set_token(6, &token("a2", "s1")).unwrap_err().contains("SecretID is already in use"));
        assert!(t.set_token(6, &token("a1", "s2")).is_err());
        let mut updated = token("a1", "s1");
        updated.description = "d".into();
        t.set_token(7, &updated).unwrap();
        let got = t.token_by_secret("s1").unwrap();
        assert_eq!((got.create_index, got.modify_index, got.description.as_str()), (5, 7, "d"));
        t.delete_token(8, "a1").unwrap();
        assert!(t.token_by_secret("s1").is_none());
        t.delete_token(9, "missing").unwrap();
        assert_eq!(t.index.tokens, 8);
    }

    #[test]
    fn bootstrap_once_then_only_with_the_reset_index() {
        let mut t = AclTable::default();
        t.bootstrap(3, &token("a1", "s1"), 0).unwrap();
        assert_eq!(t.bootstrap(4, &token("a2", "s2"), 0).unwrap_err(), bootstrap_refused(3));
        assert_eq!(t.bootstrap(4, &token("a2", "s2"), 2).unwrap_err(), bootstrap_refused(3));
        t.bootstrap(5, &token("a2", "s2"), 3).unwrap();
        assert_eq!(t.bootstrap_index, 5);
    }

    #[test]
    fn replication_renames_replaces_and_keeps_local_tokens() {
        let mut t = AclTable::default();
        let p = |id: &str, name: &str| Policy { id: id.into(), name: name.into(), ..Default::default() };
        t.set_policy(1, &p("p1", "a")).unwrap();
        t.set_policy(2, &p("p2", "b")).unwrap();
        let mut local = token("local", "s-local");
        local.local = true;
        t.set_token(3, &local).unwrap();
        t.set_token(4, &token("g1", "s-g1")).unwrap();
        // p2 takes p1's old name, p1 a new one, in one round; g1 goes,
        // g2 arrives; a delete naming the local token is ignored.
        let diff = AclReplicationDiff {
            set_policies: vec![p("p2", "a"), p("p1", "c")],
            set_tokens: vec![token("g2", "s-g2")],
            delete_tokens: vec!["g1".into(), "local".into()],
            ..Default::default()
        };
        t.replicate(10, &diff);
        assert_eq!(t.policy_by_name("a").unwrap().id, "p2");
        assert_eq!(t.policy_by_name("c").unwrap().create_index, 1);
        assert!(t.policy_by_name("b").is_none());
        assert!(t.token("g1").is_none() && t.token_by_secret("s-g1").is_none());
        assert_eq!(t.token_by_secret("s-g2").unwrap().modify_index, 10);
        assert!(t.token("local").is_some());
        assert_eq!((t.index.policies, t.index.tokens, t.index.roles), (10, 10, 0));
        // A delete of a policy removes its name too.
        t.replicate(11, &AclReplicationDiff { delete_policies: vec!["p2".into()], ..Default::default() });
        assert!(t.policy_by_name("a").is_none());
    }

    #[test]
    fn policy_names_are_unique_and_builtin_is_protected() {
        let mut t = AclTable::default();
        let p = |id: &str, name: &str, rules: &str| Policy {
            id: id.into(),
            name: name.into(),
            rules: rules.into(),
            ..Default::default()
        };
        t.set_policy(1, &p(model::GLOBAL_MANAGEMENT_ID, "global-management", "")).unwrap();
        t.set_policy(2, &p("p1", "ro", "key_prefix \"\" { policy = \"read\" }")).unwrap();
        assert_eq!(
            t.set_policy(3, &p("p2", "ro", "")).unwrap_err(),
            "Invalid Policy: A Policy with Name \"ro\" already exists"
        );
        t.set_policy(4, &p("p1", "renamed", "")).unwrap();
        assert!(t.policy_by_name("ro").is_none());
        assert_eq!(t.policy_by_name("renamed").unwrap().create_index, 2);
        assert!(t.set_policy(5, &p(model::GLOBAL_MANAGEMENT_ID, "global-management", "x")).is_err());
        assert!(t.delete_policy(6, model::GLOBAL_MANAGEMENT_ID).is_err());
        t.delete_policy(7, "p1").unwrap();
        assert!(t.policy("p1").is_none());
    }
}
